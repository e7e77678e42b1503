package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func init() { registrars = append(registrars, addConnectCommands) }

func addConnectCommands(root *cobra.Command) {
	root.AddCommand(connectionStringCmd(), psqlCmd())
	creds := group("credentials", "Rotate a project's database credentials")
	creds.AddCommand(rotateCmd())
	root.AddCommand(creds)
}

// connectionURL resolves the URL a connecting command uses: a preview's
// (by id, or by name within the project) or the project's, direct unless
// pooled.
func (a *app) connectionURL(previewRef string, pooled bool) (string, error) {
	c, err := a.client(true, false)
	if err != nil {
		return "", err
	}
	var u string
	if previewRef != "" {
		previewID, err := a.previewID(c, previewRef)
		if err != nil {
			return "", err
		}
		conn, err := c.PreviewConnections(a.ctx, previewID)
		if err != nil {
			return "", op("read the preview's connection URLs", err)
		}
		u = conn.DirectURL
		if pooled {
			u = conn.PooledURL
		}
	} else {
		p, err := a.resolveProject(c, a.project, true)
		if err != nil {
			return "", err
		}
		conn, err := c.Connections(a.ctx, p.ID)
		if err != nil {
			return "", op("read the connection URLs", err)
		}
		u = conn.DirectURL
		if pooled {
			u = conn.PooledURL
		}
	}
	if u == "" {
		return "", withCode(exitError, "the server returned no connection URL")
	}
	return u, nil
}

func connectionStringCmd() *cobra.Command {
	var pooled bool
	var caFile string
	var preview string
	cmd := &cobra.Command{Use: "connection-string", Short: "Print the database URL (direct unless --pooled)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			u, err := a.connectionURL(preview, pooled)
			if err != nil {
				return err
			}
			if caFile != "" {
				if u, caFile, err = a.verifyingURL(u, caFile); err != nil {
					return err
				}
			}
			if a.json {
				// The command exists to hand the URL out (CLI.md §8): unmasked.
				out := map[string]any{"connection_string": u, "pooled": pooled}
				if caFile != "" {
					out["ca_file"] = caFile
				}
				return printJSON(a.out, out)
			}
			fmt.Fprintln(a.out, a.shownURL(u))
			if !a.showSecrets && maskURL(u) != u {
				a.note("(password masked; add --show-secrets to print it, or use -o json)")
			}
			return nil
		}}
	cmd.Flags().StringVar(&caFile, "ca-file", "", "write the server's CA certificate to this file and print a URL that verifies against it (sslmode=verify-full)")
	cmd.Flags().BoolVar(&pooled, "pooled", false, "the pgBouncer URL instead of the direct one")
	cmd.Flags().StringVar(&preview, "preview", "", "a preview database's id or name")
	return cmd
}

// verifyingURL writes the server's CA to caFile and returns u verifying
// against it (sslmode=verify-full&sslrootcert=<absolute caFile>).
func (a *app) verifyingURL(u, caFile string) (string, string, error) {
	if !filepath.IsAbs(caFile) {
		caFile = filepath.Join(a.cwd, caFile)
	}
	c, err := a.client(true, false)
	if err != nil {
		return "", "", err
	}
	ok, err := a.writeCA(c, caFile)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", withCode(exitNotFound, "the server hands out no CA certificate (its database certificate chains to a CA your system trusts); connect with sslrootcert=system&sslmode=verify-full instead")
	}
	return withTLSParams(u, "sslmode=verify-full", "sslrootcert="+queryPath(caFile)), caFile, nil
}

func psqlCmd() *cobra.Command {
	var pooled bool
	var preview string
	cmd := &cobra.Command{Use: "psql [-- psql arguments]", Aliases: []string{"connect"},
		Short: "Run the system psql on the project's database",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash > 0 || (dash < 0 && len(args) > 0) {
				return usageError("pass psql's own arguments after --, e.g. capydb psql -- -c 'select 1'")
			}
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			bin, err := exec.LookPath("psql")
			if err != nil {
				return withCode(exitError, "psql was not found on PATH; install the PostgreSQL client (Debian: apt install postgresql-client)")
			}
			u, err := a.connectionURL(preview, pooled)
			if err != nil {
				return err
			}
			conninfo, password, err := psqlConninfo(u)
			if err != nil {
				return err
			}
			// The password travels in the environment, not on the command
			// line where other users could read it from the process list.
			p := exec.Command(bin, append([]string{conninfo}, args...)...)
			// psql gets the real stdout so it still sees a terminal (pager, formatting).
			p.Stdin, p.Stdout, p.Stderr = a.in, unwrapOut(a.out), a.err
			p.Env = append(os.Environ(), "PGPASSWORD="+password)
			// Ctrl-C goes to psql (same process group); we keep waiting for it.
			err = p.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return withCode(exitError, "psql exited with status %d", ee.ExitCode())
			}
			if err != nil {
				return fmt.Errorf("while running psql: %w", err)
			}
			return nil
		}}
	cmd.Flags().BoolVar(&pooled, "pooled", false, "connect through pgBouncer")
	cmd.Flags().StringVar(&preview, "preview", "", "a preview database's id or name")
	return cmd
}

// psqlConninfo splits the password out of a URL and adds sslrootcert=system
// for URLs that verify the server certificate.
func psqlConninfo(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("the server returned an invalid URL")
	}
	password, _ := u.User.Password()
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if m := q.Get("sslmode"); (m == "verify-ca" || m == "verify-full") && q.Get("sslrootcert") == "" {
		q.Set("sslrootcert", "system")
		u.RawQuery = q.Encode()
	}
	return u.String(), password, nil
}

func rotateCmd() *cobra.Command {
	var grace int
	var confirmed bool
	var w waitOpts
	cmd := &cobra.Command{Use: "rotate", Short: "Rotate the project's password (new URLs; old ones stop working)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace < 0 || grace > 720 {
				return usageError("--grace-hours must be between 0 and 720")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			what := "rotate the credentials of " + p.Name + " (the current URLs stop working"
			if grace > 0 {
				what += fmt.Sprintf(" in %d hours)", grace)
			} else {
				what += ")"
			}
			if err := a.retypeName(p.Name, what, confirmed); err != nil {
				return err
			}
			job, err := c.RotateCredentials(a.ctx, p.ID, grace)
			if err != nil {
				return op("rotate credentials", err)
			}
			if err := a.finishJob(c, job, w, "rotating credentials of "+p.Name); err != nil {
				return err
			}
			if w.wait && !a.json {
				a.note("Run capydb env pull to write the new URLs into your env file.")
			}
			return nil
		}}
	f := cmd.Flags()
	f.IntVar(&grace, "grace-hours", 0, "keep the old password working this many hours (0-720)")
	f.BoolVar(&confirmed, "confirm", false, "do not ask to retype the project name")
	f.BoolVar(&confirmed, "yes", false, "alias of --confirm")
	_ = f.MarkHidden("yes")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}
