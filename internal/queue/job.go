// Package queue is CapyDB's durable job queue on the control database: jobs
// are rows claimed with FOR UPDATE SKIP LOCKED, held with renewed leases,
// retried with exponential backoff, and serialized per locked resource by a
// partial unique index. Workers wake on LISTEN/NOTIFY; polling is the fallback.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// Job states.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateCompleted = "completed"
	StateFailed    = "failed"
)

// Retry classifications.
const (
	Transient = "transient"
	Permanent = "permanent"
)

// notifyChannel is the LISTEN/NOTIFY channel that wakes workers.
const notifyChannel = "capydb_jobs"

// Job is a row of the jobs table.
type Job struct {
	ID                  string
	Type                string
	State               string
	OrganizationID      string
	ProjectID           *string
	PreviewDatabaseID   *string
	ClusterID           *string
	Attempts            int
	MaxAttempts         int
	RetryClassification string
	Error               *string
	LastExitCode        *int
	LastStdout          *string
	LastStderr          *string
	LockedResource      *string
	ClaimedBy           *string
	ClaimedAt           *time.Time
	LeaseExpiresAt      *time.Time
	StartedAt           *time.Time
	CompletedAt         *time.Time
	RunAt               time.Time
	Payload             json.RawMessage
	Result              json.RawMessage
	Progress            json.RawMessage
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Terminal reports whether the job reached completed or failed.
func (j *Job) Terminal() bool { return j.State == StateCompleted || j.State == StateFailed }

// DecodePayload unmarshals the job's payload into v.
func (j *Job) DecodePayload(v any) error {
	if len(j.Payload) == 0 {
		return nil
	}
	return json.Unmarshal(j.Payload, v)
}

const jobColumns = `id, type, state, organization_id, project_id, preview_database_id, cluster_id,
	attempts, max_attempts, retry_classification, error, last_exit_code, last_stdout, last_stderr,
	locked_resource, claimed_by, claimed_at, lease_expires_at, started_at, completed_at, run_at,
	payload, result, progress, created_at, updated_at`

func scanJob(row pgx.Row) (*Job, error) {
	var j Job
	err := row.Scan(&j.ID, &j.Type, &j.State, &j.OrganizationID, &j.ProjectID, &j.PreviewDatabaseID,
		&j.ClusterID, &j.Attempts, &j.MaxAttempts, &j.RetryClassification, &j.Error, &j.LastExitCode,
		&j.LastStdout, &j.LastStderr, &j.LockedResource, &j.ClaimedBy, &j.ClaimedAt, &j.LeaseExpiresAt,
		&j.StartedAt, &j.CompletedAt, &j.RunAt, &j.Payload, &j.Result, &j.Progress, &j.CreatedAt, &j.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// EnqueueParams describe a new job.
type EnqueueParams struct {
	ID             string // optional; generated when empty
	Type           string
	OrganizationID string
	ProjectID      string
	PreviewID      string
	ClusterID      string
	LockedResource string // e.g. "project:prj_..."; empty = no lock
	Payload        any
	MaxAttempts    int       // default 5
	RunAt          time.Time // zero = now
}

// DefaultMaxAttempts is how many attempts a job gets unless its type says otherwise.
const DefaultMaxAttempts = 5

// Enqueue inserts a job and wakes the workers when tx commits. Call it in the
// transaction that writes the state change the job belongs to.
func Enqueue(ctx context.Context, db store.DB, p EnqueueParams) (*Job, error) {
	if p.ID == "" {
		p.ID = ids.New("job_")
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	payload := []byte("{}")
	if p.Payload != nil {
		b, err := json.Marshal(p.Payload)
		if err != nil {
			return nil, fmt.Errorf("while encoding the job payload: %w", err)
		}
		payload = b
	}
	var runAt any
	if !p.RunAt.IsZero() {
		runAt = p.RunAt
	}
	j, err := scanJob(db.QueryRow(ctx, `INSERT INTO jobs (id, type, organization_id, project_id,
			preview_database_id, cluster_id, locked_resource, payload, max_attempts, run_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''),
			-- A job of a project or preview belongs to its cluster even when the
			-- caller did not say so: only that cluster's node can run it.
			coalesce(NULLIF($6, ''), (SELECT cluster_id FROM preview_databases WHERE id = NULLIF($5, '')),
				(SELECT cluster_id FROM projects WHERE id = NULLIF($4, ''))),
			NULLIF($7, ''), $8, $9, coalesce($10, now()))
		RETURNING `+jobColumns,
		p.ID, p.Type, p.OrganizationID, p.ProjectID, p.PreviewID, p.ClusterID, p.LockedResource, payload,
		p.MaxAttempts, runAt))
	if err != nil {
		return nil, fmt.Errorf("while enqueueing %s: %w", p.Type, err)
	}
	if _, err := db.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel); err != nil {
		return nil, err
	}
	return j, nil
}

// Get reads a job of an organization.
func Get(ctx context.Context, db store.DB, orgID, id string) (*Job, error) {
	return scanJob(db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND organization_id = $2`, id, orgID))
}

// GetAny reads a job by id regardless of organization (internal use).
func GetAny(ctx context.Context, db store.DB, id string) (*Job, error) {
	return scanJob(db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
}

// ListByProject returns a project's jobs (its previews' included), newest first.
func ListByProject(ctx context.Context, db store.DB, projectID string, limit int) ([]*Job, error) {
	rows, err := db.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE project_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, projectID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ActiveJob returns the pending or running job of the given type on a project, if any.
func ActiveJob(ctx context.Context, db store.DB, projectID, typ string) (*Job, error) {
	return scanJob(db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE project_id = $1 AND type = $2 AND state IN ('pending', 'running')
		ORDER BY created_at DESC LIMIT 1`, projectID, typ))
}

// ActiveJobs returns every pending or running job of the given type on a project.
func ActiveJobs(ctx context.Context, db store.DB, projectID, typ string) ([]*Job, error) {
	rows, err := db.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE project_id = $1 AND type = $2 AND state IN ('pending', 'running') ORDER BY created_at`, projectID, typ)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Overdue counts the pending jobs that have been due for longer than age
// (the job_workers component of GET /status).
func Overdue(ctx context.Context, db store.DB, age time.Duration) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state = 'pending' AND run_at < now() - $1::interval`,
		pgInterval(age)).Scan(&n)
	return n, err
}

// ActivePreviewJob returns the newest pending or running job of the given
// type on a preview; store.ErrNotFound when there is none.
func ActivePreviewJob(ctx context.Context, db store.DB, previewID, typ string) (*Job, error) {
	return scanJob(db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE preview_database_id = $1 AND type = $2 AND state IN ('pending', 'running')
		ORDER BY created_at DESC LIMIT 1`, previewID, typ))
}

// CountRunning counts a project's running jobs of the given types.
func CountRunning(ctx context.Context, db store.DB, projectID string, types []string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE project_id = $1 AND state = 'running'
		AND type = ANY($2)`, projectID, types).Scan(&n)
	return n, err
}

// FailureMessage is a failed job's recorded error, or def when it has none.
func (j *Job) FailureMessage(def string) string {
	if j.Error != nil {
		return *j.Error
	}
	return def
}

// ErrNotFinished is Await's error when the job is still pending or running
// at the deadline.
var ErrNotFinished = errors.New("job not finished")

// Await reads the job with get every 100 ms until it is completed or failed
// and returns it; after wait it returns the last job read and
// ErrNotFinished. Callers that make a change through a job and answer only
// once it is applied wait with it.
func Await(ctx context.Context, wait time.Duration, get func(context.Context) (*Job, error)) (*Job, error) {
	deadline := time.Now().Add(wait)
	for {
		j, err := get(ctx)
		if err != nil {
			return nil, err
		}
		if j.State == StateCompleted || j.State == StateFailed {
			return j, nil
		}
		if time.Now().After(deadline) {
			return j, ErrNotFinished
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
