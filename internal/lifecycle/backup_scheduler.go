package lifecycle

import (
	"context"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultBackupSchedulerInterval is how often due schedules and expired
// backups and exports are looked for.
const DefaultBackupSchedulerInterval = 30 * time.Second

// BackupScheduler queues due scheduled backups and the deletion of expired
// backups, and expires exports, every interval (Run). Every worker process
// runs one; RunBackupSchedules makes one server the leader of each round.
// Its Round test signal carries the number of backups queued.
type BackupScheduler struct{ *bgsvc.Periodic }

// NewBackupScheduler builds the scheduler of s's backups and exports; a
// zero interval is DefaultBackupSchedulerInterval.
func NewBackupScheduler(s *Service, cfg bgsvc.PeriodicConfig) *BackupScheduler {
	cfg = cfg.WithDefaults(DefaultBackupSchedulerInterval, "backup_scheduler")
	// One reading of the clock per round: schedules and expiries agree.
	return &BackupScheduler{bgsvc.NewPeriodic(cfg, func(ctx context.Context, now time.Time) int {
		queued, expired, err := s.RunBackupSchedules(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			cfg.Logger.Warn("running backup schedules failed", "error", err)
		case queued > 0 || expired > 0:
			cfg.Logger.Info("backup scheduler", "queued_backups", queued, "expired_backups", expired)
		}
		if _, err := s.ExpireExports(ctx, now); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("expiring exports failed", "error", err)
		}
		return queued
	})}
}
