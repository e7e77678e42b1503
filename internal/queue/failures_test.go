package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/runner"
)

// 4a. A plain error is transient: back to pending with a backoff.
func TestTransientErrorRetriesLater(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ = "test.transient"
	h := &hookHandler{run: func(context.Context, *queue.Job, *queue.Reporter) (any, error) {
		return nil, errors.New("connection reset by peer")
	}}
	cfg := fastConfig(t, "transient-w")
	cfg.BackoffBase = 5 * time.Second // long enough to look at the pending state
	cfg.BackoffMax = time.Minute
	startWorker(t, st.Pool, cfg, map[string]queue.Handler{typ: h})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	var got *queue.Job
	clustertest.Eventually(t, 20*time.Second, "the first attempt to fail", func() (bool, error) {
		var err error
		got, err = queue.GetAny(ctx, st.Pool, j.ID)
		return err == nil && got.Attempts == 1 && got.State == queue.StatePending, err
	})
	if got.RetryClassification != queue.Transient || deref(got.Error) != "connection reset by peer" ||
		got.LeaseExpiresAt != nil || got.CompletedAt != nil || deref(got.ClaimedBy) != "transient-w" {
		t.Errorf("after a transient failure: class %q error %q lease %v completed_at %v claimed_by %q",
			got.RetryClassification, deref(got.Error), got.LeaseExpiresAt, got.CompletedAt, deref(got.ClaimedBy))
	}
	// run_at = now() + backoff and updated_at = now() in the same statement.
	var delayUS int64
	var inFuture bool
	if err := st.Pool.QueryRow(ctx, `SELECT (extract(epoch FROM run_at - updated_at) * 1e6)::bigint, run_at > now()
		FROM jobs WHERE id = $1`, j.ID).Scan(&delayUS, &inFuture); err != nil {
		t.Fatal(err)
	}
	delay := time.Duration(delayUS) * time.Microsecond
	if delay < 4*time.Second || delay > 6*time.Second || !inFuture {
		t.Errorf("retry scheduled %v after the failure (in the future: %v), want 5s ±20%%", delay, inFuture)
	}
	if h.runs.Load() != 1 || h.fails.Load() != 0 || h.completes.Load() != 0 {
		t.Errorf("runs %d OnFail %d OnComplete %d; want 1, 0, 0", h.runs.Load(), h.fails.Load(), h.completes.Load())
	}
	if evs := jobEvents(t, st.Pool, "job.failed", j.ID); len(evs) != 0 {
		t.Errorf("a transient failure wrote job.failed: %+v", evs)
	}
	if m := markers(t, st.Pool, j.ID); len(m) != 0 {
		t.Errorf("markers %q after a transient failure", m)
	}
}

// 4b. A permanent error fails the job at once and runs OnFail once, in the
// failing transaction.
func TestPermanentErrorFailsAtOnce(t *testing.T) {
	st := parallelDB(t)
	const typ = "test.permanent"
	h := &hookHandler{run: func(context.Context, *queue.Job, *queue.Reporter) (any, error) {
		return nil, queue.PermanentError(fmt.Errorf("bad config: %w", errors.New("no such extension")))
	}}
	startWorker(t, st.Pool, fastConfig(t, "permanent-w"), map[string]queue.Handler{typ: h})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 5})
	f := waitJobState(t, st.Pool, j.ID, 20*time.Second, queue.StateFailed, queue.StateCompleted)
	const msg = "bad config: no such extension"
	if f.State != queue.StateFailed || f.Attempts != 1 || f.RetryClassification != queue.Permanent ||
		f.CompletedAt == nil || deref(f.Error) != msg || f.LeaseExpiresAt != nil {
		t.Errorf("job: state %s attempts %d class %q completed_at %v error %q lease %v",
			f.State, f.Attempts, f.RetryClassification, f.CompletedAt, deref(f.Error), f.LeaseExpiresAt)
	}
	if h.runs.Load() != 1 || h.fails.Load() != 1 || h.completes.Load() != 0 {
		t.Errorf("runs %d OnFail %d OnComplete %d; want 1, 1, 0", h.runs.Load(), h.fails.Load(), h.completes.Load())
	}
	if m := markers(t, st.Pool, j.ID); !slices.Equal(m, []string{"fail: " + msg}) {
		t.Errorf("markers = %q", m)
	}
	evs := jobEvents(t, st.Pool, "job.failed", j.ID)
	if len(evs) != 1 || evs[0].Error != msg || evs[0].State != queue.StateFailed || evs[0].JobType != typ {
		t.Errorf("job.failed events = %+v", evs)
	}
	if evs := jobEvents(t, st.Pool, "job.completed", j.ID); len(evs) != 0 {
		t.Errorf("job.completed events = %+v", evs)
	}
}

// 4c. A transient failure on the last attempt is final.
func TestTransientErrorOnLastAttemptFails(t *testing.T) {
	st := parallelDB(t)
	const typ = "test.exhausted"
	h := &hookHandler{run: func(context.Context, *queue.Job, *queue.Reporter) (any, error) {
		return nil, errors.New("timeout")
	}}
	startWorker(t, st.Pool, fastConfig(t, "exhausted-w"), map[string]queue.Handler{typ: h})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 2})
	f := waitJobState(t, st.Pool, j.ID, 20*time.Second, queue.StateFailed, queue.StateCompleted)
	const msg = "timeout (will not be retried: attempts exhausted)"
	if f.State != queue.StateFailed || f.Attempts != 2 || f.RetryClassification != queue.Permanent ||
		deref(f.Error) != msg || f.CompletedAt == nil {
		t.Errorf("job: state %s attempts %d class %q error %q completed_at %v",
			f.State, f.Attempts, f.RetryClassification, deref(f.Error), f.CompletedAt)
	}
	if h.runs.Load() != 2 || h.fails.Load() != 1 || h.completes.Load() != 0 {
		t.Errorf("runs %d OnFail %d OnComplete %d; want 2, 1, 0", h.runs.Load(), h.fails.Load(), h.completes.Load())
	}
	if m := markers(t, st.Pool, j.ID); !slices.Equal(m, []string{"fail: " + msg}) {
		t.Errorf("markers = %q", m)
	}
	if evs := jobEvents(t, st.Pool, "job.failed", j.ID); len(evs) != 1 || evs[0].Error != msg {
		t.Errorf("job.failed events = %+v", evs)
	}
}

// 4d. OnComplete runs in the completion transaction: its write commits with
// the job's state and the job.completed event.
func TestOnCompleteCommitsWithJob(t *testing.T) {
	st := parallelDB(t)
	const typ = "test.complete.hook"
	h := &hookHandler{run: func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		return map[string]string{"db": "appdb"}, nil
	}}
	startWorker(t, st.Pool, fastConfig(t, "complete-w"), map[string]queue.Handler{typ: h})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ})
	c := waitJobState(t, st.Pool, j.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if c.State != queue.StateCompleted || c.Attempts != 1 || c.Error != nil {
		t.Fatalf("job: state %s attempts %d error %q", c.State, c.Attempts, deref(c.Error))
	}
	if m := markers(t, st.Pool, j.ID); !slices.Equal(m, []string{`complete: {"db":"appdb"}`}) {
		t.Errorf("markers = %q", m)
	}
	if h.completes.Load() != 1 || h.fails.Load() != 0 {
		t.Errorf("OnComplete %d OnFail %d; want 1, 0", h.completes.Load(), h.fails.Load())
	}
	if evs := jobEvents(t, st.Pool, "job.completed", j.ID); len(evs) != 1 || evs[0].State != queue.StateCompleted {
		t.Errorf("job.completed events = %+v", evs)
	}
}

// 4e. When OnComplete fails, its write, the job's completion and the event
// all roll back; the job is retried and completes once.
func TestOnCompleteErrorRollsBack(t *testing.T) {
	st := parallelDB(t)
	const typ = "test.complete.rollback"
	h := &hookHandler{run: func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		return j.Attempts, nil
	}}
	h.failCompletes.Store(1)
	cfg := fastConfig(t, "rollback-w")
	cfg.LeaseDuration = time.Second
	cfg.HeartbeatInterval = 300 * time.Millisecond
	startWorker(t, st.Pool, cfg, map[string]queue.Handler{typ: h})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	c := waitJobState(t, st.Pool, j.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if c.State != queue.StateCompleted || c.Attempts != 2 || string(c.Result) != "2" {
		t.Fatalf("job: state %s attempts %d result %s error %q; want completed on attempt 2",
			c.State, c.Attempts, c.Result, deref(c.Error))
	}
	if h.completes.Load() != 2 || h.runs.Load() != 2 {
		t.Errorf("OnComplete calls %d runs %d; want 2, 2", h.completes.Load(), h.runs.Load())
	}
	// Only the second (committed) OnComplete's marker survives.
	if m := markers(t, st.Pool, j.ID); !slices.Equal(m, []string{"complete: 2"}) {
		t.Errorf("markers = %q, want only the committed attempt's", m)
	}
	if evs := jobEvents(t, st.Pool, "job.completed", j.ID); len(evs) != 1 {
		t.Errorf("job.completed events = %+v, want 1", evs)
	}
}

func TestIsPermanent(t *testing.T) {
	base := errors.New("no such role")
	p := queue.PermanentError(base)
	if !queue.IsPermanent(p) || !queue.IsPermanent(fmt.Errorf("step 2: %w", p)) {
		t.Error("PermanentError (wrapped or not) is not permanent")
	}
	if queue.IsPermanent(base) || queue.IsPermanent(fmt.Errorf("x: %w", base)) || queue.IsPermanent(nil) {
		t.Error("plain errors must be transient")
	}
	if p.Error() != "no such role" || !errors.Is(p, base) {
		t.Errorf("PermanentError changed the message (%q) or lost the cause", p.Error())
	}
	if queue.PermanentError(nil) != nil {
		t.Error("PermanentError(nil) != nil")
	}
}

// 5b. The gaps between attempts of a transiently failing job grow about ×2.
func TestBackoffBetweenAttemptsGrows(t *testing.T) {
	// Not parallel: it measures sub-second timings, which other tests' load would blur.
	st := newDB(t)
	ctx := ctxT(t)
	const typ = "test.backoff"
	// Record the exact backoff of each retry: the transient-failure UPDATE
	// sets run_at = now() + backoff and updated_at = now() in one statement.
	if _, err := st.Pool.Exec(ctx, `
		CREATE TABLE retry_log (attempt integer NOT NULL, delay_us bigint NOT NULL);
		CREATE FUNCTION log_retry() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO retry_log VALUES (NEW.attempts, (extract(epoch FROM NEW.run_at - NEW.updated_at) * 1e6)::bigint);
			RETURN NEW;
		END $$;
		CREATE TRIGGER log_retry AFTER UPDATE ON jobs FOR EACH ROW
			WHEN (OLD.state = 'running' AND NEW.state = 'pending') EXECUTE FUNCTION log_retry();`); err != nil {
		t.Fatal(err)
	}
	warmPool(t, st.Pool, 12) // no connection setup (TLS, SCRAM) inside the measured gaps

	var mu sync.Mutex
	var starts []time.Time
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		if j.Attempts <= 3 {
			return nil, fmt.Errorf("transient failure %d", j.Attempts)
		}
		return nil, nil
	})
	cfg := fastConfig(t, "backoff-w")
	cfg.BackoffBase = 100 * time.Millisecond
	cfg.BackoffMax = 10 * time.Second
	cfg.PollInterval = 5 * time.Millisecond
	startWorker(t, st.Pool, cfg, map[string]queue.Handler{typ: h})

	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 5})
	c := waitJobState(t, st.Pool, j.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if c.State != queue.StateCompleted || c.Attempts != 4 {
		t.Fatalf("job: state %s attempts %d error %q; want completed on attempt 4", c.State, c.Attempts, deref(c.Error))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) != 4 {
		t.Fatalf("handler ran %d times, want 4", len(starts))
	}
	rows, err := st.Pool.Query(ctx, `SELECT attempt, delay_us FROM retry_log ORDER BY attempt`)
	if err != nil {
		t.Fatal(err)
	}
	type retry struct{ attempt, us int64 }
	retries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retry, error) {
		var x retry
		return x, r.Scan(&x.attempt, &x.us)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(retries) != 3 {
		t.Fatalf("retries recorded %v, want 3", retries)
	}
	var gaps, delays []time.Duration
	for i := range 3 {
		gaps = append(gaps, starts[i+1].Sub(starts[i]))
		delays = append(delays, time.Duration(retries[i].us)*time.Microsecond)
	}
	t.Logf("backoffs %v; gaps between handler starts %v", delays, gaps)
	for i := range 3 {
		nominal := cfg.BackoffBase << i // 100, 200, 400 ms
		lo, hi := time.Duration(float64(nominal)*0.8), time.Duration(float64(nominal)*1.2)
		if retries[i].attempt != int64(i+1) || delays[i] < lo-time.Millisecond || delays[i] > hi+time.Millisecond {
			t.Errorf("retry after attempt %d: backoff %v, want within [%v, %v]", retries[i].attempt, delays[i], lo, hi)
		}
		// The next attempt cannot start before run_at. How soon after depends on
		// the machine's load (make test runs packages side by side), so the
		// upper bound only catches a retry that waited for something else
		// (a lease expiry, the 1 s idle poll) instead of its run_at.
		if gaps[i] < lo || gaps[i] > hi+3*time.Second {
			t.Errorf("attempt %d started %v after attempt %d, want within [%v, %v+3s]", i+2, gaps[i], i+1, lo, hi)
		}
	}
	// With ±20 % jitter 0.8·2d > 1.2·d, so each wait is longer than the last.
	if !(delays[1] > delays[0] && delays[2] > delays[1]) {
		t.Errorf("backoffs do not grow: %v", delays)
	}
}

// 6. A panicking handler fails its attempt; the worker keeps running.
func TestHandlerPanicIsAFailure(t *testing.T) {
	st := parallelDB(t)
	var seen atomic.Pointer[queue.Job]
	handlers := map[string]queue.Handler{
		"test.panic.retry": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			if j.Attempts == 1 {
				panic("kaboom")
			}
			cp := *j
			seen.Store(&cp)
			return "recovered", nil
		}),
		"test.panic.final": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			var m map[string]int
			m["nil map"] = 1 // a runtime error panic
			return nil, nil
		}),
		"test.panic.after": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			return "still alive", nil
		}),
	}
	rw := startWorker(t, st.Pool, fastConfig(t, "panic-w"), handlers)

	retry := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.panic.retry", MaxAttempts: 3})
	final := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.panic.final", MaxAttempts: 1})

	f := waitJobState(t, st.Pool, final.ID, 20*time.Second, queue.StateFailed, queue.StateCompleted)
	const finalMsg = "job handler panicked: assignment to entry in nil map (will not be retried: attempts exhausted)"
	if f.State != queue.StateFailed || f.Attempts != 1 || f.RetryClassification != queue.Permanent || deref(f.Error) != finalMsg {
		t.Errorf("final panic job: state %s attempts %d class %q error %q", f.State, f.Attempts, f.RetryClassification, deref(f.Error))
	}
	if evs := jobEvents(t, st.Pool, "job.failed", final.ID); len(evs) != 1 || evs[0].Error != finalMsg {
		t.Errorf("job.failed events = %+v", evs)
	}

	r := waitJobState(t, st.Pool, retry.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if r.State != queue.StateCompleted || r.Attempts != 2 || string(r.Result) != `"recovered"` {
		t.Errorf("retried panic job: state %s attempts %d result %s error %q", r.State, r.Attempts, r.Result, deref(r.Error))
	}
	if sj := seen.Load(); sj == nil || deref(sj.Error) != "job handler panicked: kaboom" || sj.RetryClassification != queue.Transient {
		t.Errorf("second attempt saw %+v, want the first attempt's panic as a transient error", sj)
	}

	if rw.exited() {
		t.Fatal("the worker's Run returned after a handler panic")
	}
	after := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.panic.after"})
	a := waitJobState(t, st.Pool, after.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if a.State != queue.StateCompleted || string(a.Result) != `"still alive"` || deref(a.ClaimedBy) != "panic-w" {
		t.Errorf("job after the panics: state %s result %s claimed_by %q", a.State, a.Result, deref(a.ClaimedBy))
	}
}

// 7. A worker never claims a job type it has no handler for.
func TestUnknownTypeIsNotClaimed(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	var ran atomic.Int32
	known := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		ran.Add(1)
		return nil, nil
	})
	// The unknown job is the oldest runnable one: an unfiltered claim would take it first.
	unknown := enqueue(t, st.Pool, queue.EnqueueParams{Type: "x.unknown", RunAt: time.Now().Add(-time.Hour)})
	startWorker(t, st.Pool, fastConfig(t, "known-w"), map[string]queue.Handler{"test.known": known})
	var ids []string
	for range 10 {
		ids = append(ids, enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.known"}).ID)
	}
	clustertest.Eventually(t, 20*time.Second, "the known jobs to complete", func() (bool, error) {
		var done int
		err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id = ANY($1) AND state = 'completed'`, ids).Scan(&done)
		return done == len(ids), err
	})
	if ran.Load() != 10 {
		t.Errorf("known handler ran %d times, want 10", ran.Load())
	}
	u := getJob(t, st.Pool, unknown.ID)
	if u.State != queue.StatePending || u.Attempts != 0 || u.ClaimedBy != nil || u.StartedAt != nil || u.Error != nil {
		t.Errorf("unknown job: state %s attempts %d claimed_by %v started_at %v error %v; want untouched",
			u.State, u.Attempts, u.ClaimedBy, u.StartedAt, u.Error)
	}

	// It was claimable all along: a worker that knows the type takes it.
	startWorker(t, st.Pool, fastConfig(t, "unknown-w"), map[string]queue.Handler{
		"x.unknown": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) { return "ok", nil }),
	})
	u = waitJobState(t, st.Pool, unknown.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if u.State != queue.StateCompleted || deref(u.ClaimedBy) != "unknown-w" || u.Attempts != 1 {
		t.Errorf("unknown job with a handler: state %s claimed_by %q attempts %d", u.State, deref(u.ClaimedBy), u.Attempts)
	}
}

// 8. The Reporter scrubs secrets from stored errors and command output.
func TestReporterScrubsSecrets(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	var progressSeen atomic.Pointer[string]
	handlers := map[string]queue.Handler{
		"test.secret.error": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			rep.Secret("hunter2secret")
			return nil, fmt.Errorf("auth failed for role app with hunter2secret (try %d)", j.Attempts)
		}),
		"test.secret.command": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			rep.Command(runner.Result{ExitCode: 3, Stdout: "out", Stderr: "password=abc err"})
			return nil, queue.PermanentError(errors.New("pg_restore exited with status 3"))
		}),
		"test.secret.ok": queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
			rep.Secret("sup3rs3cret")
			if err := rep.Progress(ctx, map[string]any{"phase": "copy", "percent": 50}); err != nil {
				return nil, err
			}
			cur, err := queue.GetAny(ctx, st.Pool, j.ID)
			if err != nil {
				return nil, err
			}
			p := string(cur.Progress)
			progressSeen.Store(&p)
			rep.Command(runner.Result{ExitCode: 0, Stdout: "dumped with sup3rs3cret", Stderr: ""})
			return map[string]int{"rows": 7}, nil
		}),
	}
	startWorker(t, st.Pool, fastConfig(t, "secret-w"), handlers)

	se := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.secret.error", MaxAttempts: 1})
	sc := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.secret.command", MaxAttempts: 3})
	ok := enqueue(t, st.Pool, queue.EnqueueParams{Type: "test.secret.ok",
		Payload: map[string]string{"secret": "payload-password", "keep": "yes"}})

	e := waitJobState(t, st.Pool, se.ID, 20*time.Second, queue.StateFailed, queue.StateCompleted)
	const wantErr = "auth failed for role app with *** (try 1) (will not be retried: attempts exhausted)"
	if e.State != queue.StateFailed || deref(e.Error) != wantErr {
		t.Errorf("secret error job: state %s error %q, want %q", e.State, deref(e.Error), wantErr)
	}
	evs := jobEvents(t, st.Pool, "job.failed", se.ID)
	if len(evs) != 1 || evs[0].Error != wantErr {
		t.Errorf("job.failed events = %+v", evs)
	}
	var leaks int
	if err := st.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM jobs WHERE jobs::text LIKE '%hunter2secret%')
		+ (SELECT count(*) FROM events WHERE events::text LIKE '%hunter2secret%')`).Scan(&leaks); err != nil || leaks != 0 {
		t.Errorf("%d rows contain the secret (%v)", leaks, err)
	}

	c := waitJobState(t, st.Pool, sc.ID, 20*time.Second, queue.StateFailed, queue.StateCompleted)
	if c.State != queue.StateFailed || c.Attempts != 1 || deref(c.Error) != "pg_restore exited with status 3" ||
		deref(c.LastExitCode) != 3 || c.LastExitCode == nil || deref(c.LastStdout) != "out" || deref(c.LastStderr) != "password=*** err" {
		t.Errorf("command job: state %s attempts %d error %q exit %v stdout %q stderr %q",
			c.State, c.Attempts, deref(c.Error), c.LastExitCode, deref(c.LastStdout), deref(c.LastStderr))
	}

	o := waitJobState(t, st.Pool, ok.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed)
	if o.State != queue.StateCompleted || o.LastExitCode == nil || *o.LastExitCode != 0 ||
		deref(o.LastStdout) != "dumped with ***" || deref(o.LastStderr) != "" || o.Progress != nil {
		t.Errorf("ok job: state %s exit %v stdout %q stderr %q progress %s",
			o.State, o.LastExitCode, deref(o.LastStdout), deref(o.LastStderr), o.Progress)
	}
	if p := progressSeen.Load(); p == nil || *p != `{"phase": "copy", "percent": 50}` {
		t.Errorf("progress while running = %v", p)
	}
	var payload map[string]string
	if err := json.Unmarshal(o.Payload, &payload); err != nil || payload["keep"] != "yes" || payload["secret"] != "" || len(payload) != 1 {
		t.Errorf("payload after completion = %s (%v); want the secret removed and the rest kept", o.Payload, err)
	}
}
