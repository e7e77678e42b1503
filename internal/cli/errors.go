package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

// Exit codes of the client commands (CLI.md §7).
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitAuth     = 3
	exitNotFound = 4
	exitConflict = 5
	exitTimeout  = 6
)

// codedError carries an explicit exit code.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, format string, a ...any) error {
	return &codedError{code: code, err: fmt.Errorf(format, a...)}
}

// noCredentials: no key from the flag, the environment, the config or a
// prompt, for the server at base. why, when set, says why nothing was asked.
func noCredentials(base, why string) error {
	msg := "no API key for " + base
	if why != "" {
		msg += " and no terminal to log in on (" + why + ")"
	}
	return &codedError{code: exitAuth,
		err: errors.New(msg + ": set CAPYDB_API_KEY or pass --api-key, or run capydb login first")}
}

// statusExit maps an HTTP status to an exit code.
func statusExit(status int) int {
	switch status {
	case 400, 422:
		return exitUsage
	case 401, 403:
		return exitAuth
	case 404, 410:
		return exitNotFound
	case 409, 412, 428:
		return exitConflict
	case 408, 504:
		return exitTimeout
	}
	return exitError
}

// exitCode maps an error from a command to the process exit code. The
// outermost explicit code wins; then the HTTP status of an API error.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	if s := apiclient.StatusOf(err); s != 0 {
		return statusExit(s)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return exitTimeout
	}
	// cobra's own argument errors are usage errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "required flag", "accepts ", "requires at least", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	return exitError
}

// op prefixes an error with what was being done ("create preview: ...").
func op(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Argument validators that report usage errors (exit 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(fmt.Sprintf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args)))
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError(fmt.Sprintf("%s takes at most %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args)))
		}
		return nil
	}
}

// group is a command that only holds subcommands: without arguments it prints
// its help, with an unknown subcommand it is a usage error.
func group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Aliases: aliases,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return cmd.Help()
		},
	}
}

// sharedGroup returns root's group named use, adding it when no registrar
// has yet: several features hang subcommands off one group (`capydb db lint`,
// `capydb db settings`), and cobra would keep only the first of two groups
// with the same name.
func sharedGroup(root *cobra.Command, use, short string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == use {
			return c
		}
	}
	g := group(use, short)
	root.AddCommand(g)
	return g
}
