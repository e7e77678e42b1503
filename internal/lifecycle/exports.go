package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// ExportRetention is how long an export stays downloadable.
const ExportRetention = 7 * 24 * time.Hour

type exportPayload struct {
	ExportID string `json:"export_id"`
}

// CreateExport records an export (state running) and queues project.export.
func (s *Service) CreateExport(ctx context.Context, orgID, projectID string, actor Actor) (*store.Export, *queue.Job, error) {
	var e *store.Export
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		if p.State != store.ProjectReady {
			return conflictf("project is not ready (state %s)", p.State)
		}
		id, jobID := ids.New("exp_"), ids.New("job_")
		e = &store.Export{ID: id, OrganizationID: orgID, ProjectID: p.ID, ObjectKey: blobstore.Key(p.ID, "exports", id),
			DatabaseName: p.DatabaseName, State: store.BackupRunning, JobID: &jobID, ExpiresAt: time.Now().Add(ExportRetention)}
		if err := store.InsertExport(ctx, tx, e); err != nil {
			return err
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{ID: jobID, Type: JobProjectExport, OrganizationID: orgID,
			ProjectID: p.ID, ClusterID: p.ClusterID, Payload: exportPayload{ExportID: id}})
		return err
	})
	return e, job, err
}

// exportHandler runs project.export: one consistent custom-format dump.
type exportHandler struct{ s *Service }

func (h *exportHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	var in exportPayload
	if err := j.DecodePayload(&in); err != nil || in.ExportID == "" {
		return nil, queue.PermanentError(fmt.Errorf("export job without an export"))
	}
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil || p.State == store.ProjectDeleting {
		return nil, queue.PermanentError(fmt.Errorf("project is being deleted"))
	}
	e, err := store.GetExport(ctx, h.s.Store.Pool, p.ID, in.ExportID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, queue.PermanentError(err)
	}
	if err != nil {
		return nil, err
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	art, _, err := h.s.dumpToBlob(ctx, rep, c, p.DatabaseName, e.ObjectKey)
	if err != nil {
		return nil, err
	}
	if _, err := h.s.Store.Pool.Exec(ctx, `UPDATE project_exports SET size_bytes = $2, checksum_sha256 = $3, updated_at = now()
		WHERE id = $1`, e.ID, art.Size, art.SHA256); err != nil {
		return nil, err
	}
	return map[string]any{"export_id": e.ID, "size_bytes": art.Size}, nil
}

func (h *exportHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	var in exportPayload
	if err := j.DecodePayload(&in); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE project_exports SET state = 'completed', updated_at = now() WHERE id = $1 AND state = 'running'`, in.ExportID)
	return err
}

func (h *exportHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, _ string) error {
	var in exportPayload
	if err := j.DecodePayload(&in); err != nil {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE project_exports SET state = 'failed', updated_at = now() WHERE id = $1 AND state = 'running'`, in.ExportID)
	return err
}

// ExpireExports deletes the files of exports past their expiry at now and
// marks them expired.
func (s *Service) ExpireExports(ctx context.Context, now time.Time) (int, error) {
	if s.Blob == nil {
		return 0, nil
	}
	rows, err := s.Store.Pool.Query(ctx, `SELECT id, object_key FROM project_exports
		WHERE expires_at <= $1 AND state IN ('completed', 'failed') LIMIT 200`, now)
	if err != nil {
		return 0, err
	}
	type item struct{ id, key string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
		var it item
		return it, r.Scan(&it.id, &it.key)
	})
	if err != nil {
		return 0, err
	}
	for _, it := range list {
		if err := s.Blob.Delete(ctx, it.key); err != nil {
			return 0, err
		}
		if _, err := s.Store.Pool.Exec(ctx, `UPDATE project_exports SET state = 'expired', updated_at = now() WHERE id = $1`, it.id); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}
