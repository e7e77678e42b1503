package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/netrules"
)

// The cluster's network rules (docs/network.md): one policy, rendered into
// pg_hba.conf (direct port) and pgbouncer's hba.conf (both pooled ports).
// The last applied policy is kept in DataDir/network.json so that a restart
// writes the same files again.

const (
	networkFile = "network.json"
	bouncerHBA  = "hba.conf"
)

// loadNetworkPolicy reads the last applied policy; none means the defaults.
func (c *Cluster) loadNetworkPolicy() (netrules.Policy, error) {
	var p netrules.Policy
	b, err := os.ReadFile(filepath.Join(c.dataDir, networkFile))
	if errors.Is(err, fs.ErrNotExist) {
		p.AllowPlaintext = c.cfg.AllowPlaintext
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("while reading %s: %w", networkFile, err)
	}
	p.AllowPlaintext = c.cfg.AllowPlaintext
	return p, nil
}

// PlaintextAllowed reports the operator's --allow-plaintext.
func (c *Cluster) PlaintextAllowed() bool { return c.cfg.AllowPlaintext }

// ApplyNetwork renders both HBA files from the policy load returns, checks
// pg_hba.conf through pg_hba_file_rules before pg_reload_conf (on an error
// the previous file is put back and nothing is reloaded), reloads both
// pgbouncers, and ends sessions from addresses the policy no longer allows.
// load runs under the cluster's network lock, so concurrent callers apply
// in turn and the last one applies what the store holds at that moment.
func (c *Cluster) ApplyNetwork(ctx context.Context, load func(context.Context) (netrules.Policy, error)) error {
	c.netMu.Lock()
	defer c.netMu.Unlock()
	p, err := load(ctx)
	if err != nil {
		return err
	}
	p.AllowPlaintext = c.cfg.AllowPlaintext
	if err := c.swapPostgresHBA(ctx, c.postgresHBA(p)); err != nil {
		return err
	}
	if err := c.syncStandbyHBA(ctx, p); err != nil {
		return err
	}
	if err := c.swapBouncerHBA(ctx, hbaRejectPoolerAuth(netrules.Render(p, netrules.PgBouncer))); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	// A standby's node applies its primary's rules every heartbeat: an
	// unchanged policy writes (and fsyncs) nothing.
	if path := filepath.Join(c.dataDir, networkFile); !sameContent(path, b) {
		if err := writeFileAtomic(path, b, 0o600, nil); err != nil {
			return err
		}
	}
	return c.endDisallowedSessions(ctx, p)
}

// swapPostgresHBA installs text as pg_hba.conf. pg_hba_file_rules reads the
// file on disk, so the candidate is put in place, checked, and either
// reloaded or replaced by the previous file again before anything reloads.
func (c *Cluster) swapPostgresHBA(ctx context.Context, text []byte) error {
	path := filepath.Join(c.pgData, "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("while reading pg_hba.conf: %w", err)
	}
	if string(old) == string(text) {
		return nil
	}
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := writeFileAtomic(path, text, 0o600, c.owner); err != nil {
		return fmt.Errorf("while writing pg_hba.conf: %w", err)
	}
	if problem := hbaProblems(ctx, conn); problem != nil {
		if rerr := writeFileAtomic(path, old, 0o600, c.owner); rerr != nil {
			return errors.Join(problem, fmt.Errorf("and restoring the previous pg_hba.conf failed: %w", rerr))
		}
		return problem
	}
	var before time.Time
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&before); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("while reloading postgres: %w", err)
	}
	return c.waitConfLoaded(ctx, before)
}

// hbaProblems returns the errors pg_hba_file_rules reports for the file on
// disk, or nil when Postgres would load it.
func hbaProblems(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT coalesce(line_number, 0), error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number`)
	if err != nil {
		return fmt.Errorf("while checking the new pg_hba.conf: %w", err)
	}
	var msgs []string
	var line int
	var msg string
	if _, err := pgx.ForEachRow(rows, []any{&line, &msg}, func() error {
		msgs = append(msgs, fmt.Sprintf("line %d: %s", line, msg))
		return nil
	}); err != nil {
		return fmt.Errorf("while checking the new pg_hba.conf: %w", err)
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%w: the generated pg_hba.conf is invalid, the previous one stays in force: %s", netrules.ErrRejected, strings.Join(msgs, "; "))
	}
	return nil
}

// waitConfLoaded returns once new backends run with configuration loaded
// after before: pg_reload_conf only signals the postmaster. A fresh
// session's pg_conf_load_time is the postmaster's.
func (c *Cluster) waitConfLoaded(ctx context.Context, before time.Time) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := c.connectAdmin(ctx, "postgres")
		if err != nil {
			return err
		}
		var loaded time.Time
		err = conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&loaded)
		conn.Close(context.Background())
		if err != nil {
			return err
		}
		if !loaded.Before(before) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("postgres did not reload its configuration within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// swapBouncerHBA installs pgbouncer's hba.conf and reloads both pgbouncers.
func (c *Cluster) swapBouncerHBA(ctx context.Context, text []byte) error {
	path := filepath.Join(c.bouncerDir, bouncerHBA)
	if sameContent(path, text) {
		return nil
	}
	if err := writeFileAtomic(path, text, 0o600, c.owner); err != nil {
		return fmt.Errorf("while writing pgbouncer's hba.conf: %w", err)
	}
	return c.reloadBouncer(ctx)
}

// endDisallowedSessions terminates direct sessions and disconnects pooled
// clients whose address the policy no longer allows into their database.
func (c *Cluster) endDisallowedSessions(ctx context.Context, p netrules.Policy) error {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := endSessions(ctx, conn, func(_, db string, a netip.Addr) bool { return netrules.Allowed(p, db, a) }); err != nil {
		return err
	}
	return c.killDisallowedClients(ctx, p)
}

// endSessions terminates the TCP sessions on conn's server that allowed
// refuses, by role, database and client address.
func endSessions(ctx context.Context, conn *pgx.Conn, allowed func(role, db string, addr netip.Addr) bool) error {
	rows, err := conn.Query(ctx, `SELECT pid, usename, datname, host(client_addr) FROM pg_catalog.pg_stat_activity
		WHERE client_addr IS NOT NULL AND datname IS NOT NULL AND usename IS NOT NULL AND pid <> pg_catalog.pg_backend_pid()`)
	if err != nil {
		return fmt.Errorf("while listing sessions: %w", err)
	}
	var victims []int32
	var pid int32
	var role, db, addr string
	if _, err := pgx.ForEachRow(rows, []any{&pid, &role, &db, &addr}, func() error {
		if a, err := netip.ParseAddr(addr); err == nil && !allowed(role, db, a) {
			victims = append(victims, pid)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("while listing sessions: %w", err)
	}
	if len(victims) > 0 {
		if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, victims); err != nil {
			return fmt.Errorf("while ending sessions: %w", err)
		}
	}
	return nil
}

// killDisallowedClients disconnects pooled clients that are no longer
// allowed: KILL_CLIENT by id (pgbouncer ≥ 1.24), else KILL + RESUME of
// the database.
func (c *Cluster) killDisallowedClients(ctx context.Context, p netrules.Policy) error {
	c.consoleMu.Lock()
	defer c.consoleMu.Unlock()
	var errs []error
	for _, b := range c.consoles() {
		ids, dbs, err := c.disallowedClients(ctx, b, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if versionAtLeast(c.bouncerVersion, [2]int{1, 24}) {
			for _, id := range ids {
				if err := c.consoleExecOn(ctx, b, "KILL_CLIENT "+id); err != nil && !strings.Contains(err.Error(), "not found") {
					errs = append(errs, fmt.Errorf("while disconnecting pooled client %s: %w", id, err))
				}
			}
			continue
		}
		for db := range dbs {
			for _, cmd := range []string{"KILL " + db, "RESUME " + db} {
				if err := c.consoleExecOn(ctx, b, cmd); err != nil {
					errs = append(errs, fmt.Errorf("while disconnecting pooled clients of %s: %w", db, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// disallowedClients reads SHOW CLIENTS of one pgbouncer.
func (c *Cluster) disallowedClients(ctx context.Context, b console, p netrules.Policy) ([]string, map[string]bool, error) {
	if *b.conn == nil || (*b.conn).IsClosed() {
		conn, err := c.connectConsoleOn(ctx, b.port)
		if err != nil {
			return nil, nil, err
		}
		*b.conn = conn
	}
	rows, err := ConsoleRows(ctx, *b.conn, "SHOW CLIENTS")
	if err != nil {
		(*b.conn).Close(context.Background())
		*b.conn = nil
		return nil, nil, fmt.Errorf("while listing pooled clients: %w", err)
	}
	var ids []string
	dbs := map[string]bool{}
	for _, row := range rows {
		a, err := netip.ParseAddr(row["addr"])
		if err != nil || netrules.Allowed(p, row["database"], a) || !bouncerDBName.MatchString(row["database"]) {
			continue
		}
		ids = append(ids, row["id"])
		dbs[row["database"]] = true
	}
	return ids, dbs, nil
}

// postgresHBA is pg_hba.conf for policy: the network rules, and with WAL
// archiving the private socket line through which only the OS user postgres
// runs as reaches the cluster, and only as the admin role (pgBackRest).
// "local" lines match no TCP connection, so their place does not matter.
func (c *Cluster) postgresHBA(policy netrules.Policy) []byte {
	hba := hbaRejectPoolerAuth(netrules.Render(policy, netrules.Postgres))
	if c.cfg.ArchiveCommand != "" {
		hba = append(hba, []byte("local   all      "+adminUser+" peer map=capydb\n")...)
	}
	if c.cfg.ReadReplica {
		// The read replica streams WAL over the private socket.
		hba = append(hba, []byte("local   replication "+adminUser+" scram-sha-256\n")...)
	}
	// Standby clusters on other hosts stream with the replication login
	// over TLS; the login exists (LOGIN) only while the cluster has
	// standbys (server: reconcileStandbys). "all" never matches replication.
	hba = append(hba, []byte("hostssl replication "+ReplicationUser+" 0.0.0.0/0 scram-sha-256\n"+
		"hostssl replication "+ReplicationUser+" ::/0 scram-sha-256\n")...)
	// pgBouncer's server logins: the socket directory is 0700, so only
	// processes of postgres' OS user (pgBouncer) reach this line.
	return append(hba, []byte("local   all      all scram-sha-256\n")...)
}

// standbyHBA is the embedded read replica's pg_hba.conf: the admin from
// the host (health and lag checks), and the attached projects' databases
// under their network rules. Every other database, previews included,
// matches no line, so its logins are refused there from every address.
func (c *Cluster) standbyHBA(policy netrules.Policy) []byte {
	var admin strings.Builder
	admin.WriteString("# capydb itself, from the host.\n")
	for _, l := range netrules.Loopback {
		fmt.Fprintf(&admin, "hostssl all %s %s scram-sha-256\n", adminUser, l)
	}
	return hbaRejectPoolerAuth(append([]byte(admin.String()), netrules.Render(policy, netrules.Replica)...))
}
