package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/runner"
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
	BackoffBase       time.Duration // default 5s
	BackoffMax        time.Duration // default 5m
	Logger            *slog.Logger
}

func (c *Config) defaults() {
	if c.WorkerID == "" {
		c.WorkerID = DefaultWorkerID()
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 10
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.LeaseDuration {
		// A lease that can expire between two heartbeats gets reaped while
		// its job still runs, and the job runs twice.
		c.HeartbeatInterval = c.LeaseDuration / 3
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.ReapInterval <= 0 {
		c.ReapInterval = 5 * time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 5 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// DefaultWorkerID is "<hostname>:<pid>".
func DefaultWorkerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// Backoff is the delay before retry number attempt (1-based): base·2^(attempt−1),
// capped at max, with ±20 % jitter.
func Backoff(base, max time.Duration, attempt int) time.Duration {
	d := float64(base) * math.Pow(2, float64(attempt-1))
	if d > float64(max) || math.IsInf(d, 0) {
		d = float64(max)
	}
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(d * jitter)
}

// Worker claims and runs jobs.
type Worker struct {
	pool     *pgxpool.Pool
	cfg      Config
	handlers map[string]Handler
	log      *slog.Logger

	wake chan struct{}

	mu      sync.Mutex
	running map[runKey]context.CancelCauseFunc
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
		wake:     make(chan struct{}, 1),
		running:  map[runKey]context.CancelCauseFunc{},
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
	bg(w.listen)
	bg(w.heartbeatLoop)
	bg(w.reapLoop)

	sem := make(chan struct{}, w.cfg.Concurrency)
	ticker := time.NewTicker(w.cfg.PollInterval)
	defer ticker.Stop()
	var jobs sync.WaitGroup
	for {
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
				}
				break
			}
			jobs.Add(1)
			go func() {
				defer jobs.Done()
				defer func() { <-sem; w.Wake() }()
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

// Wake makes the worker look for jobs now.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// listen holds a LISTEN connection and wakes the claim loop on every NOTIFY.
func (w *Worker) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := w.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
				return err
			}
			defer func() {
				// The connection goes back to the pool: stop listening on it.
				c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, _ = conn.Exec(c, "UNLISTEN *")
			}()
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					return err
				}
				w.Wake()
			}
		}()
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("job notification listener stopped; retrying", "error", err)
		sleep(ctx, time.Second)
	}
}

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
				  AND (j.locked_resource IS NULL OR NOT EXISTS (
					SELECT 1 FROM jobs r WHERE r.state = 'running' AND r.locked_resource = j.locked_resource))
				ORDER BY j.run_at, j.created_at
				LIMIT 1
				FOR UPDATE SKIP LOCKED)
			RETURNING `+jobColumns, w.cfg.WorkerID, pgInterval(w.cfg.LeaseDuration), types, busy))
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
		result, err = safeRun(ctx, h, j, rep)
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
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer fcancel()
	if err == nil {
		if ferr := w.complete(fctx, h, j, rep, result); ferr != nil {
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
	if ferr := w.fail(fctx, h, j, rep, msg, final, IsPermanent(err)); ferr != nil {
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

func (w *Worker) complete(ctx context.Context, h Handler, j *Job, rep *Reporter, result any) error {
	var resultJSON []byte
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		resultJSON = b
	}
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE jobs SET state = 'completed', completed_at = now(), updated_at = now(),
				result = $3, error = NULL, retry_classification = '', lease_expires_at = NULL, progress = NULL,
				last_exit_code = coalesce($4, last_exit_code), last_stdout = coalesce($5, last_stdout),
				last_stderr = coalesce($6, last_stderr), payload = CASE WHEN jsonb_typeof(payload) = 'object' THEN payload - 'secret' ELSE payload END
			WHERE id = $1 AND claimed_by = $2 AND state = 'running' AND attempts = $7`,
			j.ID, w.cfg.WorkerID, resultJSON, rep.exitCode, rep.stdout, rep.stderr, j.Attempts)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errLeaseLost
		}
		if f, ok := h.(Finisher); ok {
			if err := f.OnComplete(ctx, tx, j, result); err != nil {
				return err
			}
		}
		if err := store.InsertEvent(ctx, tx, ids.New("evt_"), j.OrganizationID, "job.completed", jobEventData(j, StateCompleted, "")); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel)
		return err
	})
}

func (w *Worker) fail(ctx context.Context, h Handler, j *Job, rep *Reporter, msg string, final, permanent bool) error {
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if !final {
			delay := Backoff(w.cfg.BackoffBase, w.cfg.BackoffMax, j.Attempts)
			tag, err := tx.Exec(ctx, `UPDATE jobs SET state = 'pending', error = $3, retry_classification = 'transient',
					run_at = now() + $4::interval, lease_expires_at = NULL, updated_at = now(),
					last_exit_code = coalesce($5, last_exit_code), last_stdout = coalesce($6, last_stdout),
					last_stderr = coalesce($7, last_stderr)
				WHERE id = $1 AND claimed_by = $2 AND state = 'running' AND attempts = $8`,
				j.ID, w.cfg.WorkerID, msg, pgInterval(delay), rep.exitCode, rep.stdout, rep.stderr, j.Attempts)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errLeaseLost
			}
			return nil
		}
		if !permanent {
			msg += " (will not be retried: attempts exhausted)"
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET state = 'failed', error = $3, retry_classification = 'permanent',
				completed_at = now(), lease_expires_at = NULL, updated_at = now(), progress = NULL,
				last_exit_code = coalesce($4, last_exit_code), last_stdout = coalesce($5, last_stdout),
				last_stderr = coalesce($6, last_stderr), payload = CASE WHEN jsonb_typeof(payload) = 'object' THEN payload - 'secret' ELSE payload END
			WHERE id = $1 AND claimed_by = $2 AND state = 'running' AND attempts = $7`,
			j.ID, w.cfg.WorkerID, msg, rep.exitCode, rep.stdout, rep.stderr, j.Attempts)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errLeaseLost
		}
		return failTerminal(ctx, tx, h, j, msg)
	})
}

// failTerminal runs the handler's failure hook and writes job.failed.
func failTerminal(ctx context.Context, tx pgx.Tx, h Handler, j *Job, msg string) error {
	if f, ok := h.(Finisher); ok {
		if err := f.OnFail(ctx, tx, j, msg); err != nil {
			return err
		}
	}
	if err := store.InsertEvent(ctx, tx, ids.New("evt_"), j.OrganizationID, "job.failed", jobEventData(j, StateFailed, msg)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel)
	return err
}

func jobEventData(j *Job, state, errMsg string) map[string]any {
	d := map[string]any{"job_id": j.ID, "job_type": j.Type, "state": state, "organization_id": j.OrganizationID}
	if j.ProjectID != nil {
		d["project_id"] = *j.ProjectID
	}
	if j.PreviewDatabaseID != nil {
		d["preview_id"] = *j.PreviewDatabaseID
	}
	if errMsg != "" {
		d["error"] = errMsg
	}
	return d
}

// heartbeatLoop renews the leases of this worker's running jobs and cancels
// any job whose lease was taken away.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		keys := make([]runKey, 0, len(w.running))
		idsRunning := make([]string, 0, len(w.running))
		attempts := make([]int32, 0, len(w.running))
		for k := range w.running {
			keys = append(keys, k)
			idsRunning = append(idsRunning, k.id)
			attempts = append(attempts, int32(k.attempt))
		}
		w.mu.Unlock()
		if len(keys) == 0 {
			continue
		}
		// Renew only the attempt this worker is running: after a lost lease
		// the job may have been re-claimed, by another worker or by this one.
		rows, err := w.pool.Query(ctx, `UPDATE jobs j SET lease_expires_at = now() + $3::interval
			FROM unnest($1::text[], $2::int[]) AS r(id, attempts)
			WHERE j.id = r.id AND j.attempts = r.attempts AND j.claimed_by = $4 AND j.state = 'running'
			RETURNING j.id, j.attempts`,
			idsRunning, attempts, pgInterval(w.cfg.LeaseDuration), w.cfg.WorkerID)
		if err != nil {
			w.log.Warn("lease renewal failed", "error", err)
			continue
		}
		renewed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (runKey, error) {
			var k runKey
			return k, r.Scan(&k.id, &k.attempt)
		})
		if err != nil {
			continue
		}
		kept := map[runKey]bool{}
		for _, k := range renewed {
			kept[k] = true
		}
		w.mu.Lock()
		for _, k := range keys {
			if cancel, ok := w.running[k]; ok && !kept[k] {
				cancel(errLeaseLost)
			}
		}
		w.mu.Unlock()
	}
}

func (w *Worker) reapLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.ReapInterval)
	defer t.Stop()
	for {
		if n, err := w.Reap(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("reaping expired leases failed", "error", err)
		} else if n > 0 {
			w.log.Info("reclaimed jobs with expired leases", "count", n)
			w.Wake()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reap returns jobs whose lease expired (their worker died) to pending, or
// fails them when that was their last attempt. The lost attempt counts as a
// transient failure.
func (w *Worker) Reap(ctx context.Context) (int, error) {
	n := 0
	for {
		done, err := w.reapOne(ctx)
		if err != nil || done {
			return n, err
		}
		n++
	}
}

func (w *Worker) reapOne(ctx context.Context) (bool, error) {
	types := make([]string, 0, len(w.handlers))
	for t := range w.handlers {
		types = append(types, t)
	}
	none := false
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		// A last attempt is failed only by a worker that has the type's
		// handler, so its OnFail hook runs; earlier attempts anyone can reap.
		j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
			WHERE state = 'running' AND lease_expires_at < now()
			  AND (attempts < max_attempts OR type = ANY($1))
			ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED`, types))
		if errors.Is(err, store.ErrNotFound) {
			none = true
			return nil
		}
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("worker %s stopped responding (lease expired)", deref(j.ClaimedBy))
		if j.Attempts < j.MaxAttempts {
			_, err = tx.Exec(ctx, `UPDATE jobs SET state = 'pending', error = $2, retry_classification = 'transient',
				lease_expires_at = NULL, run_at = now(), updated_at = now() WHERE id = $1`, j.ID, msg)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel)
			return err
		}
		msg += " (will not be retried: attempts exhausted)"
		if _, err := tx.Exec(ctx, `UPDATE jobs SET state = 'failed', error = $2, retry_classification = 'permanent',
			completed_at = now(), lease_expires_at = NULL, updated_at = now(), payload = CASE WHEN jsonb_typeof(payload) = 'object' THEN payload - 'secret' ELSE payload END
			WHERE id = $1`, j.ID, msg); err != nil {
			return err
		}
		return failTerminal(ctx, tx, w.handlers[j.Type], j, msg)
	})
	return none, err
}

// reclaimDeadLocalWorkers expires at once the leases of jobs claimed by an
// earlier process on this host that no longer exists (e.g. after SIGKILL), so
// a restarted server picks them up without waiting for the lease to run out.
func (w *Worker) reclaimDeadLocalWorkers(ctx context.Context) {
	host, _, ok := strings.Cut(w.cfg.WorkerID, ":")
	if !ok {
		return
	}
	rows, err := w.pool.Query(ctx, `SELECT DISTINCT claimed_by FROM jobs WHERE state = 'running' AND claimed_by LIKE $1`, host+":%")
	if err != nil {
		return
	}
	claimers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, c := range claimers {
		pidStr := strings.TrimPrefix(c, host+":")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || c == w.cfg.WorkerID || processAlive(pid) {
			continue
		}
		if _, err := w.pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 second'
			WHERE state = 'running' AND claimed_by = $1`, c); err == nil {
			w.log.Info("expiring leases of a dead worker on this host", "dead_worker", c)
		}
	}
}

// processAlive reports whether pid is a live (not zombie) process on this host.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The state follows the parenthesised command name: "pid (comm) S ...".
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// pgInterval spells d as a Postgres interval. Duration.String is not one:
// Postgres rejects its "µs" unit (any duration under a millisecond).
func pgInterval(d time.Duration) string {
	return strconv.FormatInt(d.Microseconds(), 10) + " microseconds"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Reporter lets a running handler record command output, progress and the
// secrets to scrub from anything stored.
type Reporter struct {
	pool     *pgxpool.Pool
	job      *Job
	scrub    *scrub.Scrubber
	exitCode *int
	stdout   *string
	stderr   *string
}

// Secret registers values that must never appear in stored output or errors.
func (r *Reporter) Secret(secrets ...string) { r.scrub.Add(secrets...) }

// Command records the outcome of an external command (last_exit_code,
// last_stdout, last_stderr); the runner has already bounded and scrubbed it.
func (r *Reporter) Command(res runner.Result) {
	code := res.ExitCode
	out, errOut := r.scrub.String(res.Stdout), r.scrub.String(res.Stderr)
	r.exitCode, r.stdout, r.stderr = &code, &out, &errOut
}

// Progress stores the job's progress object (phase, percent, bytes_done, bytes_total).
func (r *Reporter) Progress(ctx context.Context, p map[string]any) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = r.pool.Exec(ctx, `UPDATE jobs SET progress = $2, updated_at = now() WHERE id = $1 AND state = 'running'`, r.job.ID, b)
	return err
}
