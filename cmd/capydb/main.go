// Command capydb is both the CapyDB server (`capydb server`, `capydb admin ...`)
// and the CapyDB command-line client (every other command).
package main

import (
	"os"

	"github.com/capydb/capydb/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
