package queue

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// exhausted ends the error of a transient failure on the last attempt.
const exhausted = " (will not be retried: attempts exhausted)"

// Recording a job's outcome: each function below writes the job's terminal
// (or retry) state, the handler's Finisher hook and the job event in one
// transaction, guarded by the attempt so a reclaimed job is never finished
// by the worker that lost it.

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
		err := w.settle(ctx, tx, j, rep, `state = 'completed', completed_at = now(), result = $7, error = NULL,
			retry_classification = '', progress = NULL, payload = `+scrubSecret, resultJSON)
		if err != nil {
			return err
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
			delay := bgsvc.Backoff(w.cfg.BackoffBase, w.cfg.BackoffMax, j.Attempts)
			return w.settle(ctx, tx, j, rep, `state = 'pending', error = $7, retry_classification = 'transient',
				run_at = now() + $8::interval`, msg, pgInterval(delay))
		}
		if !permanent {
			msg += exhausted
		}
		err := w.settle(ctx, tx, j, rep, `state = 'failed', error = $7, retry_classification = 'permanent',
			completed_at = now(), progress = NULL, payload = `+scrubSecret, msg)
		if err != nil {
			return err
		}
		return failTerminal(ctx, tx, h, j, msg)
	})
}

// scrubSecret is the payload of a job that reached a terminal state: a
// secret it carried for its run is removed, so it is not kept at rest.
const scrubSecret = `CASE WHEN jsonb_typeof(payload) = 'object' THEN payload - 'secret' ELSE payload END`

// settle writes set to the job this worker holds, guarded by its claim and
// attempt, releasing the lease and keeping the last command's output; set's
// own parameters start at $7. Matching no row means the reaper took the job
// back (errLeaseLost).
func (w *Worker) settle(ctx context.Context, tx pgx.Tx, j *Job, rep *Reporter, set string, args ...any) error {
	tag, err := tx.Exec(ctx, `UPDATE jobs SET `+set+`, lease_expires_at = NULL, updated_at = now(),
			last_exit_code = coalesce($4, last_exit_code), last_stdout = coalesce($5, last_stdout),
			last_stderr = coalesce($6, last_stderr)
		WHERE id = $1 AND claimed_by = $2 AND state = 'running' AND attempts = $3`,
		append([]any{j.ID, w.cfg.WorkerID, j.Attempts, rep.exitCode, rep.stdout, rep.stderr}, args...)...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errLeaseLost
	}
	return nil
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
