package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/store"
)

// TemplateDB is the database ControlDB migrates once per test binary and
// copies for every test.
const TemplateDB = "capydb_test_template"

var (
	templateMu  sync.Mutex
	templateFor = map[*localcluster.Cluster]error{} // cluster → outcome of the one migration
)

// ControlDB returns a fresh, migrated control database on the package's
// shared cluster, private to the calling test. The embedded migrations run
// once per test binary, into TemplateDB; every call then copies it with
// CREATE DATABASE … TEMPLATE (a file copy, much cheaper than migrating) and
// drops the copy WITH (FORCE) when the test ends. The pool (at most maxConns
// connections, 10 when 0) closes before the drop.
func ControlDB(t testing.TB, maxConns int32) *store.Store {
	t.Helper()
	c := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ensureTemplate(ctx, c); err != nil {
		t.Fatalf("clustertest: preparing the control-database template: %v", err)
	}

	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "ctl_" + hex.EncodeToString(b)
	if err := adminExec(ctx, c, `CREATE DATABASE `+ident(name)+` TEMPLATE `+ident(TemplateDB)); err != nil {
		t.Fatalf("clustertest: creating database %s: %v", name, err)
	}
	// Registered before the pool's Close, so it runs after it (cleanups run last-in first-out).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, c, `DROP DATABASE `+ident(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("clustertest: dropping database %s: %v", name, err)
		}
	})
	if maxConns <= 0 {
		maxConns = 10
	}
	st, err := store.Open(ctx, c.AdminDSNFor(name), maxConns)
	if err != nil {
		t.Fatalf("clustertest: opening database %s: %v", name, err)
	}
	t.Cleanup(st.Close)
	return st
}

// ensureTemplate creates and migrates TemplateDB on c the first time it is
// asked, and remembers the outcome for every later call.
func ensureTemplate(ctx context.Context, c *localcluster.Cluster) error {
	templateMu.Lock()
	defer templateMu.Unlock()
	if err, done := templateFor[c]; done {
		return err
	}
	err := createTemplate(ctx, c)
	templateFor[c] = err
	return err
}

func createTemplate(ctx context.Context, c *localcluster.Cluster) error {
	if err := adminExec(ctx, c, `CREATE DATABASE `+ident(TemplateDB)); err != nil {
		return err
	}
	st, err := store.Open(ctx, c.AdminDSNFor(TemplateDB), 2)
	if err != nil {
		return err
	}
	// A template must have no sessions while it is copied: close the pool
	// before the first CREATE DATABASE … TEMPLATE.
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("while migrating %s: %w", TemplateDB, err)
	}
	return nil
}

func adminExec(ctx context.Context, c *localcluster.Cluster, sql string) error {
	admin, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		return fmt.Errorf("while connecting as admin: %w", err)
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, sql)
	return err
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// Eventually polls cond until it reports true, failing t when timeout
// passes first or when cond (of the form func() (bool, error)) returns an
// error. what names the awaited state in the failure. Polls start 10 ms
// apart and slow to 50 ms.
func Eventually[C func() bool | func() (bool, error)](t testing.TB, timeout time.Duration, what string, cond C) {
	t.Helper()
	check := func() (bool, error) {
		switch f := any(cond).(type) {
		case func() bool:
			return f(), nil
		case func() (bool, error):
			return f()
		}
		panic("unreachable")
	}
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		ok, err := check()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pause)
		if pause < 50*time.Millisecond {
			pause += 10 * time.Millisecond
		}
	}
}

// Logger returns a logger that writes WARN and above to t's log (shown when
// the test fails, or with -v).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
