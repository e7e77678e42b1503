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

// backupHandler runs project.backup: dump, then verification.
type backupHandler struct{ s *Service }

func (h *backupHandler) backup(ctx context.Context, db store.DB, j *queue.Job) (*store.Backup, error) {
	var in backupPayload
	if err := j.DecodePayload(&in); err != nil || in.BackupID == "" {
		return nil, queue.PermanentError(fmt.Errorf("backup job without a backup"))
	}
	b, err := store.GetBackup(ctx, db, in.BackupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, queue.PermanentError(err)
	}
	return b, err
}

func (h *backupHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	b, err := h.backup(ctx, h.s.Store.Pool, j)
	if err != nil {
		return nil, err
	}
	if b.State != store.BackupRunning {
		return nil, nil // finished by an earlier attempt
	}
	p, c, err := h.s.liveProjectCluster(ctx, j)
	if err != nil {
		return nil, err
	}
	if err := store.ResetBackupVerification(ctx, h.s.Store.Pool, b.ID); err != nil {
		return nil, err
	}
	if err := h.s.runBackup(ctx, rep, p, c, b); err != nil {
		return nil, err
	}
	return wire.BackupJobResult{BackupID: b.ID, BackupKey: b.BackupKey, SizeBytes: b.SizeBytes}, nil
}

func (h *backupHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	b, err := h.backup(ctx, tx, j)
	if err != nil {
		return err
	}
	if err := store.MarkBackupCompleted(ctx, tx, b.ID); err != nil {
		return skipStale(err)
	}
	return event(ctx, tx, j.OrganizationID, "backup.completed", map[string]any{
		"organization_id": j.OrganizationID, "project_id": b.ProjectID, "backup_id": b.ID, "backup_key": b.BackupKey,
		"job_id": j.ID, "size_bytes": b.SizeBytes, "verification_state": store.VerifyVerified,
	})
}

func (h *backupHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	b, err := h.backup(ctx, tx, j)
	if err != nil {
		return nil
	}
	return skipStale(store.MarkBackupFailed(ctx, tx, b.ID, &msg))
}

// backupDeleteHandler runs project.backup_delete: the file goes, the record
// stays as expired.
type backupDeleteHandler struct{ s *Service }

func (h *backupDeleteHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	b, err := (&backupHandler{h.s}).backup(ctx, h.s.Store.Pool, j)
	if err != nil {
		return nil, err
	}
	if h.s.cfg.Blob == nil {
		return nil, errors.New("no backup storage is configured")
	}
	return nil, h.s.cfg.Blob.Delete(ctx, b.BackupKey)
}

func (h *backupDeleteHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	var in backupPayload
	if err := j.DecodePayload(&in); err != nil {
		return err
	}
	if err := skipStale(store.MarkBackupExpired(ctx, tx, in.BackupID)); err != nil {
		return err
	}
	return store.TouchRestorePoints(ctx, tx, in.BackupID)
}

func (h *backupDeleteHandler) OnFail(context.Context, pgx.Tx, *queue.Job, string) error { return nil }
