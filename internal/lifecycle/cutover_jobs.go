package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// promoteHandler runs project.promote_preview: the pre-cutover backup is
// taken and verified, the preview is copied into the project's build
// database (owned by the project's owner) and swapped in, as an overwrite
// restore; the project keeps its roles and credentials.
type promoteHandler struct{ s *Service }

func (h *promoteHandler) payload(j *queue.Job) (*promotePayload, error) {
	var in promotePayload
	if err := j.DecodePayload(&in); err != nil || in.CutoverRequestID == "" || in.BackupID == "" {
		return nil, queue.PermanentError(errors.New("promote job without a cutover request"))
	}
	return &in, nil
}

func (h *promoteHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	in, err := h.payload(j)
	if err != nil {
		return nil, err
	}
	p, c, err := h.s.liveProjectCluster(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectRestoring {
		return nil, queue.PermanentError(fmt.Errorf("project is %s", p.State))
	}
	pv, err := h.s.previewOf(ctx, j)
	if err != nil {
		return nil, err
	}
	if pv.DeletedAt != nil || pv.State != store.PreviewReady {
		return nil, queue.PermanentError(fmt.Errorf("preview %s is %s", pv.ID, pv.State))
	}
	b, err := store.GetBackup(ctx, h.s.Store.Pool, in.BackupID)
	if err != nil {
		return nil, err
	}
	if b.VerificationState != store.VerifyVerified {
		_ = rep.Progress(ctx, map[string]any{"phase": "backing up"})
		if err := h.s.runBackup(ctx, rep, p, c, b); err != nil {
			if queue.IsPermanent(err) {
				_ = store.MarkBackupFailed(ctx, h.s.Store.Pool, b.ID, nil)
			}
			return nil, fmt.Errorf("while taking the pre-cutover backup: %w", err)
		}
		if err := store.MarkBackupCompleted(ctx, h.s.Store.Pool, b.ID); err != nil {
			return nil, err
		}
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "copying the preview"})
	started := time.Now()
	if _, err := c.BuildDatabase(ctx, dataplane.BuildParams{Source: pv.DatabaseName, Target: nextDB(p.DatabaseName), Owner: p.OwnerRole,
		Workers: h.s.cloneWorkers(), Command: rep.Command}); err != nil {
		return nil, permanentIfForeign(err)
	}
	if err := c.SwapDatabase(ctx, p.DatabaseName, nextDB(p.DatabaseName), oldDB(p.DatabaseName), p.OwnerRole); err != nil {
		return nil, err
	}
	return wire.PromoteJobResult{CutoverRequestID: in.CutoverRequestID, PreviewID: pv.ID, PreCutoverBackupID: b.ID,
		CopyDurationMS: time.Since(started).Milliseconds()}, nil
}

// Abort leaves the project as it was (a half-finished swap is undone).
func (h *promoteHandler) Abort(ctx context.Context, j *queue.Job) error {
	p, c, err := h.s.abortProjectCluster(ctx, j)
	if p == nil {
		return err
	}
	return undoSwap(ctx, c, p.DatabaseName, p.OwnerRole)
}

func (h *promoteHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	in, err := h.payload(j)
	if err != nil {
		return err
	}
	if err := skipStale(store.FinishProjectRestore(ctx, tx, *j.ProjectID, nil)); err != nil {
		return err
	}
	c, err := store.LockCutoverRequest(ctx, tx, in.CutoverRequestID)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	c.Status, c.CompletedAt = store.CutoverCompleted, &now
	if err := store.UpdateCutoverRequest(ctx, tx, c); err != nil {
		return err
	}
	return audit(ctx, tx, j.OrganizationID, *j.ProjectID, "production_overwrite_restore", Actor{Kind: "system"},
		map[string]any{"cutover_request_id": c.ID, "preview_id": c.PreviewDatabaseID, "pre_cutover_backup_id": in.BackupID, "job_id": j.ID})
}

// OnFail: the request stays acked (the job's error explains); the project is ready again.
func (h *promoteHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	return skipStale(store.FinishProjectRestore(ctx, tx, *j.ProjectID, &msg))
}
