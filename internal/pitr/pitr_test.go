package pitr

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// One archiving cluster with a full backup, shared by the cases: alpha and
// beta, each with rows written before and after a target time T.
type fixture struct {
	c      *localcluster.Cluster
	m      *Manager
	before time.Time // before the first backup
	target time.Time
	oid    uint32 // alpha's
	gamma  uint32 // created after the backup
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		t.Fatal("pgbackrest is not installed (scripts/ensure-deps.sh installs it)")
	}
	c, stop, err := clustertest.StartWith(func(cfg *localcluster.Config) {
		cfg.ArchiveCommand = ArchiveCommand(cfg.DataDir)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	m, err := NewForCluster(c, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, m: m, before: time.Now().UTC()}
	admin := connect(t, c, "postgres")
	for _, db := range []string{"alpha", "beta"} {
		exec1(t, admin, `CREATE DATABASE `+db)
		conn := connect(t, c, db)
		exec1(t, conn, `CREATE TABLE t (id int PRIMARY KEY, phase text NOT NULL)`)
		exec1(t, conn, `INSERT INTO t SELECT g, 'backup' FROM generate_series(1, 100) g`)
	}
	if err := admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = 'alpha'`).Scan(&f.oid); err != nil {
		t.Fatal(err)
	}
	b, err := m.Backup(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if b.Type != "full" {
		t.Fatalf("first backup type %q, want full", b.Type)
	}
	time.Sleep(1100 * time.Millisecond) // pgBackRest compares whole seconds
	exec1(t, admin, `CREATE DATABASE gamma`)
	exec1(t, connect(t, c, "gamma"), `CREATE TABLE t AS SELECT g AS id, 'before'::text AS phase FROM generate_series(1, 7) g`)
	if err := admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = 'gamma'`).Scan(&f.gamma); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"alpha", "beta"} {
		conn := connect(t, c, db)
		exec1(t, conn, `INSERT INTO t SELECT g, 'before' FROM generate_series(101, 200) g`)
	}
	if err := admin.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&f.target); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"alpha", "beta"} {
		conn := connect(t, c, db)
		exec1(t, conn, `INSERT INTO t SELECT g, 'after' FROM generate_series(201, 300) g`)
		exec1(t, conn, `DELETE FROM t WHERE id <= 10`)
	}
	if _, err := m.Mark(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func connect(t *testing.T, c *localcluster.Cluster, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.AdminDSNFor(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec1(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// load restores a dump into a new database of the cluster and returns its
// rows' phases, counted.
func load(t *testing.T, f *fixture, dump, db string) map[string]int {
	t.Helper()
	admin := connect(t, f.c, "postgres")
	exec1(t, admin, `CREATE DATABASE `+db)
	out, err := exec.Command(filepath.Join(f.c.BinDir(), "pg_restore"), "--no-owner", "--dbname="+f.c.AdminDSNFor(db), dump).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	conn := connect(t, f.c, db)
	rows, err := conn.Query(context.Background(), `SELECT phase, count(*) FROM t GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		got[p] = n
	}
	return got
}

func TestRestoreDatabaseAtTime(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	dump := filepath.Join(t.TempDir(), "alpha.dump")
	var phases []string
	res, err := f.m.RestoreDatabase(ctx, RestoreParams{Key: "t1", DatabaseOID: f.oid, Target: f.target, Out: dump,
		Phase: func(s string) { phases = append(phases, s) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore %v, replay %v, dump %v", res.Timings["restore"], res.Timings["replay"], res.Timings["dump"])
	if !res.Selective || res.Database != "alpha" {
		t.Fatalf("result %+v: want a selective restore of alpha", res)
	}
	if res.ReplayedTo == nil || res.ReplayedTo.After(f.target) {
		t.Fatalf("replayed to %v, want at or before the target %v", res.ReplayedTo, f.target)
	}
	if strings.Join(phases, ",") != "restoring_base_backup,replaying_wal,dumping" {
		t.Fatalf("phases %v", phases)
	}
	got := load(t, f, dump, "alpha_at_t")
	if got["backup"] != 100 || got["before"] != 100 || got["after"] != 0 || len(got) != 2 {
		t.Fatalf("restored rows %v, want 100 backup + 100 before, no after rows and no deletes", got)
	}
	// The project's database itself is untouched.
	var n int
	if err := connect(t, f.c, "alpha").QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 290 {
		t.Fatalf("alpha has %d rows (%v), want 290", n, err)
	}
	// Nothing is left behind.
	if ents, _ := filepath.Glob(filepath.Join(f.c.DataDir(), "tmp", "pitr", "*")); len(ents) != 0 {
		t.Fatalf("leftovers: %v", ents)
	}

	t.Run("database newer than the backup", func(t *testing.T) {
		dump := filepath.Join(t.TempDir(), "gamma.dump")
		var phases []string
		res, err := f.m.RestoreDatabase(ctx, RestoreParams{Key: "t4", DatabaseOID: f.gamma, Target: f.target, Out: dump,
			Phase: func(s string) { phases = append(phases, s) }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Selective || res.Database != "gamma" || strings.Join(phases, ",") != "restoring_base_backup,restoring_whole_cluster,replaying_wal,dumping" {
			t.Fatalf("result %+v, phases %v: want a whole-cluster restore of gamma", res, phases)
		}
		if got := load(t, f, dump, "gamma_at_t"); got["before"] != 7 || len(got) != 1 {
			t.Fatalf("gamma at T: %v", got)
		}
	})
	t.Run("past the archive", func(t *testing.T) {
		_, err := f.m.RestoreDatabase(ctx, RestoreParams{Key: "t2", DatabaseOID: f.oid, Target: time.Now().Add(time.Hour),
			Out: filepath.Join(t.TempDir(), "x.dump")})
		if !errors.Is(err, ErrNotReachable) {
			t.Fatalf("err = %v, want ErrNotReachable", err)
		}
	})
	t.Run("before the first backup", func(t *testing.T) {
		_, err := f.m.RestoreDatabase(ctx, RestoreParams{Key: "t3", DatabaseOID: f.oid, Target: f.before.Add(-time.Minute),
			Out: filepath.Join(t.TempDir(), "x.dump")})
		if !errors.Is(err, ErrNoBackup) {
			t.Fatalf("err = %v, want ErrNoBackup", err)
		}
	})
	t.Run("window", func(t *testing.T) {
		w, err := f.m.Window(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w.Backups != 1 || w.Earliest.Before(f.before) || !w.Earliest.Before(f.target) {
			t.Fatalf("window %+v, want one backup, earliest between %v and %v", w, f.before, f.target)
		}
		a, err := f.m.Archiver(ctx)
		if err != nil || !a.Healthy || a.ArchivedCount == 0 {
			t.Fatalf("archiver %+v (%v)", a, err)
		}
	})
	t.Run("reaper", func(t *testing.T) {
		// A recovery instance left running by a dead capydb.
		work := f.m.workDir("dead")
		for _, d := range []string{work, filepath.Join(work, "data"), filepath.Join(work, "sock")} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			_ = f.c.Chown(d)
		}
		if _, err := f.m.backrest(ctx, "restore", "--pg1-path="+filepath.Join(work, "data"), "--type=time",
			"--target="+targetString(f.target), "--target-action=pause", "--archive-mode=off"); err != nil {
			t.Fatal(err)
		}
		inst, err := f.m.startInstance(ctx, work)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := inst.waitPaused(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if err := f.m.Reap(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-inst.done:
		case <-time.After(20 * time.Second):
			t.Fatal("the leftover instance still runs after Reap")
		}
		if _, err := os.Stat(work); !os.IsNotExist(err) {
			t.Fatalf("scratch dir still there: %v", err)
		}
	})
}
