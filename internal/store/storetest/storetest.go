// Package storetest gives tests their own migrated control database: the
// embedded migrations run once per test binary into a template database, and
// each test gets a copy of it (CREATE DATABASE … TEMPLATE), dropped when the
// test ends. It lives apart from clustertest so that package store's own
// tests can still use clustertest without an import cycle.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
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
	c := clustertest.Shared(t)
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
