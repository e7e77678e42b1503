package dataplane

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestPipeCopy: rows go from one backend to the other through a FIFO, and
// a failure on either side ends both promptly instead of leaving a backend
// blocked on the pipe.
func TestPipeCopy(t *testing.T) {
	lc := clustertest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Open(ctx, "cl_pipes", lc.AdminDSNFor, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir, err := os.MkdirTemp("", "capydb-pipes-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := c.UseLocalPipes(ctx, dir); err != nil {
		t.Fatal(err)
	}
	db := "pipes_" + strings.ToLower(ids.RandomBase62(6))
	if _, err := c.admin.Exec(ctx, `CREATE DATABASE `+db); err != nil {
		t.Fatal(err)
	}
	defer c.admin.Exec(context.Background(), `DROP DATABASE `+db+` WITH (FORCE)`) //nolint:errcheck
	conn := func() *pgx.Conn {
		cn, err := pgx.Connect(ctx, lc.AdminDSNFor(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cn.Close(context.Background()) })
		return cn
	}
	src, dst := conn(), conn()
	if _, err := src.Exec(ctx, `CREATE TABLE a (id int, v text); INSERT INTO a SELECT g, repeat('x', g % 300) FROM generate_series(1, 50000) g;
		CREATE TABLE b (id int, v text); CREATE TABLE strict (id int CHECK (id < 10), v text)`); err != nil {
		t.Fatal(err)
	}
	copyBetween := func(from, to string) error {
		return c.pipes.pipeCopy(ctx, src.PgConn(), dst.PgConn(), func(path string) (string, string) {
			return `COPY ` + from + ` TO ` + literal(path) + ` (FORMAT binary)`, `COPY ` + to + ` FROM ` + literal(path) + ` (FORMAT binary)`
		})
	}
	if err := copyBetween("a", "b"); err != nil {
		t.Fatal(err)
	}
	var n int
	var same bool
	if err := dst.QueryRow(ctx, `SELECT count(*), (SELECT md5(string_agg(v, '' ORDER BY id)) FROM a) = md5(string_agg(v, '' ORDER BY id)) FROM b`).Scan(&n, &same); err != nil || n != 50000 || !same {
		t.Fatalf("piped copy: %d rows, same %v (%v)", n, same, err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"the target rejects rows midway (writer must not block on a full pipe)", "a", "strict"},
		{"the source fails before opening the pipe (reader must not wait)", "missing", "b"},
		{"the target fails before opening the pipe (writer must not wait)", "a", "missing"},
	} {
		start := time.Now()
		if err := copyBetween(tc.from, tc.to); err == nil || time.Since(start) > 20*time.Second {
			t.Fatalf("%s: err %v after %s", tc.name, err, time.Since(start))
		}
		for _, cn := range []*pgx.Conn{src, dst} {
			if err := cn.Ping(ctx); err != nil {
				t.Fatalf("%s: connection broken afterwards: %v", tc.name, err)
			}
		}
	}
	if err := dst.QueryRow(ctx, `SELECT count(*) FROM b`).Scan(&n); err != nil || n != 50000 {
		t.Fatalf("b has %d rows after the failed copies (%v)", n, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d pipes left in %s", len(left), dir)
	}
}
