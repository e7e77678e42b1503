package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// holdWorker keeps a server started with --workers 1 busy until release:
// it holds the pooler lock and rotates heldProject's credentials, a job that
// syncs the pooler inside it (provisioning no longer waits for that lock),
// so every job queued meanwhile stays pending. release lets the rotation
// finish and waits for it.
func (s *server) holdWorker(t *testing.T, heldProject string) (release func()) {
	t.Helper()
	ctx := context.Background()
	lock := s.admin("postgres")
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(hashtext('capydb.pooler'))`); err != nil {
		t.Fatal(err)
	}
	rot := s.must(202, "POST", "/v1/projects/"+heldProject+"/credentials/rotate", map[string]any{})
	clustertest.Eventually(t, 20*time.Second, "the worker held on a rotation", func() bool {
		return s.must(200, "GET", "/v1/jobs/"+rot.str("job", "id"), nil).str("job", "state") == "running"
	})
	return func() {
		t.Helper()
		if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('capydb.pooler'))`); err != nil {
			t.Fatal(err)
		}
		if j := s.waitJob(rot.str("job", "id")); j["state"] != "completed" {
			t.Fatalf("the holding rotation: %v", j)
		}
	}
}

// failOneProvision makes one provisioning job fail for good: with the only
// worker held on another project, someone else takes the database name. It
// returns the POST /v1/projects answer of the doomed project.
func (s *server) failOneProvision(t *testing.T, heldProject, name string) response {
	t.Helper()
	release := s.holdWorker(t, heldProject)
	b := s.must(202, "POST", "/v1/projects", map[string]any{"name": name, "environment": "non_production"})
	if _, err := s.admin("postgres").Exec(context.Background(), `CREATE DATABASE "`+b.str("project", "database_name")+`"`); err != nil {
		t.Fatal(err)
	}
	release()
	if j := s.waitJob(b.str("job", "id")); j["state"] != "failed" {
		t.Fatalf("the doomed provision did not fail: %v", j)
	}
	return b
}
