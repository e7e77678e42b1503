package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/apiclient"
)

// isolate gives a test its own config dir and working directory and clears
// the variables that would leak a developer's setup into it.
func isolate(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, k := range []string{"CAPYDB_API_URL", "CAPYDB_API_KEY", "CAPYDB_APP_URL", "CAPYDB_HTTP_TIMEOUT", "CAPYDB_APPROVAL_TOKEN", "CI", "CAPYDB_AGENT"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), args...)
}

func runCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	// Tests never wait long: quick GET retries and job polls.
	p := defaultPacing()
	p.retryDelays = []time.Duration{0, time.Millisecond, time.Millisecond}
	p.jobPoll = func(int) time.Duration { return 5 * time.Millisecond }
	p.throttled = 5 * time.Millisecond
	code := run(withPacing(ctx, p), args, strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// stub is a fake CapyDB API: routes map "METHOD /path" to a handler.
type stub struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	calls  []string
}

func newStub(t *testing.T, routes map[string]http.HandlerFunc) *stub {
	s := &stub{routes: routes}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		s.mu.Lock()
		s.calls = append(s.calls, key)
		h := s.routes[key]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-CapyDB-Version", "v9.9.9")
		if h == nil {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"not found"}`))
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *stub) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(s.calls), func(c string) bool { return !strings.HasPrefix(c, prefix) }))
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

const projectJSON = `{"id":"prj_1","organization_id":"org_1","name":"Shop","slug":"shop","environment":"non_production",
 "always_on":false,"state":"ready","plan":"business","region":"local","postgres_version":"15","direct_port":5432,"pooled_port":6432,
 "latest_job_id":"job_1","future_field":{"nested":[1,2]},"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`

const connectionsJSON = `{"connections":{"username":"u_shop","direct_url":"postgres://u_shop:pw@db.example:5432/db_shop?sslmode=require",
 "pooled_url":"postgres://u_shop:pw@db.example:6432/db_shop?sslmode=require"}}`

func TestStatusToExitCode(t *testing.T) {
	want := map[int]int{400: 2, 401: 3, 403: 3, 404: 4, 408: 6, 409: 5, 410: 4, 412: 5, 413: 1, 422: 2, 428: 5, 429: 1,
		500: 1, 501: 1, 503: 1, 504: 6}
	for status, code := range want {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			isolate(t)
			s := newStub(t, map[string]http.HandlerFunc{"GET /v1/projects": reply(status, fmt.Sprintf(`{"error":"boom %d"}`, status))})
			r := runCLI(t, "projects", "list", "--api-url", s.URL, "--api-key", "capy_live_x")
			if r.code != code {
				t.Fatalf("status %d: exit %d, want %d (%s)", status, r.code, code, r.stderr)
			}
			// The message names the server that answered.
			if r.stderr != fmt.Sprintf("error: list projects: boom %d (server %s)\n", status, s.URL) || r.stdout != "" {
				t.Fatalf("stderr %q stdout %q", r.stderr, r.stdout)
			}
			// With -o json the error is the one JSON document on stdout; same exit code.
			j := runCLI(t, "projects", "list", "--api-url", s.URL, "--api-key", "capy_live_x", "-o", "json")
			var doc map[string]any
			if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil || j.code != code || doc["error"] != fmt.Sprintf("list projects: boom %d (server %s)", status, s.URL) ||
				doc["status"] != float64(status) || doc["server"] != s.URL || doc["exit_code"] != float64(code) {
				t.Fatalf("-o json: exit %d stdout %q (%v)", j.code, j.stdout, err)
			}
			if n := s.count("GET /v1/projects"); (status >= 500 && n != 6) || (status < 500 && n != 2) {
				t.Fatalf("status %d: %d attempts", status, n)
			}
		})
	}
}

func TestExitCodesLocal(t *testing.T) {
	isolate(t)
	// 2: usage errors caught locally, before any request.
	for _, args := range [][]string{
		{"projects", "list", "-o", "yaml"},
		{"bogus"},
		{"projects", "bogus"},
		{"projects", "list", "--no-such-flag"},
		{"preview", "create", "--mode", "snapshot"},
		{"preview", "create", "--ttl-hours", "169"},
		{"preview", "extend", "pvw_1"},
		{"credentials", "rotate", "--grace-hours", "721"},
		{"api-keys", "create", "--name", "x", "--scopes", "projects:rule"},
		{"webhooks", "create", "--url", "https://example.com/h", "--event", "job.exploded"},
		{"jobs", "get"},
		{"psql", "stray"},
	} {
		if r := runCLI(t, args...); r.code != 2 || !strings.HasPrefix(r.stderr, "error: ") {
			t.Errorf("%v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	t.Setenv("CAPYDB_HTTP_TIMEOUT", "soon")
	if r := runCLI(t, "projects", "list", "--api-key", "capy_live_x"); r.code != 2 || !strings.Contains(r.stderr, "CAPYDB_HTTP_TIMEOUT") {
		t.Errorf("bad CAPYDB_HTTP_TIMEOUT: %d %s", r.code, r.stderr)
	}
	t.Setenv("CAPYDB_HTTP_TIMEOUT", "")
	// 3: no credentials anywhere (and no terminal to ask on).
	if r := runCLI(t, "projects", "list", "--api-url", "http://127.0.0.1:1"); r.code != 3 || !strings.Contains(r.stderr, "capydb login") {
		t.Errorf("no key: exit %d (%s)", r.code, r.stderr)
	}
	// 1: a network error after the GET retries.
	if r := runCLI(t, "projects", "list", "--api-url", "http://127.0.0.1:1", "--api-key", "capy_live_x"); r.code != 1 ||
		!strings.HasPrefix(r.stderr, "error: list projects: cannot reach http://127.0.0.1:1: ") {
		t.Errorf("network: exit %d (%s)", r.code, r.stderr)
	}
}

func TestExitCodeMapping(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{usageError("bad"), 2},
		{fmt.Errorf("wrapped: %w", usageError("bad")), 2},
		{noCredentials("http://x", ""), 3},
		{op("get job", &apiclient.Error{Status: 404, Message: "job not found"}), 4},
		{op("delete", &apiclient.Error{Status: 428, Message: "needs approval"}), 5},
		{withCode(exitTimeout, "timed out"), 6},
		{withCode(exitError, "failed: %w", &apiclient.Error{Status: 409}), 1}, // the explicit code wins
		{errors.New(`unknown command "x" for "capydb"`), 2},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.code {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.code)
		}
	}
}

func TestJSONAndTextOutput(t *testing.T) {
	isolate(t)
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects":                     reply(200, `{"projects":[`+projectJSON+`]}`),
		"GET /v1/projects/prj_1/jobs":          reply(200, `{"jobs":null}`),
		"GET /v1/organizations/org_1/api-keys": reply(200, `{"api_keys":[]}`),
		"GET /v1/me":                           reply(200, `{"organization":{"id":"org_1","name":"Acme","slug":"acme","billing_plan":"ship","billing_status":"active"},"principal":{"auth_source":"api_key","scopes":["*"],"is_admin":false}}`),
	})
	base := []string{"--api-url", s.URL, "--api-key", "capy_live_x"}
	r := runCLI(t, append([]string{"projects", "list", "-o", "json"}, base...)...)
	var doc struct {
		Projects []map[string]any `json:"projects"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || len(doc.Projects) != 1 {
		t.Fatalf("projects list -o json: %d %v %q", r.code, err, r.stdout)
	}
	if doc.Projects[0]["future_field"] == nil || doc.Projects[0]["direct_port"] != float64(5432) {
		t.Fatalf("the server's object must pass through unchanged: %v", doc.Projects[0])
	}
	// null lists from the server become [].
	r = runCLI(t, append([]string{"jobs", "list", "--project", "shop", "-o", "json"}, base...)...)
	if strings.TrimSpace(r.stdout) != "{\n  \"jobs\": []\n}" {
		t.Fatalf("jobs list: %q", r.stdout)
	}
	r = runCLI(t, append([]string{"api-keys", "list", "-o", "json"}, base...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"api_keys": []`) {
		t.Fatalf("api-keys list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Text: aligned columns, "-" for empty cells.
	r = runCLI(t, append([]string{"projects", "list"}, base...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || strings.Index(lines[0], "NAME") != strings.Index(lines[1], "Shop") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	r = runCLI(t, append([]string{"jobs", "list", "--project", "prj_1"}, base...)...)
	if strings.TrimSpace(r.stdout) != "CREATED_AT  TYPE  STATE  ATTEMPTS  DURATION  JOB_ID" {
		t.Fatalf("empty table: %q", r.stdout)
	}
	r = runCLI(t, append([]string{"whoami", "-o", "json"}, base...)...)
	var who map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &who); err != nil || who["auth_source"] != "api_key" || who["api_url"] != s.URL ||
		who["organization"].(map[string]any)["billing_plan"] != "ship" {
		t.Fatalf("whoami: %q", r.stdout)
	}
	// Project resolution: slug and name are case-insensitive; unknown is exit 4.
	for _, ref := range []string{"prj_1", "SHOP", "shop"} {
		if r := runCLI(t, append([]string{"jobs", "list", "--project", ref, "-o", "json"}, base...)...); r.code != 0 {
			t.Errorf("--project %s: %d %s", ref, r.code, r.stderr)
		}
	}
	if r := runCLI(t, append([]string{"jobs", "list", "--project", "nope"}, base...)...); r.code != 4 || !strings.Contains(r.stderr, `project "nope" not found`) {
		t.Errorf("unknown project: %d %s", r.code, r.stderr)
	}
}

func TestConfigFileAndLogin(t *testing.T) {
	isolate(t)
	cfgHome := os.Getenv("XDG_CONFIG_HOME")
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/me": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer capy_live_abcdefgh1234" {
				reply(401, `{"error":"invalid, revoked or expired API key"}`)(w, r)
				return
			}
			reply(200, `{"organization":{"id":"org_9","name":"Acme","slug":"acme","billing_plan":"ship","billing_status":"active"},"principal":{"auth_source":"api_key","scopes":["*"]}}`)(w, r)
		},
	})
	if r := runCLI(t, "login", "--api-url", s.URL+"/", "--api-key", "capy_live_wrong"); r.code != 3 {
		t.Fatalf("login with a bad key: %d %s", r.code, r.stderr)
	}
	path := filepath.Join(cfgHome, "capydb", "config.json")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a rejected key must not be saved")
	}
	if r := runCLI(t, "login", "--api-url", s.URL+"/", "--api-key", "capy_live_abcdefgh1234"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.stderr)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi.Mode(), err)
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode %v", di.Mode())
	}
	cfg, err := loadConfig(path)
	if err != nil || cfg.ActiveOrg != "org_9" || cfg.Organizations["org_9"].APIKey != "capy_live_abcdefgh1234" ||
		cfg.Organizations["org_9"].APIURL != s.URL || cfg.Organizations["org_9"].Slug != "acme" {
		t.Fatalf("saved config: %+v %v", cfg, err)
	}
	// The saved login is used without flags; config show masks the key.
	r := runCLI(t, "config", "show", "-o", "json")
	var shown map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown["api_key"] != "****1234" || shown["api_url"] != s.URL ||
		shown["active_org"] != "org_9" || shown["config_path"] != path {
		t.Fatalf("config show: %q", r.stdout)
	}
	if r := runCLI(t, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "Acme (acme, org_9)") {
		t.Fatalf("whoami with the saved key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "orgs", "list", "-o", "json"); !strings.Contains(r.stdout, `"active": true`) {
		t.Fatalf("orgs list: %s", r.stdout)
	}
	if r := runCLI(t, "logout"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("logout must delete the config file")
	}
}

func TestLegacyConfigIsReadAndRewritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "capydb", "config.json")
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	legacy := `{"api_key":"capy_live_old","api_url":"https://db.example.com/api/capydb","app_url":"https://db.example.com",
	 "organization_id":"org_7","organization_name":"Old","organization_slug":"old"}`
	if err := os.WriteFile(path, []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	id, e := cfg.active()
	if id != "org_7" || e.APIKey != "capy_live_old" || e.Name != "Old" || e.AppURL != "https://db.example.com" {
		t.Fatalf("legacy read: %s %+v", id, e)
	}
	if err := cfg.save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	di, _ := os.Stat(filepath.Dir(path))
	if !strings.Contains(string(b), `"organizations"`) || strings.Contains(string(b), "organization_id") ||
		fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("rewritten %v %v: %s", fi.Mode(), di.Mode(), b)
	}
	// active_org naming a missing entry: the only entry is used; with two, none.
	cfg.ActiveOrg = "org_gone"
	if id, _ := cfg.active(); id != "org_7" {
		t.Fatalf("fallback to the only entry: %q", id)
	}
	cfg.Organizations["org_8"] = &orgEntry{APIKey: "k"}
	if id, _ := cfg.active(); id != "" {
		t.Fatalf("ambiguous active org resolved to %q", id)
	}
	if maskKey("capy_live_abcd1234") != "****1234" || maskKey("") != "" {
		t.Fatal("maskKey")
	}
}

// jobStub serves one job whose state advances on each poll.
func jobStub(t *testing.T, states ...string) *stub {
	var mu sync.Mutex
	n := 0
	return newStub(t, map[string]http.HandlerFunc{
		"GET /v1/jobs/job_1": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			st := states[min(n, len(states)-1)]
			n++
			mu.Unlock()
			errField := ""
			if st == "failed" {
				errField = `,"error":"disk full"`
			}
			reply(200, fmt.Sprintf(`{"job":{"id":"job_1","type":"project.rotate_credentials","state":%q,"attempts":1,"max_attempts":5,
				"organization_id":"org_1","project_id":"prj_1","created_at":"2026-01-01T00:00:00Z"%s}}`, st, errField))(w, r)
		},
	})
}

func TestJobsGetWait(t *testing.T) {
	isolate(t)
	s := jobStub(t, "pending", "running", "running", "completed")
	r := runCLI(t, "jobs", "get", "--job-id", "job_1", "--wait", "-o", "json", "--api-url", s.URL, "--api-key", "capy_live_x")
	var job map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || r.code != 0 || job["state"] != "completed" {
		t.Fatalf("jobs get --wait: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Plain progress lines (no terminal): one per state change, on stderr.
	if got := strings.Count(r.stderr, "waiting for job job_1 (project.rotate_credentials) - "); got != 1 ||
		!strings.Contains(r.stderr, "- running, attempt 1, elapsed 0s") {
		t.Fatalf("progress: %q", r.stderr)
	}
	// A job that ends failed: the job is printed and the exit code is 1.
	s = jobStub(t, "running", "failed")
	r = runCLI(t, "jobs", "get", "job_1", "--wait", "--api-url", s.URL, "--api-key", "capy_live_x")
	if r.code != 1 || !strings.Contains(r.stdout, "state:") || !strings.Contains(r.stderr, "ended in failed: disk full") {
		t.Fatalf("failed job: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Timeout: exit 6 with the documented message.
	s = jobStub(t, "running")
	r = runCLI(t, "jobs", "get", "job_1", "--wait", "--wait-timeout", "30ms", "--api-url", s.URL, "--api-key", "capy_live_x")
	if r.code != 6 || !strings.Contains(r.stderr, "timed out waiting for job job_1 after 30ms; check capydb jobs get --job-id job_1 later or raise --wait-timeout") {
		t.Fatalf("timeout: %d %q", r.code, r.stderr)
	}
	// 401 while polling stops at once with exit 3.
	var polls int
	s = newStub(t, map[string]http.HandlerFunc{
		"GET /v1/jobs/job_1": func(w http.ResponseWriter, r *http.Request) {
			polls++
			if polls == 1 {
				reply(200, `{"job":{"id":"job_1","type":"x","state":"running"}}`)(w, r)
				return
			}
			reply(401, `{"error":"invalid, revoked or expired API key"}`)(w, r)
		},
	})
	r = runCLI(t, "jobs", "get", "job_1", "--wait", "--api-url", s.URL, "--api-key", "capy_live_x")
	if r.code != 3 || polls != 2 {
		t.Fatalf("401 while polling: exit %d after %d polls (%s)", r.code, polls, r.stderr)
	}
}

func TestCtrlCStopsWaitingNotTheJob(t *testing.T) {
	isolate(t)
	s := jobStub(t, "running")
	s.routes["GET /v1/projects"] = reply(200, `{"projects":[`+projectJSON+`]}`)
	s.routes["POST /v1/projects/prj_1/credentials/rotate"] = reply(202, `{"job":{"id":"job_1","type":"project.rotate_credentials","state":"pending"}}`)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.count("GET /v1/jobs/job_1") < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel() // what Ctrl-C does (signal.NotifyContext in Main)
	}()
	r := runCtx(t, ctx, "credentials", "rotate", "--confirm", "--wait", "--project", "shop", "--api-url", s.URL, "--api-key", "capy_live_x")
	if r.code != 1 || !strings.Contains(r.stderr, "stopped waiting; job job_1 keeps running") {
		t.Fatalf("Ctrl-C: %d %q", r.code, r.stderr)
	}
	// Nothing but the rotation itself was ever sent besides GETs: the job is not cancelled.
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if !strings.HasPrefix(c, "GET ") && c != "POST /v1/projects/prj_1/credentials/rotate" {
			t.Fatalf("unexpected request %s", c)
		}
	}
}

func TestProductionDeleteNeedsApproval(t *testing.T) {
	isolate(t)
	prod := strings.Replace(projectJSON, `"non_production"`, `"production"`, 1)
	var gotToken string
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects": reply(200, `{"projects":[`+prod+`]}`),
		"DELETE /v1/projects/prj_1": func(w http.ResponseWriter, r *http.Request) {
			gotToken = r.URL.Query().Get("approval_token")
			reply(202, `{"job":{"id":"job_9","type":"project.delete","state":"pending"}}`)(w, r)
		},
	})
	base := []string{"--api-url", s.URL, "--api-key", "capy_live_x"}
	r := runCLI(t, append([]string{"projects", "delete", "shop", "--confirm"}, base...)...)
	if r.code != 5 || !strings.Contains(r.stderr, "approval token") || s.count("DELETE") != 0 {
		t.Fatalf("production delete without a token: %d %s", r.code, r.stderr)
	}
	r = runCLI(t, append([]string{"projects", "delete", "shop", "--approval-token", "ap_x"}, base...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "--confirm") || s.count("DELETE") != 0 {
		t.Fatalf("delete without --confirm off a terminal: %d %s", r.code, r.stderr)
	}
	t.Setenv("CAPYDB_APPROVAL_TOKEN", "ap_env")
	r = runCLI(t, append([]string{"projects", "delete", "shop", "--yes", "-o", "json"}, base...)...)
	if r.code != 0 || gotToken != "ap_env" || !strings.Contains(r.stdout, `"id": "job_9"`) {
		t.Fatalf("delete: %d %q token %q", r.code, r.stdout, gotToken)
	}
}

func TestHelpers(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{"24h": now.Add(24 * time.Hour), "7d": now.Add(7 * 24 * time.Hour),
		"2w": now.Add(14 * 24 * time.Hour), "2026-02-01T00:00:00Z": time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)} {
		if got, err := parseExpiresIn(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseExpiresIn(%q) = %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"0d", "soon", "2025-01-01T00:00:00Z", "3y"} {
		if _, err := parseExpiresIn(bad, now); exitCode(err) != 2 {
			t.Errorf("parseExpiresIn(%q) should be a usage error", bad)
		}
	}
	ci, pw, err := psqlConninfo("postgres://u:s3cret@h:5432/d?sslmode=require")
	if err != nil || ci != "postgres://u@h:5432/d?sslmode=require" || pw != "s3cret" {
		t.Fatalf("psqlConninfo: %q %q %v", ci, pw, err)
	}
	if ci, _, _ := psqlConninfo("postgres://u:p@h/d?sslmode=verify-full"); !strings.Contains(ci, "sslrootcert=system") {
		t.Fatalf("verify-full needs sslrootcert=system: %s", ci)
	}
	if jobLabel("instance.create") != "Provisioning database" || jobLabel("project.app_role_enable") != "Project app role enable" {
		t.Fatal("jobLabel")
	}
	if humanBytes(12_900_000) != "12.3 MB" || humanBytes(512) != "512 B" {
		t.Fatalf("humanBytes: %s", humanBytes(12_900_000))
	}
}

func TestCompletionAndVersion(t *testing.T) {
	isolate(t)
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if r := runCLI(t, "completion", sh); r.code != 0 || !strings.Contains(r.stdout, "capydb") {
			t.Errorf("completion %s: %d", sh, r.code)
		}
	}
	if r := runCLI(t, "completion", "tcsh"); r.code != 2 {
		t.Errorf("completion tcsh: exit %d", r.code)
	}
	s := newStub(t, map[string]http.HandlerFunc{"GET /status": reply(200, `{"service":"capydb-controlplane","status":"operational","components":[]}`)})
	r := runCLI(t, "version", "--check", "-o", "json", "--api-url", s.URL)
	var v map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["version"] != Version || v["server_version"] != "v9.9.9" {
		t.Fatalf("version --check: %q %v", r.stdout, err)
	}
}
