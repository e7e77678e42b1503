package lifecycle

import (
	"context"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultEphemeralReaperInterval: an expired ephemeral database is queued
// for deletion at most this long after its 72 hours.
const DefaultEphemeralReaperInterval = 30 * time.Second

// EphemeralReaper queues the deletion of expired, unclaimed ephemeral
// databases every interval, like PreviewReaper. Its Round test signal
// carries the number of deletions queued.
type EphemeralReaper struct{ *bgsvc.Periodic }

// NewEphemeralReaper builds the reaper; a zero interval is the default.
func NewEphemeralReaper(s *Service, cfg bgsvc.PeriodicConfig) *EphemeralReaper {
	cfg = cfg.WithDefaults(DefaultEphemeralReaperInterval, "ephemeral_reaper")
	return &EphemeralReaper{bgsvc.NewPeriodic(cfg, func(ctx context.Context, now time.Time) int {
		n, err := s.ReapExpiredEphemeral(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			cfg.Logger.Warn("reaping expired ephemeral databases failed", "error", err)
		case n > 0:
			cfg.Logger.Info("queued the deletion of expired ephemeral databases", "count", n)
		}
		return n
	})}
}
