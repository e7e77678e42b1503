package queue

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/capydb/capydb/internal/store"
)

// A control-database outage (a Patroni switchover or failover) must neither
// hand a running job out a second time nor count as a failed attempt. Two
// rules keep every job on one attempt across it:
//
//   - Leases that ran out during the outage are not reaped until this
//     process has reached the control database without trouble for a whole
//     heartbeat interval: every live worker's heartbeat retries every second
//     during an outage, so by then it has renewed its leases, and only the
//     leases of workers that are really gone are still expired.
//   - A handler cut off by the outage (its statement failed with an
//     unavailable-database error) is resumed within its attempt, under the
//     same lease, once the control database answers again, instead of being
//     recorded as a failed attempt that a later claim would run again.

// outageClock records when this worker last saw the control database fail.
type outageClock struct{ last atomic.Int64 }

// mark notes a failure to reach the control database now.
func (c *outageClock) mark() { c.last.Store(time.Now().UnixNano()) }

// since is when the latest failure was seen (the zero time if never).
func (c *outageClock) since() time.Time {
	if n := c.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// reapGate decides, each reap round, whether reaping may run.
type reapGate struct {
	clock   *outageClock
	settle  time.Duration // how long the database must have answered
	upSince time.Time     // first good answer after the latest failure
	checked time.Time     // the failure upSince was measured after
}

// ready reports whether to reap now; ping asks the control database.
func (g *reapGate) ready(ctx context.Context, ping func(context.Context) error) bool {
	if f := g.clock.since(); g.upSince.IsZero() || f.After(g.checked) {
		// A failure since the last look: wait for a good answer, then let
		// the heartbeats have a full interval to renew.
		if err := ping(ctx); err != nil {
			g.clock.mark()
			g.upSince = time.Time{}
			return false
		}
		g.upSince, g.checked = time.Now(), g.clock.since()
	}
	return time.Since(g.upSince) >= g.settle
}

// maxResumes bounds how often one attempt resumes its handler after an
// unavailable database; after that the failure is an ordinary attempt.
const maxResumes = 3

// runAttempt runs the handler, resuming it within the attempt when an
// unavailable database cut it off (see the rules above). A database other
// than the control one (a data cluster restarting) also resumes, after the
// same wait, at most maxResumes times, like a quick retry.
func (w *Worker) runAttempt(ctx context.Context, h Handler, j *Job, rep *Reporter, log *slog.Logger) (any, error) {
	for resumes := 0; ; resumes++ {
		result, err := safeRun(ctx, h, j, rep)
		if err == nil || IsPermanent(err) || !store.Unavailable(err) || resumes == maxResumes || ctx.Err() != nil {
			return result, err
		}
		log.Warn("a database was unavailable under the job; resuming it in the same attempt once the control database answers",
			"error", rep.scrub.String(err.Error()), "resume", resumes+1)
		if w.awaitControl(ctx, log) != nil {
			return result, err
		}
	}
}

// awaitControl waits, at most recordWithin, until the control database
// answers again.
func (w *Worker) awaitControl(ctx context.Context, log *slog.Logger) error {
	wctx, cancel := context.WithTimeout(ctx, recordWithin)
	defer cancel()
	return w.retryUnavailable(wctx, log, "waiting to resume a job", func() error { return w.pool.Ping(wctx) })
}
