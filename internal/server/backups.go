package server

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

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
