package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const previewJSON = `{"id":"pvw_1","project_id":"prj_1","name":"pr-42","mode":"clone","state":"ready","ttl_expires_at":"2026-01-03T03:04:05Z","created_at":"2026-01-02T03:04:05Z"}`

const previewConnJSON = `{"connections":{"username":"u_pv","direct_url":"postgres://u_pv:pvsecret@db.example:5432/db_pv?sslmode=require",
 "pooled_url":"postgres://u_pv:pvsecret@db.example:6432/db_pv?sslmode=require"}}`

// previewStub serves project prj_1 with one preview, pvw_1 named pr-42.
func previewStub(t *testing.T) *stub {
	t.Helper()
	isolate(t)
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects":                            reply(200, `{"projects":[`+projectJSON+`]}`),
		"GET /v1/projects/prj_1":                      reply(200, `{"project":`+projectJSON+`}`),
		"GET /v1/projects/prj_1/preview-databases":    reply(200, `{"preview_databases":[`+previewJSON+`]}`),
		"GET /v1/preview-databases/pvw_1/connections": reply(200, previewConnJSON),
		"POST /v1/preview-databases/pvw_1/extend":     reply(200, `{"preview":`+previewJSON+`}`),
		"POST /v1/projects/prj_1/preview-databases":   reply(202, `{"preview":`+previewJSON+`,"job":{"id":"job_p","type":"branch.create","state":"queued","attempts":0,"max_attempts":5,"created_at":"2026-01-02T03:04:05Z"}}`),
	})
	t.Setenv("CAPYDB_API_URL", s.URL)
	t.Setenv("CAPYDB_API_KEY", "capy_live_x")
	return s
}

// TestPreviewNamesEverywhere: extend, connection-string and psql take a
// preview's name as well as its id, like reset and delete.
func TestPreviewNamesEverywhere(t *testing.T) {
	s := previewStub(t)
	for _, args := range [][]string{{"preview", "extend", "PR-42", "--ttl-hours", "5"}, {"preview", "extend", "--preview", "pr-42", "--ttl-hours", "5"},
		{"preview", "extend", "pvw_1", "--ttl-hours", "5"}} {
		before := s.count("POST /v1/preview-databases/pvw_1/extend")
		if r := runCLI(t, append(args, "--project", "shop")...); r.code != 0 || s.count("POST /v1/preview-databases/pvw_1/extend") != before+1 {
			t.Fatalf("%v: %d %s", args, r.code, r.stderr)
		}
	}
	// An id needs no project: no listing at all.
	before := s.count("GET /v1/projects")
	if r := runCLI(t, "preview", "extend", "pvw_1", "--ttl-hours", "5"); r.code != 0 || s.count("GET /v1/projects") != before {
		t.Fatalf("extend by id listed projects: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "preview", "extend", "nope", "--ttl-hours", "5", "--project", "shop"); r.code != 4 || !strings.Contains(r.stderr, `preview "nope" not found`) {
		t.Fatalf("unknown preview: %d %s", r.code, r.stderr)
	}
	r := runCLI(t, "connection-string", "--preview", "pr-42", "--project", "shop", "--show-secrets")
	if r.code != 0 || r.stdout != "postgres://u_pv:pvsecret@db.example:5432/db_pv?sslmode=require\n" {
		t.Fatalf("connection-string --preview <name>: %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// TestPasswordsMasked: preview list, preview create and connection-string
// never print a password unless --show-secrets.
func TestPasswordsMasked(t *testing.T) {
	previewStub(t)
	for _, args := range [][]string{{"preview", "list"}, {"preview", "create"}, {"connection-string", "--preview", "pvw_1"}} {
		r := runCLI(t, append(args, "--project", "shop")...)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, "pvsecret") || !strings.Contains(r.stdout, "postgres://u_pv:****@db.example:5432/db_pv") {
			t.Fatalf("%v: %d %q %q", args, r.code, r.stdout, r.stderr)
		}
		r = runCLI(t, append(args, "--project", "shop", "--show-secrets")...)
		if r.code != 0 || !strings.Contains(r.stdout, "postgres://u_pv:pvsecret@db.example:5432/db_pv") {
			t.Fatalf("%v --show-secrets: %d %q", args, r.code, r.stdout)
		}
	}
	// preview create's JSON keeps the connections object (CLI.md §8 shape).
	r := runCLI(t, "preview", "create", "--project", "shop", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"direct_url": "postgres://u_pv:pvsecret@`) {
		t.Fatalf("preview create -o json: %q", r.stdout)
	}
	for raw, want := range map[string]string{
		"postgres://u:p%40ss@h:5432/d?sslmode=require": "postgres://u:****@h:5432/d?sslmode=require",
		"postgres://u@h/d":                 "postgres://u@h/d",
		"https://user:tok@hooks.example/x": "https://user:****@hooks.example/x",
		"not a url":                        "not a url",
	} {
		if got := maskURL(raw); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestBackupKeyAfterWait: backups create --wait prints the new backup's key.
func TestBackupKeyAfterWait(t *testing.T) {
	done := strings.Replace(jobJSON, `"queued"`, `"completed"`, 1)
	done = strings.Replace(done, `"extra":1`, `"result":{"backup_id":"bkp_7","backup_key":"projects/prj_1/backups/bkp_7.dump","size_bytes":10}`, 1)
	backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/backups": reply(202, `{"job":`+jobJSON+`}`),
		"GET /v1/jobs/job_9":              reply(200, `{"job":`+done+`}`),
	})
	r := runCLI(t, "backups", "create", "--project", "shop", "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "backup_key: projects/prj_1/backups/bkp_7.dump") ||
		!strings.Contains(r.stderr, "capydb restore --project prj_1 --backup-key projects/prj_1/backups/bkp_7.dump") || strings.Contains(r.stderr, "<key>") {
		t.Fatalf("backups create --wait: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "backups", "create", "--project", "shop", "--wait", "-o", "json")
	var job map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || job["result"].(map[string]any)["backup_key"] != "projects/prj_1/backups/bkp_7.dump" {
		t.Fatalf("-o json: %q %v", r.stdout, err)
	}
}

// TestWhoamiJSON: whoami -o json carries the principal, its scopes, where
// the key came from and the server's version, besides CLI.md §8's keys.
func TestWhoamiJSON(t *testing.T) {
	isolate(t)
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/me": reply(200, `{"organization":{"id":"org_1","name":"Acme","slug":"acme"},"principal":{"auth_source":"api_key","organization_id":"org_1",
 "scopes":["projects:read","jobs:read"],"is_admin":false,"api_key_id":"key_1","project_id":"prj_1","future":"kept"}}`),
	})
	t.Setenv("CAPYDB_API_KEY", "capy_live_abcd1234")
	r := runCLI(t, "whoami", "-o", "json", "--api-url", s.URL)
	var who map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &who); err != nil || r.code != 0 {
		t.Fatalf("whoami: %d %q", r.code, r.stdout)
	}
	pr, _ := who["principal"].(map[string]any)
	if who["api_url"] != s.URL || who["server"] != s.URL || who["auth_source"] != "api_key" || who["organization"].(map[string]any)["slug"] != "acme" ||
		pr["api_key_id"] != "key_1" || pr["future"] != "kept" || who["project_id"] != "prj_1" || who["api_key_id"] != "key_1" ||
		strings.Join(toStrings(who["scopes"]), ",") != "projects:read,jobs:read" || who["is_admin"] != false ||
		who["api_key_from"] != "env" || who["api_key"] != "****1234" || who["server_version"] != "v9.9.9" {
		t.Fatalf("whoami -o json: %s", r.stdout)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestNoInteractiveLogin: with no key, create/link/env pull never start a
// device login when CI is set or stdin is not a terminal: exit 3 at once,
// naming the server and the fix.
func TestNoInteractiveLogin(t *testing.T) {
	isolate(t)
	s := newStub(t, map[string]http.HandlerFunc{
		"POST /v1/cli/login/sessions": reply(201, `{"session_id":"cls_1","poll_token":"p","expires_at":"2099-01-01T00:00:00Z"}`),
	})
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		for _, args := range [][]string{{"create", "--name", "x"}, {"link", "--project", "x"}, {"env", "pull"}, {"projects", "list"}} {
			r := runCLI(t, append(args, "--api-url", s.URL)...)
			if r.code != 3 || !strings.Contains(r.stderr, "no API key for "+s.URL) || !strings.Contains(r.stderr, "CAPYDB_API_KEY") ||
				!strings.Contains(r.stderr, "capydb login") || !strings.Contains(r.stderr, "no terminal") {
				t.Fatalf("CI=%q %v: %d %s", ci, args, r.code, r.stderr)
			}
		}
	}
	// CI wins even on a terminal.
	t.Setenv("CI", "true")
	if r := runAnswering(t, "", "create", "--name", "x", "--api-url", s.URL); r.code != 3 || !strings.Contains(r.stderr, "(CI is set)") {
		t.Fatalf("CI on a terminal: %d %s", r.code, r.stderr)
	}
	if n := s.count("POST /v1/cli/login/sessions"); n != 0 {
		t.Fatalf("%d device logins started", n)
	}
}

// TestDoctorEnvProject: doctor fails when the env file's URLs name another
// database than the linked project's, and passes when only the password or
// TLS options differ.
func TestDoctorEnvProject(t *testing.T) {
	dir, s := linkedDir(t)
	s.set("GET /status", reply(200, `{"status":"operational","components":[]}`))
	t.Setenv("PATH", "") // psql is not the point here
	checks := func() map[string]check {
		r := runCLI(t, "doctor", "-o", "json")
		var doc struct {
			Checks []check `json:"checks"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("doctor: %q %v", r.stdout, err)
		}
		out := map[string]check{}
		for _, c := range doc.Checks {
			out[c.Name] = c
		}
		return out
	}
	if c := checks()["env_project"]; c.Status != "pass" || !strings.Contains(c.Detail, "u_shop@db.example:5432/db_shop") {
		t.Fatalf("linked: %+v", c)
	}
	// Another project's URLs (create used to leave this behind).
	env := "DATABASE_URL=\"postgres://u_shop2:pw2@db.example:5432/db_shop2?sslmode=require\"\n" +
		"DIRECT_URL=\"postgres://u_shop2:pw2@db.example:5432/db_shop2?sslmode=require\"\n" +
		"DATABASE_DIRECT_URL=\"postgres://u_shop:rotated@db.example:5432/db_shop?sslmode=verify-full&sslrootcert=.capydb/ca.crt\"\n" +
		"DATABASE_POOL_URL=\"postgres://u_shop:pw@db.example:6432/db_shop?sslmode=require\"\n" +
		"DATABASE_URL_UNPOOLED=\"postgres://u_shop:pw@db.example:6432/db_shop?sslmode=require\"\n"
	_ = os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600)
	c := checks()["env_project"]
	if c.Status != "fail" || !strings.Contains(c.Detail, "DATABASE_URL at u_shop2@db.example:5432/db_shop2") ||
		!strings.Contains(c.Detail, "DIRECT_URL at u_shop2@") || !strings.Contains(c.Detail, "DATABASE_URL_UNPOOLED at u_shop@db.example:6432/db_shop") ||
		strings.Contains(c.Detail, "DATABASE_DIRECT_URL") || strings.Contains(c.Detail, "DATABASE_POOL_URL") ||
		strings.Contains(c.Detail, "pw") || !strings.Contains(c.Detail, "capydb env pull") {
		t.Fatalf("mismatch: %+v", c)
	}
	if r := runCLI(t, "doctor"); r.code != 1 || !strings.Contains(r.stdout, "[fail] env_project") {
		t.Fatalf("doctor exit: %d %q", r.code, r.stdout)
	}
}

// TestErrorsNameTheServer: a rejected key, a device-login verdict and a
// network error each say which server was asked; with -o json the error is
// stdout's one document.
func TestErrorsNameTheServer(t *testing.T) {
	isolate(t)
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/me":                       reply(401, `{"error":"invalid, revoked or expired API key"}`),
		"POST /v1/cli/login/sessions":      reply(201, `{"session_id":"cls_1","poll_token":"p","expires_at":"2099-01-01T00:00:00Z"}`),
		"GET /v1/cli/login/sessions/cls_1": reply(410, `{"error":"gone"}`),
	})
	r := runCLI(t, "login", "--api-url", s.URL, "--api-key", "capy_live_wrong")
	if r.code != 3 || r.stderr != "error: check the API key: invalid, revoked or expired API key (server "+s.URL+")\n" {
		t.Fatalf("rejected key: %d %q", r.code, r.stderr)
	}
	// An explicit login still runs the device flow off a terminal (an agent
	// shows the URL to a person); its verdicts name the server too.
	r = runCLI(t, "login", "--no-open", "--api-url", s.URL, "-o", "json")
	var doc errorDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 4 ||
		doc.Error != "login session expired or not found; run capydb login again (server "+s.URL+")" || doc.Server != s.URL || doc.ExitCode != 4 {
		t.Fatalf("device login verdict: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "projects", "list", "--api-url", "http://127.0.0.1:1", "--api-key", "capy_live_x", "-o", "json")
	doc = errorDoc{}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || doc.Server != "http://127.0.0.1:1" || doc.Status != 0 ||
		!strings.HasPrefix(doc.Error, "list projects: cannot reach http://127.0.0.1:1: ") {
		t.Fatalf("network error: %d %q", r.code, r.stdout)
	}
	// A local usage error is JSON too, without a server.
	r = runCLI(t, "preview", "create", "--mode", "snapshot", "-o", "json")
	doc = errorDoc{}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 2 || doc.ExitCode != 2 || doc.Server != "" ||
		doc.Error != "--mode must be empty or clone" {
		t.Fatalf("usage error: %d %q", r.code, r.stdout)
	}
}

// TestResolveRefs: the one id-or-name rule, API keys by name (active keys
// only), and a key that may act without the scope to list.
func TestResolveRefs(t *testing.T) {
	type obj struct{ id, slug, name string }
	items := []obj{{"prj_1", "shop", "Shop"}, {"prj_2", "shop-2", "Shop"}, {"prj_3", "prj_1", "Other"}}
	id := func(o *obj) string { return o.id }
	slug := func(o *obj) string { return o.slug }
	name := func(o *obj) string { return o.name }
	ids := func(m []obj) string {
		var s []string
		for _, o := range m {
			s = append(s, o.id)
		}
		return strings.Join(s, ",")
	}
	for ref, want := range map[string]string{"prj_1": "prj_1", "SHOP-2": "prj_2", "shop": "prj_1", "SHOP": "prj_1", "other": "prj_3", "nope": "", "Prj_1": "prj_3"} {
		if got := ids(matchRef(items, ref, id, slug, name)); got != want {
			t.Errorf("matchRef(%q) = %q, want %q", ref, got, want)
		}
	}
	if got := ids(matchRef(items, "shop", id, name)); got != "prj_1,prj_2" {
		t.Errorf("two names: %q", got)
	}

	isolate(t)
	var revoked []string
	keys := `{"api_keys":[{"id":"key_1","name":"ci","is_active":false},{"id":"key_2","name":"CI","is_active":true},{"id":"key_3","name":"deploy","is_active":true},{"id":"key_4","name":"deploy","is_active":true}]}`
	listed := true
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/organizations/org_1/api-keys": func(w http.ResponseWriter, r *http.Request) {
			if !listed {
				reply(403, `{"error":"this key lacks api_keys:read"}`)(w, r)
				return
			}
			reply(200, keys)(w, r)
		},
		"GET /v1/me": reply(200, `{"organization":{"id":"org_1","name":"Acme","slug":"acme"},"principal":{"auth_source":"api_key","scopes":["*"]}}`),
	})
	for _, k := range []string{"key_1", "key_2", "key_3", "key_4", "key_9"} {
		k := k
		s.set("DELETE /v1/organizations/org_1/api-keys/"+k, func(w http.ResponseWriter, _ *http.Request) {
			revoked = append(revoked, k)
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"revoked":true}`))
		})
	}
	base := []string{"--api-url", s.URL, "--api-key", "capy_live_x"}
	if r := runCLI(t, append([]string{"api-keys", "revoke", "ci"}, base...)...); r.code != 0 || r.stdout != "Revoked key_2 (CI).\n" {
		t.Fatalf("revoke by name: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, append([]string{"api-keys", "revoke", "deploy"}, base...)...); r.code != 2 || !strings.Contains(r.stderr, `several API keys are named "deploy"; pass the id (server `+s.URL+")") {
		t.Fatalf("ambiguous name: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, append([]string{"api-keys", "revoke", "nobody"}, base...)...); r.code != 4 {
		t.Fatalf("unknown name: %d %s", r.code, r.stderr)
	}
	listed = false // a key that may revoke but not list: the reference goes to the server as an id
	if r := runCLI(t, append([]string{"api-keys", "revoke", "key_9"}, base...)...); r.code != 0 {
		t.Fatalf("revoke without list scope: %d %s", r.code, r.stderr)
	}
	if strings.Join(revoked, ",") != "key_2,key_9" {
		t.Fatalf("revoked %v", revoked)
	}
}
