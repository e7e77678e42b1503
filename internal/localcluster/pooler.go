package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// bouncerDBName matches the database names pgbouncer 1.18 accepts as an
// unquoted [databases] key; it has no quoting, and a single bad line makes
// it refuse the whole file (FATAL at start, rejected RELOAD).
var bouncerDBName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// SyncPooler regenerates pgbouncer's auth file and [databases] include from
// the cluster's catalogs and reloads pgbouncer. Call it after every role
// create, password change or drop, and after databases are created or dropped.
//
// Concurrent callers are coalesced: a caller needs a sync that started after
// it arrived (so it read the caller's changes), and one such sync serves
// every caller waiting for it. Under a burst of provisions this turns N
// sequential RELOADs (~30 ms each) into a handful.
func (c *Cluster) SyncPooler(ctx context.Context) error {
	g := &c.poolerGate
	g.mu.Lock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	target := g.started + 1
	for g.finished < target {
		if g.running {
			g.cond.Wait()
			continue
		}
		if g.stopped { // also for callers that waited on a sync Stop waited for
			g.mu.Unlock()
			return errClusterStopped
		}
		g.running = true
		g.started++
		mine := g.started
		g.mu.Unlock()
		err := c.syncPooler(ctx, true)
		g.mu.Lock()
		g.running = false
		g.finished, g.lastErr = mine, err
		g.cond.Broadcast()
	}
	err := g.lastErr
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("while syncing pgbouncer: %w", err)
	}
	return nil
}

var errClusterStopped = errors.New("the cluster is stopped")

// waitStopped waits for a sync in flight, then refuses new ones, so Stop can
// close the connection syncs share.
func (g *poolerGate) waitStopped() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	for g.running {
		g.cond.Wait() // running is only ever set after cond was made
	}
}

// poolerGate coalesces concurrent SyncPooler calls.
type poolerGate struct {
	mu       sync.Mutex
	cond     *sync.Cond
	running  bool
	stopped  bool   // Stop ran: no sync may start (it would reopen syncConn)
	started  uint64 // syncs started
	finished uint64 // the last finished sync's number
	lastErr  error

	reloads   atomic.Int64 // RELOADs sent (tests: provisioning sends none)
	laterOnce sync.Once
	later     chan struct{} // SyncPoolerLater's requests (capacity 1)
}

// Deferred syncs wait for this much quiet after the last request, and at
// most laterMax after the first.
const (
	laterQuiet = 500 * time.Millisecond
	laterMax   = 5 * time.Second
)

// SyncPoolerLater asks for a SyncPooler soon, off the caller's path: a
// burst of requests makes one sync once it is over. Provisioning uses it:
// a new database of the default plan changes no pooler file (auth_query
// finds its role, the "*" line serves it), so the sync finds nothing to
// reload; one with other limits gets its own line a moment later, and
// meanwhile is served by the "*" line.
func (c *Cluster) SyncPoolerLater() {
	g := &c.poolerGate
	g.laterOnce.Do(func() {
		g.later = make(chan struct{}, 1)
		go c.syncLaterLoop()
	})
	select {
	case g.later <- struct{}{}:
	default:
	}
}

func (c *Cluster) syncLaterLoop() {
	ctx := c.stopContext() // Stop cancels a sync in flight, then waits for it
	later := c.poolerGate.later
	for {
		select {
		case <-c.stopCh:
			return
		case <-later:
		}
		deadline := time.Now().Add(laterMax)
		for quiet := false; !quiet; {
			select {
			case <-c.stopCh:
				return
			case <-later:
				quiet = time.Now().After(deadline)
			case <-time.After(laterQuiet):
				quiet = true
			}
		}
		if err := c.SyncPooler(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, errClusterStopped) {
				return
			}
			c.log.Warn("deferred pooler sync failed; retrying in 5s", "component", "pgbouncer", "error", err)
			time.AfterFunc(5*time.Second, c.SyncPoolerLater)
		}
	}
}

func (c *Cluster) syncPooler(ctx context.Context, reload bool) (err error) {
	// The admin connection is kept between syncs (callers are serialized by
	// poolerGate); a TLS+SCRAM connect per sync cost ~10 ms.
	conn := c.syncConn
	c.syncConn = nil
	if conn == nil || conn.IsClosed() {
		if conn, err = c.connectAdmin(ctx, "postgres"); err != nil {
			return err
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		// A kept connection may have died with a postgres restart: retry fresh.
		conn.Close(context.Background())
		if conn, err = c.connectAdmin(ctx, "postgres"); err != nil {
			return err
		}
		if tx, err = conn.Begin(ctx); err != nil {
			conn.Close(context.Background())
			return err
		}
	}
	defer func() {
		if rerr := tx.Rollback(context.Background()); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			err = errors.Join(err, rerr)
		}
		if err != nil {
			conn.Close(context.Background())
			return
		}
		c.syncConn = conn
	}()

	// Cluster-wide lock: concurrent callers (possibly in several processes)
	// run one after another, so the last writer always wrote fresh data.
	// Held until pgbouncer reloaded; the transaction's end releases it.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('capydb.pooler'))"); err != nil {
		return fmt.Errorf("while taking the pooler lock: %w", err)
	}
	users, err := c.userlist(ctx, tx)
	if err != nil {
		return err
	}
	dbs, err := c.tenantDatabases(ctx, tx)
	if err != nil {
		return err
	}
	usersPath := filepath.Join(c.bouncerDir, "userlist.txt")
	files := map[string][]byte{}
	for _, inst := range c.bouncerInstances() {
		files[filepath.Join(c.bouncerDir, inst.databases)] = renderDatabases(dbs, c.SocketDir(), c.directPort, inst)
	}
	// Every RELOAD races with logins in flight (pgbouncer may lose a
	// client's SCRAM keys and stall its server login until
	// server_login_retry), so reload only when something changed.
	changed := !sameContent(usersPath, users)
	for path, b := range files {
		changed = changed || !sameContent(path, b)
	}
	if reload && !changed {
		return nil
	}
	if err := writeFileReplace(usersPath, users, 0o600, c.owner); err != nil {
		return fmt.Errorf("while writing the pgbouncer auth file: %w", err)
	}
	for path, b := range files {
		if err := writeFileReplace(path, b, 0o600, c.owner); err != nil {
			return fmt.Errorf("while writing the pgbouncer databases file: %w", err)
		}
	}
	if reload {
		if err := c.reloadBouncer(ctx); err != nil {
			return err
		}
	}
	return nil
}

// userlist renders pgBouncer's auth file: the admin (the admin console and
// CapyDB's own pooled connections) with its SCRAM secret, and the
// auth_query role with its password in plain text (pgBouncer must log in
// as it). Tenant roles are not in it: auth_query finds them, so creating,
// re-passwording or dropping one never changes this file.
func (c *Cluster) userlist(ctx context.Context, conn pgx.Tx) ([]byte, error) {
	var secret string
	err := conn.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1 AND rolpassword LIKE 'SCRAM-SHA-256$%'`,
		adminUser).Scan(&secret)
	if err != nil {
		return nil, fmt.Errorf("while reading the admin role: %w", err)
	}
	pw, err := c.poolerAuthPassword()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", authFileQuote(adminUser), authFileQuote(secret))
	fmt.Fprintf(&b, "%s %s\n", authFileQuote(poolerAuthRole), authFileQuote(pw))
	return []byte(b.String()), nil
}

// authFileQuote quotes a userlist.txt field; a double quote is doubled.
func authFileQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// autoConnLimit is the owner connection limit the fallback "*" database
// line is sized for: the default plan's (plan.Plans["business"]).
const autoConnLimit = 60

// tenantDB is a database pgbouncer lists, with its owner's connection limit
// and the project's pooler settings.
type tenantDB struct {
	name      string
	connLimit int32 // -1: unlimited
	pool      poolSettings
}

// poolConfigRole carries per-database pooler settings in
// pg_db_role_setting (dataplane.PoolConfigRole; localcluster cannot import
// dataplane).
const poolConfigRole = "capydb_pool_config"

// poolSettings are a project's pool_size and pool_mode (zero: defaults).
type poolSettings struct {
	size int
	mode string
}

// parsePoolSettings keeps only well-formed values: the file gets numbers
// and the two mode words, nothing else.
func parsePoolSettings(entries []string) poolSettings {
	var ps poolSettings
	for _, e := range entries {
		k, v, _ := strings.Cut(e, "=")
		switch k {
		case "capydb.pool_size":
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 10000 {
				ps.size = n
			}
		case "capydb.pool_mode":
			if v == "transaction" || v == "session" {
				ps.mode = v
			}
		}
	}
	return ps
}

// tenantDatabases lists every tenant database: not a template, not
// "postgres", not owned by a superuser, with a name pgbouncer accepts.
func (c *Cluster) tenantDatabases(ctx context.Context, conn pgx.Tx) ([]tenantDB, error) {
	rows, err := conn.Query(ctx, `
		SELECT d.datname, r.rolconnlimit, coalesce((SELECT s.setconfig FROM pg_db_role_setting s
		  JOIN pg_roles pr ON pr.oid = s.setrole WHERE pr.rolname = $1 AND s.setdatabase = d.oid), '{}')
		FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
		WHERE NOT d.datistemplate AND d.datallowconn AND d.datname <> 'postgres' AND NOT r.rolsuper
		  AND d.datname NOT LIKE 'capydb\_warm\_%' -- the warm pool (dataplane.WarmPrefix): unclaimed
		ORDER BY d.datname`, poolConfigRole)
	if err != nil {
		return nil, fmt.Errorf("while reading databases: %w", err)
	}
	var out []tenantDB
	var d tenantDB
	var entries []string
	var skipped []string
	_, err = pgx.ForEachRow(rows, []any{&d.name, &d.connLimit, &entries}, func() error {
		d.pool = parsePoolSettings(entries)
		if !bouncerDBName.MatchString(d.name) {
			skipped = append(skipped, d.name)
			return nil
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("while reading databases: %w", err)
	}
	if len(skipped) > 0 {
		c.log.Warn("databases not reachable through pgbouncer: names must match [A-Za-z0-9_.-]+", "component", "pgbouncer", "databases", skipped)
	}
	return out, nil
}

// renderDatabases writes one pgbouncer's [databases] section. Both
// pgbouncers together stay 5 connections below the owner's connection
// limit, so direct connections keep some headroom; share gives this one's
// part of that budget. A project's pool_size applies on both, capped by
// that pgbouncer's max_db_connections; a session-mode project gets
// pool_mode=session on the transaction pgbouncer too (the session one is
// session-mode for everybody).
//
// host is postgres' private unix socket directory: pgBouncer's server
// logins skip TCP and TLS (pgBouncer 1.24 crashed on RELOAD while TLS
// server logins were in flight, and a TLS handshake per login costs CPU).
//
// Databases that would get exactly the fallback's settings (owner limit
// autoConnLimit, no pool settings) get no line: pgBouncer registers them
// from "*" at their first login, so provisioning one changes no file and
// needs no RELOAD.
func renderDatabases(dbs []tenantDB, host string, directPort int, inst bouncerInstance) []byte {
	var b strings.Builder
	b.WriteString("; Generated by capydb SyncPooler; edits are lost.\n[databases]\n")
	fmt.Fprintf(&b, "* = host=%s port=%d max_db_connections=%d\n", host, directPort, max(inst.share(autoConnLimit-5), 1))
	// auth_dbname: pgBouncer's auth_query connections (poolerauth.go).
	fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s pool_size=4 max_db_connections=4\n", poolerAuthDB, host, directPort, poolerAuthDB)
	for _, d := range dbs {
		if d.connLimit == autoConnLimit && d.pool == (poolSettings{}) {
			continue
		}
		fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s", d.name, host, directPort, d.name)
		maxConns := -1
		if d.connLimit >= 0 {
			maxConns = max(inst.share(max(int(d.connLimit)-5, 2)), 1)
			fmt.Fprintf(&b, " max_db_connections=%d", maxConns)
		}
		if size := d.pool.size; size > 0 {
			if maxConns > 0 {
				size = min(size, maxConns)
			}
			fmt.Fprintf(&b, " pool_size=%d", size)
		}
		if d.pool.mode == "session" && inst.mode != "session" {
			b.WriteString(" pool_mode=session")
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// reloadBouncer makes both pgbouncers re-read their files: RELOAD on the
// admin console, or SIGHUP when the console is unreachable. A pgbouncer
// that is not running reads the new files when it restarts.
func (c *Cluster) reloadBouncer(ctx context.Context) error {
	c.poolerGate.reloads.Add(1)
	c.consoleMu.Lock()
	defer c.consoleMu.Unlock()
	for _, b := range c.consoles() {
		err := c.consoleExecOn(ctx, b, "RELOAD")
		if err == nil || b.ch == nil || b.ch.isStopping() {
			continue
		}
		if serr := b.ch.signal(syscall.SIGHUP); serr == nil {
			c.log.Warn("pgbouncer admin console unreachable; reloaded with SIGHUP", "component", b.ch.name, "error", err)
			continue
		}
		c.log.Warn("pgbouncer is not running; it will read the new files when it restarts", "component", b.ch.name, "error", err)
	}
	return nil
}

// console is one pgbouncer's supervised child and its kept admin console.
type console struct {
	ch   *child
	port int
	conn **pgx.Conn // guarded by consoleMu
}

func (c *Cluster) consoles() []console {
	return []console{{c.bouncer, c.pooledPort, &c.console}, {c.sessionBouncer, c.sessionPort, &c.sessionConsole}}
}

// consoleExecOn runs cmd on b's admin console; the caller holds consoleMu.
func (c *Cluster) consoleExecOn(ctx context.Context, b console, cmd string) error {
	if *b.conn == nil || (*b.conn).IsClosed() {
		conn, err := c.connectConsoleOn(ctx, b.port)
		if err != nil {
			return err
		}
		*b.conn = conn
	}
	_, err := (*b.conn).Exec(ctx, cmd)
	if err != nil && !strings.Contains(err.Error(), "no such database") {
		// The console may have gone away (pgbouncer restarted): reconnect next time.
		(*b.conn).Close(context.Background())
		*b.conn = nil
	}
	return err
}

// ReconnectPooler makes both pgbouncers close db's server connections as
// soon as they are released (e.g. after a password change, so no pooled
// connection keeps the old credentials). An unknown database is not an error.
func (c *Cluster) ReconnectPooler(ctx context.Context, db string) error {
	if !bouncerDBName.MatchString(db) {
		return nil // such a database is never in pgbouncer's list
	}
	c.consoleMu.Lock()
	defer c.consoleMu.Unlock()
	var errs []error
	for _, b := range c.consoles() {
		err := c.consoleExecOn(ctx, b, "RECONNECT "+db)
		if err != nil && !strings.Contains(err.Error(), "no such database") {
			errs = append(errs, fmt.Errorf("while reconnecting pgbouncer pool for %s on port %d: %w", db, b.port, err))
		}
	}
	return errors.Join(errs...)
}

func sameContent(path string, want []byte) bool {
	got, err := os.ReadFile(path)
	return err == nil && bytes.Equal(got, want)
}
