package pitr

import (
	"log/slog"

	"github.com/capydb/capydb/internal/localcluster"
)

// NewForCluster is New for the embedded cluster, which must have been
// started with Config.ArchiveCommand = ArchiveCommand(its data dir).
func NewForCluster(c *localcluster.Cluster, windowDays int, log *slog.Logger) (*Manager, error) {
	return New(Config{DataDir: c.DataDir(), PGData: c.PGData(), SocketDir: c.SocketDir(), Port: c.DirectPort(),
		AdminUser: c.AdminUser(), AdminDSN: c.AdminDSN(), BinDir: c.BinDir(), Credential: c.OwnerCredential(),
		Chown: c.Chown, WindowDays: windowDays, Logger: log})
}
