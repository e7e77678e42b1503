package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestStorageReadOnlyCycle: with --readonly-at-full-storage, a project filled
// past its storage limit with real data gets a critical storage alert and is
// switched read-only (a write fails with 25006); once the data is dropped the
// alert resolves and writes work again. The limit is lowered for the test
// (--unsafe-storage-limit) so a few megabytes fill it.
func TestStorageReadOnlyCycle(t *testing.T) {
	t.Parallel()
	const limit = 24 << 20
	s := startServer(t, "", 0, 0, "--readonly-at-full-storage", "--sampler-interval", "300ms",
		"--unsafe-storage-limit", "25165824")
	p := s.createProject(map[string]any{"name": "full disk"})
	pid := p["id"].(string)
	direct := projectURLs(s, pid)["direct"]
	ctx := context.Background()

	c, err := connect(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var size int64
	if err := c.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil || size >= limit*3/4 {
		t.Fatalf("a new project is %d bytes (%v); the test needs it well below the %d-byte limit", size, err, limit)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE fill (v text)`); err != nil {
		t.Fatal(err)
	}
	// The sampler may switch the project read-only while we fill it, between
	// any two statements: that ends this session (57P01) or refuses the next
	// statement (25006), and both mean the limit was reached.
	switched := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "57P01" || pe.Code == "25006")
	}
	for size < limit+(1<<20) {
		if _, err := c.Exec(ctx, `INSERT INTO fill SELECT md5(random()::text) || md5(random()::text) FROM generate_series(1, 50000)`); err != nil {
			if switched(err) {
				break
			}
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
			if switched(err) {
				break
			}
			t.Fatal(err)
		}
	}

	// A write on a new session fails with 25006 once the switch has run.
	write := func() error {
		w, err := connect(direct)
		if err != nil {
			return err
		}
		defer w.Close(ctx)
		_, err = w.Exec(ctx, `CREATE TABLE IF NOT EXISTS probe (i int)`)
		return err
	}
	clustertest.Eventually(t, 30*time.Second, "read-only at 100 %", func() bool {
		var pe *pgconn.PgError
		return errors.As(write(), &pe) && pe.Code == "25006"
	})
	critical := func() (open bool) {
		for _, a := range s.must(200, "GET", "/v1/projects/"+pid+"/alerts", nil).get("alerts").([]any) {
			m := a.(map[string]any)
			if m["kind"] == "storage" && m["severity"] == "critical" && m["resolved_at"] == nil {
				open = true
			}
		}
		return open
	}
	if !critical() {
		t.Fatalf("read-only without an open critical storage alert: %s", s.must(200, "GET", "/v1/projects/"+pid+"/alerts", nil).Raw)
	}

	// The owner frees space (a read-only session may still opt out, as on
	// hosted platforms), and the switch goes back below 95 %.
	d, err := connect(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	for _, q := range []string{`SET default_transaction_read_only = off`, `DROP TABLE fill`} {
		if _, err := d.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Eventually(t, 30*time.Second, "writable again", func() bool { return write() == nil })
	clustertest.Eventually(t, 10*time.Second, "the storage alert resolved", func() bool { return !critical() })
}
