package queue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// TestJobReads covers the jobs-table reads lifecycle uses instead of its own
// SQL: the active job of a preview and the running jobs of a project.
func TestJobReads(t *testing.T) {
	ctx := context.Background()
	st := newDB(t)
	if _, err := queue.ActivePreviewJob(ctx, st.Pool, "pvw_x", "branch.delete"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no job yet: %v", err)
	}
	del, err := queue.Enqueue(ctx, st.Pool, queue.EnqueueParams{Type: "branch.delete", OrganizationID: testOrg,
		ProjectID: "prj_x", PreviewID: "pvw_x"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := queue.ActivePreviewJob(ctx, st.Pool, "pvw_x", "branch.delete")
	if err != nil || got.ID != del.ID {
		t.Fatalf("active preview job: %v, %v", got, err)
	}
	types := []string{"branch.create", "branch.delete"}
	if n, err := queue.CountRunning(ctx, st.Pool, "prj_x", types); err != nil || n != 0 {
		t.Fatalf("running before claim: %d, %v", n, err)
	}
	if _, err := st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running' WHERE id = $1`, del.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := queue.CountRunning(ctx, st.Pool, "prj_x", types); err != nil || n != 1 {
		t.Fatalf("running after claim: %d, %v", n, err)
	}
	if n, err := queue.CountRunning(ctx, st.Pool, "prj_x", []string{"project.delete"}); err != nil || n != 0 {
		t.Fatalf("running of another type: %d, %v", n, err)
	}
}
