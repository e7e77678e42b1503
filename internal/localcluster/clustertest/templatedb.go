package clustertest

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
)

type templateKey struct {
	c    *localcluster.Cluster
	name string
}

var (
	templateMu sync.Mutex
	templates  = map[templateKey]error{} // outcome of each template's one preparation
)

// TemplateCopy returns the admin DSN of a fresh database on the package's
// shared cluster that is a copy of the database template. The first call of
// the test binary creates template and fills it with prepare (given the
// template's admin DSN; it must close its connections); every call then
// copies it with CREATE DATABASE … TEMPLATE, a file copy that is much
// cheaper than preparing again. The copy is dropped WITH (FORCE) when the
// test ends, after the cleanups registered later (close pools there).
func TemplateCopy(t testing.TB, template string, prepare func(ctx context.Context, dsn string) error) string {
	t.Helper()
	c := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ensureTemplate(ctx, c, template, prepare); err != nil {
		t.Fatalf("clustertest: preparing the template database %s: %v", template, err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "t_" + hex.EncodeToString(b)
	if err := adminExec(ctx, c, `CREATE DATABASE `+ident(name)+` TEMPLATE `+ident(template)); err != nil {
		t.Fatalf("clustertest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, c, `DROP DATABASE `+ident(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("clustertest: dropping database %s: %v", name, err)
		}
	})
	return c.AdminDSNFor(name)
}

// ensureTemplate creates and prepares template on c the first time it is
// asked, and remembers the outcome for every later call.
func ensureTemplate(ctx context.Context, c *localcluster.Cluster, template string, prepare func(context.Context, string) error) error {
	templateMu.Lock()
	defer templateMu.Unlock()
	key := templateKey{c, template}
	if err, done := templates[key]; done {
		return err
	}
	err := adminExec(ctx, c, `CREATE DATABASE `+ident(template))
	if err == nil {
		err = prepare(ctx, c.AdminDSNFor(template))
	}
	templates[key] = err
	return err
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
