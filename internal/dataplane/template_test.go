package dataplane_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
)

// TestEnsureTemplateTopsUp: a template an older CapyDB made (no hypopg, no
// note) gets the missing default extension at the next start, and is
// closed to connections again. Not parallel: it reopens the shared template.
func TestEnsureTemplateTopsUp(t *testing.T) {
	dp, dsnFor := dumpEnv(t)
	ctx := context.Background()
	admin, err := pgxConnect(ctx, dsnFor("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec := func(c *pgx.Conn, sql string) {
		t.Helper()
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	dropHypopg := func() {
		exec(admin, `ALTER DATABASE capydb_template WITH ALLOW_CONNECTIONS true`)
		tc, err := pgxConnect(ctx, dsnFor(dataplane.TemplateDatabase))
		if err != nil {
			t.Fatal(err)
		}
		exec(tc, `DROP EXTENSION IF EXISTS hypopg`)
		tc.Close(ctx)
		exec(admin, `ALTER DATABASE capydb_template WITH ALLOW_CONNECTIONS false`)
	}
	// Make the template look old: drop hypopg, remove the note.
	dropHypopg()
	exec(admin, `COMMENT ON DATABASE capydb_template IS NULL`)

	extsOfNewDB := func() []string {
		t.Helper()
		db := "tpl_" + strings.ToLower(ids.RandomBase62(8))
		exec(admin, `CREATE DATABASE `+db+` TEMPLATE capydb_template`)
		defer exec(admin, `DROP DATABASE `+db)
		c, err := pgxConnect(ctx, dsnFor(db))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var exts []string
		if err := c.QueryRow(ctx, `SELECT array_agg(extname::text ORDER BY 1) FROM pg_extension`).Scan(&exts); err != nil {
			t.Fatal(err)
		}
		return exts
	}
	if slices.Contains(extsOfNewDB(), "hypopg") {
		t.Fatal("setup: hypopg still in the template")
	}
	if err := dp.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	if exts := extsOfNewDB(); !slices.Contains(exts, "hypopg") || !slices.Contains(exts, "pg_qualstats") {
		t.Fatalf("after the top-up a new database has %v", exts)
	}
	var allow, isTemplate bool
	var note string
	if err := admin.QueryRow(ctx, `SELECT datallowconn, datistemplate, shobj_description(oid, 'pg_database') FROM pg_database
		WHERE datname = 'capydb_template'`).Scan(&allow, &isTemplate, &note); err != nil {
		t.Fatal(err)
	}
	if allow || !isTemplate || !strings.HasPrefix(note, "capydb defaults: ") || !strings.Contains(note, "hypopg") {
		t.Fatalf("template: allow %v template %v note %q", allow, isTemplate, note)
	}
	// Up to date (the note matches): a start does not open the template at
	// all, so an extension dropped behind its back stays dropped...
	dropHypopg()
	if err := dp.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(extsOfNewDB(), "hypopg") {
		t.Fatal("an up-to-date template was reopened")
	}
	// ...until the note says otherwise (and the shared template is whole again).
	exec(admin, `COMMENT ON DATABASE capydb_template IS 'capydb defaults: older'`)
	if err := dp.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(extsOfNewDB(), "hypopg") {
		t.Fatal("the template was not topped up")
	}
}
