package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/queue"
)

// A worker scoped to a cluster claims only that cluster's jobs, a
// cluster-free worker only the jobs of no cluster; a third cluster's jobs
// wait untouched, and neither reaps that cluster's expired leases.
func TestScopeConfinesClaimsAndReaps(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ = "test.scope"
	var mu sync.Mutex
	ranBy := map[string]string{}
	handler := func(id string) map[string]queue.Handler {
		return map[string]queue.Handler{typ: queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			mu.Lock()
			ranBy[j.ID] = id
			mu.Unlock()
			return nil, nil
		})}
	}
	want := map[string]string{}
	var waiting []string
	for range 4 {
		want[enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, ClusterID: "cl_scope_a"}).ID] = "scope-node-a"
		want[enqueue(t, st.Pool, queue.EnqueueParams{Type: typ}).ID] = "scope-control"
		waiting = append(waiting, enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, ClusterID: "cl_scope_b"}).ID)
	}
	// A job of cluster b that a dead node left running with an expired lease.
	stale := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, ClusterID: "cl_scope_b"})
	if _, err := st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = 1, claimed_by = 'gone:1',
		lease_expires_at = now() - interval '1 minute' WHERE id = $1`, stale.ID); err != nil {
		t.Fatal(err)
	}

	cfgA := fastConfig(t, "scope-node-a")
	cfgA.Scope = queue.Scope{Clusters: []string{"cl_scope_a"}}
	cfgC := fastConfig(t, "scope-control")
	cfgC.Scope = queue.Scope{ClusterFree: true}
	startWorker(t, st.Pool, cfgA, handler("scope-node-a"))
	startWorker(t, st.Pool, cfgC, handler("scope-control"))
	for id := range want {
		waitJobState(t, st.Pool, id, 20*time.Second, queue.StateCompleted)
	}
	time.Sleep(500 * time.Millisecond) // several polls and reaps of both workers
	mu.Lock()
	for id, w := range want {
		if ranBy[id] != w {
			t.Errorf("job %s ran on %q, want %q", id, ranBy[id], w)
		}
	}
	for _, id := range waiting {
		if by, ok := ranBy[id]; ok {
			t.Errorf("cluster b's job %s ran on %s", id, by)
		}
	}
	mu.Unlock()
	for _, id := range waiting {
		if j := getJob(t, st.Pool, id); j.State != queue.StatePending || j.Attempts != 0 {
			t.Errorf("cluster b's job %s: state %s attempts %d, want pending and untouched", id, j.State, j.Attempts)
		}
	}
	if j := getJob(t, st.Pool, stale.ID); j.State != queue.StateRunning {
		t.Errorf("cluster b's expired lease was reaped by another cluster's worker: state %s", j.State)
	}
	// The zero Scope is the whole queue (a single machine's old behaviour).
	if !(queue.Scope{}).All() || (queue.Scope{ClusterFree: true}).All() {
		t.Error("Scope.All is wrong")
	}
}
