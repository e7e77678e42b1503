package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCLIFixes drives the CLI fixes of issue 12 against a real server: create
// in a linked directory, doctor's env_project check, names wherever ids are
// taken, the backup key after --wait, masked passwords, errors that name the
// server (as JSON with -o json), no device login without a terminal, and a
// complete whoami -o json.
func TestCLIFixes(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	app := u.in(t.TempDir())
	cliWriteFiles(t, app.dir, map[string]string{"go.mod": "module shop\n"})
	created := app.json("create", "--name", "Shop", "--environment", "non_production")
	pid := created["project_id"].(string)
	projects := func() int { return len(s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)) }
	before := projects()

	// create in the linked directory: refused before anything is created.
	r := app.expect(5, "create", "-o", "json")
	var fail map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fail); err != nil || fail["error"] != "create_failed" ||
		!strings.Contains(fail["message"].(string), "already linked to project Shop ("+pid+")") {
		t.Fatalf("create in a linked dir: %q %s", r.stdout, r.stderr)
	}
	if n := projects(); n != before {
		t.Fatalf("create in a linked dir made a project: %d -> %d", before, n)
	}

	// doctor: env_project passes, then fails when .env names another
	// project's database, then env pull repairs it.
	doctor := func(code int) map[string]any {
		r := app.expect(code, "doctor", "-o", "json")
		var d map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("doctor: %q", r.stdout)
		}
		for _, c := range d["checks"].([]any) {
			if c.(map[string]any)["name"] == "env_project" {
				return c.(map[string]any)
			}
		}
		t.Fatalf("no env_project check: %v", d)
		return nil
	}
	if c := doctor(0); c["status"] != "pass" {
		t.Fatalf("env_project in the linked app: %v", c)
	}
	other := s.createProject(map[string]any{"name": "Other", "environment": "non_production"})
	otherURL := projectURL(s, other["id"].(string))
	envPath := filepath.Join(app.dir, ".env")
	env, _ := os.ReadFile(envPath)
	var lines []string
	for _, l := range strings.Split(string(env), "\n") {
		if strings.HasPrefix(l, "DATABASE_URL=") {
			l = `DATABASE_URL="` + otherURL + `"`
		}
		lines = append(lines, l)
	}
	_ = os.WriteFile(envPath, []byte(strings.Join(lines, "\n")), 0o600)
	otherPass, _ := mustParse(t, otherURL).User.Password()
	if c := doctor(1); c["status"] != "fail" || !strings.Contains(c["detail"].(string), "DATABASE_URL at ") ||
		strings.Contains(c["detail"].(string), otherPass) {
		t.Fatalf("env_project with another project's URL: %v", c)
	}
	app.expect(0, "env", "pull") // off a terminal: overwrites, with a warning
	if c := doctor(0); c["status"] != "pass" {
		t.Fatalf("env_project after env pull: %v", c)
	}

	// Previews by name: create, extend, connection-string; passwords masked.
	direct := projectURL(s, pid)
	r = app.expect(0, "preview", "create", "--name", "pr-7", "--mode", "empty", "--wait")
	pv := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)[0].(map[string]any)
	pvConn := s.must(200, "GET", "/v1/preview-databases/"+pv["id"].(string)+"/connections", nil)
	pvDirect := pvConn.str("connections", "direct_url")
	pvPass, _ := mustParse(t, pvDirect).User.Password()
	if strings.Contains(r.stdout, pvPass) || !strings.Contains(r.stdout, "@127.0.0.1:") || !strings.Contains(r.stdout, ":****@") {
		t.Fatalf("preview create prints the password: %q", r.stdout)
	}
	if r := app.expect(0, "preview", "list"); strings.Contains(r.stdout, pvPass) || !strings.Contains(r.stdout, "pr-7") {
		t.Fatalf("preview list prints the password: %q", r.stdout)
	}
	projPass, _ := mustParse(t, direct).User.Password()
	if r := app.expect(0, "connection-string"); strings.Contains(r.stdout, projPass) || !strings.Contains(r.stdout, ":****@") {
		t.Fatalf("connection-string prints the password: %q", r.stdout)
	}
	if got := strings.TrimSpace(app.expect(0, "connection-string", "--preview", "PR-7", "--show-secrets").stdout); got != pvDirect {
		t.Fatalf("connection-string --preview <name>: %q, want %q", got, pvDirect)
	}
	if query[int](t, pvDirect, "select 7") != 7 {
		t.Fatal("the preview URL does not work")
	}
	ext := app.json("preview", "extend", "pr-7", "--ttl-hours", "48")["preview"].(map[string]any)
	if ext["id"] != pv["id"] {
		t.Fatalf("preview extend by name: %v", ext)
	}

	// backups create --wait prints the key the API lists; restore accepts the label.
	r = app.expect(0, "backups", "create", "--label", "nightly", "--wait")
	bks := s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any)
	key := bks[0].(map[string]any)["backup_key"].(string)
	if !strings.Contains(r.stdout, "backup_key: "+key+"\n") || !strings.Contains(r.stderr, "--backup-key "+key) {
		t.Fatalf("backups create --wait: %q %q", r.stdout, r.stderr)
	}
	if rj := app.json("restore", "--backup-key", "nightly", "--preview-name", "from-label", "--wait"); rj["state"] != "completed" {
		t.Fatalf("restore --backup-key <label>: %v", rj)
	}

	// whoami -o json: the principal and scopes as the server has them.
	me := s.must(200, "GET", "/v1/me", nil)
	who := u.json("whoami")
	cliSameJSON(t, "whoami principal", who["principal"], me.get("principal"))
	if !reflect.DeepEqual(who["scopes"], me.get("principal", "scopes")) || who["api_key_from"] != "config" ||
		who["api_url"] != s.url || who["organization"].(map[string]any)["id"] != me.str("organization", "id") {
		t.Fatalf("whoami -o json: %v", who)
	}

	// Errors name the server; with -o json they are stdout's document.
	bad := "capy_live_" + strings.Repeat("x", 40)
	if r := u.expect(3, "projects", "list", "--api-key", bad); !strings.Contains(r.stderr, "(server "+s.url+")") {
		t.Fatalf("401 does not name the server: %s", r.stderr)
	}
	r = u.expect(4, "jobs", "get", "--job-id", "job_nope", "-o", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc["status"] != float64(404) || doc["server"] != s.url ||
		doc["exit_code"] != float64(4) || !strings.HasPrefix(doc["error"].(string), "get job: ") {
		t.Fatalf("-o json error: %q", r.stdout)
	}

	// No credentials and CI set: exit 3 at once, no device-login session.
	nobody := newCLIUser(t)
	nobody.env = append(nobody.env, "CI=true")
	r = nobody.expect(3, "create", "--name", "Nobody", "--api-url", s.url)
	if !strings.Contains(r.stderr, "CAPYDB_API_KEY") || !strings.Contains(r.stderr, "capydb login") || strings.Contains(r.stdout, "Open this URL") {
		t.Fatalf("create under CI without a key: %q %q", r.stdout, r.stderr)
	}
	var n int
	if err := s.admin("capydb_control").QueryRow(context.Background(), "SELECT count(*)::int FROM cli_login_sessions").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d device-login sessions were started (%v)", n, err)
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
