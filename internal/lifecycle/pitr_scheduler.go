package lifecycle

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultPITRBackupInterval is how often a base backup is taken.
const DefaultPITRBackupInterval = 24 * time.Hour

// PITRBackupScheduler takes the base backups of the archiving cluster: one
// at once when there is none (the window opens when it ends), then one
// whenever the newest is older than the interval (full weekly, else
// differential; pgBackRest expires what leaves the window after each), and
// a verify of the repository weekly. One server leads each round.
type PITRBackupScheduler struct{ *bgsvc.Periodic }

// NewPITRBackupScheduler checks every cfg.Interval (default 1 minute)
// whether a base backup older than every is due (0 = DefaultPITRBackupInterval).
func NewPITRBackupScheduler(s *Service, every time.Duration, cfg bgsvc.PeriodicConfig) *PITRBackupScheduler {
	cfg = cfg.WithDefaults(time.Minute, "pitr_backups")
	bgsvc.Default(&every, DefaultPITRBackupInterval)
	var lastVerify time.Time
	return &PITRBackupScheduler{bgsvc.NewPeriodic(cfg, func(ctx context.Context, now time.Time) int {
		s.mu.RLock()
		m := s.pitr
		s.mu.RUnlock()
		if m == nil {
			return 0
		}
		took := 0
		err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
			leader, err := bgsvc.TryLeadTx(ctx, tx, "capydb.pitr_backups")
			if err != nil || !leader {
				return err
			}
			list, err := m.Backups(ctx)
			if err != nil {
				return err
			}
			if len(list) > 0 && now.Sub(list[len(list)-1].StoppedAt) < every {
				return nil
			}
			start := time.Now()
			b, err := m.Backup(ctx, "", len(list) == 0)
			if err != nil {
				return err
			}
			took = 1
			cfg.Logger.Info("base backup taken", "label", b.Label, "type", b.Type, "size_bytes", b.SizeBytes,
				"repo_bytes", b.RepoBytes, "duration_ms", time.Since(start).Milliseconds())
			if now.Sub(lastVerify) > 7*24*time.Hour {
				if err := m.Verify(ctx); err != nil {
					cfg.Logger.Error("pgBackRest verify found a problem in the WAL repository", "error", err)
				}
				lastVerify = now
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("base backup failed", "error", err)
		}
		return took
	})}
}
