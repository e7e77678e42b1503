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
	if err := store.SetExportArtifact(ctx, h.s.Store.Pool, e.ID, art.Size, art.SHA256); err != nil {
		return nil, err
	}
	return map[string]any{"export_id": e.ID, "size_bytes": art.Size}, nil
}

func (h *exportHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	var in exportPayload
	if err := j.DecodePayload(&in); err != nil {
		return err
	}
	return skipStale(store.MarkExportCompleted(ctx, tx, in.ExportID))
}

func (h *exportHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, _ string) error {
	var in exportPayload
	if err := j.DecodePayload(&in); err != nil {
		return nil
	}
	return skipStale(store.MarkExportFailed(ctx, tx, in.ExportID))
}

// ExpireExports deletes the files of exports past their expiry at now and
// marks them expired.
func (s *Service) ExpireExports(ctx context.Context, now time.Time) (int, error) {
	if s.Blob == nil {
		return 0, nil
	}
	list, err := store.ListExpiredExports(ctx, s.Store.Pool, now, 200)
	if err != nil {
		return 0, err
	}
	for _, e := range list {
		if err := s.Blob.Delete(ctx, e.ObjectKey); err != nil {
			return 0, err
		}
		if err := skipStale(store.MarkExportExpired(ctx, s.Store.Pool, e.ID)); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}
