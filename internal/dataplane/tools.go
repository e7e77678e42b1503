package dataplane

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/capydb/capydb/internal/runner"
)

// runPgTool runs pg_dump or pg_restore from the cluster's tools directory
// against db as agent a (nil: pg_restore --list, which connects to nothing).
// The password travels in PGPASSWORD, never on the command line; out, when
// set, receives the tool's standard output.
func (c *Cluster) runPgTool(ctx context.Context, a *agent, app string, command func(runner.Result), out io.Writer,
	tool, db string, args ...string) error {
	var dsn, password string
	if a != nil {
		var err error
		if dsn, password, err = a.toolDSN(db); err != nil {
			return err
		}
		args = append([]string{"--dbname=" + dsn}, args...)
	}
	cmd := runner.Cmd{
		Name: filepath.Join(c.binDir, tool),
		Args: args,
		Env: []string{"PGPASSWORD=" + password, "PGAPPNAME=" + app,
			// Index builds after the data: more memory, no waiting for WAL flushes.
			"PGOPTIONS=-c maintenance_work_mem=256MB -c synchronous_commit=off"},
		Secrets: []string{password},
		Stdout:  out,
	}
	res, err := runner.Run(ctx, cmd)
	if command != nil {
		command(res)
	}
	return err
}

// runTool runs a clone step's tool as agent a.
func (c *Cluster) runTool(ctx context.Context, a *agent, p BuildParams, tool, db string, args ...string) error {
	return c.runPgTool(ctx, a, "capydb-clone", p.Command, nil, tool, db, args...)
}

// MinorVersions reports the PostgreSQL version the cluster runs and the
// version of the binaries installed next to its tools (the newest minor the
// operator installed); both as "15.18". Without a tools directory the
// running version is all that is known.
func (c *Cluster) MinorVersions(ctx context.Context) (running, installed string, err error) {
	var v string
	if err := c.admin.QueryRow(ctx, `SELECT pg_catalog.current_setting('server_version')`).Scan(&v); err != nil {
		return "", "", err
	}
	running = strings.Fields(v)[0]
	installed = running
	if c.binDir == "" {
		return running, installed, nil
	}
	tool := filepath.Join(c.binDir, "postgres")
	if _, err := os.Stat(tool); err != nil {
		tool = filepath.Join(c.binDir, "pg_dump")
	}
	var out strings.Builder
	if _, err := runner.Run(ctx, runner.Cmd{Name: tool, Args: []string{"--version"}, Stdout: &out}); err != nil {
		return "", "", fmt.Errorf("while reading the installed PostgreSQL version: %w", err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-1.pgdg120+1)"
	if f := strings.Fields(out.String()); len(f) >= 3 {
		installed = f[2]
	}
	return running, installed, nil
}
