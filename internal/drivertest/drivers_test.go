package drivertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// The load: 20 concurrent clients × 200 queries each.
const (
	clients = 20
	queries = 200
)

// tenant creates a login role owning a database (like a project's) with
// connlimit headroom for the load, registers it in pgbouncer and returns
// the pooled (transaction mode) target.
func tenant(t *testing.T, name string) (*localcluster.Cluster, Target) {
	t.Helper()
	c := clustertest.Shared(t)
	return c, tenantOn(t, c, name)
}

func tenantOn(t *testing.T, c *localcluster.Cluster, name string) Target {
	return tenantLimit(t, c, name, 80)
}

// tenantLimit is tenantOn with the role's connection limit; pgbouncer's
// pools get limit-5 server connections, half per pool mode.
func tenantLimit(t *testing.T, c *localcluster.Cluster, name string, connLimit int) Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	pw := "pw-" + name + "-secret"
	role, db := pgx.Identifier{name}.Sanitize(), pgx.Identifier{name + "_db"}.Sanitize()
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN CONNECTION LIMIT %d PASSWORD '%s'", role, connLimit, pw),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, role),
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := c.SyncPooler(ctx); err != nil {
		t.Fatal(err)
	}
	return Target{Host: "127.0.0.1", Port: c.PooledPort(), User: name, Password: pw, Database: name + "_db", CAFile: c.CACertPath()}
}

func expectClean(t *testing.T, what string, r Result) {
	t.Helper()
	t.Logf("%s: %s", what, r)
	if r.Queries != clients*queries || r.Errors != 0 || r.Wrong != 0 {
		t.Fatalf("%s through the pooled URL: %s; want %d queries, 0 errors, 0 wrong answers", what, r, clients*queries)
	}
}

// TestPooledPgxDefaultMode: pgx's default mode caches a named prepared
// statement per connection; pgbouncer 1.18 in transaction mode failed
// 55–71 % of these queries.
func TestPooledPgxDefaultMode(t *testing.T) {
	_, tg := tenant(t, "drv_pgx")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	expectClean(t, "pgx default mode", Pgx(ctx, tg, "", clients, queries))
	// A lone client afterwards meets the statements the others prepared
	// on the server connections.
	r := Pgx(ctx, tg, "", 1, queries)
	if r.Queries != queries || r.Errors != 0 || r.Wrong != 0 {
		t.Fatalf("lone pgx client after the others: %s", r)
	}
}

// TestPooledNodePGNamedStatements: node-postgres named statements (97 %
// errors on pgbouncer 1.18).
func TestPooledNodePGNamedStatements(t *testing.T) {
	_, tg := tenant(t, "drv_node")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := NodePG(ctx, tg, clients, queries)
	if err != nil {
		t.Fatal(err)
	}
	expectClean(t, "node-postgres named statements", r)
}

// TestPooledPsycopgPrepared: psycopg 3 prepare=True statements.
func TestPooledPsycopgPrepared(t *testing.T) {
	_, tg := tenant(t, "drv_psycopg")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Psycopg(ctx, tg, clients, queries)
	if err != nil {
		t.Fatal(err)
	}
	expectClean(t, "psycopg 3 prepared statements", r)
}
