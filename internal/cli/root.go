// Package cli is the capydb command tree: the HTTP client commands and the
// entry points of the server and operator commands.
package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Version is stamped at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "capydb",
		Short:         "CapyDB: self-hostable managed PostgreSQL",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err.Error()) })
	for _, add := range registrars {
		add(root)
	}
	return root
}

// registrars add command groups to the root; each group registers itself
// from its own file so groups can be developed independently.
var registrars []func(*cobra.Command)
