package queue_test

import (
	"testing"

	"github.com/capydb/capydb/internal/queue"
)

// A claim that committed while its answer was lost (a control-database
// failover) leaves a job 'running' for a worker that never got it. The
// worker gives it back without counting the attempt; a job it did receive
// is left alone, and so is another worker's.
func TestReleaseInDoubtClaims(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	w := queue.NewWorker(st.Pool, fastConfig(t, "indoubt-w"), map[string]queue.Handler{})
	lost := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.indoubt", MaxAttempts: 3})
	held := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.indoubt", MaxAttempts: 3})
	other := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.indoubt", MaxAttempts: 3})
	for id, by := range map[string]string{lost.ID: "indoubt-w", held.ID: "indoubt-w", other.ID: "someone-else"} {
		if _, err := st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = 1, claimed_by = $2,
			claimed_at = now(), lease_expires_at = now() + interval '30 seconds' WHERE id = $1`, id, by); err != nil {
			t.Fatal(err)
		}
	}
	w.MarkClaimed(held.ID)
	if err := w.ReleaseInDoubt(ctx); err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, st.Pool, lost.ID); j.State != queue.StatePending || j.Attempts != 0 || j.ClaimedBy != nil || j.LeaseExpiresAt != nil {
		t.Errorf("in-doubt job: state %s attempts %d claimed_by %v lease %v; want pending, 0, nil, nil",
			j.State, j.Attempts, j.ClaimedBy, j.LeaseExpiresAt)
	}
	for _, id := range []string{held.ID, other.ID} {
		if j := getJob(t, st.Pool, id); j.State != queue.StateRunning || j.Attempts != 1 {
			t.Errorf("job %s: state %s attempts %d; want running, 1", id, j.State, j.Attempts)
		}
	}
}
