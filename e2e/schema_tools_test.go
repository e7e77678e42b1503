package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSchemaTools: schema, diff, types, lint and the index advisor against
// a real project and preview through the API, with the spec's shapes.
func TestSchemaTools(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	p := s.createProject(map[string]any{"name": "schema tools", "environment": "non_production"})
	pid := p["id"].(string)
	direct := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	mustExec(t, direct, `CREATE TYPE status AS ENUM ('open', 'closed');
		CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE);
		CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), status status NOT NULL,
		  note text);
		CREATE TABLE logs (line text);
		INSERT INTO customers (email) SELECT 'c' || g || '@x.io' FROM generate_series(1, 100) g;
		INSERT INTO orders SELECT g, 1 + g % 100, 'open', 'n' || g FROM generate_series(1, 50000) g;
		ANALYZE`)

	// The schema: user objects only (the template's extensions bring
	// views and functions into public; none may show).
	sch := s.must(200, "GET", "/v1/projects/"+pid+"/schema", nil)
	if sch.str("schema", "database_name") != p["database_name"] {
		t.Fatalf("schema %s", sch.Raw)
	}
	schemas := sch.get("schema", "schemas").([]any)
	if len(schemas) != 1 || schemas[0].(map[string]any)["name"] != "public" {
		t.Fatalf("schemas %s", sch.Raw)
	}
	var tables []string
	for _, tb := range schemas[0].(map[string]any)["tables"].([]any) {
		tables = append(tables, tb.(map[string]any)["name"].(string))
	}
	if !slices.Equal(tables, []string{"customers", "logs", "orders"}) {
		t.Fatalf("tables %v (extension-owned objects must be left out)", tables)
	}
	var exts []string
	for _, e := range sch.get("schema", "extensions").([]any) {
		exts = append(exts, e.(map[string]any)["name"].(string))
	}
	if !slices.Contains(exts, "pg_qualstats") || !slices.Contains(exts, "hypopg") {
		t.Fatalf("extensions %v: new projects get the advisor's extensions", exts)
	}
	if again := s.must(200, "GET", "/v1/projects/"+pid+"/schema", nil); string(again.Raw) != string(sch.Raw) {
		t.Fatal("two schema documents of an unchanged database differ")
	}

	// A preview, changed, diffed against its project.
	pv, job := s.createPreview(pid, map[string]any{"name": "change"})
	if j := s.waitJob(job["id"].(string)); j["state"] != "completed" {
		t.Fatalf("preview: %v", j)
	}
	pvID := pv["id"].(string)
	pvDirect, _, _ := s.previewConns(pvID)
	mustExec(t, pvDirect, `ALTER TABLE orders ADD COLUMN total numeric; ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
		DROP TABLE logs; ALTER TYPE status ADD VALUE 'void'`)
	d := s.must(200, "GET", "/v1/preview-databases/"+pvID+"/schema/diff", nil)
	if d.get("diff", "in_sync") != false || d.str("diff", "baseline") != "project "+pid || d.str("diff", "target") != "preview "+pvID {
		t.Fatalf("diff %s", d.Raw)
	}
	var diffs []string
	for _, x := range d.get("diff", "differences").([]any) {
		m := x.(map[string]any)
		diffs = append(diffs, m["change"].(string)+" "+m["object_type"].(string)+" "+m["object"].(string))
	}
	if !slices.Equal(diffs, []string{"changed enum public.status", "removed table public.logs", "changed column public.orders.note",
		"added column public.orders.total"}) {
		t.Fatalf("differences %v", diffs)
	}
	if same := s.must(200, "GET", "/v1/preview-databases/"+pvID+"/schema/diff?against_preview="+pvID, nil); same.get("diff", "in_sync") != true ||
		len(same.get("diff", "differences").([]any)) != 0 {
		t.Fatalf("self diff %s", same.Raw)
	}
	if r := s.call("GET", "/v1/preview-databases/"+pvID+"/schema/diff?against_preview=pvw_nope", s.key, nil); r.Status != 404 {
		t.Fatalf("unknown against_preview: %d %s", r.Status, r.Raw)
	}
	if r := s.must(200, "GET", "/v1/preview-databases/"+pvID+"/schema", nil); strings.Contains(string(r.Raw), `"logs"`) {
		t.Fatalf("preview schema still has logs: %s", r.Raw)
	}

	// Types: each language answers its filename; bad combinations are 400
	// and never reach the database.
	for lang, file := range map[string]string{"typescript": "database.types.ts", "zod": "database.zod.ts", "drizzle": "schema.ts",
		"go": "db.go", "python": "models.py"} {
		r := s.must(200, "GET", "/v1/projects/"+pid+"/schema/types?language="+lang, nil)
		if r.str("types", "language") != lang || r.str("types", "filename") != file || !strings.Contains(r.str("types", "content"), "customer_id") {
			t.Fatalf("%s: %.300s", lang, r.Raw)
		}
	}
	r := s.must(200, "GET", "/v1/preview-databases/"+pvID+"/schema/types?language=typescript&style=supabase", nil)
	if r.str("types", "style") != "supabase" || !strings.Contains(r.str("types", "content"), `"open" | "closed" | "void"`) {
		t.Fatalf("preview supabase types %.400s", r.Raw)
	}
	if r := s.must(200, "GET", "/v1/projects/"+pid+"/schema/types?language=go&package=models", nil); !strings.Contains(r.str("types", "content"), "package models") {
		t.Fatalf("go package %.300s", r.Raw)
	}
	for q, msg := range map[string]string{
		"language=rust":                 "language must be one of",
		"language=zod&style=capydb":     "style is not allowed for language zod",
		"language=python&style=capydb":  "style for python must be dataclass or pydantic",
		"language=typescript&package=x": "package is only allowed for language go",
		"language=go&package=Not-Valid": "package must be a Go identifier",
	} {
		r := s.call("GET", "/v1/projects/"+pid+"/schema/types?"+q, s.key, nil)
		if r.Status != 400 || !strings.Contains(r.str("error"), msg) {
			t.Errorf("%s: %d %s", q, r.Status, r.Raw)
		}
	}

	// Lint: the table without a key and the foreign key without an index.
	l := s.must(200, "GET", "/v1/projects/"+pid+"/lint", nil)
	var found []string
	for _, f := range l.get("lint", "findings").([]any) {
		m := f.(map[string]any)
		found = append(found, m["rule"].(string)+" "+m["object"].(string))
	}
	if !slices.Equal(found, []string{"missing_primary_key public.logs", "unindexed_foreign_key public.orders.orders_customer_id_fkey"}) {
		t.Fatalf("lint findings %v", found)
	}
	pl := s.must(200, "GET", "/v1/preview-databases/"+pvID+"/lint", nil)
	skipped := strings.Join(func() []string {
		var out []string
		for _, x := range pl.get("lint", "skipped").([]any) {
			out = append(out, x.(string))
		}
		return out
	}(), "|")
	if skipped != "unused_index: previews have no statistics history|redundant_index: previews have no statistics history" {
		t.Fatalf("preview lint skipped %q", skipped)
	}

	// The index advisor: the application filters orders by note with a
	// sequential scan; the advisor suggests that index, sized by hypopg.
	conn, err := connect(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 0; i < 10; i++ {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE note = 'n42'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("workload %d %v", n, err)
		}
	}
	a := s.must(200, "GET", "/v1/projects/"+pid+"/advisor/indexes", nil)
	if a.get("advisor", "available") != true || a.get("advisor", "size_estimates_available") != true || a.get("advisor", "min_filter") != float64(1000) {
		t.Fatalf("advisor %s", a.Raw)
	}
	sugg := a.get("advisor", "suggestions").([]any)
	if len(sugg) != 1 || sugg[0].(map[string]any)["ddl"] != "CREATE INDEX CONCURRENTLY ON public.orders USING btree (note);" ||
		sugg[0].(map[string]any)["estimated_size_bytes"].(float64) < 100000 {
		t.Fatalf("suggestions %s", a.Raw)
	}
	if r := s.call("GET", "/v1/projects/"+pid+"/advisor/indexes?min_filter=-1", s.key, nil); r.Status != 400 {
		t.Fatalf("negative min_filter: %d %s", r.Status, r.Raw)
	}
	// Without the extensions (dropped by the superuser, as on a project
	// created before they were offered): unavailable, with what to enable.
	if _, err := s.admin(p["database_name"].(string)).Exec(ctx, `DROP EXTENSION pg_qualstats; DROP EXTENSION hypopg`); err != nil {
		t.Fatal(err)
	}
	a = s.must(200, "GET", "/v1/projects/"+pid+"/advisor/indexes", nil)
	if a.get("advisor", "available") != false || !strings.Contains(a.str("advisor", "reason"), "pg_qualstats") ||
		len(a.get("advisor", "missing_extensions").([]any)) != 2 {
		t.Fatalf("advisor without extensions %s", a.Raw)
	}
	h := s.must(200, "GET", "/v1/projects/"+pid+"/advisor/index-hygiene", nil)
	if h.get("hygiene", "available") != false || !strings.Contains(h.str("hygiene", "reason"), "7 days") ||
		h.get("hygiene", "min_index_size_bytes") != float64(1<<20) || len(h.get("hygiene", "unused_indexes").([]any)) != 0 {
		t.Fatalf("hygiene %s", h.Raw)
	}
	// A tenant whose login has no connection left gets a 503 to retry, not a 500.
	pg := s.admin("postgres")
	var limit int
	if err := pg.QueryRow(ctx, `SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, p["role_name"]).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Exec(ctx, `ALTER ROLE `+pgx.Identifier{p["role_name"].(string)}.Sanitize()+` CONNECTION LIMIT 0`); err != nil {
		t.Fatal(err)
	}
	if r := s.call("GET", "/v1/projects/"+pid+"/schema", s.key, nil); r.Status != 503 || !strings.Contains(r.str("error"), "try again") {
		t.Fatalf("schema with no connection left: %d %s", r.Status, r.Raw)
	}
	if _, err := pg.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s CONNECTION LIMIT %d`, pgx.Identifier{p["role_name"].(string)}.Sanitize(), limit)); err != nil {
		t.Fatal(err)
	}

	// A database that is not ready answers 409, never a half-read.
	control := s.admin("capydb_control")
	if _, err := control.Exec(ctx, `UPDATE preview_databases SET state = 'resetting' WHERE id = $1`, pvID); err != nil {
		t.Fatal(err)
	}
	if r := s.call("GET", "/v1/preview-databases/"+pvID+"/lint", s.key, nil); r.Status != 409 || !strings.Contains(r.str("error"), "preview is resetting") {
		t.Fatalf("lint of a resetting preview: %d %s", r.Status, r.Raw)
	}
	if r := s.call("GET", "/v1/preview-databases/"+pvID+"/schema/diff", s.key, nil); r.Status != 409 {
		t.Fatalf("diff of a resetting preview: %d %s", r.Status, r.Raw)
	}
	if _, err := control.Exec(ctx, `UPDATE preview_databases SET state = 'ready' WHERE id = $1`, pvID); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Exec(ctx, `UPDATE projects SET state = 'restoring' WHERE id = $1`, pid); err != nil {
		t.Fatal(err)
	}
	if r := s.call("GET", "/v1/projects/"+pid+"/schema/types", s.key, nil); r.Status != 409 || !strings.Contains(r.str("error"), "project is restoring") {
		t.Fatalf("types of a restoring project: %d %s", r.Status, r.Raw)
	}
	if _, err := control.Exec(ctx, `UPDATE projects SET state = 'ready' WHERE id = $1`, pid); err != nil {
		t.Fatal(err)
	}

	// The tools run as the tenant: watch pg_stat_activity while the
	// schema route is called and see only the project's own login there.
	watcher := s.admin("postgres")
	stop := make(chan struct{})
	seen := make(chan []string)
	go func() {
		var users []string
		for {
			select {
			case <-stop:
				seen <- users
				return
			default:
			}
			rows, err := watcher.Query(ctx, `SELECT usename::text FROM pg_stat_activity WHERE application_name = 'capydb-schema-tools'`)
			if err != nil {
				continue
			}
			for rows.Next() {
				var u string
				if rows.Scan(&u) == nil {
					users = append(users, u)
				}
			}
			rows.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < 30; i++ {
		s.must(200, "GET", "/v1/projects/"+pid+"/schema", nil)
	}
	t.Logf("GET /schema: %v per request (tenant login, read-only transaction, catalogue reads)", time.Since(start)/30)
	close(stop)
	users := <-seen
	if len(users) == 0 {
		t.Fatal("never saw a schema-tool session")
	}
	for _, u := range users {
		if u != p["role_name"] {
			t.Fatalf("a schema-tool session ran as %q, not the project's login %q", u, p["role_name"])
		}
	}
}
