package dataplane

import (
	"context"
	"io"
	"path/filepath"

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
