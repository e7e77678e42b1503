package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgbenchProject is a project on a benchmark server loaded with pgbench data,
// plus an admin connection to its cluster (checkpoints, sizes, bare tools).
type pgbenchProject struct {
	ID    string
	DB    string
	Conns Connections
	Admin *pgx.Conn
}

// loadPgbenchProject creates a project through the API, waits for it, and
// loads `pgbench -i -s scale` into it through its direct URL. The caller
// closes Admin.
func loadPgbenchProject(ctx context.Context, srv *Server, name string, scale int) (*pgbenchProject, error) {
	c := NewClient(srv)
	pid, job, err := c.CreateProject(ctx, name)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.WaitJob(ctx, job.ID, 20*time.Millisecond, time.Minute); err != nil {
		return nil, err
	}
	conns, err := c.Connections(ctx, pid)
	if err != nil {
		return nil, err
	}
	var proj struct {
		Project struct {
			DatabaseName string `json:"database_name"`
		} `json:"project"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/projects/"+pid, nil, &proj); err != nil {
		return nil, err
	}
	adminDSN, err := srv.AdminDSNFor("postgres")
	if err != nil {
		return nil, err
	}
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return nil, err
	}
	pgbench, err := pgTool("pgbench")
	if err != nil {
		admin.Close(context.Background())
		return nil, err
	}
	p := &pgbenchProject{ID: pid, DB: proj.Project.DatabaseName, Conns: conns, Admin: admin}
	logf("loading pgbench -i -s %d into %s", scale, p.DB)
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, pgbench, "-i", "-s", strconv.Itoa(scale), "-q", conns.DirectURL).CombinedOutput(); err != nil {
		admin.Close(context.Background())
		return nil, fmt.Errorf("pgbench -i: %v: %s", err, tail(string(out), 500))
	}
	logf("loaded in %.1f s", time.Since(t0).Seconds())
	return p, nil
}
