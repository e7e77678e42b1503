package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// exportHandler runs project.export: one consistent custom-format dump.
type exportHandler struct{ s *Service }

func (h *exportHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	var in exportPayload
	if err := j.DecodePayload(&in); err != nil || in.ExportID == "" {
		return nil, queue.PermanentError(fmt.Errorf("export job without an export"))
	}
	p, err := h.s.liveProject(ctx, j)
	if err != nil {
		return nil, err
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
	return wire.ExportJobResult{ExportID: e.ID, SizeBytes: art.Size}, nil
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
