package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/netrules"
)

// The read replica (Config.ReadReplica) is a hot standby of the embedded
// cluster on the same machine: pg_basebackup -R from a physical slot, then
// streaming replication with hot_standby_feedback, supervised like the
// primary. Roles and passwords replicate physically, so a project's
// credentials log in to it unchanged (docs/fleet.md, "Read replicas").
const (
	standbySlot    = "capydb_standby"
	standbyAppName = "capydb_standby"
	// fallbackStandbyBase starts the range searched for the standby's port.
	fallbackStandbyBase = 18432
)

func (c *Cluster) standbyData() string { return filepath.Join(c.dataDir, "pg-standby") }

// ReadReplicaPort is the standby's port (0 when there is no standby).
func (c *Cluster) ReadReplicaPort() int { return c.standbyPort }

// startStandby creates the standby on first use and starts it.
func (c *Cluster) startStandby(ctx context.Context) error {
	if err := c.pickStandbyPort(); err != nil {
		return err
	}
	dir := c.standbyData()
	slot, err := c.hasStandbySlot(ctx)
	if err != nil {
		return err
	}
	// Without its slot the primary may have recycled WAL the copy needs.
	if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err != nil || !slot {
		if err := c.baseBackup(ctx, dir); err != nil {
			return err
		}
	}
	if err := c.writeStandbyConfig(dir); err != nil {
		return fmt.Errorf("while configuring the read replica: %w", err)
	}
	c.standby = c.newChild("postgres-standby", filepath.Join(c.binDir, "postgres"), []string{"-D", dir}, dir, syscall.SIGINT)
	t0 := time.Now()
	p, err := c.standby.start()
	if err != nil {
		return fmt.Errorf("while starting the read replica: %w", err)
	}
	if err := c.waitReady(ctx, c.standby, p, c.pingStandby); err != nil {
		return fmt.Errorf("while starting the read replica: %w", err)
	}
	c.log.Info("read replica is ready", "component", "postgres-standby", "port", c.standbyPort, "elapsed", time.Since(t0).Round(time.Millisecond))
	c.standby.superviseInBackground()
	return nil
}

func (c *Cluster) pickStandbyPort() error {
	if c.cfg.ReadReplicaPort > 0 {
		if why := c.portBusy(c.cfg.ReadReplicaPort); why != "" {
			return fmt.Errorf("--read-replica-port %d is %w (%s)", c.cfg.ReadReplicaPort, ErrPortInUse, why)
		}
		c.standbyPort = c.cfg.ReadReplicaPort
		return nil
	}
	for p := fallbackStandbyBase; p < fallbackStandbyBase+1000; p++ {
		if p != c.directPort && p != c.pooledPort && p != c.sessionPort && c.portBusy(p) == "" {
			c.standbyPort = p
			return nil
		}
	}
	return errors.New("no free port for the read replica")
}

func (c *Cluster) hasStandbySlot(ctx context.Context) (bool, error) {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var ok bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, standbySlot).Scan(&ok)
	return ok, err
}

// dropStandby removes a standby that is no longer wanted: its slot would
// otherwise keep WAL on the primary forever.
func (c *Cluster) dropStandby(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		WHERE slot_name = $1 AND NOT active`, standbySlot); err != nil {
		return fmt.Errorf("while dropping the read replica's slot: %w", err)
	}
	return os.RemoveAll(c.standbyData())
}

// baseBackup copies the primary into dir through its private socket,
// streaming WAL from the physical slot it creates first.
func (c *Cluster) baseBackup(ctx context.Context, dir string) error {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, standbySlot); err != nil {
		return fmt.Errorf("while creating the replication slot: %w", err)
	}
	// A half-copied directory from an interrupted run is started over.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if c.owner != nil {
		if err := c.owner.chown(dir); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := c.pgBasebackup(ctx, dir, c.password, "-S", standbySlot, "-R", "-d", c.replicationConninfo(false)); err != nil {
		return err
	}
	c.log.Info("read replica copied", "component", "postgres-standby", "elapsed", time.Since(t0).Round(time.Millisecond))
	return nil
}

// replicationConninfo reaches the primary on its private unix socket.
func (c *Cluster) replicationConninfo(withPassword bool) string {
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	s := fmt.Sprintf("host=%s port=%d user=%s application_name=%s", q(c.SocketDir()), c.directPort, adminUser, standbyAppName)
	if withPassword {
		s += " password=" + q(c.password)
	}
	return s
}

// writeStandbyConfig copies the primary's managed settings and HBA rules
// (TLS, logging, network rules as of this start) and adds the standby's own.
func (c *Cluster) writeStandbyConfig(dir string) error {
	conf, err := os.ReadFile(filepath.Join(c.pgData, "capydb.conf"))
	if err != nil {
		return err
	}
	var b strings.Builder
	b.Write(conf)
	b.WriteString("# The read replica's own settings.\n")
	fmt.Fprintf(&b, "port = %d\n", c.standbyPort)
	b.WriteString("hot_standby = on\nhot_standby_feedback = on\n")
	fmt.Fprintf(&b, "primary_conninfo = %s\n", pgQuote(c.replicationConninfo(true)))
	fmt.Fprintf(&b, "primary_slot_name = %s\n", pgQuote(standbySlot))
	if err := writeFileAtomic(filepath.Join(dir, "capydb.conf"), []byte(b.String()), 0o600, c.owner); err != nil {
		return err
	}
	// pg_basebackup -R wrote primary_conninfo here too; ours must win.
	if err := writeFileAtomic(filepath.Join(dir, "postgresql.auto.conf"), []byte("# Written by capydb.\n"), 0o600, c.owner); err != nil {
		return err
	}
	policy, err := c.loadNetworkPolicy()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "pg_hba.conf"), c.standbyHBA(policy), 0o600, c.owner)
}

// syncStandbyHBA gives the read replica the primary's network rules for
// the databases attached to it (standbyHBA) and reloads it, then ends the
// sessions there that the new file refuses (endStandbySessions).
func (c *Cluster) syncStandbyHBA(ctx context.Context, policy netrules.Policy) error {
	if c.standby == nil {
		return nil
	}
	path := filepath.Join(c.standbyData(), "pg_hba.conf")
	if hba := c.standbyHBA(policy); !sameContent(path, hba) {
		if err := writeFileAtomic(path, hba, 0o600, c.owner); err != nil {
			return fmt.Errorf("while writing the read replica's pg_hba.conf: %w", err)
		}
		// Not running (restarting): it reads the new file when it starts,
		// and no session survived.
		if c.standby.signal(syscall.SIGHUP) != nil {
			return nil
		}
	}
	// Every time, not only on a change: a session may have logged in on
	// the old rules while the reload was under way.
	return c.endStandbySessions(ctx, policy)
}

// endStandbySessions ends the read replica's sessions that its rules no
// longer admit: every session on a database it does not serve (a project
// just detached), and an attached project's sessions from addresses its
// network rules now refuse. A replica that does not answer is restarting
// and keeps no session.
func (c *Cluster) endStandbySessions(ctx context.Context, policy netrules.Policy) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn(c.standbyPort, "postgres"))
	if err != nil {
		c.log.Warn("could not reach the read replica to end sessions its rules no longer admit", "component", "postgres-standby", "error", err)
		return nil
	}
	defer conn.Close(context.Background())
	err = endSessions(ctx, conn, func(role, db string, a netip.Addr) bool {
		return role == adminUser || (slices.Contains(policy.Replica, db) && netrules.Allowed(policy, db, a))
	})
	if err != nil {
		return fmt.Errorf("read replica: %w", err)
	}
	return nil
}

func (c *Cluster) pingStandby(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.dsn(c.standbyPort, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var rec bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		return err
	}
	if !rec {
		return errors.New("the read replica is not in recovery")
	}
	return nil
}

// ReplicaLag is how far the standby's replay trails the primary.
type ReplicaLag struct {
	Streaming bool
	Bytes     int64
	Seconds   float64
}

// ReadReplicaLag reads the same-host standby's lag.
func (c *Cluster) ReadReplicaLag(ctx context.Context) (ReplicaLag, error) {
	if c.standby == nil {
		return ReplicaLag{}, errors.New("no read replica")
	}
	return c.StandbyLag(ctx, standbyAppName)
}

// StandbyLag reads a standby's lag from the primary's pg_stat_replication
// by its application_name (replay_lag is NULL when idle: 0 seconds); not
// streaming is a zero ReplicaLag.
func (c *Cluster) StandbyLag(ctx context.Context, appName string) (ReplicaLag, error) {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return ReplicaLag{}, err
	}
	defer conn.Close(context.Background())
	return StandbyLagOn(ctx, conn, appName)
}

// StandbyLagOn is StandbyLag on an open admin connection to the primary.
func StandbyLagOn(ctx context.Context, conn *pgx.Conn, appName string) (ReplicaLag, error) {
	var lag ReplicaLag
	err := conn.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
		coalesce(extract(epoch FROM replay_lag), 0)::float8
		FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming' LIMIT 1`, appName).Scan(&lag.Bytes, &lag.Seconds)
	if errors.Is(err, pgx.ErrNoRows) {
		return lag, nil
	}
	if err != nil {
		return lag, err
	}
	lag.Streaming = true
	return lag, nil
}

// pgBasebackup copies a primary into dir (as postgres' OS user when root),
// streaming WAL alongside; a failed copy is removed. The password goes in
// the environment, not the process list; the error shows pg_basebackup's
// output, which names paths and settings, never the password.
func (c *Cluster) pgBasebackup(ctx context.Context, dir, password string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "pg_basebackup"),
		append([]string{"-D", dir, "-X", "stream", "-c", "fast", "-w"}, args...)...)
	cmd.Dir = c.dataDir
	cmd.Env = append(childEnv(), "PGPASSWORD="+password)
	if c.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.owner.credential()}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("pg_basebackup failed: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
