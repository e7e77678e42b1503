package server

import (
	"context"
	"time"
)

// defaultPreviewReaperInterval keeps expired previews at most this long past
// their TTL before their deletion is queued (the spec allows a minute).
const defaultPreviewReaperInterval = 15 * time.Second

// runPreviewReaper queues the deletion of expired previews every interval.
// Every worker process runs it; a transaction-scoped advisory lock makes one
// of them the leader of each round, so several servers never reap twice.
func (s *Server) runPreviewReaper(ctx context.Context) {
	interval := s.cfg.PreviewReaperInterval
	if interval <= 0 {
		interval = defaultPreviewReaperInterval
	}
	clock := s.cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.lifecycle.ReapExpiredPreviews(ctx, clock().Add(s.cfg.PreviewClockSkew))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("reaping expired previews failed", "error", err)
		case n > 0:
			s.log.Info("queued the deletion of expired previews", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
