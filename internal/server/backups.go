package server

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/netguard"
)

// openBackups opens the blob store of backups and the import address guard.
func (s *Server) openBackups(ctx context.Context, key []byte) error {
	raw := s.cfg.BackupURL
	if raw == "" {
		raw = (&url.URL{Scheme: "file", Path: filepath.Join(s.cfg.DataDir, "backups")}).String()
	}
	b, err := blobstore.Open(ctx, raw, key)
	if err != nil {
		return fmt.Errorf("--backup-url: %w", err)
	}
	b.TempDir = s.tmpDir
	s.lifecycle.Blob = b
	if s.cfg.BackupVerifyDelay > 0 {
		lifecycle.VerifyDelay = s.cfg.BackupVerifyDelay
	}
	s.lifecycle.ImportGuard = &netguard.Guard{AllowPrivate: s.cfg.ImportsAllowPrivate}
	return nil
}
