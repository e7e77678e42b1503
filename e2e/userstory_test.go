package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestUserStory is the story end to end: create, poll, connect over
// TLS to both URLs, rotate (old password refused on both), delete.
func TestUserStory(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()

	me := s.must(200, "GET", "/v1/me", nil)
	if me.str("organization", "billing_plan") != "business" || me.str("organization", "billing_status") != "active" ||
		me.str("organization", "slug") != "default" || me.str("principal", "auth_source") != "api_key" {
		t.Fatalf("unexpected /v1/me: %s", me.Raw)
	}

	r := s.must(202, "POST", "/v1/projects", map[string]any{"name": "Shop API", "environment": "non_production"})
	if r.str("project", "state") != "provisioning" || r.str("job", "type") != "instance.create" ||
		r.str("project", "latest_job_id") != r.str("job", "id") || r.str("job", "state") != "pending" {
		t.Fatalf("unexpected create answer: %s", r.Raw)
	}
	pid := r.str("project", "id")
	if !strings.HasPrefix(pid, "prj_") || r.str("project", "slug") != "shop-api" {
		t.Fatalf("bad id or slug: %s", r.Raw)
	}
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" || job["attempts"].(float64) != 1 || job["locked_resource"] != "project:"+pid ||
		job["claimed_by"] == nil || job["completed_at"] == nil {
		t.Fatalf("unexpected job: %v", job)
	}
	p := s.must(200, "GET", "/v1/projects/"+pid, nil).get("project").(map[string]any)
	want := map[string]any{
		"state": "ready", "plan": "business", "region": "local", "postgres_version": "15", "ssl_mode": "require",
		"max_connections": float64(60), "statement_timeout": "0", "idle_transaction_timeout": "120s",
		"storage_limit_bytes": float64(100 << 30), "direct_port": float64(s.directPort),
		"pooled_port": float64(s.pooledPort), "public_host": "127.0.0.1", "environment": "non_production",
		"always_on": false, "runtime_status": "active",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("project.%s = %v, want %v", k, p[k], v)
		}
	}
	dbName, role := p["database_name"].(string), p["role_name"].(string)

	// The plan's limit and timeouts are really set on the role.
	admin := s.admin("postgres")
	var connLimit int
	var super, createdb, createrole bool
	var config []string
	if err := admin.QueryRow(ctx, `SELECT rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, coalesce(rolconfig, '{}')
		FROM pg_roles WHERE rolname = $1`, role).Scan(&connLimit, &super, &createdb, &createrole, &config); err != nil {
		t.Fatal(err)
	}
	if connLimit != 60 || super || createdb || createrole {
		t.Fatalf("role attributes: limit %d super %v createdb %v createrole %v", connLimit, super, createdb, createrole)
	}
	if !contains(config, "idle_in_transaction_session_timeout=120s") || !contains(config, "statement_timeout=0") {
		t.Fatalf("role settings %v", config)
	}

	conns := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	if conns.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("connections must not be cached")
	}
	direct, pooled := conns.str("connections", "direct_url"), conns.str("connections", "pooled_url")
	session := conns.str("connections", "session_url")
	if conns.str("connections", "username") != role || !strings.HasSuffix(direct, "/"+dbName+"?sslmode=require") ||
		!strings.Contains(pooled, ":"+strconv.Itoa(s.pooledPort)+"/") ||
		!strings.Contains(session, ":"+strconv.Itoa(s.sessionPort)+"/"+dbName+"?sslmode=require") {
		t.Fatalf("unexpected connections: %s", conns.Raw)
	}

	// Both URLs work, over TLS.
	if !query[bool](t, direct, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`) {
		t.Fatal("direct session is not TLS")
	}
	if got := query[string](t, pooled, `SELECT current_user`); got != role {
		t.Fatalf("pooled session user %q", got)
	}
	mustExec(t, direct, `CREATE TABLE orders (id int primary key); INSERT INTO orders SELECT generate_series(1, 42)`)
	if n := query[int64](t, pooled, `SELECT count(*) FROM orders`); n != 42 {
		t.Fatalf("pooled sees %d rows", n)
	}
	if n := query[int64](t, session, `SELECT count(*) FROM orders`); n != 42 {
		t.Fatalf("session-mode pooled URL sees %d rows", n)
	}
	// The OpenAPI document describes session_url as an addition (†).
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Description string `json:"description"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(s.must(200, "GET", "/v1/openapi.json", nil).Raw, &doc); err != nil {
		t.Fatal(err)
	}
	if d := doc.Components.Schemas["ConnectionInfo"].Properties["session_url"].Description; !strings.HasPrefix(d, "† ") {
		t.Fatalf("OpenAPI ConnectionInfo.session_url description %q, want a † addition", d)
	}
	// Default extensions come from the template.
	if !query[bool](t, direct, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto')`) {
		t.Error("pgcrypto is not enabled in a new project")
	}
	// Plain-text connections are refused on every port.
	for _, u := range []string{direct, pooled, session} {
		if c, err := connect(strings.Replace(u, "sslmode=require", "sslmode=disable", 1)); err == nil {
			c.Close(ctx)
			t.Fatalf("non-TLS connection accepted on %s", redact(u))
		}
	}

	// A second project's role cannot reach the first project's database.
	p2 := s.createProject(map[string]any{"name": "other", "environment": "non_production"})
	c2 := s.must(200, "GET", "/v1/projects/"+p2["id"].(string)+"/connections", nil)
	crossDirect := strings.Replace(c2.str("connections", "direct_url"), "/"+p2["database_name"].(string)+"?", "/"+dbName+"?", 1)
	crossPooled := strings.Replace(c2.str("connections", "pooled_url"), "/"+p2["database_name"].(string)+"?", "/"+dbName+"?", 1)
	for _, u := range []string{crossDirect, crossPooled} {
		if !strings.Contains(u, "/"+dbName+"?") {
			t.Fatalf("cross-project URL was not pointed at this project's database: %s", redact(u))
		}
		c, err := connect(u)
		if err == nil {
			c.Close(ctx)
			t.Fatalf("another project's role connected to this project's database through %s", redact(u))
		}
		if !strings.Contains(err.Error(), "permission denied for database") {
			t.Fatalf("cross-project connection through %s failed for another reason: %v", redact(u), err)
		}
	}

	// Rotation: the old password is refused on both URLs, the new one works, data intact.
	rot := s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", nil)
	if rot.str("job", "type") != "project.rotate_credentials" {
		t.Fatalf("rotate answered %s", rot.Raw)
	}
	if j := s.waitJob(rot.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("rotation failed: %v", j)
	}
	for _, u := range []string{direct, pooled} {
		c, err := connect(u)
		if err == nil {
			c.Close(ctx)
			t.Fatalf("old password still accepted on %s", redact(u))
		}
		// Postgres says "password authentication failed", pgBouncer "SASL authentication failed".
		if !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("old password on %s failed for another reason: %v", redact(u), err)
		}
	}
	conns2 := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	direct2, pooled2 := conns2.str("connections", "direct_url"), conns2.str("connections", "pooled_url")
	if direct2 == direct {
		t.Fatal("connection URL did not change after rotation")
	}
	if n := query[int64](t, direct2, `SELECT count(*) FROM orders`); n != 42 {
		t.Fatalf("after rotation direct sees %d rows", n)
	}
	if n := query[int64](t, pooled2, `SELECT count(*) FROM orders`); n != 42 {
		t.Fatalf("after rotation pooled sees %d rows", n)
	}

	// Events were written with the state changes.
	events := s.eventTypes(t)
	for _, e := range []string{"project.ready", "job.completed", "credentials.rotated"} {
		if events[e] == 0 {
			t.Errorf("no %s event in the outbox (have %v)", e, events)
		}
	}

	// Delete: database and role gone, project 404, job still readable.
	del := s.must(202, "DELETE", "/v1/projects/"+pid, nil)
	if again := s.must(202, "DELETE", "/v1/projects/"+pid, nil); again.str("job", "id") != del.str("job", "id") {
		t.Errorf("repeated delete queued a second job")
	}
	if j := s.waitJob(del.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("delete failed: %v", j)
	}
	if r := s.call("GET", "/v1/projects/"+pid, s.key, nil); r.Status != 404 || r.str("error") != "project not found" {
		t.Fatalf("deleted project answered %d %s", r.Status, r.Raw)
	}
	var dbLeft, roleLeft bool
	_ = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, dbName).Scan(&dbLeft)
	_ = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&roleLeft)
	if dbLeft || roleLeft {
		t.Fatalf("after delete: database left %v, role left %v", dbLeft, roleLeft)
	}
	if c, err := connect(direct2); err == nil {
		c.Close(ctx)
		t.Fatal("deleted project's URL still connects")
	}
	if ev := s.eventTypes(t); ev["project.deleted"] != 1 {
		t.Errorf("project.deleted events: %d", ev["project.deleted"])
	}
	list := s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != p2["id"] {
		t.Fatalf("project list after delete: %v", list)
	}
}

// TestGraceRotation: with a grace window the new login works at once, the
// old one keeps working until the window ends.
func TestGraceRotation(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "grace", "environment": "non_production"})
	pid := p["id"].(string)
	old := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	mustExec(t, old, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')`)

	rot := s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", map[string]any{"grace_hours": 1})
	if j := s.waitJob(rot.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("rotation failed: %v", j)
	}
	c := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	newDirect, newPooled := c.str("connections", "direct_url"), c.str("connections", "pooled_url")
	if c.str("connections", "username") == p["role_name"] {
		t.Fatal("grace rotation must switch to a new login role")
	}
	// Old login still works during the window; the new one sees and owns the same objects.
	if n := query[int64](t, old, `SELECT count(*) FROM kept`); n != 1 {
		t.Fatal("old login lost access during the grace window")
	}
	mustExec(t, newDirect, `CREATE TABLE made_by_new (id int)`)
	if owner := query[string](t, newPooled, `SELECT tableowner::text FROM pg_tables WHERE tablename = 'made_by_new'`); owner != p["role_name"] {
		t.Fatalf("table created by the grace login is owned by %s, want the owner role %s", owner, p["role_name"])
	}
	// A rotation without grace ends the window: the old login is refused afterwards.
	rot2 := s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", map[string]any{})
	if j := s.waitJob(rot2.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("second rotation failed: %v", j)
	}
	if conn, err := connect(old); err == nil {
		conn.Close(context.Background())
		t.Fatal("old login still works after a later rotation ended its grace window")
	}
	final := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	if n := query[int64](t, final, `SELECT count(*) FROM kept`); n != 1 {
		t.Fatal("data lost across rotations")
	}
}

func (s *server) eventTypes(t *testing.T) map[string]int {
	t.Helper()
	conn := s.admin("capydb_control")
	rows, err := conn.Query(context.Background(), `SELECT type, count(*) FROM events GROUP BY type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			t.Fatal(err)
		}
		out[typ] = n
	}
	return out
}

func mustExec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(url), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
