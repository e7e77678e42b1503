package lifecycle

import (
	"context"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultPreviewReaperInterval keeps expired previews at most this long
// past their TTL before their deletion is queued (the spec allows a minute).
const DefaultPreviewReaperInterval = 15 * time.Second

// PreviewReaper queues the deletion of expired previews every interval
// (Run). Every worker process runs one; ReapExpiredPreviews makes one
// server the leader of each round, so several servers never reap twice.
// Its Round test signal carries the number of deletions queued.
type PreviewReaper struct{ *bgsvc.Periodic }

// NewPreviewReaper builds the reaper of s's previews; a zero interval is
// DefaultPreviewReaperInterval.
func NewPreviewReaper(s *Service, cfg bgsvc.PeriodicConfig) *PreviewReaper {
	cfg = cfg.WithDefaults(DefaultPreviewReaperInterval, "preview_reaper")
	return &PreviewReaper{bgsvc.NewPeriodic(cfg, func(ctx context.Context, now time.Time) int {
		n, err := s.ReapExpiredPreviews(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			cfg.Logger.Warn("reaping expired previews failed", "error", err)
		case n > 0:
			cfg.Logger.Info("queued the deletion of expired previews", "count", n)
		}
		return n
	})}
}
