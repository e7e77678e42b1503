package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// cliUser runs the capydb client as a person would: its own HOME and config
// directory, a working directory, and none of the developer's CAPYDB_*
// variables.
type cliUser struct {
	t    *testing.T
	home string
	dir  string
	env  []string
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func newCLIUser(t *testing.T) *cliUser {
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CAPYDB_") || k == "CI" || k == "HOME" || k == "XDG_CONFIG_HOME" || k == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	return &cliUser{t: t, home: home, dir: t.TempDir(), env: env}
}

func (u *cliUser) configPath() string {
	return filepath.Join(u.home, ".config", "capydb", "config.json")
}

// in returns the same user working in another directory.
func (u *cliUser) in(dir string) *cliUser {
	c := *u
	c.dir = dir
	return &c
}

func (u *cliUser) run(args ...string) cliResult {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir, cmd.Env = u.dir, u.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("capydb %v: %v", args, err)
	}
	return cliResult{code, out.String(), errb.String()}
}

// expect runs a command and asserts its exit code.
func (u *cliUser) expect(code int, args ...string) cliResult {
	u.t.Helper()
	r := u.run(args...)
	if r.code != code {
		u.t.Fatalf("capydb %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// json runs a command with -o json, asserts success and decodes stdout,
// which must be exactly one JSON document.
func (u *cliUser) json(args ...string) map[string]any {
	u.t.Helper()
	r := u.expect(0, append(args, "-o", "json")...)
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&doc); err != nil {
		u.t.Fatalf("capydb %v -o json: stdout is not JSON: %v\n%s", args, err, r.stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		u.t.Fatalf("capydb %v -o json: more than one JSON document on stdout:\n%s", args, r.stdout)
	}
	return doc
}

func cliWriteFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dotenv reads KEY="value" lines.
func cliDotenv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

func cliSameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("%s: CLI JSON differs from the API\ncli: %s\napi: %s", what, g, w)
	}
}

// TestCLIUserStory: log in, create --wait, psql through the written URL, env
// pull in another checkout, JSON that matches the API, rotation, deletion,
// and every exit code.
func TestCLIUserStory(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	u := newCLIUser(t)

	// A key given on the command line is validated and saved, mode 0600.
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	fi, err := os.Stat(u.configPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(u.configPath()); !strings.Contains(string(b), s.key) || !strings.Contains(string(b), `"active_org": "org_`) {
		t.Fatalf("config: %s", b)
	}
	if cs := u.json("config", "show"); cs["api_key"] != "****"+s.key[len(s.key)-4:] || cs["api_url"] != s.url {
		t.Fatalf("config show: %v", cs)
	}

	// create --wait in a Next.js + Prisma app: ready, linked, env written.
	app := u.in(t.TempDir())
	cliWriteFiles(t, app.dir, map[string]string{"package.json": `{"dependencies":{"next":"14.2.0","@prisma/client":"5.0.0"}}`})
	created := app.json("create", "--name", "CLI Shop", "--environment", "non_production", "--wait")
	pid, _ := created["project_id"].(string)
	if created["job_state"] != "completed" || created["env_file"] != ".env.local" || created["framework"] != "nextjs" ||
		created["project_slug"] != "cli-shop" || created["postgres_version"] != "15" || created["region"] != "local" ||
		!reflect.DeepEqual(created["env_vars"], []any{"DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_POOL_URL", "DIRECT_URL", "DATABASE_URL_UNPOOLED", "DATABASE_SESSION_URL", "PGSSLROOTCERT"}) {
		t.Fatalf("create: %v", created)
	}
	apiProject := s.must(200, "GET", "/v1/projects/"+pid, nil).get("project")
	cliSameJSON(t, "create .project", created["project"], apiProject)
	jobID := created["job_id"].(string)
	cliSameJSON(t, "create .job", created["job"], s.must(200, "GET", "/v1/jobs/"+jobID, nil).get("job"))

	conns := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	direct, pooled := conns.str("connections", "direct_url"), conns.str("connections", "pooled_url")
	// The URLs verify the server against its CA (.capydb/ca.crt); Prisma's
	// own variables in Prisma's syntax (tls_test.go tests each driver).
	env := cliDotenv(t, filepath.Join(app.dir, ".env.local"))
	ca := filepath.Join(app.dir, ".capydb", "ca.crt")
	prisma := func(u string) string {
		return strings.Replace(u, "sslmode=require", "sslmode=require&sslaccept=strict&sslcert="+ca+"&sslrootcert="+ca, 1)
	}
	if env["DATABASE_URL"] != prisma(pooled) || env["DIRECT_URL"] != prisma(direct) || env["DATABASE_DIRECT_URL"] != verifying(direct, ca) ||
		env["DATABASE_POOL_URL"] != verifying(pooled, ca) || env["DATABASE_URL_UNPOOLED"] != verifying(direct, ca) ||
		env["DATABASE_SESSION_URL"] != verifying(conns.str("connections", "session_url"), ca) || conns.str("connections", "session_url") == "" {
		t.Fatalf(".env.local does not hold the project's URLs: %v", env)
	}
	if fi, _ := os.Stat(filepath.Join(app.dir, ".env.local")); fi.Mode().Perm() != 0o600 {
		t.Fatalf(".env.local mode %v", fi.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(app.dir, ".gitignore")); string(b) != ".capydb/\n.env.local\n" {
		t.Fatalf(".gitignore: %q", b)
	}
	var link map[string]any
	b, _ := os.ReadFile(filepath.Join(app.dir, ".capydb", "project.json"))
	if err := json.Unmarshal(b, &link); err != nil || link["project_id"] != pid || link["profile"] != "nextjs+prisma" ||
		link["direct_url_var"] != "DIRECT_URL" || link["api_url"] != s.url || strings.Contains(string(b), "sslmode") {
		t.Fatalf("link file: %s", b)
	}

	// capydb psql runs the system psql on the linked project.
	r := app.expect(0, "psql", "--", "-At", "-c", "select current_database() || ':' || (select 1)")
	if strings.TrimSpace(r.stdout) != apiProject.(map[string]any)["database_name"].(string)+":1" {
		t.Fatalf("capydb psql: %q %q", r.stdout, r.stderr)
	}
	// The written libpq URLs work with psql itself, pooled included.
	for _, k := range []string{"DATABASE_POOL_URL", "DATABASE_DIRECT_URL"} {
		out, err := exec.Command("psql", env[k], "-At", "-c", "select 1").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Fatalf("psql on %s: %v %s", k, err, out)
		}
	}
	if cs := strings.TrimSpace(app.expect(0, "connection-string", "--show-secrets").stdout); cs != direct {
		t.Fatalf("connection-string: %q", cs)
	}
	if cs := app.json("connection-string", "--pooled"); cs["connection_string"] != pooled || cs["pooled"] != true {
		t.Fatalf("connection-string --pooled: %v", cs)
	}

	// env pull --project in another checkout (Go + pgx: DATABASE_URL is direct).
	api := u.in(t.TempDir())
	cliWriteFiles(t, api.dir, map[string]string{"go.mod": "module api\n\nrequire github.com/jackc/pgx/v5 v5.5.0\n", ".env": "PORT=3000\n"})
	pulled := api.json("env", "pull", "--project", "cli-shop")
	if pulled["project_id"] != pid || pulled["env_file"] != ".env" {
		t.Fatalf("env pull: %v", pulled)
	}
	env2 := cliDotenv(t, filepath.Join(api.dir, ".env"))
	ca2 := filepath.Join(api.dir, ".capydb", "ca.crt")
	if env2["PORT"] != "3000" || env2["DATABASE_URL"] != verifying(direct, ca2) || env2["DATABASE_POOL_URL"] != verifying(pooled, ca2) {
		t.Fatalf("env pull wrote: %v", env2)
	}
	if query[int](t, env2["DATABASE_URL"], "select 1") != 1 || query[int](t, env2["DATABASE_POOL_URL"], "select 2") != 2 {
		t.Fatal("the pulled URLs do not work")
	}

	// JSON output matches the API.
	cliSameJSON(t, "projects list", u.json("projects", "list")["projects"], s.must(200, "GET", "/v1/projects", nil).get("projects"))
	cliSameJSON(t, "jobs list", app.json("jobs", "list")["jobs"], s.must(200, "GET", "/v1/projects/"+pid+"/jobs", nil).get("jobs"))
	waited := u.json("jobs", "get", "--job-id", jobID, "--wait")
	cliSameJSON(t, "jobs get --wait", waited, s.must(200, "GET", "/v1/jobs/"+jobID, nil).get("job"))
	if regions := u.json("regions")["regions"].([]any); len(regions) != 1 || regions[0].(map[string]any)["id"] != "local" {
		t.Fatalf("regions: %v", regions)
	}

	// credentials rotate --wait: the old URL stops working, env pull refreshes.
	rot := app.json("credentials", "rotate", "--confirm", "--wait")
	if rot["state"] != "completed" || rot["type"] != "project.rotate_credentials" || rot["project_id"] != pid {
		t.Fatalf("rotate: %v", rot)
	}
	if c, err := connect(direct); err == nil {
		c.Close(context.Background())
		t.Fatal("the old password still works after rotate --wait")
	}
	app.expect(0, "env", "pull")
	env = cliDotenv(t, filepath.Join(app.dir, ".env.local"))
	if env["DIRECT_URL"] == prisma(direct) || env["DIRECT_URL"] != prisma(s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")) {
		t.Fatalf("env pull after rotation: %v", env)
	}
	if query[int](t, env["DATABASE_POOL_URL"], "select 3") != 3 {
		t.Fatal("the refreshed pooled URL does not work")
	}
	if r := app.run("credentials", "rotate"); r.code != 2 || !strings.Contains(r.stderr, "--confirm") {
		t.Fatalf("rotate without --confirm off a terminal: %d %s", r.code, r.stderr)
	}

	// Every exit code, provoked through the real server.
	scratch := u.in(t.TempDir())
	scratch.expect(2, "projects", "list", "-o", "yaml")
	if r := scratch.expect(2, "create", "--name", "Mars", "--region", "mars"); !strings.Contains(r.stderr, `error: create project: unknown region "mars"`) {
		t.Fatalf("400 message: %s", r.stderr)
	}
	if r := scratch.expect(3, "projects", "list", "--api-key", "capy_live_"+strings.Repeat("x", 40)); !strings.Contains(r.stderr, "error: list projects: ") {
		t.Fatalf("401: %s", r.stderr)
	}
	nobody := newCLIUser(t)
	nobody.expect(3, "projects", "list", "--api-url", s.url)
	ro := scratch.json("api-keys", "create", "--name", "read only", "--scopes", "projects:read", "--project", pid)
	scratch.expect(3, "api-keys", "list", "--api-key", ro["plaintext_api_key"].(string)) // 403: project key on an org route
	scratch.expect(4, "jobs", "get", "--job-id", "job_doesnotexist")
	scratch.expect(4, "connection-string", "--project", "no-such-project")
	if r := scratch.expect(5, "create", "--name", "Dup", "--slug", "cli-shop"); !strings.Contains(r.stderr, "already") {
		t.Fatalf("409 message: %s", r.stderr)
	}
	r = scratch.expect(6, "create", "--name", "Slow", "--wait-timeout", "1ms")
	if !strings.Contains(r.stderr, "timed out waiting for job job_") || !strings.Contains(r.stderr, "raise --wait-timeout") {
		t.Fatalf("timeout message: %s", r.stderr)
	}
	slow := s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)
	for _, p := range slow {
		if pm := p.(map[string]any); pm["name"] == "Slow" {
			if j := s.waitJob(pm["latest_job_id"].(string)); j["state"] != "completed" {
				t.Fatalf("timing out the wait must not stop the job: %v", j)
			}
		}
	}
	scratch.expect(1, "doctor", "--api-url", "http://127.0.0.1:1")
	if d := app.json("doctor"); d["ok"] != true {
		t.Fatalf("doctor in the linked app: %v", d)
	}

	// A production project needs an approval token, then deletes.
	prod := s.createProject(map[string]any{"name": "Prod"})
	if r := scratch.expect(5, "projects", "delete", "prod", "--confirm"); !strings.Contains(r.stderr, "approval token") {
		t.Fatalf("production delete without a token: %s", r.stderr)
	}
	tok := s.must(201, "POST", "/v1/projects/"+prod["id"].(string)+"/approvals", map[string]any{"action": "project.delete"}).str("approval", "token")
	if del := scratch.json("projects", "delete", "prod", "--confirm", "--approval-token", tok, "--wait"); del["state"] != "completed" {
		t.Fatalf("production delete: %v", del)
	}
	// projects delete of the linked project: gone everywhere.
	del := u.json("projects", "delete", pid, "--confirm", "--wait")
	if del["state"] != "completed" || del["type"] != "project.delete" {
		t.Fatalf("delete: %v", del)
	}
	if r := s.call("GET", "/v1/projects/"+pid, s.key, nil); r.Status != 404 {
		t.Fatalf("deleted project: %d", r.Status)
	}
	app.expect(4, "env", "pull")
	for _, p := range u.json("projects", "list")["projects"].([]any) {
		if p.(map[string]any)["id"] == pid || p.(map[string]any)["id"] == prod["id"] {
			t.Fatalf("deleted project still listed: %v", p)
		}
	}
	app.expect(0, "unlink")
	if _, err := os.Stat(filepath.Join(app.dir, ".capydb", "project.json")); !os.IsNotExist(err) {
		t.Fatal("unlink left the link file")
	}
}

// TestCLIOrganization: device login approved through the API, API keys and
// webhook endpoints.
func TestCLIOrganization(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--webhooks-allow-insecure")
	u := newCLIUser(t)

	// Device login: the CLI prints the approval URL, an admin approves, the
	// CLI saves the key it receives.
	cmd := exec.Command(binary, "login", "--no-open", "--api-url", s.url)
	cmd.Dir, cmd.Env = u.dir, u.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var approveURL string
	deadline := time.After(30 * time.Second)
	for approveURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("login exited before printing the URL: %s", stderr.String())
			}
			if strings.HasPrefix(l, "http") {
				approveURL = l
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatal("login printed no approval URL")
		}
	}
	session, ok := strings.CutPrefix(approveURL, s.url+"/dashboard/cli/login?session=")
	if !ok || !strings.HasPrefix(session, "cls_") {
		t.Fatalf("approval URL %q", approveURL)
	}
	s.must(200, "POST", "/v1/cli/login/sessions/"+session+"/approve", nil)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("login did not finish after approval: %s", stderr.String())
	}
	cfg, _ := os.ReadFile(u.configPath())
	if strings.Contains(string(cfg), s.key) || !strings.Contains(string(cfg), `"api_key": "capy_live_`) {
		t.Fatalf("login saved: %s", cfg)
	}
	me := s.must(200, "GET", "/v1/me", nil)
	who := u.json("whoami")
	if who["auth_source"] != "api_key" || who["organization"].(map[string]any)["id"] != me.str("organization", "id") {
		t.Fatalf("whoami with the device-login key: %v", who)
	}
	var loginKey map[string]any
	for _, k := range u.json("api-keys", "list")["api_keys"].([]any) {
		if km := k.(map[string]any); km["source"] == "agent" {
			loginKey = km
		}
	}
	if loginKey == nil || !strings.HasPrefix(loginKey["name"].(string), "Agent on ") {
		t.Fatalf("the device-login key is not listed as an agent key")
	}

	// API keys: create (shown once), use, list, revoke.
	created := u.json("api-keys", "create", "--name", "ci", "--scopes", "projects:read", "--scopes", "jobs:read", "--expires-in", "7d")
	plain, _ := created["plaintext_api_key"].(string)
	key := created["api_key"].(map[string]any)
	if !strings.HasPrefix(plain, "capy_live_") || !reflect.DeepEqual(key["scopes"], []any{"projects:read", "jobs:read"}) || key["expires_at"] == nil {
		t.Fatalf("api-keys create: %v", created)
	}
	u.expect(0, "projects", "list", "--api-key", plain)
	cliSameJSON(t, "api-keys list", u.json("api-keys", "list")["api_keys"], s.must(200, "GET", "/v1/organizations/"+me.str("organization", "id")+"/api-keys", nil).get("api_keys"))
	if rv := u.json("api-keys", "revoke", key["id"].(string)); rv["revoked"] != true || rv["key_id"] != key["id"] {
		t.Fatalf("revoke: %v", rv)
	}
	clustertest.Eventually(t, 10*time.Second, "the revoked key to be refused", func() bool { return u.run("projects", "list", "--api-key", plain).code == 3 })
	u.expect(2, "api-keys", "create", "--name", "x", "--scopes", "projects:read,nope:write")

	// Webhooks: a local receiver (the server runs with --webhooks-allow-insecure).
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-CapyDB-Event"))
		mu.Unlock()
	}))
	defer recv.Close()
	wh := u.json("webhooks", "create", "--url", recv.URL+"/hook", "--event", "job.completed", "--description", "ci")
	secret, _ := wh["plaintext_secret"].(string)
	ep := wh["webhook_endpoint"].(map[string]any)
	if !strings.HasPrefix(secret, "whsec_") || ep["url"] != recv.URL+"/hook" || !reflect.DeepEqual(ep["event_types"], []any{"job.completed"}) {
		t.Fatalf("webhooks create: %v", wh)
	}
	epID := ep["id"].(string)
	orgPath := "/v1/organizations/" + me.str("organization", "id") + "/webhook-endpoints"
	cliSameJSON(t, "webhooks list", u.json("webhooks", "list")["webhook_endpoints"], s.must(200, "GET", orgPath, nil).get("webhook_endpoints"))
	if d := u.json("webhooks", "test", epID)["delivery"].(map[string]any); d["event_type"] != "webhook.test" {
		t.Fatalf("webhooks test: %v", d)
	}
	clustertest.Eventually(t, 20*time.Second, "the test delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[0] == "webhook.test"
	})
	if ds := u.json("webhooks", "deliveries", epID, "--limit", "5")["deliveries"].([]any); len(ds) != 1 {
		t.Fatalf("deliveries: %v", ds)
	}
	if rs := u.json("webhooks", "rotate-secret", epID); rs["plaintext_secret"] == secret || !strings.HasPrefix(rs["plaintext_secret"].(string), "whsec_") {
		t.Fatalf("rotate-secret: %v", rs)
	}
	if d := u.json("webhooks", "delete", epID); d["deleted"] != true || d["endpoint_id"] != epID {
		t.Fatalf("webhooks delete: %v", d)
	}
	if l := u.json("webhooks", "list")["webhook_endpoints"].([]any); len(l) != 0 {
		t.Fatalf("after delete: %v", l)
	}
	u.expect(4, "webhooks", "delete", epID)

	// logout removes the saved credentials.
	u.expect(0, "logout")
	if _, err := os.Stat(u.configPath()); !os.IsNotExist(err) {
		t.Fatal("logout left the config file")
	}
	u.expect(3, "whoami")
}

// TestCLIPreviews: preview create --wait (a clone that really holds the
// project's data), connect to it, extend, reset --wait, delete --wait.
func TestCLIPreviews(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	p := s.createProject(map[string]any{"name": "Previewed", "environment": "non_production"})
	pid := p["id"].(string)
	mustExec(t, s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url"),
		"CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)")
	app := u.in(t.TempDir())
	app.expect(0, "link", "--project", "previewed")

	out := app.json("preview", "create", "--name", "pr-42", "--ttl-hours", "2", "--wait")
	pv, job, conns := out["preview"].(map[string]any), out["job"].(map[string]any), out["connections"].(map[string]any)
	if pv["state"] != "ready" || pv["mode"] != "clone" || pv["name"] != "pr-42" || job["state"] != "completed" || job["type"] != "branch.create" {
		t.Fatalf("preview create: %v", out)
	}
	pvID := pv["id"].(string)
	direct := conns["direct_url"].(string)
	if query[int](t, direct, "SELECT count(*)::int FROM items") != 2 || query[int](t, conns["pooled_url"].(string), "SELECT 1") != 1 {
		t.Fatal("the preview does not hold the project's data")
	}
	cliSameJSON(t, "preview list", app.json("preview", "list")["previews"],
		s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases"))
	if cs := strings.TrimSpace(app.expect(0, "connection-string", "--preview", pvID, "--show-secrets").stdout); cs != direct {
		t.Fatalf("connection-string --preview: %q", cs)
	}
	if r := app.expect(0, "psql", "--preview", pvID, "--", "-At", "-c", "SELECT count(*) FROM items"); strings.TrimSpace(r.stdout) != "2" {
		t.Fatalf("psql --preview: %q %s", r.stdout, r.stderr)
	}

	before, _ := time.Parse(time.RFC3339, pv["ttl_expires_at"].(string))
	ext := app.json("preview", "extend", pvID, "--ttl-hours", "48")["preview"].(map[string]any)
	after, _ := time.Parse(time.RFC3339, ext["ttl_expires_at"].(string))
	if d := time.Until(after); !after.After(before) || d < 47*time.Hour || d > 49*time.Hour {
		t.Fatalf("extend: %v -> %v", before, after)
	}

	mustExec(t, direct, "INSERT INTO items VALUES (3)")
	if r := app.json("preview", "reset", "--preview", "PR-42", "--wait"); r["state"] != "completed" || r["type"] != "branch.reset" {
		t.Fatalf("reset: %v", r)
	}
	if n := query[int](t, direct, "SELECT count(*)::int FROM items"); n != 2 {
		t.Fatalf("after reset the preview has %d rows, want the project's 2", n)
	}

	app.expect(2, "preview", "create", "--mode", "snapshot")
	app.expect(2, "preview", "extend", pvID, "--ttl-hours", "0")
	app.expect(4, "preview", "reset", "--preview", "no-such-preview")

	if r := app.json("preview", "delete", "pr-42", "--wait"); r["state"] != "completed" || r["type"] != "branch.delete" {
		t.Fatalf("delete: %v", r)
	}
	if l := app.json("preview", "list")["previews"].([]any); len(l) != 0 {
		t.Fatalf("previews after delete: %v", l)
	}
	if c, err := connect(direct); err == nil {
		c.Close(context.Background())
		t.Fatal("the deleted preview still accepts connections")
	}
}
