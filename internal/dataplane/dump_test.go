package dataplane_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

func dumpEnv(t *testing.T) (*dataplane.Cluster, func(string) string) {
	t.Helper()
	lc := clustertest.Shared(t)
	ctx := context.Background()
	dp, err := dataplane.Open(ctx, dataplane.Config{ID: "cl_dump", DSNFor: lc.AdminDSNFor, Pooler: lc, MaxConns: 10,
		ToolsDir: lc.BinDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dp.Close)
	if err := dp.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	return dp, lc.AdminDSNFor
}

func TestDumpRestoreVerify(t *testing.T) {
	dp, dsnFor := dumpEnv(t)
	ctx := context.Background()
	sfx := strings.ToLower(ids.RandomBase62(8))
	src, owner, other := "dumpsrc_"+sfx, "dumpu_"+sfx, "dumpo_"+sfx
	if err := dp.CreateTenant(ctx, dataplane.Tenant{Database: src, Role: owner, Password: "pw" + sfx, ConnectionLimit: 5,
		StatementTimeout: "0", IdleTransactionTimeout: "60s"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DropTenant(context.Background(), src, owner) })
	if err := dp.EnsureLoginRole(ctx, other, "pw2"+sfx, 5, "0", "60s"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DropTenant(context.Background(), "", other) })

	conn, err := pgxConnect(ctx, dsnFor(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SET ROLE ` + owner, `CREATE TABLE t (id serial PRIMARY KEY, v text)`,
		`INSERT INTO t (v) SELECT 'x' || g FROM generate_series(1, 100) g`, `CREATE SCHEMA s`,
		`CREATE TABLE s."Odd Name" (x int)`, `INSERT INTO s."Odd Name" VALUES (1), (2)`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)

	var buf bytes.Buffer
	counts, err := dp.Dump(ctx, dataplane.DumpParams{Database: src, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if counts["public.t"] != 100 || counts[`s."Odd Name"`] != 2 || len(counts) != 2 {
		t.Fatalf("counts %v", counts)
	}
	file := filepath.Join(t.TempDir(), "a.dump")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	// Restored objects belong to the target's owner, whoever owned them before.
	target := "dumptgt_" + sfx
	if err := dp.Restore(ctx, dataplane.RestoreParams{File: file, Target: target, Owner: other}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DropDatabaseIfOwned(context.Background(), target, other) })
	got, err := dp.CountRows(ctx, target)
	if err != nil || dataplane.CompareCounts(counts, got) != nil {
		t.Fatalf("restored counts %v %v", got, err)
	}
	tc, err := pgxConnect(ctx, dsnFor(target))
	if err != nil {
		t.Fatal(err)
	}
	var owners string
	// Extension members (the template's pg_qualstats and hypopg views and
	// composite types) belong to the extension's creator, not to the tenant.
	if err := tc.QueryRow(ctx, `SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class c
		WHERE relnamespace IN ('public'::regnamespace, 's'::regnamespace)
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.deptype = 'e' AND (d.classid = 'pg_class'::regclass AND d.objid = c.oid
		    OR d.classid = 'pg_type'::regclass AND d.objid = c.reltype))`).Scan(&owners); err != nil {
		t.Fatal(err)
	}
	defer tc.Close(ctx)
	if owners != other {
		t.Fatalf("restored objects owned by %q, want %q", owners, other)
	}

	// Verification compares row counts and drops its scratch database.
	want := dataplane.TableCounts{"public.t": 99, `s."Odd Name"`: 2}
	err = dp.VerifyArchive(ctx, file, "dumpv_"+sfx, owner, want, nil)
	if err == nil || !strings.Contains(err.Error(), "public.t has 100 rows, expected 99") {
		t.Fatalf("verification with wrong counts: %v", err)
	}
	if err := dp.VerifyArchive(ctx, file, "dumpv_"+sfx, owner, counts, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := dp.DatabaseExists(ctx, "dumpv_"+sfx); ok {
		t.Fatal("scratch database left behind")
	}

	// A broken archive fails and leaves no target.
	broken := filepath.Join(t.TempDir(), "b.dump")
	if err := os.WriteFile(broken, buf.Bytes()[:buf.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	err = dp.Restore(ctx, dataplane.RestoreParams{File: broken, Target: "dumpbad_" + sfx, Owner: other})
	if err == nil || !strings.Contains(err.Error(), "pg_restore") {
		t.Fatalf("broken restore: %v", err)
	}
	if ok, _ := dp.DatabaseExists(ctx, "dumpbad_"+sfx); ok {
		t.Fatal("broken restore left its target")
	}
}

func pgxConnect(ctx context.Context, dsn string) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }

// TestDroppedDatabaseLeavesPooler: a scratch or build database that a pooler
// sync published (any provision meanwhile does) is gone from pgBouncer's
// configuration once it is dropped.
func TestDroppedDatabaseLeavesPooler(t *testing.T) {
	dp, _ := dumpEnv(t)
	lc := clustertest.Shared(t)
	ctx := context.Background()
	sfx := strings.ToLower(ids.RandomBase62(8))
	owner, scratch := "poolu_"+sfx, "capyv_"+sfx
	if err := dp.EnsureLoginRole(ctx, owner, "pw"+sfx, 5, "0", "60s"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DropTenant(context.Background(), "", owner) })
	if _, err := dp.BuildDatabase(ctx, dataplane.BuildParams{Target: scratch, Owner: owner}); err != nil {
		t.Fatal(err)
	}
	if err := dp.SyncPooler(ctx); err != nil {
		t.Fatal(err)
	}
	listed := func() bool {
		u := strings.Replace(lc.AdminDSNFor("pgbouncer"), fmt.Sprintf(":%d/", lc.DirectPort()), fmt.Sprintf(":%d/", lc.PooledPort()), 1)
		conn, err := pgx.Connect(ctx, u+"&default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, "SHOW DATABASES")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if rows.RawValues()[0] != nil && string(rows.RawValues()[0]) == scratch {
				return true
			}
		}
		return false
	}
	if !listed() {
		t.Fatal("the pooler does not list the database before the drop: the test cannot see the leak")
	}
	if err := dp.DropDatabaseIfOwned(ctx, scratch, owner); err != nil {
		t.Fatal(err)
	}
	if listed() {
		t.Fatalf("pgbouncer still lists %s after it was dropped", scratch)
	}
}
