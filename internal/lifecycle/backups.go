package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Backup, restore, import and export job types.
const (
	JobProjectBackup       = "project.backup"
	JobProjectBackupDelete = "project.backup_delete"
	JobProjectRestore      = "project.restore"
	JobProjectImport       = "project.import"
	JobProjectExport       = "project.export"
)

// Retention defaults.
const (
	// ManualBackupRetention is how long on-demand backups are kept.
	ManualBackupRetention = 7 * 24 * time.Hour
	// DefaultScheduleRetentionDays applies when a schedule gives none.
	DefaultScheduleRetentionDays = 7
)

// MaxLabelLen bounds backup and restore point labels.
const MaxLabelLen = 120

type backupPayload struct {
	BackupID string `json:"backup_id"`
}

// CreateBackup records a backup (state running, key assigned) and queues
// project.backup in one transaction.
func (s *Service) CreateBackup(ctx context.Context, orgID, projectID, label string, actor Actor) (*store.Backup, *queue.Job, error) {
	var b *store.Backup
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := lockReadyProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		// Not audited: PRODUCT.md §19 records backups through their job.
		b, job, err = s.enqueueBackupTx(ctx, tx, p, label, store.BackupKindManual, time.Now().Add(ManualBackupRetention))
		return err
	})
	return b, job, err
}

func (s *Service) enqueueBackupTx(ctx context.Context, tx pgx.Tx, p *store.Project, label, kind string, expires time.Time) (*store.Backup, *queue.Job, error) {
	b := s.newBackup(p, label, kind, expires)
	jobID := ids.New("job_")
	b.JobID = &jobID
	if err := store.InsertBackup(ctx, tx, b); err != nil {
		return nil, nil, err
	}
	job, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
		ID: jobID, Type: JobProjectBackup, OrganizationID: p.OrganizationID, ProjectID: p.ID, ClusterID: p.ClusterID,
		LockedResource: "project:" + p.ID, Payload: backupPayload{BackupID: b.ID},
	})
	return b, job, err
}

func (s *Service) newBackup(p *store.Project, label, kind string, expires time.Time) *store.Backup {
	id := ids.New("bkp_")
	b := &store.Backup{ID: id, OrganizationID: p.OrganizationID, ProjectID: p.ID,
		BackupKey: blobstore.Key(p.ID, "backups", id), DatabaseName: p.DatabaseName, Kind: kind,
		State: store.BackupRunning, VerificationState: store.VerifyPending}
	if label != "" {
		b.Label = &label
	}
	if !expires.IsZero() {
		b.ExpiresAt = &expires
	}
	return b
}

// throttledProgress reports bytes written at most twice a second.
func throttledProgress(ctx context.Context, rep *queue.Reporter, phase string) func(int64) {
	var mu sync.Mutex
	var last time.Time
	return func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 500*time.Millisecond {
			return
		}
		last = time.Now()
		_ = rep.Progress(ctx, map[string]any{"phase": phase, "bytes_done": n})
	}
}

// dumpToBlob dumps db into key and returns the artifact and the snapshot's row counts.
func (s *Service) dumpToBlob(ctx context.Context, rep *queue.Reporter, c *dataplane.Cluster, db, key string) (blobstore.Artifact, dataplane.TableCounts, error) {
	if s.cfg.Blob == nil {
		return blobstore.Artifact{}, nil, queue.PermanentError(errors.New("no backup storage is configured"))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.cfg.Blob.NewWriter(wctx, key, throttledProgress(ctx, rep, "dumping"))
	if err != nil {
		return blobstore.Artifact{}, nil, err
	}
	counts, err := c.Dump(ctx, dataplane.DumpParams{Database: db, Out: w, Command: rep.Command})
	if err != nil {
		cancel() // discards the partial object
		_, _ = w.Close()
		return blobstore.Artifact{}, nil, err
	}
	art, err := w.Close()
	if err != nil {
		return art, nil, err
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "dumped", "bytes_done": art.Size, "bytes_total": art.Size})
	return art, counts, nil
}

// verifyBackup test-restores a stored backup into a throwaway database and
// compares row counts; the error says why it failed.
func (s *Service) verifyBackup(ctx context.Context, rep *queue.Reporter, c *dataplane.Cluster, b *store.Backup, owner string) error {
	_ = rep.Progress(ctx, map[string]any{"phase": "verifying", "bytes_done": b.SizeBytes, "bytes_total": b.SizeBytes})
	file, err := s.cfg.Blob.FetchFile(ctx, b.BackupKey, artifactOf(b))
	if err != nil {
		return err
	}
	defer os.Remove(file)
	scratch := "capyv_" + strings.ToLower(strings.TrimPrefix(b.ID, "bkp_"))
	return c.VerifyArchive(ctx, file, scratch, owner, dataplane.TableCounts(b.TableCounts), rep.Command)
}

func artifactOf(b *store.Backup) blobstore.Artifact {
	a := blobstore.Artifact{Size: b.SizeBytes}
	if b.ChecksumSHA256 != nil {
		a.SHA256 = *b.ChecksumSHA256
	}
	return a
}

// runBackup dumps and verifies backup b of p. The outcome of verification
// is written to the record; a failed verification is a permanent error.
func (s *Service) runBackup(ctx context.Context, rep *queue.Reporter, p *store.Project, c *dataplane.Cluster, b *store.Backup) error {
	art, counts, err := s.dumpToBlob(ctx, rep, c, p.DatabaseName, b.BackupKey)
	if err != nil {
		return err
	}
	if err := store.FinishBackupDump(ctx, s.Store.Pool, b.ID, art.Size, art.SHA256, counts); err != nil {
		return err
	}
	b.SizeBytes, b.ChecksumSHA256, b.TableCounts = art.Size, &art.SHA256, counts
	if d := s.cfg.VerifyDelay; d > 0 {
		if err := bgsvc.Sleep(ctx, d); err != nil {
			return err
		}
	}
	if verr := s.verifyBackup(ctx, rep, c, b, p.OwnerRole); verr != nil {
		if ctx.Err() != nil {
			return verr
		}
		msg := verr.Error()
		if err := store.FailBackupVerification(ctx, s.Store.Pool, b.ID, msg); err != nil {
			return err
		}
		return queue.PermanentError(fmt.Errorf("backup verification failed: %w", verr))
	}
	return nil
}

// ScheduleParams is a validated schedule.
type ScheduleParams struct {
	CronHour, CronMinute int
	IsActive             bool
	Label                string
	RetentionDays        int // 0 = default
}

// UpsertSchedule replaces a project's default schedule.
func (s *Service) UpsertSchedule(ctx context.Context, orgID, projectID string, in ScheduleParams, actor Actor) (*store.BackupSchedule, error) {
	if in.RetentionDays == 0 {
		in.RetentionDays = DefaultScheduleRetentionDays
	}
	var out *store.BackupSchedule
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		out, err = store.UpsertBackupSchedule(ctx, tx, &store.BackupSchedule{ID: ids.New("sbk_"), OrganizationID: orgID,
			ProjectID: p.ID, CronHour: in.CronHour, CronMinute: in.CronMinute, IsActive: in.IsActive, Label: in.Label,
			RetentionDays: in.RetentionDays})
		if err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "backup_schedule.updated", actor, map[string]any{
			"cron_hour": in.CronHour, "cron_minute": in.CronMinute, "is_active": in.IsActive, "retention_days": in.RetentionDays,
		})
	})
	return out, err
}

// scheduleDue reports whether a schedule should run at now: its time of day
// has passed today (UTC) and it has not run since then. A server that was
// down at that minute catches up once, the same UTC day.
func scheduleDue(sc *store.BackupSchedule, now time.Time) bool {
	now = now.UTC()
	at := time.Date(now.Year(), now.Month(), now.Day(), sc.CronHour, sc.CronMinute, 0, 0, time.UTC)
	if now.Before(at) {
		return false
	}
	return sc.LastRunAt == nil || sc.LastRunAt.Before(at)
}

// RunBackupSchedules queues due scheduled backups and the deletion of
// expired backups at now. One server leads each round (a transaction-scoped
// advisory lock); the others skip it.
func (s *Service) RunBackupSchedules(ctx context.Context, now time.Time) (queued, expired int, err error) {
	err = s.Store.InTx(ctx, func(tx pgx.Tx) error {
		leader, err := bgsvc.TryLeadTx(ctx, tx, "capydb.backup_scheduler")
		if err != nil {
			return err
		}
		if !leader {
			return nil
		}
		schedules, err := store.LockActiveSchedules(ctx, tx)
		if err != nil {
			return err
		}
		for _, sc := range schedules {
			if !scheduleDue(sc, now) {
				continue
			}
			p, err := store.LockProject(ctx, tx, sc.OrganizationID, sc.ProjectID)
			if err != nil {
				return err
			}
			expires := now.Add(time.Duration(sc.RetentionDays) * 24 * time.Hour)
			_, job, err := s.enqueueBackupTx(ctx, tx, p, sc.Label, store.BackupKindScheduled, expires)
			if err != nil {
				return err
			}
			if err := store.SetScheduleRun(ctx, tx, sc.ID, job.ID, now); err != nil {
				return err
			}
			queued++
		}
		due, err := store.LockExpiredBackups(ctx, tx, now, 200)
		if err != nil {
			return err
		}
		for _, b := range due {
			if _, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
				Type: JobProjectBackupDelete, OrganizationID: b.OrganizationID, ProjectID: b.ProjectID,
				Payload: backupPayload{BackupID: b.ID},
			}); err != nil {
				return err
			}
			expired++
		}
		return nil
	})
	return queued, expired, err
}

// deleteProjectArtifacts removes a deleted project's backups, exports and
// uploads from storage and its restore points (project.delete). Records stay
// (backups and exports as expired) for the audit trail; a retry is safe.
func (s *Service) deleteProjectArtifacts(ctx context.Context, p *store.Project) error {
	if s.cfg.Blob == nil {
		return nil
	}
	keys, err := store.ProjectArtifactKeys(ctx, s.Store.Pool, p.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.cfg.Blob.Delete(ctx, k); err != nil {
			return err
		}
	}
	return s.Store.InTx(ctx, func(tx pgx.Tx) error { return store.ExpireProjectArtifacts(ctx, tx, p.ID) })
}
