package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StandbySource makes the cluster a hot standby of a cluster on another
// host (a standby cluster, docs/fleet.md): the first start copies the
// primary with pg_basebackup over TLS (verify-full against the primary's
// CA) through the physical slot the primary's node created, later starts
// stream from that slot. The copy's roles are the primary's, its admin role
// included, so the cluster takes the primary's admin password.
type StandbySource struct {
	Host string
	Port int
	// User and Password are the primary's replication login.
	User, Password string
	Slot           string
	// AdminPassword is the primary's capydb_admin password.
	AdminPassword string
	// CAPEM verifies the primary's server certificate.
	CAPEM string
}

// RemoteStandbyAppName is the application_name a standby cluster streams
// with: the primary reports its lag under it (its slot name).
func (s *StandbySource) appName() string { return s.Slot }

// prepareRemoteStandby adopts the primary's admin password and copies the
// primary when the data directory is new. A copy that was promoted has no
// standby.signal any more and is left as it is.
func (c *Cluster) prepareRemoteStandby(ctx context.Context) error {
	src := c.cfg.Standby
	if err := writeFileAtomic(filepath.Join(c.dataDir, "admin-password"), []byte(src.AdminPassword+"\n"), 0o600, nil); err != nil {
		return err
	}
	c.password = src.AdminPassword
	// pg_basebackup and the walreceiver run as postgres' OS user.
	if err := writeFileAtomic(c.primaryCAPath(), []byte(src.CAPEM), 0o644, c.owner); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.pgData, "PG_VERSION")); err == nil {
		return nil
	}
	scratch := c.pgData + ".basebackup-tmp"
	// A half-copied directory from an interrupted start is started over.
	if err := c.freshScratch(scratch); err != nil {
		return err
	}
	t0 := time.Now()
	c.log.Info("copying the primary with pg_basebackup", "component", "postgres", "primary", src.Host, "port", src.Port)
	if err := c.pgBasebackup(ctx, scratch, src.Password, "-S", src.Slot, "-d", c.primaryConninfo(false)); err != nil {
		return fmt.Errorf("from %s:%d: %w", src.Host, src.Port, err)
	}
	// The primary's server log is not this cluster's.
	if err := os.RemoveAll(filepath.Join(scratch, "log")); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(scratch, "standby.signal"), nil, 0o600, c.owner); err != nil {
		return err
	}
	if err := os.Remove(c.pgData); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(scratch, c.pgData); err != nil {
		return err
	}
	c.log.Info("primary copied", "component", "postgres", "elapsed", time.Since(t0).Round(time.Millisecond))
	return nil
}

func (c *Cluster) primaryCAPath() string { return filepath.Join(c.dataDir, "primary-ca.crt") }

// primaryConninfo reaches the primary over TLS, verifying its certificate.
func (c *Cluster) primaryConninfo(withPassword bool) string {
	src := c.cfg.Standby
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	s := fmt.Sprintf("host=%s port=%s user=%s application_name=%s sslmode=verify-full sslrootcert=%s connect_timeout=5",
		q(src.Host), strconv.Itoa(src.Port), q(src.User), q(src.appName()), q(c.primaryCAPath()))
	if withPassword {
		s += " password=" + q(src.Password)
	}
	return s
}

// remoteStandbySettings are the standby's lines of capydb.conf. They are
// harmless once the copy is promoted (no standby.signal: not read).
func (c *Cluster) remoteStandbySettings() string {
	var b strings.Builder
	b.WriteString("# A standby cluster of another host's primary.\n")
	b.WriteString("hot_standby = on\nhot_standby_feedback = on\n")
	fmt.Fprintf(&b, "primary_conninfo = %s\n", pgQuote(c.primaryConninfo(true)))
	fmt.Fprintf(&b, "primary_slot_name = %s\n", pgQuote(c.cfg.Standby.Slot))
	b.WriteString("recovery_target_timeline = 'latest'\n")
	return b.String()
}

// InRecovery reports whether postgres is a standby (not promoted yet).
func (c *Cluster) InRecovery(ctx context.Context) (bool, error) {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var rec bool
	err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
	return rec, err
}

// ReplicationUser is the login standby clusters stream with.
const ReplicationUser = "capydb_replication"

// AdminPassword is capydb_admin's password: a primary's node seals it into
// the control database for its standby clusters (their copy's admin role).
func (c *Cluster) AdminPassword() string { return c.password }

// StandbySlot is the slot (and application_name) of standby cluster id on
// its primary.
func StandbySlot(clusterID string) string {
	return "capydb_replica_" + strings.ToLower(strings.TrimPrefix(clusterID, "cl_"))
}
