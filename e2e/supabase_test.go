package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// sbResp is a facade answer: Supabase answers bare arrays as well as objects.
type sbResp struct {
	Status int
	Raw    []byte
	Body   any
}

func (r sbResp) obj() map[string]any { m, _ := r.Body.(map[string]any); return m }
func (r sbResp) arr() []any          { a, _ := r.Body.([]any); return a }

// sb calls the Supabase facade the way Supabase's clients do (Bearer token,
// JSON) and checks every answer is JSON and every error is {"message": …}.
func sb(t *testing.T, s *server, key, method, path string, body any) sbResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, s.url+"/api/supabase"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := sbResp{Status: resp.StatusCode, Raw: raw}
	if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Fatalf("%s %s: content type %q: %s", method, path, resp.Header.Get("Content-Type"), raw)
	}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	if resp.StatusCode >= 400 {
		m := out.obj()
		if msg, _ := m["message"].(string); msg == "" || len(m) != 1 {
			t.Fatalf("%s %s: error body is not {\"message\": …}: %s", method, path, raw)
		}
	}
	return out
}

func sbMust(t *testing.T, s *server, status int, method, path string, body any) sbResp {
	t.Helper()
	r := sb(t, s, s.key, method, path, body)
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Raw)
	}
	return r
}

func sbMessage(t *testing.T, r sbResp, status int, contains string) {
	t.Helper()
	msg, _ := r.obj()["message"].(string)
	if r.Status != status || !strings.Contains(msg, contains) {
		t.Fatalf("got %d %s, want %d with %q", r.Status, r.Raw, status, contains)
	}
}

var (
	refRE  = regexp.MustCompile(`^[a-z]{20}$`)
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// sbProject creates a project through the facade (the body Supabase's Go
// client sends) and polls it to ACTIVE_HEALTHY as the Terraform provider does.
func sbProject(t *testing.T, s *server, name string) (ref string) {
	t.Helper()
	slug := s.must(200, "GET", "/v1/me", nil).str("organization", "slug")
	r := sbMust(t, s, 201, "POST", "/v1/projects", map[string]any{"organization_slug": slug, "name": name, "db_pass": "unused-pass",
		"region_selection": map[string]any{"type": "specific", "code": "local"}, "desired_instance_size": "micro"})
	p := r.obj()
	ref, _ = p["id"].(string)
	if !refRE.MatchString(ref) || p["ref"] != ref || p["organization_id"] != slug || p["name"] != name || p["region"] != "local" {
		t.Fatalf("create answer: %s", r.Raw)
	}
	if st := p["status"]; st != "COMING_UP" && st != "ACTIVE_HEALTHY" {
		t.Fatalf("create status %v", st)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		g := sbMust(t, s, 200, "GET", "/v1/projects/"+ref, nil).obj()
		if g["status"] == "ACTIVE_HEALTHY" {
			if _, err := time.Parse(time.RFC3339, g["created_at"].(string)); err != nil {
				t.Fatalf("created_at: %v", err)
			}
			return ref
		}
		if g["status"] != "COMING_UP" || time.Now().After(deadline) {
			t.Fatalf("project status %v", g["status"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// capyID is the CapyDB id behind a ref (facade paths accept both).
func capyID(t *testing.T, s *server, name string) map[string]any {
	t.Helper()
	for _, p := range s.must(200, "GET", "/v1/projects", nil).get("projects").([]any) {
		if m := p.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("project %s not in /v1/projects", name)
	return nil
}

func pgConnect(t *testing.T, user, pass string, port int, db string) (*pgx.Conn, error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: fmt.Sprintf("127.0.0.1:%d", port), Path: "/" + db,
		RawQuery: "sslmode=require&connect_timeout=5"}
	return connect(u.String())
}

// TestSupabaseClientFacade drives /api/supabase/v1 with the requests and
// body shapes of Supabase's clients and checks each answer's exact shape and
// each write's real effect in Postgres.
func TestSupabaseClientFacade(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()

	// Errors: Supabase's shape and statuses.
	sbMessage(t, sb(t, s, "", "GET", "/v1/projects", nil), 401, "Unauthorized")
	sbMessage(t, sb(t, s, "capy_live_nope", "GET", "/v1/projects", nil), 401, "Unauthorized")
	sbMessage(t, sb(t, s, s.key, "GET", "/v1/projects/abcdefghijabcdefghij", nil), 404, "not found")

	// Organizations.
	me := s.must(200, "GET", "/v1/me", nil)
	slug := me.str("organization", "slug")
	orgs := sbMust(t, s, 200, "GET", "/v1/organizations", nil).arr()
	if len(orgs) != 1 || orgs[0].(map[string]any)["id"] != slug {
		t.Fatalf("organizations: %v", orgs)
	}
	org := sbMust(t, s, 200, "GET", "/v1/organizations/"+slug, nil).obj()
	if org["id"] != slug || org["plan"] == "" || org["allowed_release_channels"].([]any)[0] != "ga" {
		t.Fatalf("organization: %v", org)
	}

	// Projects: create, poll, list.
	ref := sbProject(t, s, "sb-main")
	cp := capyID(t, s, "sb-main")
	pid, db := cp["id"].(string), cp["database_name"].(string)
	list := sbMust(t, s, 200, "GET", "/v1/projects", nil).arr()
	if len(list) != 1 || list[0].(map[string]any)["id"] != ref || list[0].(map[string]any)["database"].(map[string]any)["host"] == "" {
		t.Fatalf("projects: %v", list)
	}
	if g := sbMust(t, s, 200, "GET", "/v1/projects/"+pid, nil).obj(); g["id"] != ref {
		t.Fatalf("the CapyDB id names the same project: %v", g)
	}
	sbMessage(t, sb(t, s, s.key, "PATCH", "/v1/projects/"+ref, map[string]any{"name": "renamed"}), 400, "name")
	health := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/health?services=auth&services=db&services=db_postgres_user&services=pg_bouncer&services=pooler&services=realtime&services=storage", nil).arr()
	if len(health) != 4 || health[0].(map[string]any)["name"] != "db" || health[0].(map[string]any)["status"] != "ACTIVE_HEALTHY" {
		t.Fatalf("health: %v", health)
	}
	if pg := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/postgrest", nil).obj(); pg["db_schema"] != "" {
		t.Fatalf("postgrest: %v", pg)
	}
	if a := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/billing/addons", nil).obj(); len(a["selected_addons"].([]any)) != 0 {
		t.Fatalf("addons: %v", a)
	}

	// SQL: runs as the tenant, rows as objects in column order.
	q := func(sql string) []any {
		return sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/database/query", map[string]any{"query": sql}).arr()
	}
	q("create table t (id int primary key, name text); insert into t values (1, 'a')")
	rows := sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/database/query", map[string]any{"query": "select id, name, current_user as who from t"})
	if !strings.HasPrefix(string(rows.Raw), `[{"id":1,"name":"a","who":"`) {
		t.Fatalf("query rows: %s", rows.Raw)
	}
	sbMessage(t, sb(t, s, s.key, "POST", "/v1/projects/"+ref+"/database/query", map[string]any{"query": "insert into t values (2, 'b')", "read_only": true}), 400, "read-only")

	// Types.
	ty := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/types/typescript?included_schemas=public", nil).obj()
	if ts, _ := ty["types"].(string); !strings.Contains(ts, "Database") || !strings.Contains(ts, "t: {") {
		t.Fatalf("types: %.300s", ty["types"])
	}

	// Branches: default first, a clone, its connection details, reset, delete rules.
	br := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/branches", nil).arr()
	def := br[0].(map[string]any)
	if len(br) != 1 || def["is_default"] != true || !uuidRE.MatchString(def["id"].(string)) || def["project_ref"] != ref {
		t.Fatalf("branches: %v", br)
	}
	if d := sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/branches", map[string]any{"branch_name": "Production", "is_default": true}).obj(); d["id"] != def["id"] {
		t.Fatalf("enabling branching returns the default branch: %v", d)
	}
	sbMessage(t, sb(t, s, s.key, "POST", "/v1/projects/"+ref+"/branches", map[string]any{"branch_name": "x", "region": "elsewhere"}), 400, "region")
	nb := sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/branches", map[string]any{"branch_name": "feature/x", "git_branch": "feature/x",
		"with_data": true, "persistent": true}).obj()
	bid, _ := nb["id"].(string)
	if !uuidRE.MatchString(bid) || nb["name"] != "feature/x" || nb["persistent"] != true || nb["parent_project_ref"] != ref ||
		nb["status"] != "MIGRATIONS_PASSED" || !refRE.MatchString(nb["project_ref"].(string)) {
		t.Fatalf("branch: %v", nb)
	}
	if _, err := time.Parse(time.RFC3339, nb["created_at"].(string)); err != nil {
		t.Fatal(err)
	}
	det := sbMust(t, s, 200, "GET", "/v1/branches/"+bid, nil).obj()
	if det["ref"] != nb["project_ref"] || det["db_port"] != float64(s.directPort) || det["status"] != "ACTIVE_HEALTHY" || det["db_pass"] == "" {
		t.Fatalf("branch detail: %v", det)
	}
	if d2 := sbMust(t, s, 200, "GET", "/v1/branches/"+nb["project_ref"].(string), nil).obj(); d2["db_user"] != det["db_user"] {
		t.Fatalf("a branch ref names the branch: %v", d2)
	}
	pvs := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)
	pv := pvs[0].(map[string]any)
	if pv["protected"] != true || pv["name"] != "feature-x" {
		t.Fatalf("the branch is a protected preview: %v", pv)
	}
	bconn, err := pgConnect(t, det["db_user"].(string), det["db_pass"].(string), s.directPort, pv["database_name"].(string))
	if err != nil {
		t.Fatalf("connect to the branch with its db_user/db_pass: %v", err)
	}
	var n int
	if err := bconn.QueryRow(ctx, "select count(*) from t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("with_data cloned t: %d %v", n, err)
	}
	bconn.Close(ctx)
	q("insert into t values (2, 'b')")
	sbMust(t, s, 201, "POST", "/v1/branches/"+bid+"/reset", nil)
	bconn, err = pgConnect(t, det["db_user"].(string), det["db_pass"].(string), s.directPort, pv["database_name"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if err := bconn.QueryRow(ctx, "select count(*) from t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("reset re-cloned t: %d %v", n, err)
	}
	bconn.Close(ctx)
	sbMessage(t, sb(t, s, s.key, "DELETE", "/v1/branches/"+bid, nil), 422, "persistent")
	sbMessage(t, sb(t, s, s.key, "DELETE", "/v1/branches/"+def["id"].(string), nil), 422, "default branch")
	up := sbMust(t, s, 200, "PATCH", "/v1/branches/"+bid, map[string]any{"branch_name": "feature/x", "git_branch": "feature/y", "persistent": false}).obj()
	if up["persistent"] != false || up["git_branch"] != "feature/y" {
		t.Fatalf("update: %v", up)
	}
	if m := sbMust(t, s, 200, "DELETE", "/v1/branches/"+bid, nil).obj(); m["message"] != "ok" {
		t.Fatalf("delete: %v", m)
	}
	if br := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/branches", nil).arr(); len(br) != 1 {
		t.Fatalf("the deleted branch is listed: %v", br)
	}
	empty := sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/branches", map[string]any{"branch_name": "empty-one"}).obj()
	if empty["with_data"] != false {
		t.Fatalf("empty branch: %v", empty)
	}
	sbMust(t, s, 200, "DELETE", "/v1/projects/"+ref+"/branches", nil)
	clustertest.Eventually(t, 60*time.Second, "branches gone", func() bool {
		return len(s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)) == 0
	})

	// Postgres config: exact echo, real per-(role, database) settings, cluster keys refused.
	cur := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/config/database/postgres", nil).obj()
	limit := int(cur["max_connections"].(float64)) - 1
	put := map[string]any{"statement_timeout": "10s", "work_mem": "8MB", "max_parallel_workers_per_gather": 1,
		"session_replication_role": "origin", "max_connections": limit}
	echo := sbMust(t, s, 200, "PUT", "/v1/projects/"+ref+"/config/database/postgres", map[string]any{
		"statement_timeout": "10s", "work_mem": "8MB", "max_parallel_workers_per_gather": 1, "session_replication_role": "origin",
		"max_connections": limit, "restart_database": false})
	want, _ := json.Marshal(put)
	if got, _ := json.Marshal(echo.Body); string(got) != string(want) {
		t.Fatalf("echo %s, want %s", got, want)
	}
	got := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/config/database/postgres", nil).obj()
	if got["statement_timeout"] != "10s" || got["work_mem"] != "8MB" || got["max_parallel_workers_per_gather"] != float64(1) ||
		got["max_connections"] != float64(limit) {
		t.Fatalf("postgres config: %v", got)
	}
	admin := s.admin("postgres")
	var cfg []string
	if err := admin.QueryRow(ctx, `select s.setconfig from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
		join pg_roles r on r.oid = s.setrole where d.datname = $1 and r.rolname = $2`, db, cp["role_name"]).Scan(&cfg); err != nil {
		t.Fatal(err)
	}
	if j := strings.Join(cfg, ","); !strings.Contains(j, "statement_timeout=10s") || !strings.Contains(j, "work_mem=8MB") {
		t.Fatalf("pg_db_role_setting: %v", cfg)
	}
	var connLimit int
	if err := admin.QueryRow(ctx, `select rolconnlimit from pg_roles where rolname = $1`, cp["role_name"]).Scan(&connLimit); err != nil || connLimit != limit {
		t.Fatalf("connection limit %d (%v), want %d", connLimit, err, limit)
	}
	sbMessage(t, sb(t, s, s.key, "PUT", "/v1/projects/"+ref+"/config/database/postgres", map[string]any{"shared_buffers": "1GB"}), 400, "shared_buffers")

	// Pooler and pgBouncer config.
	pl := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/config/database/pooler", nil).arr()
	p0 := pl[0].(map[string]any)
	if len(pl) != 1 || p0["database_type"] != "PRIMARY" || p0["db_port"] != float64(s.pooledPort) || p0["identifier"] != ref ||
		!strings.Contains(p0["connection_string"].(string), "[YOUR-PASSWORD]") || p0["pool_mode"] != "transaction" {
		t.Fatalf("pooler: %v", pl)
	}
	pu := sbMust(t, s, 200, "PATCH", "/v1/projects/"+ref+"/config/database/pooler", map[string]any{"default_pool_size": 7, "pool_mode": "session"}).obj()
	if pu["default_pool_size"] != float64(7) || pu["pool_mode"] != "session" {
		t.Fatalf("pooler update: %v", pu)
	}
	if pb := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/config/database/pgbouncer", nil).obj(); pb["default_pool_size"] != float64(7) || pb["pool_mode"] != "session" {
		t.Fatalf("pgbouncer: %v", pb)
	}

	// Read-only: on through /v1, then Supabase's temporary disable.
	if ro := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/readonly", nil).obj(); ro["enabled"] != false {
		t.Fatalf("readonly: %v", ro)
	}
	s.waitJob(s.must(202, "PUT", "/v1/projects/"+pid+"/read-only", map[string]any{"enabled": true}).str("job", "id"))
	if ro := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/readonly", nil).obj(); ro["enabled"] != true {
		t.Fatalf("readonly on: %v", ro)
	}
	sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/readonly/temporary-disable", nil)
	ro := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/readonly", nil).obj()
	if ro["enabled"] != false || ro["override_enabled"] != true || ro["override_active_until"] == nil {
		t.Fatalf("readonly after temporary-disable: %v", ro)
	}
	q("insert into t values (3, 'c')") // writable again

	// SSL enforcement.
	ssl := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/ssl-enforcement", nil).obj()
	if ssl["currentConfig"].(map[string]any)["database"] != true || ssl["appliedSuccessfully"] != true {
		t.Fatalf("ssl: %v", ssl)
	}
	sbMust(t, s, 200, "PUT", "/v1/projects/"+ref+"/ssl-enforcement", map[string]any{"requestedConfig": map[string]any{"database": true}})
	sbMessage(t, sb(t, s, s.key, "PUT", "/v1/projects/"+ref+"/ssl-enforcement", map[string]any{"requestedConfig": map[string]any{"database": false}}),
		400, "not allowed to configure SSL enforcements")

	// Network restrictions: order kept, the HBA rule refuses a connection.
	// (The server's own host, 127.0.0.1, is always allowed: CapyDB's own connections.)
	urls := projectURLs(s, pid)
	nr := sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/network-restrictions/apply", map[string]any{
		"dbAllowedCidrs": []string{"203.0.113.0/24", "127.0.0.2/32"}, "dbAllowedCidrsV6": []string{"2001:db8::/32"}}).obj()
	c := nr["config"].(map[string]any)
	if fmt.Sprint(c["dbAllowedCidrs"]) != "[203.0.113.0/24 127.0.0.2/32]" || fmt.Sprint(c["dbAllowedCidrsV6"]) != "[2001:db8::/32]" ||
		nr["status"] != "applied" || nr["entitlement"] != "allowed" {
		t.Fatalf("network: %v", nr)
	}
	expectLogins(t, "allowed", "127.0.0.2", urls, true)
	expectLogins(t, "not allowed", "127.0.0.3", urls, false)
	sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/network-restrictions/apply", map[string]any{"dbAllowedCidrs": []string{"203.0.113.0/24"}})
	expectLogins(t, "dropped", "127.0.0.2", urls, false)
	if g := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/network-restrictions", nil).obj(); fmt.Sprint(g["config"].(map[string]any)["dbAllowedCidrsV6"]) != "[]" {
		t.Fatalf("network read: %v", g)
	}
	if bans := sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/network-bans/retrieve", nil).obj(); fmt.Sprint(bans["banned_ipv4_addresses"]) != "[]" {
		t.Fatalf("bans: %v", bans)
	}
	sbMust(t, s, 200, "DELETE", "/v1/projects/"+ref+"/network-bans", map[string]any{"ipv4_addresses": []string{}})

	// Backups.
	s.waitJob(s.must(202, "POST", "/v1/projects/"+pid+"/backups", map[string]any{}).str("job", "id"))
	bk := sbMust(t, s, 200, "GET", "/v1/projects/"+ref+"/database/backups", nil).obj()
	if b := bk["backups"].([]any); len(b) != 1 || b[0].(map[string]any)["status"] != "COMPLETED" || bk["walg_enabled"] != false || bk["region"] != "local" {
		t.Fatalf("backups: %v", bk)
	}

	// Out of scope.
	for _, p := range []string{"/config/auth", "/functions", "/secrets", "/api-keys", "/api-keys/legacy", "/storage/buckets", "/custom-hostname", "/vanity-subdomain", "/pgsodium"} {
		sbMessage(t, sb(t, s, s.key, "GET", "/v1/projects/"+ref+p, nil), 404, "is not offered by CapyDB: ")
	}

	// Delete: production needs an approval Supabase clients cannot send.
	sbMessage(t, sb(t, s, s.key, "DELETE", "/v1/projects/"+ref, nil), 428, "non_production")
	s.must(200, "PATCH", "/v1/projects/"+pid, map[string]any{"environment": "non_production"})
	// PITR maps onto CapyDB's in-place restore; this server archives no WAL.
	sbMessage(t, sb(t, s, s.key, "POST", "/v1/projects/"+ref+"/database/backups/restore-pitr",
		map[string]any{"recovery_time_target_unix": time.Now().Add(-time.Minute).Unix()}), 400, "point-in-time recovery is not available")
	del := sbMust(t, s, 200, "DELETE", "/v1/projects/"+ref, nil)
	if !regexp.MustCompile(`^\{"id":\d+,"ref":"` + ref + `","name":"sb-main"\}$`).Match(bytes.TrimSpace(del.Raw)) {
		t.Fatalf("delete answer: %s", del.Raw)
	}
}
