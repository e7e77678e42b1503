package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runAnswering runs the CLI with stdin treated as a terminal that answers
// with the given text.
func runAnswering(t *testing.T, answers string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	p := defaultPacing()
	p.jobPoll = pollSchedule
	ctx := context.WithValue(withPacing(context.Background(), p), stdinTerminalKey{}, true)
	code := run(ctx, args, strings.NewReader(answers), &out, &errb)
	return result{code, out.String(), errb.String()}
}

const project2JSON = `{"id":"prj_2","organization_id":"org_1","name":"Shop","slug":"shop-2","environment":"non_production",
 "state":"ready","plan":"business","region":"local","postgres_version":"15","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`

const connections2JSON = `{"connections":{"username":"u_shop2","direct_url":"postgres://u_shop2:pw2@db.example:5432/db_shop2?sslmode=require",
 "pooled_url":"postgres://u_shop2:pw2@db.example:6432/db_shop2?sslmode=require"}}`

// linkedDir is a directory linked to prj_1 (env file written by link), with
// a stub that can also create prj_2.
func linkedDir(t *testing.T) (string, *stub) {
	t.Helper()
	dir := isolate(t)
	job := `{"id":"job_2","type":"instance.create","state":"completed","organization_id":"org_1","project_id":"prj_2","attempts":1,"max_attempts":5,"created_at":"2026-01-02T03:04:05Z"}`
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/me":                         reply(200, `{"organization":{"id":"org_1","name":"Acme","slug":"acme","billing_plan":"ship","billing_status":"active"},"principal":{"auth_source":"api_key","scopes":["*"]}}`),
		"GET /v1/projects":                   reply(200, `{"projects":[`+projectJSON+`]}`),
		"GET /v1/projects/prj_1":             reply(200, `{"project":`+projectJSON+`}`),
		"GET /v1/projects/prj_1/connections": reply(200, connectionsJSON),
		"POST /v1/projects":                  reply(201, `{"project":`+project2JSON+`,"job":`+job+`}`),
		"GET /v1/jobs/job_2":                 reply(200, `{"job":`+job+`}`),
		"GET /v1/projects/prj_2":             reply(200, `{"project":`+project2JSON+`}`),
		"GET /v1/projects/prj_2/connections": reply(200, connections2JSON),
	})
	t.Setenv("CAPYDB_API_URL", s.URL)
	t.Setenv("CAPYDB_API_KEY", "capy_live_x")
	if r := runCLI(t, "link", "--project", "shop"); r.code != 0 {
		t.Fatalf("link: %s", r.stderr)
	}
	return dir, s
}

// linkState is the linked project id and the project database DATABASE_URL names.
func linkState(t *testing.T, dir string) (string, string) {
	t.Helper()
	var l projectLink
	b, err := os.ReadFile(filepath.Join(dir, ".capydb", "project.json"))
	if err != nil || json.Unmarshal(b, &l) != nil {
		t.Fatalf("link file: %v %s", err, b)
	}
	env, _ := readEnvFile(filepath.Join(dir, ".env"))
	return l.ProjectID, env["DATABASE_URL"]
}

// TestCreateInLinkedDirectory: create never leaves the link and the env file
// naming different projects. Without a terminal it refuses before creating
// anything; on a terminal it asks once, and "n" changes nothing.
func TestCreateInLinkedDirectory(t *testing.T) {
	dir, s := linkedDir(t)
	r := runCLI(t, "create", "-o", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 5 || doc["error"] != "create_failed" ||
		!strings.Contains(doc["message"].(string), "already linked to project Shop (prj_1)") || doc["command"] != "capydb unlink" {
		t.Fatalf("create in a linked dir without a terminal: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if n := s.count("POST /v1/projects"); n != 0 {
		t.Fatalf("%d projects created", n)
	}
	r = runAnswering(t, "n\n", "create")
	if r.code != 5 || !strings.Contains(r.stderr, "Create a new project and point the link and the env file at it instead? [y/N]") ||
		!strings.Contains(r.stderr, "kept the link to project Shop (prj_1); nothing was created") || strings.Contains(r.stdout, "Wrote") {
		t.Fatalf("answer n: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if id, url := linkState(t, dir); id != "prj_1" || !strings.Contains(url, "db_shop?") || s.count("POST /v1/projects") != 0 {
		t.Fatalf("after n: link %s, DATABASE_URL %s, %d creates", id, url, s.count("POST /v1/projects"))
	}
	// "y": the new project, and both the link and .env name it; one question only.
	r = runAnswering(t, "y\n", "create")
	if r.code != 0 || strings.Count(r.stderr, "[y/N]") != 1 || !strings.Contains(r.stdout, "Created project Shop (shop-2, prj_2)") {
		t.Fatalf("answer y: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if id, url := linkState(t, dir); id != "prj_2" || url != "postgres://u_shop2:pw2@db.example:5432/db_shop2?sslmode=require" {
		t.Fatalf("after y: link %s, DATABASE_URL %s", id, url)
	}
}

// TestLinkDeclinedWritesNothing: declining to overwrite the env file's other
// URLs leaves both the env file and the link as they were (exit 5).
func TestLinkDeclinedWritesNothing(t *testing.T) {
	dir, _ := linkedDir(t)
	r := runAnswering(t, "n\n", "link", "--project", "prj_2")
	// prj_2 is not in the project list: exit 4, nothing touched.
	if r.code != 4 {
		t.Fatalf("unknown project: %d %s", r.code, r.stderr)
	}
	_ = os.WriteFile(filepath.Join(dir, ".env"), []byte("DATABASE_URL=\"postgres://me:x@elsewhere:5432/mine\"\n"), 0o600)
	before, _ := os.ReadFile(filepath.Join(dir, ".env"))
	_ = os.Remove(filepath.Join(dir, ".capydb", "project.json"))
	r = runAnswering(t, "n\n", "link", "--project", "shop")
	if r.code != 5 || strings.Count(r.stderr, "[y/N]") != 1 || !strings.Contains(r.stderr, "kept .env unchanged") ||
		!strings.Contains(r.stderr, "was not linked to Shop") || strings.Contains(r.stdout, "Wrote") {
		t.Fatalf("declined link: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ".env")); !bytes.Equal(after, before) {
		t.Fatalf(".env changed: %s", after)
	}
	if _, err := os.Stat(filepath.Join(dir, ".capydb", "project.json")); !os.IsNotExist(err) {
		t.Fatal("a declined link wrote the link file")
	}
	r = runAnswering(t, "y\n", "link", "--project", "shop")
	if id, url := linkState(t, dir); r.code != 0 || id != "prj_1" || !strings.Contains(url, "u_shop:pw@") {
		t.Fatalf("accepted link: %d %s %s %s", r.code, id, url, r.stderr)
	}
}
