package pglogs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/pglogs"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// TestCollector: lines of real postgres sessions are attributed to their
// database and stored exactly once across a log rotation, a postgres
// restart and a new collector (a server restart); passwords in failed
// statements are redacted.
func TestCollector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc := clustertest.Shared(t)
	st := storetest.ControlDB(t, 4)
	clusterID := ids.New("cl_")
	admin := func(db string) *pgx.Conn {
		t.Helper()
		var c *pgx.Conn
		clustertest.Eventually(t, 30*time.Second, "postgres accepts connections", func() (bool, error) {
			var err error
			c, err = pgx.Connect(ctx, lc.AdminDSNFor(db))
			return err == nil, nil
		})
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	a, b := "logs_a_"+strings.ToLower(ids.RandomBase62(6)), "logs_b_"+strings.ToLower(ids.RandomBase62(6))
	pg := admin("postgres")
	for _, db := range []string{a, b} {
		if _, err := pg.Exec(ctx, `CREATE DATABASE `+db); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), lc.AdminDSN())
		if err == nil {
			for _, db := range []string{a, b} {
				_, _ = c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
			}
			c.Close(context.Background())
		}
	})
	// fail runs a failing statement carrying marker in db.
	fail := func(db, marker string) {
		t.Helper()
		c := admin(db)
		if _, err := c.Exec(ctx, `SELECT 1/0 AS "`+marker+`"`); err == nil {
			t.Fatal("division by zero succeeded")
		}
	}
	col := pglogs.New(pglogs.Config{Store: st, ClusterID: clusterID, Dir: lc.LogDir(), Interval: 50 * time.Millisecond})
	lines := func(db string) []*store.LogLine {
		t.Helper()
		ls, err := store.QueryLogLines(ctx, st.Pool, store.LogQuery{ClusterID: clusterID, Database: db, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	count := func(db, marker string) int {
		n := 0
		for _, l := range lines(db) {
			if strings.Contains(l.Message, marker) {
				n++
			}
		}
		return n
	}
	collectUntil := func(c *pglogs.Collector, db, marker string) {
		t.Helper()
		clustertest.Eventually(t, 20*time.Second, "the collector stored "+marker, func() (bool, error) {
			if _, err := c.Step(ctx); err != nil {
				return false, err
			}
			return count(db, marker) > 0, nil
		})
		for range 3 { // a few more steps must not repeat anything
			if _, err := c.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	fail(a, "marker_a1")
	fail(b, "marker_b1")
	secret := "pw-" + ids.RandomBase62(20)
	if _, err := admin(a).Exec(ctx, `ALTER ROLE no_such_role_obs PASSWORD '`+secret+`'`); err == nil {
		t.Fatal("ALTER ROLE of a missing role succeeded")
	}
	collectUntil(col, b, "marker_b1")
	collectUntil(col, a, "marker_a1")
	var division *store.LogLine
	for _, l := range lines(a) {
		if strings.Contains(l.Message, "marker_b1") {
			t.Fatalf("database %s got %s's line: %q", a, b, l.Message)
		}
		if strings.Contains(l.Message, secret) {
			t.Fatalf("a password reached the stored log: %q", l.Message)
		}
		if strings.Contains(l.Message, "marker_a1") {
			division = l
		}
	}
	if division == nil || division.Severity != "error" || division.SQLState == nil || *division.SQLState != "22012" ||
		division.Database == nil || *division.Database != a || !strings.Contains(division.Message, "division by zero") {
		t.Fatalf("the division line was stored as %+v", division)
	}
	if !strings.Contains(fmt.Sprint(messages(lines(a))), "no_such_role_obs") {
		t.Fatalf("the failed ALTER ROLE is missing from %s's lines", a)
	}

	// Rotation.
	if _, err := pg.Exec(ctx, `SELECT pg_rotate_logfile()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	fail(a, "marker_a2")
	collectUntil(col, a, "marker_a2")

	// A postgres restart (fast shutdown; the supervisor starts it again).
	pidFile, err := os.ReadFile(filepath.Join(filepath.Dir(lc.LogDir()), "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	fail(a, "marker_a3") // before the restart, maybe not collected yet
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	fail(a, "marker_a4")
	// A new collector on the same control database: a server restart.
	col2 := pglogs.New(pglogs.Config{Store: st, ClusterID: clusterID, Dir: lc.LogDir()})
	collectUntil(col2, a, "marker_a4")
	for _, m := range []string{"marker_a1", "marker_a2", "marker_a3", "marker_a4"} {
		// The failing statement appears once: in the message's STATEMENT part.
		if n := count(a, m); n != 1 {
			t.Errorf("%s stored %d times, want exactly once", m, n)
		}
	}
	if n := count(b, "marker_b1"); n != 1 {
		t.Errorf("marker_b1 stored %d times", n)
	}
	files, _ := filepath.Glob(filepath.Join(lc.LogDir(), "*.json"))
	// A rotation within the same second reopens the same file name.
	if len(files) < 2 {
		t.Errorf("%d log files after a rotation and a restart, want at least 2", len(files))
	}
}

func messages(ls []*store.LogLine) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Message
	}
	return out
}

// TestBoundedLines: a 1 MB message and invalid UTF-8 are stored bounded
// and valid.
func TestBoundedLines(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("x", 1<<20)
	content := `{"timestamp":"2026-12-06 05:00:00.000 UTC","dbname":"d1","error_severity":"ERROR","state_code":"42601","message":"` +
		big + `"}` + "\n" + `{"timestamp":"2026-12-06 05:00:01.000 UTC","dbname":"d1","error_severity":"LOG","message":"bad ` + "\xff\xfe" + ` bytes"}` + "\n" +
		`{"timestamp":"2026-12-06 05:00:02.000 UTC","dbname":"d1","error_severity":"LOG","message":"partial`
	if err := os.WriteFile(filepath.Join(dir, "postgresql-20261206-050000.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	es, pos, err := pglogs.Read(dir, pglogs.Position{}, pglogs.ReadChunk)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("%d entries, want 2 (the partial line waits)", len(es))
	}
	if len(es[0].Message) > pglogs.MaxMessage || !strings.HasSuffix(es[0].Message, "[truncated]") || es[0].SQLState != "42601" {
		t.Errorf("the 1 MB message became %d bytes (%q…)", len(es[0].Message), es[0].Message[:20])
	}
	if !strings.Contains(es[1].Message, "\uFFFD") || es[1].Severity != "log" {
		t.Errorf("invalid UTF-8 became %q", es[1].Message)
	}
	if want := int64(len(content) - len(`{"timestamp":"2026-12-06 05:00:02.000 UTC","dbname":"d1","error_severity":"LOG","message":"partial`)); pos.Offset != want {
		t.Errorf("position %d, want %d (before the partial line)", pos.Offset, want)
	}
}
