package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestCrashMidProvision: SIGKILL the server right after it accepted a
// project; after a restart on the same data dir the job completes, the
// project works, and nothing is left half-made.
func TestCrashMidProvision(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	var pids, jobs []string
	for i := range 3 {
		r := s.must(202, "POST", "/v1/projects", map[string]any{"name": "crash", "environment": "non_production", "slug": "crash-" + strings.Repeat("x", i+1)})
		pids, jobs = append(pids, r.str("project", "id")), append(jobs, r.str("job", "id"))
	}
	s.kill()

	s2 := startServer(t, s.dataDir, s.directPort, s.pooledPort)
	if s2.key != s.key {
		t.Fatal("restart minted a new bootstrap key")
	}
	for i, id := range jobs {
		job := s2.waitJob(id)
		if job["state"] != "completed" {
			t.Fatalf("job %s after restart: %v", id, job)
		}
		p := s2.must(200, "GET", "/v1/projects/"+pids[i], nil)
		if p.str("project", "state") != "ready" {
			t.Fatalf("project after restart: %s", p.Raw)
		}
		c := s2.must(200, "GET", "/v1/projects/"+pids[i]+"/connections", nil)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server logs after restart:\n%s", s2.logs.String())
			}
		})
		if got := query[int](t, c.str("connections", "pooled_url"), `SELECT 1`); got != 1 {
			t.Fatal("pooled URL does not work after restart")
		}
	}
	// Exactly the three databases exist, no strays from the crash.
	var n int
	if err := s2.admin("postgres").QueryRow(context.Background(),
		`SELECT count(*) FROM pg_database WHERE datname LIKE 'db_crash%'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("databases after restart: %d (%v)", n, err)
	}
}

// TestProvisionFailureCleansUp: a provision that cannot succeed fails with a
// clear error, leaves the project failed, removes the role it made, and never
// touches an object it did not create.
func TestProvisionFailureCleansUp(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--workers", "1")
	ctx := context.Background()
	admin := s.admin("postgres")

	created := s.must(202, "POST", "/v1/projects", map[string]any{"name": "a", "environment": "non_production"})
	if j := s.waitJob(created.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("project A: %v", j)
	}
	b := s.failOneProvision(t, created.str("project", "id"), "b")
	dbB, roleB := b.str("project", "database_name"), b.str("project", "role_name")
	job := s.waitJob(b.str("job", "id"))
	if job["state"] != "failed" || job["retry_classification"] != "permanent" || job["attempts"].(float64) != 1 ||
		!strings.Contains(job["error"].(string), "already exists and belongs to capydb_admin") {
		t.Fatalf("job B: %v", job)
	}
	p := s.must(200, "GET", "/v1/projects/"+b.str("project", "id"), nil)
	if p.str("project", "state") != "failed" || !strings.Contains(p.str("project", "last_error"), "already exists") {
		t.Fatalf("project B: %s", p.Raw)
	}
	var roleLeft, dbLeft bool
	_ = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, roleB).Scan(&roleLeft)
	_ = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, dbB).Scan(&dbLeft)
	if roleLeft {
		t.Error("the failed provision left its role behind")
	}
	if !dbLeft {
		t.Error("the failed provision dropped a database it did not create")
	}
	if ev := s.eventTypes(t); ev["job.failed"] != 1 {
		t.Errorf("job.failed events: %d", ev["job.failed"])
	}
	// A failed project can be deleted.
	d := s.must(202, "DELETE", "/v1/projects/"+b.str("project", "id"), nil)
	if j := s.waitJob(d.str("job", "id")); j["state"] != "completed" {
		t.Fatalf("deleting the failed project: %v", j)
	}
}
