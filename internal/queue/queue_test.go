package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/queue"
)

// hookHandler is a Handler and a Finisher whose hooks write a marker row in
// the completion transaction (and count their calls).
type hookHandler struct {
	run func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error)

	runs      atomic.Int32
	completes atomic.Int32
	fails     atomic.Int32
	// failCompletes makes that many OnComplete calls return an error after
	// writing their marker (which must then be rolled back).
	failCompletes atomic.Int32
}

func (h *hookHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	h.runs.Add(1)
	return h.run(ctx, j, rep)
}

func (h *hookHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, result any) error {
	h.completes.Add(1)
	b, _ := json.Marshal(result)
	if _, err := tx.Exec(ctx, `INSERT INTO hook_markers (job_id, hook, detail) VALUES ($1, 'complete', $2)`, j.ID, string(b)); err != nil {
		return err
	}
	if h.failCompletes.Add(-1) >= 0 {
		return errors.New("OnComplete failed on purpose")
	}
	return nil
}

func (h *hookHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, errMsg string) error {
	h.fails.Add(1)
	_, err := tx.Exec(ctx, `INSERT INTO hook_markers (job_id, hook, detail) VALUES ($1, 'fail', $2)`, j.ID, errMsg)
	return err
}

var _ queue.Finisher = (*hookHandler)(nil)

// 1. Four workers racing for 300 jobs run each exactly once.
func TestConcurrentWorkersRunEachJobOnce(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ, n = "test.once", 300

	var mu sync.Mutex
	runs := map[string]int{}
	ranBy := map[string]string{}
	workerIDs := []string{"once-w1", "once-w2", "once-w3", "once-w4"}
	var rws []*runningWorker
	for i, id := range workerIDs {
		h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			mu.Lock()
			runs[j.ID]++
			ranBy[j.ID] = id
			mu.Unlock()
			var p struct {
				N int `json:"n"`
			}
			if err := j.DecodePayload(&p); err != nil {
				return nil, queue.PermanentError(err)
			}
			time.Sleep(time.Millisecond) // long enough that one worker cannot drain the queue alone
			return map[string]int{"n": p.N}, nil
		})
		pool := st.Pool // workers 1 and 3 share the store's pool, 2 and 4 have their own
		if i%2 == 1 {
			pool = openPool(t, st)
		}
		cfg := fastConfig(t, id)
		cfg.Concurrency = 8
		rws = append(rws, startWorker(t, pool, cfg, map[string]queue.Handler{typ: h}))
	}

	// One transaction, one NOTIFY at commit: all four workers wake at once.
	want := map[string]int{}
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		for i := range n {
			j, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: typ, OrganizationID: testOrg, Payload: map[string]int{"n": i}})
			if err != nil {
				return err
			}
			want[j.ID] = i
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != n {
		t.Fatalf("enqueued %d distinct ids, want %d", len(want), n)
	}

	clustertest.Eventually(t, 40*time.Second, "all jobs to complete", func() (bool, error) {
		var done int
		err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE type = $1 AND state = 'completed'`, typ).Scan(&done)
		return done == n, err
	})
	for _, rw := range rws {
		rw.stop(t)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n {
		t.Errorf("handler saw %d distinct jobs, want %d", len(runs), n)
	}
	for id, c := range runs {
		if c != 1 {
			t.Errorf("job %s ran %d times", id, c)
		}
	}
	perWorker := map[string]int{}
	for id, nth := range want {
		j := getJob(t, st.Pool, id)
		if j.State != queue.StateCompleted || j.Attempts != 1 || j.CompletedAt == nil || j.Error != nil ||
			j.RetryClassification != "" || j.LeaseExpiresAt != nil {
			t.Errorf("job %s: state %s attempts %d completed_at %v error %v class %q lease %v",
				id, j.State, j.Attempts, j.CompletedAt, j.Error, j.RetryClassification, j.LeaseExpiresAt)
		}
		by := deref(j.ClaimedBy)
		if !slices.Contains(workerIDs, by) {
			t.Errorf("job %s claimed_by %q, not one of %v", id, by, workerIDs)
		}
		if by != ranBy[id] {
			t.Errorf("job %s claimed_by %q but ran in %q", id, by, ranBy[id])
		}
		perWorker[by]++
		var res struct {
			N int `json:"n"`
		}
		if err := json.Unmarshal(j.Result, &res); err != nil || res.N != nth {
			t.Errorf("job %s result %s, want n=%d (%v)", id, j.Result, nth, err)
		}
		if j.CompletedAt != nil && j.ClaimedAt != nil && j.CompletedAt.Before(*j.ClaimedAt) {
			t.Errorf("job %s completed_at %v before claimed_at %v", id, j.CompletedAt, j.ClaimedAt)
		}
	}
	t.Logf("jobs per worker: %v", perWorker)
	if len(perWorker) < 2 {
		t.Errorf("only %d worker(s) ran jobs (%v): the claims were not concurrent", len(perWorker), perWorker)
	}

	// Exactly one job.completed event per job, and none for anything else.
	rows, err := st.Pool.Query(ctx, `SELECT data->>'job_id', count(*), min(data->>'state'), min(data->>'job_type')
		FROM events WHERE type = 'job.completed' AND organization_id = $1 GROUP BY 1`, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	type evc struct {
		id, state, typ string
		n              int
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (evc, error) {
		var e evc
		return e, r.Scan(&e.id, &e.n, &e.state, &e.typ)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Errorf("%d jobs have a job.completed event, want %d", len(evs), n)
	}
	for _, e := range evs {
		if _, ok := want[e.id]; !ok || e.n != 1 || e.state != queue.StateCompleted || e.typ != typ {
			t.Errorf("job.completed events for %s: count %d state %q type %q (known job: %v)", e.id, e.n, e.state, e.typ, ok)
		}
	}
	var failedEvents int
	if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'job.failed'`).Scan(&failedEvents); err != nil || failedEvents != 0 {
		t.Errorf("job.failed events = %d (%v), want 0", failedEvents, err)
	}
}

// 2. Jobs on one locked resource never overlap; jobs on different ones do.
func TestLockedResourceSerializesJobs(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ, perResource = "test.locked", 40

	var running, maxRunning [2]atomic.Int32
	var overlapped atomic.Bool
	var total atomic.Int32
	idx := func(res string) int {
		if res == "project:A" {
			return 0
		}
		return 1
	}
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		me := idx(deref(j.LockedResource))
		other := 1 - me
		cur := running[me].Add(1)
		defer running[me].Add(-1)
		for {
			m := maxRunning[me].Load()
			if cur <= m || maxRunning[me].CompareAndSwap(m, cur) {
				break
			}
		}
		total.Add(1)
		if running[other].Load() > 0 {
			overlapped.Store(true)
		}
		time.Sleep(10 * time.Millisecond)
		if running[other].Load() > 0 {
			overlapped.Store(true)
		}
		return nil, nil
	})
	for i := range 3 {
		cfg := fastConfig(t, fmt.Sprintf("locked-w%d", i+1))
		cfg.Concurrency = 8
		startWorker(t, openPool(t, st), cfg, map[string]queue.Handler{typ: h})
	}

	ids := map[string]string{}
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		for i := range 2 * perResource {
			res := []string{"project:A", "project:B"}[i%2]
			j, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: typ, OrganizationID: testOrg, LockedResource: res})
			if err != nil {
				return err
			}
			ids[j.ID] = res
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 40*time.Second, "all locked jobs to complete", func() (bool, error) {
		var done int
		err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE type = $1 AND state = 'completed'`, typ).Scan(&done)
		return done == 2*perResource, err
	})

	if got := total.Load(); got != 2*perResource {
		t.Errorf("handler ran %d times, want %d", got, 2*perResource)
	}
	for i, res := range []string{"project:A", "project:B"} {
		if m := maxRunning[i].Load(); m != 1 {
			t.Errorf("max concurrent jobs on %s = %d, want exactly 1", res, m)
		}
	}
	if !overlapped.Load() {
		t.Error("jobs on project:A and project:B never ran at the same time: no parallelism across resources")
	}
	for id, res := range ids {
		j := getJob(t, st.Pool, id)
		if j.State != queue.StateCompleted || j.Attempts != 1 || deref(j.LockedResource) != res {
			t.Errorf("job %s: state %s attempts %d locked_resource %q (want completed, 1, %q)",
				id, j.State, j.Attempts, deref(j.LockedResource), res)
		}
	}
}

// 3a. A worker that dies mid-job (its heartbeat stops) loses the job to
// another worker once the lease has run out, not before.
func TestDeadWorkersJobReclaimedAfterLease(t *testing.T) {
	// Not parallel: it measures sub-second timings, which other tests' load would blur.
	st := newDB(t)
	ctx := ctxT(t)
	const typ = "test.reclaim"

	started := make(chan struct{}, 1)
	blocking := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	cfgA := fastConfig(t, "reclaim-A")
	cfgA.LeaseDuration = time.Second
	cfgA.HeartbeatInterval = 300 * time.Millisecond
	a := startWorker(t, st.Pool, cfgA, map[string]queue.Handler{typ: blocking})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("worker A never started the job")
	}
	// The heartbeat must be renewing A's lease: wait for a renewal.
	clustertest.Eventually(t, 10*time.Second, "worker A's heartbeat to renew the lease", func() (bool, error) {
		var renewed bool
		err := st.Pool.QueryRow(ctx, `SELECT lease_expires_at > claimed_at + interval '1100 milliseconds'
			FROM jobs WHERE id = $1`, j.ID).Scan(&renewed)
		return renewed, err
	})

	// "Kill" A: its Run context ends, its heartbeat stops, the job is left running.
	a.stop(t)
	dead := getJob(t, st.Pool, j.ID)
	if dead.State != queue.StateRunning || deref(dead.ClaimedBy) != "reclaim-A" || dead.Attempts != 1 || dead.LeaseExpiresAt == nil {
		t.Fatalf("after A died: state %s claimed_by %q attempts %d lease %v (want running, reclaim-A, 1, set)",
			dead.State, deref(dead.ClaimedBy), dead.Attempts, dead.LeaseExpiresAt)
	}
	leaseA := *dead.LeaseExpiresAt

	var seen atomic.Pointer[queue.Job]
	completing := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		cp := *j
		seen.Store(&cp)
		return map[string]string{"by": "B"}, nil
	})
	cfgB := fastConfig(t, "reclaim-B")
	cfgB.LeaseDuration = time.Second
	cfgB.HeartbeatInterval = 300 * time.Millisecond
	startWorker(t, st.Pool, cfgB, map[string]queue.Handler{typ: completing})

	done := waitJobState(t, st.Pool, j.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if done.State != queue.StateCompleted || deref(done.ClaimedBy) != "reclaim-B" || done.Attempts != 2 || done.CompletedAt == nil {
		t.Fatalf("job: state %s claimed_by %q attempts %d completed_at %v (want completed by reclaim-B, attempts 2)",
			done.State, deref(done.ClaimedBy), done.Attempts, done.CompletedAt)
	}
	if done.ClaimedAt == nil || done.ClaimedAt.Before(leaseA) {
		t.Errorf("worker B claimed the job at %v, before A's lease expired at %v", done.ClaimedAt, leaseA)
	}
	if string(done.Result) != `{"by": "B"}` && string(done.Result) != `{"by":"B"}` {
		t.Errorf("result = %s", done.Result)
	}
	// B's attempt saw the reaper's verdict on A's attempt.
	sj := seen.Load()
	if sj == nil {
		t.Fatal("worker B's handler never ran")
	}
	if sj.Attempts != 2 || sj.RetryClassification != queue.Transient ||
		!strings.Contains(deref(sj.Error), "reclaim-A stopped responding (lease expired)") {
		t.Errorf("B's handler saw attempts %d class %q error %q", sj.Attempts, sj.RetryClassification, deref(sj.Error))
	}
	if sj.ClaimedAt == nil || sj.ClaimedAt.Before(leaseA) {
		t.Errorf("B's attempt claimed at %v, before A's lease expiry %v", sj.ClaimedAt, leaseA)
	}
	if evs := jobEvents(t, st.Pool, "job.completed", j.ID); len(evs) != 1 {
		t.Errorf("job.completed events = %v, want 1", evs)
	}
}

// 3b. Reap directly: an expired lease on the last attempt fails the job for
// good; on an earlier attempt it goes back to pending; a live lease is untouched.
func TestReap(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ = "test.reap"
	h := &hookHandler{run: func(context.Context, *queue.Job, *queue.Reporter) (any, error) { return nil, nil }}
	w := queue.NewWorker(st.Pool, fastConfig(t, "reaper"), map[string]queue.Handler{typ: h})

	exhausted := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	retry := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	alive := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	set := func(id string, attempts int, lease string) {
		t.Helper()
		if _, err := st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = $2, claimed_by = 'ghost-worker',
			claimed_at = now() - interval '10 seconds', started_at = now() - interval '10 seconds',
			lease_expires_at = now() + $3::interval WHERE id = $1`, id, attempts, lease); err != nil {
			t.Fatal(err)
		}
	}
	set(exhausted.ID, 3, "-1 second")
	set(retry.ID, 1, "-1 second")
	set(alive.ID, 3, "1 hour")

	n, err := w.Reap(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Reap = %d, %v; want 2, nil", n, err)
	}

	f := getJob(t, st.Pool, exhausted.ID)
	if f.State != queue.StateFailed || f.RetryClassification != queue.Permanent || f.Attempts != 3 ||
		f.CompletedAt == nil || f.LeaseExpiresAt != nil {
		t.Errorf("exhausted job: state %s class %q attempts %d completed_at %v lease %v",
			f.State, f.RetryClassification, f.Attempts, f.CompletedAt, f.LeaseExpiresAt)
	}
	wantMsg := "worker ghost-worker stopped responding (lease expired) (will not be retried: attempts exhausted)"
	if deref(f.Error) != wantMsg {
		t.Errorf("exhausted job error = %q, want %q", deref(f.Error), wantMsg)
	}
	evs := jobEvents(t, st.Pool, "job.failed", exhausted.ID)
	if len(evs) != 1 || evs[0].State != queue.StateFailed || evs[0].Error != wantMsg || evs[0].JobType != typ || evs[0].OrgID != testOrg {
		t.Errorf("job.failed events = %+v", evs)
	}
	if got := markers(t, st.Pool, exhausted.ID); !slices.Equal(got, []string{"fail: " + wantMsg}) || h.fails.Load() != 1 {
		t.Errorf("OnFail markers = %q, calls %d; want one", got, h.fails.Load())
	}

	r := getJob(t, st.Pool, retry.ID)
	var runnable bool
	if err := st.Pool.QueryRow(ctx, `SELECT run_at <= now() FROM jobs WHERE id = $1`, retry.ID).Scan(&runnable); err != nil {
		t.Fatal(err)
	}
	if r.State != queue.StatePending || r.RetryClassification != queue.Transient || r.Attempts != 1 ||
		deref(r.Error) != "worker ghost-worker stopped responding (lease expired)" || r.LeaseExpiresAt != nil ||
		r.CompletedAt != nil || !runnable {
		t.Errorf("retried job: state %s class %q attempts %d error %q lease %v completed_at %v runnable %v",
			r.State, r.RetryClassification, r.Attempts, deref(r.Error), r.LeaseExpiresAt, r.CompletedAt, runnable)
	}
	if evs := jobEvents(t, st.Pool, "job.failed", retry.ID); len(evs) != 0 {
		t.Errorf("retried job has job.failed events %+v", evs)
	}
	if got := markers(t, st.Pool, retry.ID); len(got) != 0 {
		t.Errorf("retried job has markers %q", got)
	}

	if a := getJob(t, st.Pool, alive.ID); a.State != queue.StateRunning || a.Error != nil || deref(a.ClaimedBy) != "ghost-worker" {
		t.Errorf("job with a live lease: state %s error %v claimed_by %q", a.State, a.Error, deref(a.ClaimedBy))
	}
	if n, err := w.Reap(ctx); err != nil || n != 0 {
		t.Errorf("second Reap = %d, %v; want 0, nil", n, err)
	}
	if h.runs.Load() != 0 || h.completes.Load() != 0 {
		t.Errorf("Reap ran the handler (%d) or OnComplete (%d)", h.runs.Load(), h.completes.Load())
	}
}
