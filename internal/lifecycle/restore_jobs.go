package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/pitr"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// restoreHandler runs project.restore and instance.pitr_restore: the
// backup (checksum checked), or the database extracted at a point in time
// (pitr.RestoreDatabase), is loaded into a new database that is swapped in
// only once it is complete.
type restoreHandler struct{ s *Service }

func (h *restoreHandler) payload(j *queue.Job) (restorePayload, error) {
	var in restorePayload
	if err := j.DecodePayload(&in); err != nil || (in.BackupID == "") == (in.PITR == nil) {
		return in, queue.PermanentError(fmt.Errorf("restore job without a backup"))
	}
	return in, nil
}

func (h *restoreHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	in, err := h.payload(j)
	if err != nil {
		return nil, err
	}
	p, c, err := h.s.liveProjectCluster(ctx, j)
	if err != nil {
		return nil, err
	}
	var b *store.Backup
	if in.PITR == nil {
		if b, err = store.GetBackup(ctx, h.s.Store.Pool, in.BackupID); err != nil {
			return nil, err
		}
		if b.State != store.BackupCompleted {
			return nil, queue.PermanentError(fmt.Errorf("backup %s is %s", b.ID, b.State))
		}
	}
	if in.TargetKind == TargetProject && in.SafetyBackupID != "" {
		safety, err := store.GetBackup(ctx, h.s.Store.Pool, in.SafetyBackupID)
		if err != nil {
			return nil, err
		}
		if safety.VerificationState != store.VerifyVerified {
			if err := h.s.runBackup(ctx, rep, p, c, safety); err != nil {
				if queue.IsPermanent(err) {
					_ = store.MarkBackupFailed(ctx, h.s.Store.Pool, safety.ID, nil)
				}
				return nil, fmt.Errorf("while taking the safety backup: %w", err)
			}
			if err := store.MarkBackupCompleted(ctx, h.s.Store.Pool, safety.ID); err != nil {
				return nil, err
			}
		}
	}
	var file string
	if in.PITR != nil {
		file, err = h.extract(ctx, j, p, in.PITR, rep)
	} else {
		file, err = h.fetch(ctx, b, rep)
	}
	if err != nil {
		return nil, err
	}
	defer os.Remove(file)

	main, owner := p.DatabaseName, p.OwnerRole
	if in.TargetKind != TargetProject {
		pv, err := h.s.previewOf(ctx, j)
		if err != nil {
			return nil, err
		}
		if pv.DeletedAt != nil || pv.State == store.PreviewDeleting {
			return nil, queue.PermanentError(fmt.Errorf("preview is being deleted"))
		}
		if err := h.s.ensurePreviewRole(ctx, c, pv, rep); err != nil {
			return nil, err
		}
		main, owner = pv.DatabaseName, pv.RoleName
	}
	err = c.Restore(ctx, dataplane.RestoreParams{File: file, Target: nextDB(main), Owner: owner, Jobs: h.s.cloneWorkers(), Command: rep.Command})
	if err != nil {
		return nil, permanentIfForeign(err)
	}
	if err := c.SwapDatabase(ctx, main, nextDB(main), oldDB(main), owner); err != nil {
		return nil, err
	}
	result := wire.RestoreJobResult{TargetKind: in.TargetKind}
	if t := in.PITR; t != nil {
		result.RequestedRestoreTime, result.RestoreTime, result.RestoreTimeClamped = &t.Requested, &t.Effective, &t.Clamped
	}
	if j.PreviewDatabaseID != nil {
		result.PreviewID = *j.PreviewDatabaseID
	}
	return result, nil
}

// Abort leaves the target as it was: a half-finished swap is undone and the
// partial database dropped; a new preview is removed entirely.
func (h *restoreHandler) Abort(ctx context.Context, j *queue.Job) error {
	in, err := h.payload(j)
	if err != nil {
		return nil
	}
	p, c, err := h.s.abortProjectCluster(ctx, j)
	if p == nil {
		return err
	}
	if in.TargetKind == TargetProject {
		return undoSwap(ctx, c, p.DatabaseName, p.OwnerRole)
	}
	pv, err := h.s.previewOf(ctx, j)
	if err != nil {
		return nil
	}
	if err := undoSwap(ctx, c, pv.DatabaseName, pv.RoleName); err != nil {
		return err
	}
	if in.TargetKind == TargetNewPreview {
		return h.s.dropPreviewObjects(ctx, c, pv)
	}
	return nil
}

func (h *restoreHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	in, err := h.payload(j)
	if err != nil {
		return err
	}
	data := map[string]any{"organization_id": j.OrganizationID, "project_id": *j.ProjectID, "job_id": j.ID,
		"target_kind": in.TargetKind}
	var b *store.Backup
	if t := in.PITR; t != nil {
		data["requested_restore_time"], data["restore_time"], data["restore_time_clamped"] = t.Requested, t.Effective, t.Clamped
	} else {
		if b, err = store.GetBackup(ctx, tx, in.BackupID); err != nil {
			return err
		}
		data["backup_id"], data["backup_key"] = b.ID, b.BackupKey
	}
	switch in.TargetKind {
	case TargetProject:
		if err := skipStale(store.FinishProjectRestore(ctx, tx, *j.ProjectID, nil)); err != nil {
			return err
		}
		data["safety_backup_id"] = in.SafetyBackupID
	default:
		var err error
		if b != nil {
			err = store.MarkPreviewRestored(ctx, tx, *j.PreviewDatabaseID, b.BackupKey)
		} else {
			err = store.MarkPreviewRestoredAt(ctx, tx, *j.PreviewDatabaseID, in.PITR.Effective)
		}
		if err := skipStale(err); err != nil {
			return err
		}
		data["preview_id"] = *j.PreviewDatabaseID
		if in.TargetKind == TargetNewPreview {
			if err := event(ctx, tx, j.OrganizationID, "preview.ready", map[string]any{
				"organization_id": j.OrganizationID, "project_id": *j.ProjectID, "preview_id": *j.PreviewDatabaseID, "job_id": j.ID,
			}); err != nil {
				return err
			}
		}
	}
	return event(ctx, tx, j.OrganizationID, "restore.completed", data)
}

func (h *restoreHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	in, _ := h.payload(j)
	switch in.TargetKind {
	case TargetProject:
		return skipStale(store.FinishProjectRestore(ctx, tx, *j.ProjectID, &msg))
	case TargetPreview:
		return skipStale(store.FailPreviewRestore(ctx, tx, *j.PreviewDatabaseID, msg))
	default:
		return skipStale(store.MarkPreviewFailed(ctx, tx, *j.PreviewDatabaseID, store.PreviewProvisioning, msg))
	}
}

// fetch downloads the backup b (checksum checked) into a temporary file.
func (h *restoreHandler) fetch(ctx context.Context, b *store.Backup, rep *queue.Reporter) (string, error) {
	_ = rep.Progress(ctx, map[string]any{"phase": "downloading", "bytes_total": b.SizeBytes})
	file, err := h.s.cfg.Blob.FetchFile(ctx, b.BackupKey, artifactOf(b))
	if errors.Is(err, blobstore.ErrChecksumMismatch) || errors.Is(err, blobstore.ErrNotFound) {
		return "", queue.PermanentError(err)
	}
	if err != nil {
		return "", err
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "restoring", "bytes_total": b.SizeBytes})
	return file, nil
}

// extract dumps the project's database as it was at t.Effective from a
// private recovery instance (pitr.RestoreDatabase) into a temporary file.
func (h *restoreHandler) extract(ctx context.Context, j *queue.Job, p *store.Project, t *pitrPayload, rep *queue.Reporter) (string, error) {
	m := h.s.PITRFor(p)
	if m == nil {
		return "", queue.PermanentError(errNoPITR)
	}
	dir := h.s.cfg.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	file := filepath.Join(dir, "pitr-"+j.ID+".dump")
	res, err := m.RestoreDatabase(ctx, pitr.RestoreParams{Key: j.ID, DatabaseOID: t.DatabaseOID, Target: t.Effective, Out: file,
		Command: rep.Command, Phase: func(ph string) { _ = rep.Progress(ctx, map[string]any{"phase": ph}) }})
	switch {
	case errors.Is(err, pitr.ErrNotReachable), errors.Is(err, pitr.ErrNoBackup), errors.Is(err, pitr.ErrNoDatabase):
		return "", queue.PermanentError(err)
	case err != nil:
		return "", err
	}
	h.s.Log.Info("point-in-time extraction done", "job_id", j.ID, "database", res.Database, "selective", res.Selective,
		"restore_ms", res.Timings["restore"].Milliseconds(), "replay_ms", res.Timings["replay"].Milliseconds(),
		"dump_ms", res.Timings["dump"].Milliseconds())
	_ = rep.Progress(ctx, map[string]any{"phase": "restoring"})
	return file, nil
}
