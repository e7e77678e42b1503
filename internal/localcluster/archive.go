package localcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSocketPath keeps "<dir>/.s.PGSQL.<port>" under the 107-byte limit of
// a unix socket address.
const maxSocketPath = 90

// SocketDir is the cluster's private unix socket directory (pgBouncer's
// server logins, pgBackRest): DataDir/run, or a short path under /tmp named
// after the data dir when that one would be too long for a socket address
// or has characters pgBouncer's connection strings cannot carry.
func (c *Cluster) SocketDir() string {
	d := filepath.Join(c.dataDir, "run")
	// pgBouncer's connection strings take the directory unquoted.
	if len(d) <= maxSocketPath && bouncerDBName.MatchString(strings.ReplaceAll(d, "/", "")) {
		return d
	}
	sum := sha256.Sum256([]byte(c.dataDir))
	return filepath.Join(os.TempDir(), "capydb-run-"+hex.EncodeToString(sum[:6]))
}

func (c *Cluster) ensureSocketDir() error {
	d := c.SocketDir()
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("while creating the socket directory: %w", err)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		return err
	}
	return c.owner.chown(d)
}

// osUserName is the OS account postgres runs as.
func (c *Cluster) osUserName() string {
	if c.owner != nil {
		return c.owner.name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// PGData is the cluster's PGDATA directory.
func (c *Cluster) PGData() string { return c.pgData }

// DataDir is the cluster's root data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// OwnerCredential is the credential postgres runs with when we are root
// (nil otherwise): tools that touch PGDATA or its archive run with it.
func (c *Cluster) OwnerCredential() *syscall.Credential {
	if c.owner == nil {
		return nil
	}
	return c.owner.credential()
}

// Chown gives path to the OS user postgres runs as (no-op when not root).
func (c *Cluster) Chown(path string) error { return c.owner.chown(path) }
