//go:build drivermeasure

package drivertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster"
)

// TestMeasureDrivers prints the per-driver table of docs/connections.md for
// one pgbouncer binary. It is a measurement, not a check, so it only runs
// with the drivermeasure tag:
//
//	CAPYDB_MEASURE_PGBOUNCER=/usr/sbin/pgbouncer \
//	  go test -tags drivermeasure -run TestMeasureDrivers -v ./internal/drivertest/
func TestMeasureDrivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ports := freePorts(t, 3)
	c, err := localcluster.Start(ctx, localcluster.Config{DataDir: filepath.Join(t.TempDir(), "data"), Fast: true,
		DirectPort: ports[0], DirectPortExplicit: true, PooledPort: ports[1], PooledPortExplicit: true,
		SessionPort: ports[2], SessionPortExplicit: true,
		PgBouncerPath: os.Getenv("CAPYDB_MEASURE_PGBOUNCER"), AllowOldPgBouncer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	fmt.Printf("pgbouncer %s, %d clients x %d queries (drivertest.Query) (connection limit 80: %d server connections per pool)\n",
		c.PgBouncerVersion(), clients, queries, 75/2)
	endpoints := []struct {
		name string
		port int
	}{{"pooled (transaction)", c.PooledPort()}, {"session", c.SessionPort()}, {"direct", c.DirectPort()}}
	for i, ep := range endpoints {
		tg := tenantOn(t, c, fmt.Sprintf("m%d", i))
		tg.Port = ep.port
		row := func(driver string, r Result, err error) {
			if err != nil {
				t.Fatalf("%s: %v", driver, err)
			}
			fmt.Printf("| %-22s | %-30s | %5d | %6d | %5d | %.70s\n", ep.name, driver, r.Queries, r.Errors, r.Wrong, r.FirstError)
		}
		row("pgx default (cache_statement)", Pgx(ctx, tg, "", clients, queries), nil)
		row("pgx describe_exec", Pgx(ctx, tg, "describe_exec", clients, queries), nil)
		r, err := NodePG(ctx, tg, clients, queries)
		row("node-postgres named", r, err)
		r, err = Psycopg(ctx, tg, clients, queries)
		row("psycopg 3 prepare=True", r, err)
		row("SET then read back (pgx)", SetLeak(ctx, tg, clients, queries), nil)
	}
}

func freePorts(t *testing.T, n int) []int {
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out
}
