package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestRetryProvisioning (API.md §3.6, #33): a project whose provisioning
// failed is retried with the same database name, role and password; a retry
// while the job is under way returns that job; a ready project is 409.
func TestRetryProvisioning(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--workers", "1")
	ctx := context.Background()
	admin := s.admin("postgres")

	// With the only worker held on project A, someone else takes B's
	// database name, so B's first provision fails.
	a := s.createProject(map[string]any{"name": "a", "environment": "non_production"})
	b := s.failOneProvision(t, a["id"].(string), "retry me")
	pid, dbName, role := b.str("project", "id"), b.str("project", "database_name"), b.str("project", "role_name")
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "failed" {
		t.Fatalf("project state %s, want failed", st)
	}
	url := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	if _, err := admin.Exec(ctx, `DROP DATABASE "`+dbName+`"`); err != nil {
		t.Fatal(err)
	}

	// Hold the worker again so the retry job stays under way (pending)
	// while we retry again.
	release := s.holdWorker(t, a["id"].(string))
	r1 := s.must(202, "POST", "/v1/projects/"+pid+"/retry-provisioning", nil)
	jobID := r1.str("job", "id")
	if jobID == "" || jobID == b.str("job", "id") || r1.str("job", "type") != "instance.create" {
		t.Fatalf("retry job: %s", r1.Raw)
	}
	p := s.must(200, "GET", "/v1/projects/"+pid, nil)
	if p.str("project", "state") != "provisioning" || p.str("project", "latest_job_id") != jobID {
		t.Fatalf("after retry: %s", p.Raw)
	}
	if st := s.must(200, "GET", "/v1/jobs/"+jobID, nil).str("job", "state"); st != "pending" {
		t.Fatalf("retry job %s while the worker is held, want pending", st)
	}
	// Empty body, {} and no body are the same request (API.md §1.2).
	if again := s.must(202, "POST", "/v1/projects/"+pid+"/retry-provisioning", map[string]any{}); again.str("job", "id") != jobID {
		t.Fatalf("a repeated retry must return the in-flight job %s: %s", jobID, again.Raw)
	}
	release()
	if j := s.waitJob(jobID); j["state"] != "completed" {
		t.Fatalf("retry job: %v", j)
	}
	p = s.must(200, "GET", "/v1/projects/"+pid, nil)
	if p.str("project", "state") != "ready" || p.str("project", "database_name") != dbName || p.str("project", "role_name") != role {
		t.Fatalf("after the retry: %s", p.Raw)
	}
	// The URL handed out while the project was failed now works: same role and password.
	if who := query[string](t, url, "SELECT current_user || '@' || current_database()"); who != role+"@"+dbName {
		t.Fatalf("connected as %s, want %s@%s", who, role, dbName)
	}
	// A ready project cannot be retried.
	r := s.call("POST", "/v1/projects/"+pid+"/retry-provisioning", s.key, nil)
	if r.Status != 409 || !strings.Contains(r.str("error"), "project is not failed") {
		t.Fatalf("retry of a ready project: %d %s", r.Status, r.Raw)
	}
	// The CLI says why (exit 5 for a conflict, CLI.md).
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	if r := u.expect(5, "projects", "retry", "retry-me"); !strings.Contains(r.stderr, "project is not failed") {
		t.Fatalf("capydb projects retry on a ready project: %s", r.stderr)
	}
	// Audit carries the retry.
	ev := s.must(200, "GET", "/v1/projects/"+pid+"/audit-events", nil)
	if !strings.Contains(string(ev.Raw), `"project.provisioning_retried"`) {
		t.Fatalf("audit events: %s", ev.Raw)
	}
	if r := s.call("POST", "/v1/projects/prj_nope/retry-provisioning", s.key, nil); r.Status != 404 {
		t.Fatalf("unknown project: %d %s", r.Status, r.Raw)
	}
}
