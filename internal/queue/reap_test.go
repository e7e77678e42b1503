package queue_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/queue"
)

// 3c. The reaper works in batches of ReapBatch jobs, one transaction each:
// 25 expired leases (every fifth on its last attempt) with a batch of 10
// are settled in batches of 10, 10 and 5, each job exactly as a one-by-one
// reap would have (pending with a transient error, or failed with its
// OnFail hook and job.failed event), and a running worker's reap loop is
// seen through its test signal instead of by polling.
func TestReapInBatches(t *testing.T) {
	st := newDB(t)
	ctx := ctxT(t)
	const typ = "test.reap.batch"
	h := &hookHandler{run: func(context.Context, *queue.Job, *queue.Reporter) (any, error) { return nil, nil }}
	cfg := fastConfig(t, "batch-reaper")
	cfg.ReapBatch = 10
	w := queue.NewWorker(st.Pool, cfg, map[string]queue.Handler{typ: h})
	w.TestSignals.ReapedBatch.Arm()

	var final, retried []string
	for i := range 25 {
		j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
		attempts := 1
		if i%5 == 0 {
			attempts = 3
			final = append(final, j.ID)
		} else {
			retried = append(retried, j.ID)
		}
		if _, err := st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = $2, claimed_by = 'ghost-worker',
			claimed_at = now() - interval '10 seconds', started_at = now() - interval '10 seconds',
			lease_expires_at = now() - interval '1 second' - $3 * interval '1 millisecond' WHERE id = $1`, j.ID, attempts, i); err != nil {
			t.Fatal(err)
		}
	}
	n, err := w.Reap(ctx)
	if err != nil || n != 25 {
		t.Fatalf("Reap = %d, %v; want 25, nil", n, err)
	}
	var batches []int
	for range 3 {
		b, err := w.TestSignals.ReapedBatch.Wait(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	if !slices.Equal(batches, []int{10, 10, 5}) {
		t.Errorf("batches = %v, want [10 10 5]", batches)
	}
	const msg = "worker ghost-worker stopped responding (lease expired)"
	for _, id := range final {
		f := getJob(t, st.Pool, id)
		want := msg + " (will not be retried: attempts exhausted)"
		if f.State != queue.StateFailed || f.RetryClassification != queue.Permanent || deref(f.Error) != want || f.CompletedAt == nil {
			t.Errorf("final job %s: state %s class %q error %q", id, f.State, f.RetryClassification, deref(f.Error))
		}
		if got := markers(t, st.Pool, id); !slices.Equal(got, []string{"fail: " + want}) {
			t.Errorf("final job %s markers %q", id, got)
		}
		if evs := jobEvents(t, st.Pool, "job.failed", id); len(evs) != 1 || evs[0].Error != want {
			t.Errorf("final job %s events %+v", id, evs)
		}
	}
	for _, id := range retried {
		r := getJob(t, st.Pool, id)
		if r.State != queue.StatePending || r.RetryClassification != queue.Transient || deref(r.Error) != msg ||
			r.CompletedAt != nil || r.LeaseExpiresAt != nil {
			t.Errorf("retried job %s: state %s class %q error %q", id, r.State, r.RetryClassification, deref(r.Error))
		}
	}
	if h.fails.Load() != int32(len(final)) || h.runs.Load() != 0 {
		t.Errorf("OnFail calls %d (want %d), runs %d", h.fails.Load(), len(final), h.runs.Load())
	}

	// A running worker reaps on its own: wait for the batch, not for the rows.
	rw := queue.NewWorker(st.Pool, cfg, map[string]queue.Handler{"test.other": h})
	rw.TestSignals.ReapedBatch.Arm() // before Run: signals are not armed while in use
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rw.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	ghost := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	if _, err := st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = 1, claimed_by = 'ghost-worker',
		lease_expires_at = now() - interval '1 second' WHERE id = $1`, ghost.ID); err != nil {
		t.Fatal(err)
	}
	for {
		b, err := rw.TestSignals.ReapedBatch.Wait(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if b == 1 {
			break
		}
	}
	if g := getJob(t, st.Pool, ghost.ID); g.State != queue.StatePending || deref(g.Error) != msg {
		t.Errorf("job reaped by the loop: state %s error %q", g.State, deref(g.Error))
	}
}
