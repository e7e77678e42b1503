package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// sql runs a Studio query with the admin key.
func (s *server) sql(path string, body map[string]any) response {
	s.t.Helper()
	return s.call("POST", path+"/sql", s.key, body)
}

func wantSQLError(t *testing.T, r response, status int, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	for _, p := range parts {
		if !strings.Contains(r.str("error"), p) {
			t.Fatalf("error %q does not contain %q", r.str("error"), p)
		}
	}
}

// TestStudioSQL drives the SQL runner, tables, rows and history through a
// real server against the project's real database.
func TestStudioSQL(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--unsafe-studio-timeout", "4s")
	p := s.createProject(map[string]any{"name": "studio", "environment": "non_production"})
	pid := p["id"].(string)
	base := "/v1/projects/" + pid
	conns := s.must(200, "GET", base+"/connections", nil)
	login, direct := conns.str("connections", "username"), conns.str("connections", "direct_url")

	// It runs as the project's own login, never a superuser, in one
	// transaction, returning the last statement's result.
	r := s.sql(base, map[string]any{"query": `CREATE TABLE items (id int PRIMARY KEY, name text, big bigint, raw bytea);
		INSERT INTO items SELECT g, 'item ' || g, 9007199254740993, '\xcafe' FROM generate_series(1, 30) g; ANALYZE items;
		SELECT current_user AS who, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super, big, raw FROM items WHERE id = 1`})
	if r.Status != 200 {
		t.Fatalf("sql: %d %s", r.Status, r.Raw)
	}
	res := r.get("result").(map[string]any)
	row := res["rows"].([]any)[0].(map[string]any)
	if row["who"] != login || row["super"] != false || row["big"] != "9007199254740993" || row["raw"] != `\xcafe` {
		t.Fatalf("row %v (login %s)", row, login)
	}
	if fmt.Sprint(res["columns"]) != "[who super big raw]" || res["row_count"] != 1.0 || res["truncated"] != false {
		t.Fatalf("result %v", res)
	}
	if _, ok := res["duration_ms"].(float64); !ok || strings.Contains(string(r.Raw), `"duration_ms":0.`) {
		t.Fatalf("duration_ms is not an integer: %s", r.Raw)
	}
	if n := query[int](t, direct, "SELECT count(*) FROM items"); n != 30 {
		t.Fatalf("committed rows seen on the direct URL: %d", n)
	}

	// Row cap and truncation.
	r = s.sql(base, map[string]any{"query": "SELECT g FROM generate_series(1, 3000) g", "max_rows": 5000})
	if n := len(r.get("result", "rows").([]any)); r.Status != 200 || n != 1000 || r.get("result", "truncated") != true {
		t.Fatalf("max_rows 5000: %d rows, %s", n, r.Raw[:200])
	}
	r = s.sql(base, map[string]any{"query": "SELECT g FROM generate_series(1, 3000) g"})
	if n := len(r.get("result", "rows").([]any)); n != 200 {
		t.Fatalf("default cap: %d rows", n)
	}

	// Bad input.
	wantSQLError(t, s.sql(base, map[string]any{"query": ""}), 400, `"query"`)
	wantSQLError(t, s.sql(base, map[string]any{"query": "select 1 " + strings.Repeat("-", 20000)}), 400, "20000")
	wantSQLError(t, s.sql(base, map[string]any{"query": "select 1", "max_rows": -1}), 400, `"max_rows"`)
	wantSQLError(t, s.sql(base, map[string]any{"query": "select 1", "read_only": true, "allow_unqualified_writes": true}), 400, "read_only and allow_unqualified_writes")
	wantSQLError(t, s.sql(base, map[string]any{"query": "select 1", "nope": 1}), 400, `unknown field "nope"`)
	wantSQLError(t, s.sql(base, map[string]any{"query": "select 1; selec 2"}), 400, `syntax error at or near "selec" at character 11 (SQLSTATE 42601)`)
	wantSQLError(t, s.sql(base, map[string]any{"query": "select * from orders"}), 400, `relation "orders" does not exist`, "(SQLSTATE 42P01)")
	wantSQLError(t, s.sql(base, map[string]any{"query": "DELETE FROM items -- WHERE id = 1"}), 400, "refusing DELETE without a WHERE clause; set allow_unqualified_writes to run it")
	wantSQLError(t, s.sql(base, map[string]any{"query": "TRUNCATE items"}), 400, "refusing TRUNCATE")
	wantSQLError(t, s.sql(base, map[string]any{"query": "INSERT INTO items VALUES (99)", "read_only": true}), 400, "SQLSTATE 25006")
	wantSQLError(t, s.sql(base, map[string]any{"query": "INSERT INTO items VALUES (98); COMMIT; INSERT INTO items VALUES (97)"}), 400, "transaction control")
	wantSQLError(t, s.sql(base, map[string]any{"query": "SET statement_timeout = 0; SELECT pg_sleep(10)"}), 408, "statement timed out after 4s")
	if n := query[int](t, direct, "SELECT count(*) FROM items WHERE id > 90"); n != 0 {
		t.Fatalf("refused or failed requests left %d rows", n)
	}
	r = s.sql(base, map[string]any{"query": "DELETE FROM items WHERE id > 25"})
	if r.Status != 200 || r.get("result", "row_count") != 5.0 {
		t.Fatalf("qualified delete: %s", r.Raw)
	}

	// A 50 MB value is cut; the response stays small.
	r = s.sql(base, map[string]any{"query": "SELECT repeat('x', 50 * 1024 * 1024) AS big"})
	if r.Status != 200 || len(r.Raw) > 2<<20 || !strings.HasSuffix(r.get("result", "rows").([]any)[0].(map[string]any)["big"].(string), "[value cut: 52428800 bytes]") {
		t.Fatalf("50 MB value: status %d, %d bytes", r.Status, len(r.Raw))
	}

	// A client that disconnects cancels its statement.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		body := strings.NewReader(`{"query": "SELECT pg_sleep(3.9) AS e2e_disconnect_marker"}`)
		req, _ := http.NewRequestWithContext(ctx, "POST", s.url+base+"/sql", body)
		req.Header.Set("Authorization", "Bearer "+s.key)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	admin := s.admin(p["database_name"].(string))
	active := func() int {
		var n int
		if err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE state = 'active'
			AND query LIKE '%e2e_disconnect_marker%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	clustertest.Eventually(t, 5*time.Second, "the statement runs", func() bool { return active() == 1 })
	cancel()
	<-done
	clustertest.Eventually(t, time.Second, "the backend stops the statement at once", func() bool { return active() == 0 })

	// Tables (#76) and rows (#77).
	tables := s.must(200, "GET", base+"/tables", nil).get("tables").([]any)
	found := false
	for _, tb := range tables {
		m := tb.(map[string]any)
		if m["schema"] == "public" && m["table"] == "items" {
			found = m["type"] == "table" && m["estimated_rows"] == 30.0
		}
	}
	if !found {
		t.Fatalf("tables: %v", tables)
	}
	rows := s.must(200, "GET", base+"/tables/public/items/rows?limit=2&offset=3", nil).get("result").(map[string]any)
	list := rows["rows"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != 4.0 || rows["truncated"] != true || rows["row_count"] != 2.0 {
		t.Fatalf("rows page: %v", rows)
	}
	rows = s.must(200, "GET", base+"/tables/public/items/rows?limit=5000&offset=20", nil).get("result").(map[string]any)
	if len(rows["rows"].([]any)) != 5 || rows["truncated"] != false {
		t.Fatalf("last page: %v", rows)
	}
	// Path segments are percent-decoded and exact (not case-folded).
	if r := s.sql(base, map[string]any{"query": `CREATE SCHEMA "Shop"; CREATE TABLE "Shop"."Order Items/2" (id int PRIMARY KEY); INSERT INTO "Shop"."Order Items/2" VALUES (2), (1)`}); r.Status != 200 {
		t.Fatalf("create: %s", r.Raw)
	}
	rows = s.must(200, "GET", base+"/tables/Shop/Order%20Items%2F2/rows", nil).get("result").(map[string]any)
	if fmt.Sprint(rows["rows"]) != "[map[id:1] map[id:2]]" {
		t.Fatalf("escaped names: %v", rows)
	}
	wantSQLError(t, s.call("GET", base+"/tables/shop/Order%20Items%2F2/rows", s.key, nil), 404, "not found")
	wantSQLError(t, s.call("GET", base+"/tables/public/nothing/rows", s.key, nil), 404, "table public.nothing not found")
	wantSQLError(t, s.call("GET", base+"/tables/public/items/rows?limit=-1", s.key, nil), 400, "limit")
	wantSQLError(t, s.call("GET", base+"/tables/public/items/rows?offset=x", s.key, nil), 400, "offset")

	// History (text, duration, rows, who) and audit (hash, never the text).
	hist := s.must(200, "GET", base+"/sql/history?limit=100", nil).get("sql_history").([]any)
	var del map[string]any
	for _, h := range hist {
		if m := h.(map[string]any); m["query"] == "DELETE FROM items WHERE id > 25" {
			del = m
		}
	}
	if del == nil || del["row_count"] != 5.0 || del["actor_kind"] != "api_key" || del["actor_id"] == nil || fmt.Sprint(del["statement_kinds"]) != "[delete]" {
		t.Fatalf("history entry: %v (of %d)", del, len(hist))
	}
	if first := hist[0].(map[string]any); !strings.HasPrefix(first["query"].(string), `CREATE SCHEMA "Shop"`) {
		t.Errorf("history is not newest first: %v", first["query"])
	}
	for i := 1; i < len(hist); i++ {
		prev, _ := time.Parse(time.RFC3339Nano, hist[i-1].(map[string]any)["created_at"].(string))
		cur, _ := time.Parse(time.RFC3339Nano, hist[i].(map[string]any)["created_at"].(string))
		if prev.Before(cur) || cur.IsZero() {
			t.Errorf("history order: %v before %v", hist[i-1], hist[i])
		}
	}
	sum := sha256.Sum256([]byte("DELETE FROM items WHERE id > 25"))
	events := s.must(200, "GET", base+"/audit-events?limit=100", nil).get("audit_events").([]any)
	var ev map[string]any
	for _, e := range events {
		m := e.(map[string]any)
		if m["action"] == "project.sql_executed" && m["metadata"].(map[string]any)["query_sha256"] == hex.EncodeToString(sum[:]) {
			ev = m
		}
		if raw, _ := json.Marshal(m); strings.Contains(string(raw), "items WHERE") {
			t.Fatalf("audit event carries query text: %s", raw)
		}
	}
	if ev == nil {
		t.Fatalf("no project.sql_executed event for the delete")
	}
	meta := ev["metadata"].(map[string]any)
	if meta["row_count"] != 5.0 || meta["read_only"] != false || fmt.Sprint(meta["statement_kinds"]) != "[delete]" || meta["duration_ms"] == nil {
		t.Fatalf("audit metadata %v", meta)
	}

	// The CLI: capydb sql (table, -o json, --file, --read-only, --max-rows)
	// and capydb tables.
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	out := u.expect(0, "sql", "--project", pid, "SELECT id, name, NULL AS nothing FROM items ORDER BY id LIMIT 2").stdout
	if want := "id  name    nothing\n1   item 1  NULL\n2   item 2  NULL\n"; !strings.HasPrefix(out, want) || !strings.Contains(out, "(2 rows, ") {
		t.Fatalf("sql table output:\n%s", out)
	}
	doc := u.json("sql", "--project", pid, "--max-rows", "3", "SELECT g FROM generate_series(1, 10) g")
	if doc["truncated"] != true || len(doc["rows"].([]any)) != 3 || fmt.Sprint(doc["columns"]) != "[g]" {
		t.Fatalf("sql -o json: %v", doc)
	}
	qf := t.TempDir() + "/q.sql"
	if err := os.WriteFile(qf, []byte("SELECT count(*) AS n FROM items;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if doc := u.json("sql", "--project", pid, "--file", qf, "--json"); doc["rows"].([]any)[0].(map[string]any)["n"] != 25.0 {
		t.Fatalf("sql --file: %v", doc)
	}
	if r := u.expect(2, "sql", "--project", pid, "--read-only", "INSERT INTO items VALUES (600)"); !strings.Contains(r.stderr, "SQLSTATE 25006") {
		t.Fatalf("--read-only write: %s", r.stderr)
	}
	u.expect(2, "sql", "--project", pid, "--read-only", "--allow-unqualified-writes", "select 1")
	u.expect(2, "sql", "--project", pid, "--max-rows", "-1", "select 1")
	u.expect(6, "sql", "--project", pid, "select pg_sleep(20)")
	tout := u.expect(0, "tables", "--project", pid).stdout
	if !strings.Contains(tout, "SCHEMA") || !regexp.MustCompile(`public\s+items\s+table\s+30`).MatchString(tout) {
		t.Fatalf("tables:\n%s", tout)
	}
	if doc := u.json("tables", "--project", pid); len(doc["tables"].([]any)) != 2 {
		t.Fatalf("tables -o json: %v", doc)
	}

	// 409 unless ready (state set directly: a real transition is a race).
	ctl := s.admin("capydb_control")
	if _, err := ctl.Exec(context.Background(), `UPDATE projects SET state = 'importing' WHERE id = $1`, pid); err != nil {
		t.Fatal(err)
	}
	wantSQLError(t, s.sql(base, map[string]any{"query": "select 1"}), 409, "not ready")
	wantSQLError(t, s.call("GET", base+"/tables", s.key, nil), 409, "not ready")
	if _, err := ctl.Exec(context.Background(), `UPDATE projects SET state = 'ready' WHERE id = $1`, pid); err != nil {
		t.Fatal(err)
	}

	// Preview SQL: its own database and role; audited, not in the history.
	pv, job := s.createPreview(pid, map[string]any{"name": "studio-pv"})
	if j := s.waitJob(job["id"].(string)); j["state"] != "completed" {
		t.Fatalf("preview: %v", j)
	}
	pvBase := "/v1/preview-databases/" + pv["id"].(string)
	_, _, pvUser := s.previewConns(pv["id"].(string))
	r = s.sql(pvBase, map[string]any{"query": "INSERT INTO items VALUES (500, 'preview only'); SELECT current_user AS who, count(*) AS n FROM items"})
	if r.Status != 200 {
		t.Fatalf("preview sql: %s", r.Raw)
	}
	row = r.get("result", "rows").([]any)[0].(map[string]any)
	if row["who"] != pvUser || row["n"] != 26.0 {
		t.Fatalf("preview row %v (role %s)", row, pvUser)
	}
	if n := query[int](t, direct, "SELECT count(*) FROM items WHERE id = 500"); n != 0 {
		t.Fatal("a preview query reached the project database")
	}
	hist = s.must(200, "GET", base+"/sql/history?limit=100", nil).get("sql_history").([]any)
	for _, h := range hist {
		if strings.Contains(h.(map[string]any)["query"].(string), "preview only") {
			t.Fatal("a preview query is in the project's history")
		}
	}
	events = s.must(200, "GET", base+"/audit-events?limit=100", nil).get("audit_events").([]any)
	pvAudited := false
	for _, e := range events {
		m := e.(map[string]any)
		pvAudited = pvAudited || m["action"] == "preview.sql_executed" && m["metadata"].(map[string]any)["preview_id"] == pv["id"]
	}
	if !pvAudited {
		t.Fatal("no preview.sql_executed event")
	}
	if doc := u.json("sql", "--preview", pv["id"].(string), "select count(*) AS n from items"); doc["rows"].([]any)[0].(map[string]any)["n"] != 26.0 {
		t.Fatalf("sql --preview: %v", doc)
	}
	u.expect(2, "sql", "--project", pid, "--preview", pv["id"].(string), "select 1")
	if _, err := ctl.Exec(context.Background(), `UPDATE preview_databases SET state = 'provisioning' WHERE id = $1`, pv["id"]); err != nil {
		t.Fatal(err)
	}
	wantSQLError(t, s.sql(pvBase, map[string]any{"query": "select 1"}), 409, "not ready")
	if _, err := ctl.Exec(context.Background(), `UPDATE preview_databases SET state = 'ready' WHERE id = $1`, pv["id"]); err != nil {
		t.Fatal(err)
	}
}

// TestSnippets: saved snippets with author, visibility and timestamps.
func TestSnippets(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "snippets", "environment": "non_production"})
	base := "/v1/projects/" + p["id"].(string) + "/snippets"
	org := s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	other := s.must(201, "POST", "/v1/organizations/"+org+"/api-keys", map[string]any{"name": "other author",
		"scopes": []string{"projects:read", "projects:write"}}).str("plaintext_api_key")

	mine := s.must(201, "POST", base, map[string]any{"name": "Active users", "query": "select * from users where active"}).get("snippet").(map[string]any)
	if mine["visibility"] != "user" || mine["author_kind"] != "api_key" || mine["author_id"] == nil || mine["created_at"] == nil ||
		!strings.HasPrefix(mine["id"].(string), "snp_") || mine["query"] != "select * from users where active" {
		t.Fatalf("created %v", mine)
	}
	shared := s.must(201, "POST", base, map[string]any{"name": "Counts", "query": "select count(*) from users",
		"visibility": "project", "description": "for everyone"}).get("snippet").(map[string]any)

	// Another author sees only the project snippet.
	r := s.call("GET", base, other, nil)
	if list := r.get("snippets").([]any); r.Status != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != shared["id"] {
		t.Fatalf("other's list: %s", r.Raw)
	}
	if r := s.call("GET", base+"/"+mine["id"].(string), other, nil); r.Status != 404 {
		t.Fatalf("other reads a user snippet: %d", r.Status)
	}
	if r := s.call("DELETE", base+"/"+mine["id"].(string), other, nil); r.Status != 404 {
		t.Fatalf("other deletes a user snippet: %d", r.Status)
	}
	if list := s.must(200, "GET", base, nil).get("snippets").([]any); len(list) != 2 || list[0].(map[string]any)["name"] != "Active users" {
		t.Fatalf("author's list: %v", list)
	}

	// Update keeps what is not sent and moves updated_at.
	time.Sleep(10 * time.Millisecond)
	up := s.must(200, "PATCH", base+"/"+mine["id"].(string), map[string]any{"name": "Active", "visibility": "project"}).get("snippet").(map[string]any)
	if up["name"] != "Active" || up["query"] != mine["query"] || up["visibility"] != "project" || up["updated_at"] == mine["updated_at"] || up["created_at"] != mine["created_at"] {
		t.Fatalf("updated %v", up)
	}
	got := s.call("GET", base+"/"+mine["id"].(string), other, nil)
	if got.Status != 200 || got.str("snippet", "name") != "Active" {
		t.Fatalf("project snippet for other: %s", got.Raw)
	}

	// Bad input.
	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"name": "", "query": "select 1"}, `"name"`},
		{map[string]any{"name": "x\u202e", "query": "select 1"}, `"name"`},
		{map[string]any{"name": "x", "query": " "}, `"query"`},
		{map[string]any{"name": "x", "query": "select 1", "visibility": "world"}, `"visibility"`},
		{map[string]any{"name": "x", "query": strings.Repeat("s", 20001)}, `"query"`},
	} {
		wantSQLError(t, s.call("POST", base, s.key, c.body), 400, c.msg)
	}
	wantSQLError(t, s.call("PATCH", base+"/"+shared["id"].(string), s.key, map[string]any{"visibility": "nobody"}), 400, `"visibility"`)
	wantSQLError(t, s.call("GET", base+"/snp_missing", s.key, nil), 404, "snippet not found")

	del := s.must(200, "DELETE", base+"/"+shared["id"].(string), nil)
	if del.get("deleted") != true || del.str("snippet_id") != shared["id"] {
		t.Fatalf("delete: %s", del.Raw)
	}
	wantSQLError(t, s.call("DELETE", base+"/"+shared["id"].(string), s.key, nil), 404, "snippet not found")
}
