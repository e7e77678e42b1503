package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
)

// TestBadInputAndAccess: every mistake gets the right status and a message
// naming the problem, and nothing is created.
func TestBadInputAndAccess(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ready := s.createProject(map[string]any{"name": "base", "slug": "base", "environment": "non_production"})
	pid := ready["id"].(string)

	cases := []struct {
		name, method, path string
		body               any
		status             int
		msg                string
	}{
		{"unknown field", "POST", "/v1/projects", map[string]any{"name": "x", "foo": 1}, 400, `unknown field "foo"`},
		{"wrong type", "POST", "/v1/projects", map[string]any{"name": 5}, 400, `"name"`},
		{"missing name", "POST", "/v1/projects", map[string]any{}, 400, "name"},
		{"blank name", "POST", "/v1/projects", map[string]any{"name": "   "}, 400, "name must be 1-64 characters"},
		{"long name", "POST", "/v1/projects", map[string]any{"name": strings.Repeat("n", 65)}, 400, "name must be 1-64 characters"},
		{"control chars", "POST", "/v1/projects", map[string]any{"name": "a\u0007b"}, 400, "control characters"},
		{"bad slug", "POST", "/v1/projects", map[string]any{"name": "x", "slug": "Bad_Slug"}, 400, "slug"},
		{"slug ends with dash", "POST", "/v1/projects", map[string]any{"name": "x", "slug": "abc-"}, 400, "slug"},
		{"old environment spelling", "POST", "/v1/projects", map[string]any{"name": "x", "environment": "nonproduction"}, 400, "environment must be one of production or non_production"},
		{"unsupported version", "POST", "/v1/projects", map[string]any{"name": "x", "postgres_version": "17"}, 400, `unsupported postgres version "17"; this server offers: 15`},
		{"unknown region", "POST", "/v1/projects", map[string]any{"name": "x", "region": "mars"}, 400, "available regions: local"},
		{"unknown cluster", "POST", "/v1/projects", map[string]any{"name": "x", "cluster_id": "cl_nope"}, 400, "unknown cluster"},
		{"other organization", "POST", "/v1/projects", map[string]any{"name": "x", "organization_id": "org_other"}, 404, "organization not found"},
		{"slug taken", "POST", "/v1/projects", map[string]any{"name": "x", "slug": "base"}, 409, pid},
		{"malformed json", "POST", "/v1/projects", `{"name":`, 400, "JSON"},
		{"grace too long", "POST", "/v1/projects/" + pid + "/credentials/rotate", map[string]any{"grace_hours": 721}, 400, "grace_hours"},
		{"grace negative", "POST", "/v1/projects/" + pid + "/credentials/rotate", map[string]any{"grace_hours": -1}, 400, "grace_hours"},
		{"unknown project", "GET", "/v1/projects/prj_nope", nil, 404, "project not found"},
		{"unknown job", "GET", "/v1/jobs/job_nope", nil, 404, "job not found"},
		{"negative limit", "GET", "/v1/projects/" + pid + "/jobs?limit=-1", nil, 400, "limit"},
		{"non-integer limit", "GET", "/v1/projects/" + pid + "/jobs?limit=abc", nil, 400, "limit"},
		{"unknown route", "GET", "/v1/nothing-here", nil, 404, "not found"},
		{"wrong method", "PUT", "/v1/projects", nil, 405, "method not allowed"},
		{"kv stub", "GET", "/v1/projects/" + pid + "/kv", nil, 404, "kv store not found"},
		{"approval bad action", "POST", "/v1/projects/" + pid + "/approvals", map[string]any{"action": "project.explode"}, 400, "action must be one of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.call(c.method, c.path, s.key, c.body)
			if r.Status != c.status || !strings.Contains(r.str("error"), c.msg) {
				t.Fatalf("got %d %s, want %d containing %q", r.Status, r.Raw, c.status, c.msg)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
	// None of the rejected creates left a project behind.
	if n := len(s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)); n != 1 {
		t.Fatalf("rejected requests created projects: %d projects", n)
	}

	// A body that is not JSON is 415; empty bodies on action routes are fine.
	r := s.call("POST", "/v1/projects", s.key, nil)
	if r.Status != 400 {
		t.Fatalf("create without body: %d %s", r.Status, r.Raw)
	}
	if r := s.rawPost("/v1/projects", "text/plain", "name=x"); r != 415 {
		t.Fatalf("text/plain body answered %d, want 415", r)
	}
	for _, body := range []any{nil, "", "{}"} {
		r := s.call("POST", "/v1/projects/"+pid+"/credentials/rotate", s.key, body)
		if r.Status != 202 {
			t.Fatalf("rotate with body %q: %d %s", body, r.Status, r.Raw)
		}
		s.waitJob(r.str("job", "id"))
	}

	// Authentication.
	for name, c := range map[string]struct {
		header, value string
		status        int
	}{
		"no credentials":   {"", "", 401},
		"unknown key":      {"Authorization", "Bearer capy_live_" + strings.Repeat("a", 40), 401},
		"not a key":        {"Authorization", "Bearer hello", 401},
		"basic auth":       {"Authorization", "Basic Zm9vOmJhcg==", 401},
		"x-api-key header": {"X-API-Key", s.key, 200},
	} {
		t.Run(name, func(t *testing.T) {
			if got := s.rawGet("/v1/projects", c.header, c.value); got != c.status {
				t.Fatalf("got %d, want %d", got, c.status)
			}
		})
	}
	if got := s.rawGet2("/v1/projects", s.key, "capy_live_"+strings.Repeat("b", 40)); got != 401 {
		t.Fatalf("conflicting credentials answered %d", got)
	}

	// Scopes: a read-only key minted by the operator command.
	out, err := exec.Command(binary, "admin", "create-key", "--data-dir", s.dataDir, "--org", "default",
		"--scopes", "projects:read", "--name", "reader").Output()
	if err != nil {
		t.Fatalf("admin create-key: %v", err)
	}
	reader := strings.TrimSpace(string(out))
	if !strings.HasPrefix(reader, "capy_live_") || len(reader) < len("capy_live_")+32 {
		t.Fatalf("admin create-key printed %q", reader)
	}
	if r := s.call("GET", "/v1/projects/"+pid, reader, nil); r.Status != 200 {
		t.Fatalf("reader GET project: %d", r.Status)
	}
	for _, c := range []struct{ method, path, scope string }{
		{"POST", "/v1/projects", "projects:write"},
		{"GET", "/v1/projects/" + pid + "/connections", "credentials:read"},
		{"POST", "/v1/projects/" + pid + "/credentials/rotate", "projects:write"},
		{"GET", "/v1/jobs/job_x", "jobs:read"},
		{"DELETE", "/v1/projects/" + pid, "projects:write"},
	} {
		r := s.call(c.method, c.path, reader, map[string]any{"name": "x"})
		if c.method == "GET" || c.method == "DELETE" {
			r = s.call(c.method, c.path, reader, nil)
		}
		if r.Status != 403 || r.str("error") != "missing scope "+c.scope {
			t.Fatalf("%s %s with a read-only key: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	// Unknown scope is a usage error of the operator command.
	cmd := exec.Command(binary, "admin", "create-key", "--data-dir", s.dataDir, "--org", "default", "--scopes", "root")
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("create-key with an unknown scope: %v (exit %d)", err, cmd.ProcessState.ExitCode())
	}

	// Tenancy: a key of another organization sees none of this one's resources.
	otherKey := s.otherOrgKey(t)
	jobID := ready["latest_job_id"].(string)
	for _, path := range []string{"/v1/projects/" + pid, "/v1/projects/" + pid + "/connections", "/v1/jobs/" + jobID, "/v1/projects/" + pid + "/jobs"} {
		if r := s.call("GET", path, otherKey, nil); r.Status != 404 {
			t.Fatalf("other organization's key on %s: %d %s", path, r.Status, r.Raw)
		}
	}
	if r := s.call("DELETE", "/v1/projects/"+pid, otherKey, nil); r.Status != 404 {
		t.Fatalf("other organization deleted: %d", r.Status)
	}
	if n := len(s.call("GET", "/v1/projects", otherKey, nil).get("projects").([]any)); n != 0 {
		t.Fatalf("other organization lists %d projects", n)
	}

	// Production deletes need a single-use approval.
	prod := s.createProject(map[string]any{"name": "prod"})
	prodID := prod["id"].(string)
	if r := s.call("DELETE", "/v1/projects/"+prodID, s.key, nil); r.Status != 428 {
		t.Fatalf("production delete without approval: %d %s", r.Status, r.Raw)
	}
	if r := s.call("DELETE", "/v1/projects/"+prodID+"?approval_token=ap_"+strings.Repeat("z", 40), s.key, nil); r.Status != 403 {
		t.Fatalf("production delete with a bogus token: %d", r.Status)
	}
	wrong := s.must(201, "POST", "/v1/projects/"+pid+"/approvals", map[string]any{"action": "project.restore_overwrite"})
	if r := s.call("DELETE", "/v1/projects/"+prodID+"?approval_token="+wrong.str("approval", "token"), s.key, nil); r.Status != 403 {
		t.Fatalf("token for another project accepted: %d", r.Status)
	}
	ap := s.must(201, "POST", "/v1/projects/"+prodID+"/approvals", map[string]any{"action": "project.delete"})
	token := ap.str("approval", "token")
	if !strings.HasPrefix(token, "ap_") || !strings.HasPrefix(ap.str("approval", "id"), "apr_") {
		t.Fatalf("approval: %s", ap.Raw)
	}
	del := s.must(202, "DELETE", "/v1/projects/"+prodID+"?approval_token="+token, nil)
	replay := s.must(202, "DELETE", "/v1/projects/"+prodID+"?approval_token="+token, nil)
	if replay.str("job", "id") != del.str("job", "id") {
		t.Fatal("replaying a consumed approval must return the original job")
	}
	s.waitJob(del.str("job", "id"))
	// A deleted project's job stays readable.
	if r := s.must(200, "GET", "/v1/jobs/"+del.str("job", "id"), nil); r.str("job", "state") != "completed" {
		t.Fatalf("delete job after deletion: %s", r.Raw)
	}

	// Operations on a project that is not ready are refused with 409.
	d := s.must(202, "DELETE", "/v1/projects/"+pid, nil)
	if r := s.call("POST", "/v1/projects/"+pid+"/credentials/rotate", s.key, nil); r.Status != 409 && r.Status != 404 {
		t.Fatalf("rotate on a deleting project: %d %s", r.Status, r.Raw)
	} else if r.Status == 409 && !strings.Contains(r.str("error"), "project is not ready") {
		t.Fatalf("409 message: %s", r.Raw)
	}
	s.waitJob(d.str("job", "id"))
}

// TestAPISurface: mount points, OpenAPI document, status and operator endpoints.
func TestAPISurface(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	doc := s.call("GET", "/v1/openapi.json", "", nil)
	var spec struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc.Raw, &spec); err != nil || doc.Status != 200 || spec.OpenAPI != "3.1.0" || len(spec.Paths) < 10 {
		t.Fatalf("openapi: %d %s %v %.200s", doc.Status, doc.Header.Get("Content-Type"), err, doc.Raw)
	}
	for _, op := range []string{"listProjects", "createProject", "getJob", "getProjectConnections", "rotateProjectCredentials", "deleteProject", "getViewer", "listClusters", "listRegions"} {
		if !strings.Contains(string(doc.Raw), `"operationId":"`+op+`"`) {
			t.Errorf("operation %s missing from the OpenAPI document", op)
		}
	}
	if strings.Contains(string(doc.Raw), "$schema") {
		t.Error("responses must not carry $schema links")
	}
	a := s.must(200, "GET", "/api/capydb/v1/projects/", nil)
	if a.get("projects") == nil {
		t.Fatalf("/api/capydb mount with trailing slash: %s", a.Raw)
	}
	if a.Header.Get("X-CapyDB-Version") == "" {
		t.Error("missing X-CapyDB-Version")
	}
	reg := s.must(200, "GET", "/v1/regions", nil)
	if regs := reg.get("regions").([]any); len(regs) != 1 || regs[0] != "local" || len(reg.get("region_details").([]any)) != 1 {
		t.Fatalf("regions: %s", reg.Raw)
	}
	cl := s.must(200, "GET", "/v1/clusters", nil).get("clusters").([]any)
	c0 := cl[0].(map[string]any)
	if len(cl) != 1 || c0["region"] != "local" || c0["provider"] != "embedded" || !strings.HasPrefix(c0["id"].(string), "cl_") ||
		c0["direct_port"] != float64(s.directPort) || c0["state"] != "active" ||
		!strings.Contains(fmt.Sprint(c0["extensions"]), "pgcrypto") || strings.Contains(fmt.Sprint(c0["extensions"]), "plpgsql") {
		t.Fatalf("clusters: %v", cl)
	}
	v := s.must(200, "GET", "/v1/postgres-versions", nil).get("versions").([]any)
	if len(v) != 1 || v[0].(map[string]any)["version"] != "15" || v[0].(map[string]any)["default"] != true {
		t.Fatalf("versions: %v", v)
	}
	for _, path := range []string{"/status", "/api/capydb/status"} {
		st := s.call("GET", path, "capy_live_ignored", nil)
		if st.Status != 200 || st.str("service") != "capydb-controlplane" || st.str("status") != "operational" ||
			st.Header.Get("Cache-Control") != "no-store" || len(st.get("components").([]any)) < 5 {
			t.Fatalf("%s: %d %s", path, st.Status, st.Raw)
		}
	}
	if r := s.call("GET", "/healthz", "", nil); r.Status != 200 || r.str("status") != "ok" {
		t.Fatalf("healthz: %d", r.Status)
	}
	if r := s.call("GET", "/readyz", "", nil); r.Status != 200 || r.str("status") != "ready" {
		t.Fatalf("readyz: %d", r.Status)
	}
	m := s.call("GET", "/metrics", "", nil)
	if m.Status != 200 || !strings.Contains(string(m.Raw), "go_goroutines") {
		t.Fatalf("metrics: %d", m.Status)
	}
}

// otherOrgKey makes a second organization with a key, directly in the control DB.
func (s *server) otherOrgKey(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn := s.admin("capydb_control")
	orgID := ids.New("org_")
	if _, err := conn.Exec(ctx, `INSERT INTO organizations (id, name, slug, billing_plan) VALUES ($1, 'Other', $2, 'vibe')`,
		orgID, "other-"+strings.ToLower(ids.RandomBase62(6))); err != nil {
		t.Fatal(err)
	}
	plain, hash, prefix := auth.NewKey()
	if _, err := conn.Exec(ctx, `INSERT INTO api_keys (id, organization_id, name, key_hash, key_prefix, scopes)
		VALUES ($1, $2, 'other', $3, $4, $5)`, ids.New("key_"), orgID, hash, prefix, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	_ = pgx.Identifier{}
	return plain
}
