package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// actionDef is the part of an action.yml a composite runner reads.
type actionDef struct {
	Inputs map[string]struct {
		Default string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

// actionRun is what one run of the action left behind.
type actionRun struct {
	outputs map[string]string
	stdout  string
}

var exprRe = regexp.MustCompile(`\$\{\{\s*([a-z.-]+)\s*\}\}`)

// runAction runs the composite action's steps as the GitHub runner does:
// each run: with `bash --noprofile --norc -eo pipefail`, its env: with the
// inputs (defaults from action.yml) substituted, GITHUB_* files per step,
// and GITHUB_PATH entries prepended to PATH for the following steps.
func runAction(t *testing.T, def *actionDef, actionDir string, inputs map[string]string, env []string) actionRun {
	t.Helper()
	work := t.TempDir()
	stepOut := map[string]map[string]string{}
	var path []string
	var stdout strings.Builder
	for i, step := range def.Runs.Steps {
		if step.Shell != "bash" {
			t.Fatalf("step %d: shell %q, want bash", i, step.Shell)
		}
		script := filepath.Join(work, "step.sh")
		if err := os.WriteFile(script, []byte(step.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		for _, f := range []string{"GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_ENV", "GITHUB_STEP_SUMMARY"} {
			files[f] = filepath.Join(work, f)
			os.WriteFile(files[f], nil, 0o644)
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir = work
		cmd.Env = append([]string{}, env...)
		cmd.Env = append(cmd.Env, "GITHUB_ACTION_PATH="+actionDir, "RUNNER_TEMP="+work)
		for k, f := range files {
			cmd.Env = append(cmd.Env, k+"="+f)
		}
		for k, v := range step.Env {
			cmd.Env = append(cmd.Env, k+"="+exprRe.ReplaceAllStringFunc(v, func(m string) string {
				name := exprRe.FindStringSubmatch(m)[1]
				if in, ok := strings.CutPrefix(name, "inputs."); ok {
					if v, ok := inputs[in]; ok {
						return v
					}
					d, ok := def.Inputs[in]
					if !ok {
						t.Fatalf("step %d uses an undeclared input %s", i, in)
					}
					return exprRe.ReplaceAllString(d.Default, inputs["github.token"])
				}
				t.Fatalf("step %d: unsupported expression %s", i, m)
				return ""
			}))
		}
		cmd.Env = append(cmd.Env, "PATH="+strings.Join(append(path, os.Getenv("PATH")), ":"))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		stdout.WriteString(out.String())
		if err != nil {
			t.Fatalf("step %d (%s) failed: %v\nstdout:\n%s\nstderr:\n%s", i, step.ID, err, out.String(), errb.String())
		}
		if b, _ := os.ReadFile(files["GITHUB_PATH"]); len(b) > 0 {
			path = append(strings.Fields(string(b)), path...)
		}
		o := map[string]string{}
		b, _ := os.ReadFile(files["GITHUB_OUTPUT"])
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				o[k] = v
			}
		}
		if step.ID != "" {
			stepOut[step.ID] = o
		}
	}
	res := actionRun{outputs: map[string]string{}, stdout: stdout.String()}
	for name, o := range def.Outputs {
		m := regexp.MustCompile(`^\$\{\{ steps\.([a-z-]+)\.outputs\.([a-z_]+) \}\}$`).FindStringSubmatch(o.Value)
		if m == nil {
			t.Fatalf("output %s: unsupported value %q", name, o.Value)
		}
		res.outputs[name] = stepOut[m[1]][m[2]]
	}
	return res
}

// TestPreviewAction runs .github/actions/preview-database against a real
// server with GitHub's pull_request payloads: the CLI is installed from a
// stand-in release download, opened creates pr-2 (a clone) with masked
// URLs and a PR comment on a stand-in GitHub API, synchronize resets it,
// closed deletes it, and a second closed does nothing.
func TestPreviewAction(t *testing.T) {
	t.Parallel()
	actionDir, err := filepath.Abs("../.github/actions/preview-database")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(actionDir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var def actionDef
	if err := yaml.Unmarshal(raw, &def); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if def.Runs.Using != "composite" || len(def.Runs.Steps) != 2 {
		t.Fatalf("action.yml: using %q with %d steps", def.Runs.Using, len(def.Runs.Steps))
	}

	s := startServer(t, "", 0, 0)
	project := s.createProject(map[string]any{"name": "action app", "environment": "non_production"})
	pURL := s.must(200, "GET", "/v1/projects/"+project["id"].(string)+"/connections", nil).str("connections", "direct_url")
	conn, err := connect(pURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "create table items (id int primary key); insert into items values (1), (2)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())

	// The released CLI, as a stand-in release asset: a tar.gz holding capydb.
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	tw.WriteHeader(&tar.Header{Name: "capydb", Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	tw.Close()
	gz.Close()
	var mu sync.Mutex
	var downloads int
	release := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		downloads++
		mu.Unlock()
		if r.URL.Path != "/capydb_linux_amd64.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(tgz.Bytes())
	}))
	defer release.Close()

	// A stand-in GitHub REST API: "Create an issue comment" as GitHub
	// documents it (POST /repos/{owner}/{repo}/issues/{number}/comments,
	// bearer token, JSON body with "body", 201).
	var comments []string
	ghAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Body string `json:"body"`
		}
		switch {
		case r.Method != "POST" || r.URL.Path != "/repos/Codertocat/Hello-World/issues/2/comments":
			http.Error(w, `{"message":"Not Found"}`, 404)
		case r.Header.Get("Authorization") != "Bearer ghs_testtoken":
			http.Error(w, `{"message":"Bad credentials"}`, 401)
		case r.Header.Get("Accept") != "application/vnd.github+json" || r.Header.Get("X-GitHub-Api-Version") == "":
			http.Error(w, `{"message":"bad headers"}`, 400)
		case json.Unmarshal(b, &body) != nil || body.Body == "":
			http.Error(w, `{"message":"Invalid request"}`, 422)
		default:
			mu.Lock()
			comments = append(comments, body.Body)
			mu.Unlock()
			w.WriteHeader(201)
			w.Write([]byte(`{"id":1,"body":` + string(must(json.Marshal(body.Body))) + `}`))
		}
	}))
	defer ghAPI.Close()

	// A PATH without capydb, so the install step must fetch it.
	u := newCLIUser(t)
	var env []string
	for _, kv := range u.env {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin", "GITHUB_EVENT_NAME=pull_request",
		"GITHUB_REPOSITORY=Codertocat/Hello-World", "GITHUB_API_URL="+ghAPI.URL, "CI=true")
	inputs := map[string]string{
		"api-url": s.url, "api-key": s.key, "project": project["slug"].(string), "comment": "true",
		"cli-download-url": release.URL + "/capydb_linux_amd64.tar.gz", "github.token": "ghs_testtoken",
	}
	event := func(name string) []string {
		p, err := filepath.Abs("testdata/github-events/pull_request." + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		return append(env, "GITHUB_EVENT_PATH="+p)
	}

	opened := runAction(t, &def, actionDir, inputs, event("opened"))
	out := opened.outputs
	mu.Lock()
	dl := downloads
	mu.Unlock()
	if out["action"] != "created" || out["preview_name"] != "pr-2" || !strings.HasPrefix(out["preview_id"], "pvw_") || dl != 1 {
		t.Fatalf("opened: outputs %v, %d downloads\n%s", out, dl, opened.stdout)
	}
	for _, k := range []string{"database_url", "database_url_unpooled"} {
		if !strings.Contains(opened.stdout, "::add-mask::"+out[k]+"\n") {
			t.Errorf("%s is not masked before use:\n%s", k, opened.stdout)
		}
		if n := query[int64](t, out[k], "select count(*) from items"); n != 2 {
			t.Fatalf("%s: the clone has %d rows, want 2", k, n)
		}
	}
	if out["database_url"] == out["database_url_unpooled"] {
		t.Fatalf("pooled and direct URLs are the same: %s", redact(out["database_url"]))
	}
	pw := strings.SplitN(strings.SplitN(strings.TrimPrefix(out["database_url_unpooled"], "postgres://"), "@", 2)[0], ":", 2)[1]
	if !strings.Contains(opened.stdout, "::add-mask::"+pw+"\n") {
		t.Errorf("the password is not masked on its own")
	}
	mu.Lock()
	if len(comments) != 1 || !strings.Contains(comments[0], "`pr-2`") || strings.Contains(comments[0], pw) {
		t.Fatalf("PR comments: %q", comments)
	}
	mu.Unlock()

	// A push: the preview is reset to a fresh copy, same id and URL.
	if _, err := connectExec(out["database_url_unpooled"], "insert into items values (3)"); err != nil {
		t.Fatal(err)
	}
	synced := runAction(t, &def, actionDir, inputs, event("synchronize"))
	if synced.outputs["action"] != "reset" || synced.outputs["preview_id"] != out["preview_id"] {
		t.Fatalf("synchronize: %v\n%s", synced.outputs, synced.stdout)
	}
	if n := query[int64](t, synced.outputs["database_url_unpooled"], "select count(*) from items"); n != 2 {
		t.Fatalf("after reset the preview has %d rows, want 2", n)
	}

	closed := runAction(t, &def, actionDir, inputs, event("closed"))
	if closed.outputs["action"] != "deleted" || closed.outputs["preview_id"] != out["preview_id"] || closed.outputs["database_url"] != "" {
		t.Fatalf("closed: %v\n%s", closed.outputs, closed.stdout)
	}
	if r := s.call("GET", "/v1/preview-databases/"+out["preview_id"], s.key, nil); r.Status != 404 {
		t.Fatalf("the preview is still there after closed: %d %s", r.Status, r.Raw)
	}
	if again := runAction(t, &def, actionDir, inputs, event("closed")); again.outputs["action"] != "none" {
		t.Fatalf("a second closed: %v", again.outputs)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func connectExec(url, sql string) (int64, error) {
	c, err := connect(url)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	tag, err := c.Exec(context.Background(), sql)
	return tag.RowsAffected(), err
}
