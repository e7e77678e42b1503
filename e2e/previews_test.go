package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// tableSum is "count/md5" of a table's rows, for comparing a clone with its source.
func tableSum(t *testing.T, dsn, table string) string {
	t.Helper()
	return query[string](t, dsn, `SELECT count(*) || '/' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM `+table+` x`)
}

// withDB returns dsn pointing at another database.
func withDB(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

func (s *server) createPreview(pid string, body map[string]any) (preview, job map[string]any) {
	s.t.Helper()
	r := s.must(202, "POST", "/v1/projects/"+pid+"/preview-databases", body)
	return r.get("preview").(map[string]any), r.get("job").(map[string]any)
}

func (s *server) previewConns(id string) (direct, pooled, user string) {
	s.t.Helper()
	c := s.must(200, "GET", "/v1/preview-databases/"+id+"/connections", nil)
	return c.str("connections", "direct_url"), c.str("connections", "pooled_url"), c.str("connections", "username")
}

// clusterHas reports whether a database or role exists on the cluster.
func (s *server) clusterHas(kind, name string) bool {
	s.t.Helper()
	q := `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 OR datname LIKE $1 || '\_%')`
	if kind == "role" {
		q = `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`
	}
	var ok bool
	if err := s.admin("postgres").QueryRow(context.Background(), q, name).Scan(&ok); err != nil {
		s.t.Fatal(err)
	}
	return ok
}

// eventsOf returns the data of every outbox event of one type.
func (s *server) eventsOf(typ string) []map[string]any {
	s.t.Helper()
	rows, err := s.admin("capydb_control").Query(context.Background(), `SELECT data FROM events WHERE type = $1 ORDER BY created_at`, typ)
	if err != nil {
		s.t.Fatal(err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		s.t.Fatal(err)
	}
	var out []map[string]any
	for _, r := range raws {
		var m map[string]any
		_ = json.Unmarshal(r, &m)
		out = append(out, m)
	}
	return out
}

func (s *server) auditActions(pid string) map[string]int {
	s.t.Helper()
	rows, err := s.admin("capydb_control").Query(context.Background(), `SELECT action FROM audit_events WHERE project_id = $1`, pid)
	if err != nil {
		s.t.Fatal(err)
	}
	actions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range actions {
		out[a]++
	}
	return out
}

// TestPreviewLifecycle: clone (template while idle, snapshot copy under a
// writer), isolation, reset keeping credentials, extend, empty mode, delete,
// and project deletion taking its previews along.
func TestPreviewLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	p := s.createProject(map[string]any{"name": "shop", "environment": "non_production"})
	pid := p["id"].(string)
	pc := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	projDirect := pc.str("connections", "direct_url")
	mustExec(t, projDirect, `CREATE TABLE items (id serial PRIMARY KEY, v text NOT NULL);
		CREATE INDEX items_v ON items (v);
		INSERT INTO items (v) SELECT 'item ' || g FROM generate_series(1, 5000) g;
		CREATE TABLE writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())`)
	want := tableSum(t, projDirect, "items")
	pgAdmin := s.admin("postgres")
	clustertest.Eventually(t, 10*time.Second, "the project's sessions to end", func() bool {
		var n int
		_ = pgAdmin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, p["database_name"]).Scan(&n)
		return n == 0
	})

	// 1. Clone while the project is idle: a template copy.
	pv, job := s.createPreview(pid, map[string]any{"name": "pr-1"})
	pv1 := pv["id"].(string)
	if !strings.HasPrefix(pv1, "pvw_") || pv["state"] != "provisioning" || pv["mode"] != "clone" || pv["name"] != "pr-1" ||
		job["type"] != "branch.create" || job["preview_database_id"] != pv1 || job["project_id"] != pid ||
		job["locked_resource"] != "preview:"+pv1 || pv["ssl_mode"] != "require" || pv["direct_port"] != float64(s.directPort) ||
		pv["pooled_port"] != float64(s.pooledPort) {
		t.Fatalf("create answer: preview %v job %v", pv, job)
	}
	exp, _ := time.Parse(time.RFC3339Nano, pv["ttl_expires_at"].(string))
	if d := time.Until(exp); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("default TTL: expires in %s, want 24h", d)
	}
	j := s.waitJob(job["id"].(string))
	res, _ := j["result"].(map[string]any)
	if j["state"] != "completed" || res["clone_strategy"] != "template" || res["clone_duration_ms"] == nil {
		t.Fatalf("clone job: %v", j)
	}
	got := s.must(200, "GET", "/v1/preview-databases/"+pv1, nil).get("preview").(map[string]any)
	if got["state"] != "ready" || got["clone_strategy"] != "template" || got["source_kind"] != "clone" ||
		got["source_database"] != p["database_name"] || got["clone_duration_ms"] != res["clone_duration_ms"] {
		t.Fatalf("preview after clone: %v", got)
	}
	direct, pooled, user := s.previewConns(pv1)
	if user != got["role_name"] || !strings.Contains(direct, "/"+got["database_name"].(string)+"?sslmode=require") {
		t.Fatalf("preview connections %s %s", redact(direct), user)
	}
	if tableSum(t, direct, "items") != want || tableSum(t, pooled, "items") != want {
		t.Fatal("clone differs from the project")
	}
	if owner := query[string](t, pooled, `SELECT tableowner::text FROM pg_tables WHERE tablename = 'items'`); owner != user {
		t.Errorf("items owned by %s in the preview, want %s", owner, user)
	}
	// Isolation both ways.
	if c, err := connect(withDB(t, direct, p["database_name"].(string))); err == nil {
		c.Close(ctx)
		t.Error("the preview's role reached the project database")
	}
	if c, err := connect(withDB(t, projDirect, got["database_name"].(string))); err == nil {
		c.Close(ctx)
		t.Error("the project's role reached the preview database")
	}

	// 2. Clone while a writer keeps the project busy: a snapshot copy; no write fails.
	w, err := connect(projDirect)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	var commits, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Exec(ctx, `INSERT INTO writes DEFAULT VALUES`); err != nil {
				failures.Add(1)
			} else {
				commits.Add(1)
			}
		}
	}()
	pv, job = s.createPreview(pid, map[string]any{"name": "pr-2", "mode": "clone", "ttl_hours": 2})
	pv2 := pv["id"].(string)
	j = s.waitJob(job["id"].(string))
	before := commits.Load()
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	res, _ = j["result"].(map[string]any)
	if j["state"] != "completed" || res["clone_strategy"] != "snapshot_copy" {
		t.Fatalf("busy clone: %v", j)
	}
	if failures.Load() != 0 || commits.Load() <= before {
		t.Fatalf("writer during the clone: %d failures, %d commits (%d before the end)", failures.Load(), commits.Load(), before)
	}
	d2, p2, _ := s.previewConns(pv2)
	if tableSum(t, p2, "items") != want {
		t.Fatal("snapshot copy differs from the project")
	}
	if n := query[int64](t, d2, `SELECT count(*) FROM writes`); n <= 0 || n > commits.Load() {
		t.Errorf("clone has %d rows of writes; the writer committed %d", n, commits.Load())
	}
	if idx := query[int64](t, d2, `SELECT count(*) FROM pg_indexes WHERE tablename = 'items'`); idx != 2 {
		t.Errorf("%d indexes on items in the snapshot copy, want 2", idx)
	}

	// 3. Reset: re-clone the project's current state, same credentials and URLs.
	mustExec(t, direct, `INSERT INTO items (v) VALUES ('only in the preview')`)
	mustExec(t, projDirect, `INSERT INTO items (v) VALUES ('new in the project')`)
	r := s.must(202, "POST", "/v1/preview-databases/"+pv1+"/reset", nil)
	if r.str("job", "type") != "branch.reset" || s.must(200, "GET", "/v1/preview-databases/"+pv1, nil).str("preview", "state") != "resetting" {
		t.Fatalf("reset answer: %s", r.Raw)
	}
	if j := s.waitJob(r.str("job", "id")); j["state"] != "completed" || j["result"] == nil {
		t.Fatalf("reset job: %v", j)
	}
	d1b, p1b, u1b := s.previewConns(pv1)
	if d1b != direct || p1b != pooled || u1b != user {
		t.Fatal("reset changed the preview's credentials or URLs")
	}
	if n := query[int64](t, pooled, `SELECT count(*) FROM items WHERE v = 'new in the project'`); n != 1 {
		t.Error("reset did not bring the project's current data")
	}
	if n := query[int64](t, direct, `SELECT count(*) FROM items WHERE v = 'only in the preview'`); n != 0 {
		t.Error("reset kept the preview's own writes")
	}
	// Reset also works with an empty body and {}.
	if r := s.call("POST", "/v1/preview-databases/"+pv1+"/reset", s.key, "{}"); r.Status != 202 {
		t.Fatalf("reset with {}: %d %s", r.Status, r.Raw)
	} else if j := s.waitJob(r.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("second reset: %v", j)
	}

	// 4. Extend: absolute, only later.
	if r := s.call("POST", "/v1/preview-databases/"+pv2+"/extend", s.key, map[string]any{"ttl_hours": 1}); r.Status != 400 ||
		!strings.Contains(r.str("error"), "extend can only move the expiry later (currently ") {
		t.Fatalf("extend to an earlier time: %d %s", r.Status, r.Raw)
	}
	for _, bad := range []any{map[string]any{"ttl_hours": 0}, map[string]any{"ttl_hours": 169}, map[string]any{}, map[string]any{"ttl_hours": "x"}} {
		if r := s.call("POST", "/v1/preview-databases/"+pv2+"/extend", s.key, bad); r.Status != 400 || !strings.Contains(r.str("error"), "ttl_hours") {
			t.Errorf("extend %v: %d %s", bad, r.Status, r.Raw)
		}
	}
	ext := s.must(200, "POST", "/v1/preview-databases/"+pv2+"/extend", map[string]any{"ttl_hours": 48})
	exp, _ = time.Parse(time.RFC3339Nano, ext.str("preview", "ttl_expires_at"))
	if d := time.Until(exp); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("extended expiry in %s, want 48h", d)
	}

	// 5. Empty mode.
	pv, job = s.createPreview(pid, map[string]any{"mode": "empty"})
	pv3 := pv["id"].(string)
	if !strings.HasPrefix(pv["name"].(string), "preview-") || len(pv["name"].(string)) != len("preview-")+6 {
		t.Errorf("generated name %v", pv["name"])
	}
	if j := s.waitJob(job["id"].(string)); j["state"] != "completed" || j["result"].(map[string]any)["clone_strategy"] != "empty" {
		t.Fatalf("empty preview: %v", j)
	}
	d3, p3, _ := s.previewConns(pv3)
	if n := query[int64](t, d3, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n != 0 {
		t.Errorf("empty preview has %d tables", n)
	}
	if n := query[int64](t, p3, `SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'`); n != 1 {
		t.Error("empty preview lacks the default extensions")
	}

	// 6. List, oldest first, every field.
	list := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)
	if len(list) != 3 || list[0].(map[string]any)["id"] != pv1 || list[2].(map[string]any)["id"] != pv3 ||
		list[0].(map[string]any)["database_name"] == nil {
		t.Fatalf("list: %v", list)
	}

	// 7. Delete one preview: its database and role go, the event says manual.
	del := s.must(202, "DELETE", "/v1/preview-databases/"+pv2, nil)
	if del.str("job", "type") != "branch.delete" {
		t.Fatalf("delete: %s", del.Raw)
	}
	if again := s.call("DELETE", "/v1/preview-databases/"+pv2, s.key, nil); again.Status == 202 && again.str("job", "id") != del.str("job", "id") {
		if st := s.must(200, "GET", "/v1/jobs/"+del.str("job", "id"), nil).str("job", "state"); st != "completed" {
			t.Errorf("a second delete while deleting queued another job")
		}
	}
	if j := s.waitJob(del.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("delete job: %v", j)
	}
	if r := s.call("GET", "/v1/preview-databases/"+pv2, s.key, nil); r.Status != 404 {
		t.Errorf("deleted preview: %d", r.Status)
	}
	if c, err := connect(d2); err == nil {
		c.Close(ctx)
		t.Error("a deleted preview's URL still works")
	}

	// 8. Deleting the project deletes its previews first.
	s.must(202, "DELETE", "/v1/projects/"+pid, nil)
	clustertest.Eventually(t, 30*time.Second, "project deletion", func() bool {
		return s.call("GET", "/v1/projects/"+pid, s.key, nil).Status == 404
	})
	for _, name := range []string{got["database_name"].(string), pv["database_name"].(string)} {
		if s.clusterHas("database", name) {
			t.Errorf("preview database %s survived the project", name)
		}
	}
	if s.clusterHas("role", user) {
		t.Errorf("preview role %s survived the project", user)
	}
	reasons := map[string]string{}
	for _, e := range s.eventsOf("preview.deleted") {
		reasons[e["preview_id"].(string)] = e["reason"].(string)
		if e["project_id"] != pid || e["organization_id"] == nil {
			t.Errorf("preview.deleted event %v", e)
		}
	}
	if len(reasons) != 3 || reasons[pv2] != "manual" || reasons[pv1] != "manual" {
		t.Errorf("preview.deleted events: %v", reasons)
	}
	if ready := s.eventsOf("preview.ready"); len(ready) != 3 {
		t.Errorf("%d preview.ready events, want 3", len(ready))
	}
	acts := s.auditActions(pid)
	if acts["preview.created"] != 3 || acts["preview.ttl_extended"] != 1 || acts["preview.deleted"] != 1 {
		t.Errorf("audit actions %v", acts)
	}
}

// TestPreviewInputLimitsAndTenancy: bad input, conflicts, plan limits and
// other organizations.
func TestPreviewInputLimitsAndTenancy(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	p := s.createProject(map[string]any{"name": "limits", "environment": "non_production"})
	pid := p["id"].(string)
	path := "/v1/projects/" + pid + "/preview-databases"
	for _, tc := range []struct {
		body any
		want string
	}{
		{map[string]any{"mode": "copy"}, "mode"},
		{map[string]any{"ttl_hours": 169}, "ttl_hours"},
		{map[string]any{"ttl_hours": -1}, "ttl_hours"},
		{map[string]any{"ttl_hours": "a day"}, "ttl_hours"},
		{map[string]any{"name": "-dash-first"}, "name"},
		{map[string]any{"name": strings.Repeat("n", 64)}, "name"},
		{map[string]any{"foo": 1}, `unknown field "foo"`},
		{`{"name":`, "JSON"},
	} {
		if r := s.call("POST", path, s.key, tc.body); r.Status != 400 || !strings.Contains(r.str("error"), tc.want) {
			t.Errorf("%v: %d %s", tc.body, r.Status, r.Raw)
		}
	}
	// No body at all is fine: a clone with a generated name.
	first := s.must(202, "POST", path, nil)
	firstID := first.str("preview", "id")
	if r := s.call("POST", path, s.key, map[string]any{"name": first.str("preview", "name")}); r.Status != 409 ||
		!strings.Contains(r.str("error"), firstID) {
		t.Errorf("duplicate name: %d %s", r.Status, r.Raw)
	}
	s.must(202, "POST", path, map[string]any{"name": "PR-7", "mode": "empty"})
	if r := s.call("POST", path, s.key, map[string]any{"name": "pr-7", "mode": "empty"}); r.Status != 409 {
		t.Errorf("names must be unique case-insensitively: %d", r.Status)
	}
	if j := s.waitJob(first.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("first preview: %v", j)
	}

	// Another organization sees nothing.
	other := s.otherOrgKey(t)
	for _, rq := range [][2]string{{"GET", "/v1/preview-databases/" + firstID}, {"GET", "/v1/preview-databases/" + firstID + "/connections"},
		{"DELETE", "/v1/preview-databases/" + firstID}, {"POST", "/v1/preview-databases/" + firstID + "/reset"},
		{"GET", path}, {"POST", path}} {
		if r := s.call(rq[0], rq[1], other, nil); r.Status != 404 {
			t.Errorf("other organization %s %s: %d", rq[0], rq[1], r.Status)
		}
	}
	if r := s.call("POST", "/v1/preview-databases/"+firstID+"/extend", other, map[string]any{"ttl_hours": 30}); r.Status != 404 {
		t.Errorf("other organization extend: %d", r.Status)
	}

	// A key scoped to another project of the same organization sees nothing either.
	p2 := s.createProject(map[string]any{"name": "sibling", "environment": "non_production"})
	plain, hash, prefix := auth.NewKey()
	if _, err := s.admin("capydb_control").Exec(ctx, `INSERT INTO api_keys (id, organization_id, name, key_hash, key_prefix, scopes, project_id)
		VALUES ($1, $2, 'scoped', $3, $4, $5, $6)`, ids.New("key_"), p["organization_id"], hash, prefix,
		[]string{"projects:read", "projects:write", "credentials:read"}, p2["id"]); err != nil {
		t.Fatal(err)
	}
	for _, rq := range [][2]string{{"GET", "/v1/preview-databases/" + firstID}, {"GET", "/v1/preview-databases/" + firstID + "/connections"},
		{"DELETE", "/v1/preview-databases/" + firstID}, {"GET", path}} {
		if r := s.call(rq[0], rq[1], plain, nil); r.Status != 404 {
			t.Errorf("sibling project's key %s %s: %d", rq[0], rq[1], r.Status)
		}
	}
	if r := s.call("GET", "/v1/projects/"+p2["id"].(string)+"/preview-databases", plain, nil); r.Status != 200 || len(r.get("preview_databases").([]any)) != 0 {
		t.Errorf("scoped key on its own project: %d %s", r.Status, r.Raw)
	}
	// Scopes: reading connections needs credentials:read.
	readOnly, rhash, rprefix := auth.NewKey()
	if _, err := s.admin("capydb_control").Exec(ctx, `INSERT INTO api_keys (id, organization_id, name, key_hash, key_prefix, scopes)
		VALUES ($1, $2, 'ro', $3, $4, $5)`, ids.New("key_"), p["organization_id"], rhash, rprefix, []string{"projects:read"}); err != nil {
		t.Fatal(err)
	}
	if r := s.call("GET", "/v1/preview-databases/"+firstID+"/connections", readOnly, nil); r.Status != 403 {
		t.Errorf("connections without credentials:read: %d", r.Status)
	}
	if r := s.call("POST", path, readOnly, nil); r.Status != 403 {
		t.Errorf("create without projects:write: %d", r.Status)
	}
	if r := s.call("GET", "/v1/preview-databases/"+firstID, readOnly, nil); r.Status != 200 {
		t.Errorf("get with projects:read: %d", r.Status)
	}
	doc := string(s.must(200, "GET", "/v1/openapi.json", nil).Raw)
	for _, op := range []string{"createPreviewDatabase", "listPreviewDatabases", "getPreviewDatabase", "getPreviewDatabaseConnections",
		"extendPreviewDatabase", "resetPreviewDatabase", "deletePreviewDatabase"} {
		if !strings.Contains(doc, `"operationId":"`+op+`"`) {
			t.Errorf("operation %s missing from the OpenAPI document", op)
		}
	}

	// A project that is not ready takes no new preview.
	ctl := s.admin("capydb_control")
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := ctl.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE projects SET state = 'failed' WHERE id = $1`, pid)
	if r := s.call("POST", path, s.key, map[string]any{"mode": "empty"}); r.Status != 409 || !strings.Contains(r.str("error"), "not ready") {
		t.Errorf("project not ready: %d %s", r.Status, r.Raw)
	}
	exec(`UPDATE projects SET state = 'ready' WHERE id = $1`, pid)

	// Plan limits count every live preview (here 2).
	exec(`UPDATE organizations SET billing_plan = 'vibe' WHERE id = $1`, p["organization_id"])
	if r := s.call("POST", path, s.key, map[string]any{"mode": "empty"}); r.Status != 409 || r.str("error") != "plan vibe allows 1 live preview per project" {
		t.Errorf("vibe limit: %d %s", r.Status, r.Raw)
	}
	exec(`UPDATE organizations SET billing_plan = 'ship' WHERE id = $1`, p["organization_id"])
	for i := 0; i < 3; i++ {
		s.must(202, "POST", path, map[string]any{"mode": "empty"})
	}
	if r := s.call("POST", path, s.key, map[string]any{"mode": "empty"}); r.Status != 409 || r.str("error") != "plan ship allows 5 live previews per project" {
		t.Errorf("ship limit: %d %s", r.Status, r.Raw)
	}
	// A preview being deleted no longer counts.
	s.must(202, "DELETE", "/v1/preview-databases/"+firstID, nil)
	s.must(202, "POST", path, map[string]any{"mode": "empty"})
	exec(`UPDATE organizations SET billing_plan = 'business' WHERE id = $1`, p["organization_id"])
}

// TestPreviewFailureAndTTL: a clone that fails leaves nothing behind and the
// preview failed; reset and delete work on it; the reaper (clock 2h ahead)
// deletes previews whose TTL ran out and says so.
func TestPreviewFailureAndTTL(t *testing.T) {
	t.Parallel()
	// The schedulers' clock stands 2h ahead of the start (a 1-hour preview
	// made during the test is due at once).
	clock := filepath.Join(t.TempDir(), "clock")
	if err := os.WriteFile(clock, []byte(time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", 0, 0, "--unsafe-clock-file", clock, "--preview-reaper-interval", "200ms")
	ctx := context.Background()
	p := s.createProject(map[string]any{"name": "fragile", "environment": "non_production"})
	pid := p["id"].(string)
	db, role := p["database_name"].(string), p["role_name"].(string)
	admin := s.admin("postgres")
	if _, err := admin.Exec(ctx, `DROP DATABASE `+pgx.Identifier{db}.Sanitize()+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	pv, job := s.createPreview(pid, map[string]any{"name": "broken"})
	id := pv["id"].(string)
	j := s.waitJob(job["id"].(string))
	if j["state"] != "failed" || j["retry_classification"] != "permanent" || !strings.Contains(fmt.Sprint(j["error"]), "does not exist") {
		t.Fatalf("clone of a missing database: %v", j)
	}
	got := s.must(200, "GET", "/v1/preview-databases/"+id, nil).get("preview").(map[string]any)
	if got["state"] != "failed" || got["last_error"] == nil {
		t.Fatalf("failed preview: %v", got)
	}
	if s.clusterHas("database", got["database_name"].(string)) || s.clusterHas("role", got["role_name"].(string)) {
		t.Fatal("a failed clone left a database or role behind")
	}

	// Bring the project database back; reset now succeeds on the failed preview.
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{db}.Sanitize()+` OWNER `+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `REVOKE ALL ON DATABASE `+pgx.Identifier{db}.Sanitize()+` FROM PUBLIC`); err != nil {
		t.Fatal(err)
	}
	r := s.must(202, "POST", "/v1/preview-databases/"+id+"/reset", nil)
	if j := s.waitJob(r.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("reset of a failed preview: %v", j)
	}
	d, _, _ := s.previewConns(id)
	if query[int](t, d, `SELECT 1`) != 1 {
		t.Fatal("reset preview does not answer")
	}
	st := s.must(200, "GET", "/v1/preview-databases/"+id, nil)
	if st.str("preview", "state") != "ready" || st.get("preview", "last_error") != nil {
		t.Fatalf("after reset: %s", st.Raw)
	}
	// Delete of a failed preview works as well.
	if _, err := admin.Exec(ctx, `DROP DATABASE `+pgx.Identifier{db}.Sanitize()+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	pv, job = s.createPreview(pid, map[string]any{"name": "broken-2", "ttl_hours": 100})
	if j := s.waitJob(job["id"].(string)); j["state"] != "failed" {
		t.Fatalf("second broken clone: %v", j)
	}
	del := s.must(202, "DELETE", "/v1/preview-databases/"+pv["id"].(string), nil)
	if j := s.waitJob(del.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("delete of a failed preview: %v", j)
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{db}.Sanitize()+` OWNER `+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatal(err)
	}

	// TTL: the reaper's clock stands 2h ahead, so a 1-hour preview is due at once;
	// the "broken" one (24h) is not.
	short, job := s.createPreview(pid, map[string]any{"name": "short", "mode": "empty", "ttl_hours": 1})
	shortID := short["id"].(string)
	s.waitJob(job["id"].(string))
	clustertest.Eventually(t, 30*time.Second, "the reaper to delete the expired preview", func() bool {
		return s.call("GET", "/v1/preview-databases/"+shortID, s.key, nil).Status == 404
	})
	if s.clusterHas("role", short["role_name"].(string)) {
		t.Error("the reaped preview's role survived")
	}
	var reason string
	for _, e := range s.eventsOf("preview.deleted") {
		if e["preview_id"] == shortID {
			reason, _ = e["reason"].(string)
		}
	}
	if reason != "ttl" {
		t.Errorf("preview.deleted reason %q, want ttl", reason)
	}
	var actor string
	if err := s.admin("capydb_control").QueryRow(ctx, `SELECT actor_kind FROM audit_events WHERE action = 'preview.deleted'
		AND metadata->>'preview_id' = $1`, shortID).Scan(&actor); err != nil || actor != "system" {
		t.Errorf("audit of the TTL deletion: %q %v", actor, err)
	}
	if st := s.must(200, "GET", "/v1/preview-databases/"+id, nil).str("preview", "state"); st != "ready" {
		t.Errorf("a preview whose TTL has not run out was touched: %s", st)
	}
}

// TestPreviewCloneSurvivesCrash: SIGKILL the server while a snapshot clone
// copies data; after a restart the job is retried from scratch and
// completes, the preview matches the project, and nothing half-built is left.
func TestPreviewCloneSurvivesCrash(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	p := s.createProject(map[string]any{"name": "crashy", "environment": "non_production"})
	pid := p["id"].(string)
	direct := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	mustExec(t, direct, `CREATE TABLE big (id bigserial PRIMARY KEY, v text);
		INSERT INTO big (v) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 600000) g`)
	want := tableSum(t, direct, "big")
	hold, err := connect(direct) // a session on the project: snapshot copy
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close(ctx)

	pv, job := s.createPreview(pid, map[string]any{"name": "crash"})
	jobID := job["id"].(string)
	clustertest.Eventually(t, 60*time.Second, "the clone to copy data", func() bool {
		j := s.must(200, "GET", "/v1/jobs/"+jobID, nil).get("job").(map[string]any)
		prog, _ := j["progress"].(map[string]any)
		return prog["phase"] == "copying_data" || j["state"] == "completed"
	})
	s.kill()

	s2 := startServer(t, s.dataDir, s.directPort, s.pooledPort)
	j := s2.waitJob(jobID)
	if j["state"] != "completed" || j["attempts"].(float64) < 2 {
		t.Logf("server log:\n%s", s2.logs.String())
		t.Fatalf("clone after the crash: %v", j)
	}
	d, _, _ := s2.previewConns(pv["id"].(string))
	if got := tableSum(t, d, "big"); got != want {
		t.Fatalf("clone after the crash differs: %s vs %s", got, want)
	}
	var dbs []string
	rows, err := s2.admin("postgres").Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'`, pv["database_name"])
	if err != nil {
		t.Fatal(err)
	}
	if dbs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 1 || dbs[0] != pv["database_name"] {
		t.Fatalf("databases of the preview after the crash: %v", dbs)
	}
}
