package lifecycle

import (
	"context"
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
		p, err := lockReadyProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
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

// ExpireExports deletes the files of exports past their expiry at now and
// marks them expired.
func (s *Service) ExpireExports(ctx context.Context, now time.Time) (int, error) {
	if s.cfg.Blob == nil {
		return 0, nil
	}
	list, err := store.ListExpiredExports(ctx, s.Store.Pool, now, 200)
	if err != nil {
		return 0, err
	}
	for _, e := range list {
		if err := s.cfg.Blob.Delete(ctx, e.ObjectKey); err != nil {
			return 0, err
		}
		if err := skipStale(store.MarkExportExpired(ctx, s.Store.Pool, e.ID)); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}
