package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
)

// heartbeatLoop renews the leases of this worker's running jobs and cancels
// any job whose lease was taken away. After a failed renewal (the control
// database is failing over) it retries every second, so leases are renewed
// as soon as a primary answers again, before any reaper's grace runs out.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := time.NewTimer(w.cfg.HeartbeatInterval)
	defer t.Stop()
	next := w.cfg.HeartbeatInterval
	for {
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next = w.cfg.HeartbeatInterval
		if !w.renewLeases(ctx) {
			next = min(time.Second, w.cfg.HeartbeatInterval)
		}
	}
}

// renewLeases renews this worker's leases once; false when the control
// database could not be asked.
func (w *Worker) renewLeases(ctx context.Context) bool {
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
		return true
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
		w.outage.mark()
		return false
	}
	renewed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (runKey, error) {
		var k runKey
		return k, r.Scan(&k.id, &k.attempt)
	})
	if err != nil {
		w.log.Warn("lease renewal failed", "error", err)
		w.outage.mark()
		return false
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
	return true
}

// reapLoop reaps expired leases, but never right after the control
// database failed this process: every live worker's leases ran out during
// the outage too, and their heartbeats (retrying every second) must get the
// chance to renew them first, or a job still running would be handed out a
// second time (reapGate, outage.go).
func (w *Worker) reapLoop(ctx context.Context) {
	gate := &reapGate{clock: &w.outage, settle: w.cfg.HeartbeatInterval,
		upSince: time.Now().Add(-w.cfg.HeartbeatInterval)}
	bgsvc.Every(ctx, w.cfg.ReapInterval, func(ctx context.Context) {
		if !gate.ready(ctx, w.pool.Ping) {
			return
		}
		if n, err := w.Reap(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("reaping expired leases failed", "error", err)
			w.outage.mark()
		} else if n > 0 {
			w.log.Info("reclaimed jobs with expired leases", "count", n)
			w.Wake()
		}
	})
}

// Reap returns jobs whose lease expired (their worker died) to pending, or
// fails them when that was their last attempt. The lost attempt counts as a
// transient failure. It works in batches of Config.ReapBatch jobs, one
// transaction each, until a batch comes back short.
func (w *Worker) Reap(ctx context.Context) (int, error) {
	types := make([]string, 0, len(w.handlers))
	for t := range w.handlers {
		types = append(types, t)
	}
	n := 0
	for {
		got, err := w.reapBatch(ctx, types)
		if err != nil {
			return n, err
		}
		n += got
		w.TestSignals.ReapedBatch.Send(got)
		if got < w.cfg.ReapBatch {
			return n, nil
		}
	}
}

// reapSQL locks up to $2 expired leases and settles them in one statement:
// earlier attempts go back to pending, last attempts fail for good. It
// returns the rows as they were before, as the per-job hooks expect. A last
// attempt is failed only by a worker that has the type's handler ($1), so
// its OnFail hook runs; earlier attempts anyone can reap.
const reapSQL = `WITH due AS (
		SELECT ` + jobColumns + ` FROM jobs j
		WHERE state = 'running' AND lease_expires_at < now()
		  AND (attempts < max_attempts OR type = ANY($1)) AND ` + "$scope" + `
		ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	UPDATE jobs j SET
		state = CASE WHEN j.attempts < j.max_attempts THEN 'pending' ELSE 'failed' END,
		error = 'worker ' || coalesce(j.claimed_by, '') || ' stopped responding (lease expired)' ||
			CASE WHEN j.attempts < j.max_attempts THEN '' ELSE $3 END,
		retry_classification = CASE WHEN j.attempts < j.max_attempts THEN 'transient' ELSE 'permanent' END,
		run_at = CASE WHEN j.attempts < j.max_attempts THEN now() ELSE j.run_at END,
		completed_at = CASE WHEN j.attempts < j.max_attempts THEN j.completed_at ELSE now() END,
		payload = CASE WHEN j.attempts >= j.max_attempts AND jsonb_typeof(j.payload) = 'object'
			THEN j.payload - 'secret' ELSE j.payload END,
		lease_expires_at = NULL, updated_at = now()
	FROM due WHERE j.id = due.id
	RETURNING due.*`

// reapBatch settles one batch of expired leases in one transaction and
// runs the failure hooks of the jobs that failed for good.
func (w *Worker) reapBatch(ctx context.Context, types []string) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, strings.Replace(reapSQL, "$scope", scopeSQL(4), 1),
			append([]any{types, w.cfg.ReapBatch, exhausted}, w.cfg.Scope.args()...)...)
		if err != nil {
			return err
		}
		jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Job, error) { return scanJob(r) })
		if err != nil || len(jobs) == 0 {
			return err
		}
		n = len(jobs)
		retried := false
		for _, j := range jobs {
			if j.Attempts < j.MaxAttempts {
				retried = true
				continue
			}
			msg := fmt.Sprintf("worker %s stopped responding (lease expired)%s", deref(j.ClaimedBy), exhausted)
			if err := failTerminal(ctx, tx, w.handlers[j.Type], j, msg); err != nil {
				return err
			}
		}
		if retried {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
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
