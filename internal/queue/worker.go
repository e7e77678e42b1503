package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/scrub"
	"github.com/capydb/capydb/internal/store"
)

// Handler does the work of one job type. Run must be idempotent: a retry after
// a crash calls it again from the start, so every step checks what exists.
type Handler interface {
	Run(ctx context.Context, j *Job, rep *Reporter) (result any, err error)
}

// Finisher is implemented by handlers whose outcome changes domain state; the
// hooks run inside the transaction that marks the job terminal, so the state
// change, the job's state and the outbox events commit together.
type Finisher interface {
	OnComplete(ctx context.Context, tx pgx.Tx, j *Job, result any) error
	OnFail(ctx context.Context, tx pgx.Tx, j *Job, errMsg string) error
}

// Aborter is implemented by handlers that must undo partial work before a job
// fails for good (e.g. drop a half-made role and database).
type Aborter interface {
	Abort(ctx context.Context, j *Job) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, j *Job, rep *Reporter) (any, error)

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, j *Job, rep *Reporter) (any, error) {
	return f(ctx, j, rep)
}

// Config tunes a Worker. Zero values get defaults.
type Config struct {
	WorkerID          string        // default "<hostname>:<pid>"
	Concurrency       int           // jobs run at once by this process; default 10
	LeaseDuration     time.Duration // default 30s
	HeartbeatInterval time.Duration // default 10s
	PollInterval      time.Duration // fallback when no NOTIFY arrives; default 1s
	ReapInterval      time.Duration // default 5s
	ReapBatch         int           // expired leases reclaimed per transaction; default 100
	BackoffBase       time.Duration // default 5s
	BackoffMax        time.Duration // default 5m
	Logger            *slog.Logger
	// Scope limits the jobs this worker claims and reaps to some clusters
	// (docs/fleet.md); the zero Scope is every job.
	Scope Scope
}

// Scope is the part of the queue a worker works: the jobs of Clusters, and
// the jobs of no cluster when ClusterFree. A data node's worker scopes to
// its own cluster; a control-plane worker to the cluster-free jobs (and the
// embedded cluster's). The zero Scope is the whole queue.
type Scope struct {
	Clusters    []string
	ClusterFree bool
}

// All reports whether s is the whole queue.
func (s Scope) All() bool { return len(s.Clusters) == 0 && !s.ClusterFree }

// scopeSQL is the claim and reap filter on the job row alias j; its three
// parameters are Scope.args, starting at $n.
func scopeSQL(n int) string {
	return fmt.Sprintf(`($%d::bool OR (j.cluster_id IS NULL AND $%d::bool) OR j.cluster_id = ANY($%d::text[]))`, n, n+1, n+2)
}

func (s Scope) args() []any {
	cl := s.Clusters
	if cl == nil {
		cl = []string{}
	}
	return []any{s.All(), s.ClusterFree, cl}
}

func (c *Config) defaults() {
	if c.WorkerID == "" {
		c.WorkerID = bgsvc.WorkerID()
	}
	bgsvc.Default(&c.Concurrency, 10)
	bgsvc.Default(&c.LeaseDuration, 30*time.Second)
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.LeaseDuration {
		// A lease that can expire between two heartbeats gets reaped while
		// its job still runs, and the job runs twice.
		c.HeartbeatInterval = c.LeaseDuration / 3
	}
	bgsvc.Default(&c.PollInterval, time.Second)
	bgsvc.Default(&c.ReapInterval, 5*time.Second)
	bgsvc.Default(&c.ReapBatch, 100)
	bgsvc.Default(&c.BackoffBase, 5*time.Second)
	bgsvc.Default(&c.BackoffMax, 5*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// TestSignals are events a test can arm and wait for instead of polling
// (bgsvc.Signal); they are never armed in production.
type TestSignals struct {
	// ReapedBatch fires after each reap transaction with the number of
	// jobs it reclaimed (0 when there were none).
	ReapedBatch bgsvc.Signal[int]
}

// Worker claims and runs jobs.
type Worker struct {
	pool     *pgxpool.Pool
	cfg      Config
	handlers map[string]Handler
	log      *slog.Logger

	wake bgsvc.Wake

	// TestSignals may be armed by tests before Run.
	TestSignals TestSignals

	mu      sync.Mutex
	running map[runKey]context.CancelCauseFunc
	// claimed holds the jobs Run has claimed and not yet finished, set
	// before their goroutine starts (running is set inside it).
	claimed map[string]bool

	outage outageClock // when the control database last failed us
}

// runKey identifies one attempt of a job run by this worker.
type runKey struct {
	id      string
	attempt int
}

// NewWorker builds a worker for the given handlers (by job type).
func NewWorker(pool *pgxpool.Pool, cfg Config, handlers map[string]Handler) *Worker {
	cfg.defaults()
	return &Worker{
		pool:     pool,
		cfg:      cfg,
		handlers: handlers,
		log:      cfg.Logger.With("component", "queue", "worker_id", cfg.WorkerID),
		wake:     bgsvc.NewWake(),
		running:  map[runKey]context.CancelCauseFunc{},
		claimed:  map[string]bool{},
	}
}

// ID is the worker id written into claimed_by.
func (w *Worker) ID() string { return w.cfg.WorkerID }

var errLeaseLost = errors.New("lease lost: the job was reclaimed by the reaper")

// Run claims and executes jobs until ctx is cancelled, then waits for the
// running jobs to stop.
func (w *Worker) Run(ctx context.Context) error {
	w.reclaimDeadLocalWorkers(ctx)
	var wg sync.WaitGroup
	bg := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	bg((&bgsvc.Notifier{Pool: w.pool, Channel: notifyChannel, Wake: w.wake, Log: w.log}).Run)
	bg(w.heartbeatLoop)
	bg(w.reapLoop)

	sem := make(chan struct{}, w.cfg.Concurrency)
	ticker := time.NewTicker(w.cfg.PollInterval)
	defer ticker.Stop()
	var jobs sync.WaitGroup
	inDoubt := false
	for {
		// A claim whose answer was lost to a control-database outage may
		// have committed: give such jobs back before claiming again, so they
		// run once, now, instead of after their lease expires as attempt 2.
		if inDoubt && w.releaseInDoubt(ctx) == nil {
			inDoubt = false
		}
		// Claim as long as there is work and a free slot.
		for {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				jobs.Wait()
				wg.Wait()
				return nil
			}
			j, err := w.claim(ctx)
			if err != nil || j == nil {
				<-sem
				if err != nil && ctx.Err() == nil {
					w.log.Warn("claim failed", "error", err)
					if store.Unavailable(err) {
						inDoubt = true
						w.outage.mark()
					}
				}
				break
			}
			w.mu.Lock()
			w.claimed[j.ID] = true
			w.mu.Unlock()
			jobs.Add(1)
			go func() {
				defer jobs.Done()
				defer func() { <-sem; w.Wake() }()
				defer func() {
					w.mu.Lock()
					delete(w.claimed, j.ID)
					w.mu.Unlock()
				}()
				w.execute(ctx, j)
			}()
		}
		select {
		case <-ctx.Done():
			jobs.Wait()
			wg.Wait()
			return nil
		case <-w.wake:
		case <-ticker.C:
		}
	}
}

// releaseInDoubt returns to pending, without counting the attempt, the jobs
// the control database says this worker holds but Run never received: claims
// committed while their answer was lost. Run calls it between claims, so
// every job it did receive is in claimed.
func (w *Worker) releaseInDoubt(ctx context.Context) error {
	w.mu.Lock()
	mine := make([]string, 0, len(w.claimed))
	for id := range w.claimed {
		mine = append(mine, id)
	}
	w.mu.Unlock()
	tag, err := w.pool.Exec(ctx, `UPDATE jobs SET state = 'pending', attempts = attempts - 1, claimed_by = NULL,
			lease_expires_at = NULL, run_at = now(), updated_at = now()
		WHERE claimed_by = $1 AND state = 'running' AND NOT (id = ANY($2))`, w.cfg.WorkerID, mine)
	if err != nil {
		return err
	}
	if n := tag.RowsAffected(); n > 0 {
		w.log.Warn("gave back jobs claimed while the control database was unreachable", "count", n)
	}
	return nil
}

// Wake makes the worker look for jobs now.
func (w *Worker) Wake() { w.wake.Signal() }

// claim takes the oldest runnable job whose resource is free. The partial
// unique index rejects a second running job on one resource; a racing claim
// that hits it just tries again.
func (w *Worker) claim(ctx context.Context) (*Job, error) {
	types := make([]string, 0, len(w.handlers))
	for t := range w.handlers {
		types = append(types, t)
	}
	w.mu.Lock()
	busy := make([]string, 0, len(w.running))
	for k := range w.running {
		busy = append(busy, k.id)
	}
	w.mu.Unlock()
	for range 5 {
		j, err := scanJob(w.pool.QueryRow(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1,
				claimed_by = $1, claimed_at = now(), lease_expires_at = now() + $2::interval,
				started_at = coalesce(started_at, now()), updated_at = now()
			WHERE id = (
				SELECT id FROM jobs j
				WHERE j.state = 'pending' AND j.run_at <= now() AND j.type = ANY($3) AND NOT (j.id = ANY($4))
				  AND `+scopeSQL(5)+`
				  AND (j.locked_resource IS NULL OR NOT EXISTS (
					SELECT 1 FROM jobs r WHERE r.state = 'running' AND r.locked_resource = j.locked_resource))
				ORDER BY j.run_at, j.created_at
				LIMIT 1
				FOR UPDATE SKIP LOCKED)
			RETURNING `+jobColumns, append([]any{w.cfg.WorkerID, pgInterval(w.cfg.LeaseDuration), types, busy},
			w.cfg.Scope.args()...)...))
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if store.IsUniqueViolation(err, "jobs_one_running_per_resource") {
			continue
		}
		return j, err
	}
	return nil, nil
}

// execute runs one claimed job and records its outcome.
func (w *Worker) execute(parent context.Context, j *Job) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	key := runKey{j.ID, j.Attempts}
	w.mu.Lock()
	w.running[key] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, key)
		w.mu.Unlock()
	}()

	log := w.log.With("job_id", j.ID, "job_type", j.Type, "attempt", j.Attempts)
	rep := &Reporter{pool: w.pool, job: j, scrub: scrub.Default()}
	h, ok := w.handlers[j.Type]
	var result any
	var err error
	start := time.Now()
	if !ok {
		err = PermanentError(fmt.Errorf("no handler for job type %s", j.Type))
	} else {
		result, err = w.runAttempt(ctx, h, j, rep, log)
	}
	if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) {
		log.Warn("job abandoned: lease lost")
		return
	}
	if parent.Err() != nil {
		// Shutting down: leave the job running; its lease expires and the
		// reaper (here or on another server) returns it to pending.
		log.Info("job interrupted by shutdown; it will be retried", "error", err)
		return
	}
	// Recording the outcome outlives a control-database failover (Patroni
	// promotes within its TTL): the work is done, so keep trying to say so
	// rather than let the lease expire and the job run again.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), recordWithin)
	defer fcancel()
	if err == nil {
		if ferr := w.retryUnavailable(fctx, log, "recording a job's outcome", func() error { return w.complete(fctx, h, j, rep, result) }); ferr != nil {
			log.Error("recording job completion failed", "error", ferr)
			return
		}
		log.Info("job completed", "duration_ms", time.Since(start).Milliseconds())
		return
	}
	msg := rep.scrub.String(err.Error())
	final := IsPermanent(err) || j.Attempts >= j.MaxAttempts
	if final {
		if ab, ok := h.(Aborter); ok {
			if aerr := ab.Abort(fctx, j); aerr != nil {
				// Leave it for another attempt rather than fail with partial state behind.
				log.Error("undoing partial work failed; will retry", "error", aerr)
				final = false
				msg = msg + "; cleanup failed: " + rep.scrub.String(aerr.Error())
			}
		}
	}
	if ferr := w.retryUnavailable(fctx, log, "recording a job's outcome", func() error { return w.fail(fctx, h, j, rep, msg, final, IsPermanent(err)) }); ferr != nil {
		log.Error("recording job failure failed", "error", ferr)
		return
	}
	log.Warn("job attempt failed", "error", msg, "final", final)
}

func safeRun(ctx context.Context, h Handler, j *Job, rep *Reporter) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job handler panicked: %v", r)
		}
	}()
	return h.Run(ctx, j, rep)
}

// recordWithin bounds how long a worker keeps trying to record a job's
// outcome; longer than a Patroni failover (ttl 30 s by default).
const recordWithin = 90 * time.Second

// retryUnavailable runs fn (what it does: for the log) until it succeeds,
// fails for another reason than an unavailable control database, or ctx
// ends, backing off from 250 ms to 2 s.
func (w *Worker) retryUnavailable(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	delay := 250 * time.Millisecond
	for {
		err := fn()
		if err == nil || !store.Unavailable(err) {
			return err
		}
		w.outage.mark()
		log.Warn("control database unavailable while "+what+"; retrying", "error", err, "in", delay)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}
