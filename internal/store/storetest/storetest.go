// Package storetest gives tests their own migrated control database: the
// embedded migrations run once per test binary into a template database, and
// each test gets a copy of it (clustertest.TemplateCopy), dropped when the
// test ends. It lives apart from clustertest so that clustertest does not
// import store, and package store's own tests can use clustertest.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/store"
)

// TemplateDB is the database ControlDB migrates once per test binary and
// copies for every test.
const TemplateDB = "capydb_test_template"

// ControlDB returns a fresh, migrated control database on the package's
// shared cluster, private to the calling test, with a pool of at most
// maxConns connections (10 when 0). The pool closes and the database is
// dropped when the test ends.
func ControlDB(t testing.TB, maxConns int32) *store.Store {
	t.Helper()
	dsn := clustertest.TemplateCopy(t, TemplateDB, Migrate)
	if maxConns <= 0 {
		maxConns = 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dsn, maxConns)
	if err != nil {
		t.Fatalf("storetest: opening the control database: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// Migrate runs the embedded migrations on the database at dsn and closes its
// connections (a template must have none while it is copied).
func Migrate(ctx context.Context, dsn string) error {
	st, err := store.Open(ctx, dsn, 2)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Migrate(ctx)
}
