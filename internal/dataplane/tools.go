package dataplane

import (
	"context"
	"path/filepath"

	"github.com/capydb/capydb/internal/runner"
)

// runTool runs pg_dump or pg_restore from the cluster's tools directory
// against db, as agent a; the password travels in PGPASSWORD.
func (c *Cluster) runTool(ctx context.Context, a *agent, p BuildParams, tool, db string, args ...string) error {
	dsn, password, err := a.toolDSN(db)
	if err != nil {
		return err
	}
	all := append([]string{"--dbname=" + dsn}, args...)
	cmd := runner.Cmd{
		Name: filepath.Join(c.binDir, tool),
		Args: all,
		Env: []string{"PGPASSWORD=" + password, "PGAPPNAME=capydb-clone",
			// Index builds after the data: more memory, no waiting for WAL flushes.
			"PGOPTIONS=-c maintenance_work_mem=256MB -c synchronous_commit=off"},
		Secrets: []string{password},
	}
	res, err := runner.Run(ctx, cmd)
	if p.Command != nil {
		p.Command(res)
	}
	return err
}
