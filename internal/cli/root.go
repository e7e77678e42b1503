// Package cli is the capydb command tree: the HTTP client commands and the
// entry points of the server and operator commands.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
)

// Version is stamped at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// Main runs the command line and returns the process exit code (CLI.md §7:
// 0 ok, 1 other, 2 usage, 3 auth, 4 not found, 5 conflict, 6 timeout).
// Ctrl-C cancels the context: commands stop waiting, jobs keep running.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// run executes one command line with the given streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	out := &trackingWriter{w: stdout}
	root.SetOut(out)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		return reportError(cmd, err, out, stderr)
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
