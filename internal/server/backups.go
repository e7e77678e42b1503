package server

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/blobstore"
)

// openBackups opens the blob store of backups, exports and uploads.
func (s *Server) openBackups(ctx context.Context, key []byte) (*blobstore.Store, error) {
	raw := s.cfg.BackupURL
	if raw == "" {
		raw = (&url.URL{Scheme: "file", Path: filepath.Join(s.cfg.DataDir, "backups")}).String()
	}
	b, err := blobstore.Open(ctx, raw, key)
	if err != nil {
		return nil, fmt.Errorf("--backup-url: %w", err)
	}
	b.TempDir = s.tmpDir
	return b, nil
}

const defaultBackupSchedulerInterval = 30 * time.Second

// backupNow is the scheduler's clock: the test clock file when configured
// and readable, else the configured clock or the real time.
func (s *Server) backupNow() time.Time {
	if s.cfg.BackupClockFile != "" {
		if b, err := os.ReadFile(s.cfg.BackupClockFile); err == nil {
			if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err == nil {
				return t
			}
		}
	}
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return time.Now()
}

// runBackupScheduler queues due scheduled backups and the deletion of
// expired backups and exports. Every worker runs it; an advisory lock makes
// one server the leader of each round.
func (s *Server) runBackupScheduler(ctx context.Context) {
	interval := s.cfg.BackupSchedulerInterval
	if interval <= 0 {
		interval = defaultBackupSchedulerInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := s.backupNow()
		queued, expired, err := s.lifecycle.RunBackupSchedules(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("running backup schedules failed", "error", err)
		case queued > 0 || expired > 0:
			s.log.Info("backup scheduler", "queued_backups", queued, "expired_backups", expired)
		}
		if _, err := s.lifecycle.ExpireExports(ctx, now); err != nil && ctx.Err() == nil {
			s.log.Warn("expiring exports failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
