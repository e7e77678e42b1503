package lifecycle

import (
	"context"
	"log/slog"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultPreviewReaperInterval keeps expired previews at most this long
// past their TTL before their deletion is queued (the spec allows a minute).
const DefaultPreviewReaperInterval = 15 * time.Second

// PreviewReaperConfig tunes a PreviewReaper. Zero values get defaults.
type PreviewReaperConfig struct {
	Interval time.Duration // default DefaultPreviewReaperInterval
	Clock    bgsvc.Clock   // default the real time
	Logger   *slog.Logger
}

// PreviewReaper queues the deletion of expired previews every interval.
// Every worker process runs one; ReapExpiredPreviews makes one server the
// leader of each round, so several servers never reap twice.
type PreviewReaper struct {
	svc *Service
	cfg PreviewReaperConfig
	log *slog.Logger

	// TestSignals may be armed by tests before Run.
	TestSignals struct {
		// Round fires after each round with the number of deletions queued.
		Round bgsvc.Signal[int]
	}
}

// NewPreviewReaper builds the reaper of s's previews.
func NewPreviewReaper(s *Service, cfg PreviewReaperConfig) *PreviewReaper {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPreviewReaperInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &PreviewReaper{svc: s, cfg: cfg, log: cfg.Logger.With("component", "preview_reaper")}
}

// Run reaps at once and then every interval until ctx is cancelled.
func (r *PreviewReaper) Run(ctx context.Context) error {
	bgsvc.Every(ctx, r.cfg.Interval, r.round)
	return nil
}

func (r *PreviewReaper) round(ctx context.Context) {
	n, err := r.svc.ReapExpiredPreviews(ctx, r.cfg.Clock.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		r.log.Warn("reaping expired previews failed", "error", err)
	case n > 0:
		r.log.Info("queued the deletion of expired previews", "count", n)
	}
	r.TestSignals.Round.Send(n)
}
