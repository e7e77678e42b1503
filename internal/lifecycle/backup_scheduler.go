package lifecycle

import (
	"context"
	"log/slog"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultBackupSchedulerInterval is how often due schedules and expired
// backups and exports are looked for.
const DefaultBackupSchedulerInterval = 30 * time.Second

// BackupSchedulerConfig tunes a BackupScheduler. Zero values get defaults.
type BackupSchedulerConfig struct {
	Interval time.Duration // default DefaultBackupSchedulerInterval
	Clock    bgsvc.Clock   // default the real time
	Logger   *slog.Logger
}

// BackupScheduler queues due scheduled backups and the deletion of expired
// backups, and expires exports. Every worker process runs one;
// RunBackupSchedules makes one server the leader of each round.
type BackupScheduler struct {
	svc *Service
	cfg BackupSchedulerConfig
	log *slog.Logger

	// TestSignals may be armed by tests before Run.
	TestSignals struct {
		// Round fires after each round with the backups it queued.
		Round bgsvc.Signal[int]
	}
}

// NewBackupScheduler builds the scheduler of s's backups and exports.
func NewBackupScheduler(s *Service, cfg BackupSchedulerConfig) *BackupScheduler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultBackupSchedulerInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &BackupScheduler{svc: s, cfg: cfg, log: cfg.Logger.With("component", "backup_scheduler")}
}

// Run runs a round at once and then every interval until ctx is cancelled.
func (b *BackupScheduler) Run(ctx context.Context) error {
	bgsvc.Every(ctx, b.cfg.Interval, b.round)
	return nil
}

func (b *BackupScheduler) round(ctx context.Context) {
	// One reading of the clock per round: schedules and expiries agree.
	now := b.cfg.Clock.Now()
	queued, expired, err := b.svc.RunBackupSchedules(ctx, now)
	switch {
	case err != nil && ctx.Err() == nil:
		b.log.Warn("running backup schedules failed", "error", err)
	case queued > 0 || expired > 0:
		b.log.Info("backup scheduler", "queued_backups", queued, "expired_backups", expired)
	}
	if _, err := b.svc.ExpireExports(ctx, now); err != nil && ctx.Err() == nil {
		b.log.Warn("expiring exports failed", "error", err)
	}
	b.TestSignals.Round.Send(queued)
}
