// Package localcluster runs the embedded PostgreSQL + pgBouncer cluster that
// `capydb server` starts by default and that tests use: initdb, TLS material,
// configuration, supervision of both child processes, and regeneration of the
// pgBouncer auth file and database list.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const adminUser = "capydb_admin"

// Defaults of the Config fields below.
const (
	defaultDirectPort  = 5432
	defaultPooledPort  = 6432
	defaultSessionPort = 6433
	fallbackDirectBase = 15432
	fallbackPooledBase = 16432
	// fallbackSessionBase starts the range searched when the session port is taken.
	fallbackSessionBase = 17432
	readyTimeout        = 60 * time.Second
)

// ErrPortInUse is wrapped by the error Start returns when an explicitly
// requested port is taken.
var ErrPortInUse = errors.New("already in use")

// Config configures the embedded cluster. Only DataDir is required.
type Config struct {
	// DataDir is the root data directory. Layout: DataDir/pg (PGDATA),
	// DataDir/pgbouncer, DataDir/tls, DataDir/admin-password, DataDir/ports.json.
	DataDir            string
	DirectPort         int  // default 5432
	DirectPortExplicit bool // true when the user passed --direct-port
	PooledPort         int  // default 6432
	PooledPortExplicit bool // true when the user passed --pooled-port
	// SessionPort is the session-mode pgBouncer's port (default 6433): a
	// client keeps one server connection for its whole session there.
	SessionPort         int
	SessionPortExplicit bool // true when the user passed --session-port
	// PublicHost is written into URLs and the server certificate; default 127.0.0.1.
	PublicHost string
	// BinDir holds postgres, initdb, pg_dump…; auto-detected when empty.
	BinDir string
	// PgBouncerPath is auto-detected when empty: the first of PATH,
	// /usr/sbin/pgbouncer and ToolsDir()/bin/pgbouncer that is at least
	// MinPgBouncer.
	PgBouncerPath string
	// AllowOldPgBouncer runs a pgBouncer older than MinPgBouncer instead of
	// refusing to start (prepared statements on the pooled URL then break).
	AllowOldPgBouncer bool
	// AllowPlaintext is the operator's switch that lets a project's network
	// rules (netrules.Project.Plaintext) accept clients without TLS; the
	// pgbouncers then accept non-TLS clients too and the HBA files decide.
	AllowPlaintext bool
	// OnAuthFailure, when set, is called for every failed password login
	// that a pgbouncer logs (postgres' own: pglogs.Config.OnAuthFailure). It must
	// not block.
	OnAuthFailure func(AuthFailure)
	// FallbackDirectBase and FallbackPooledBase start the ranges searched
	// when a default port is taken (defaults 15432 and 16432).
	FallbackDirectBase  int
	FallbackPooledBase  int
	FallbackSessionBase int // default 17432
	MaxConnections      int // postgres max_connections, default 500
	PoolerMaxClientConn int // pgbouncer max_client_conn, default 10000
	// Fast trades durability for speed (tests only): fsync
	// and full_page_writes off, initdb --no-sync, and a fresh PGDATA is copied
	// from a per-machine initdb template (so Fast clusters share its admin
	// password). Never use it for data you want to keep.
	Fast   bool
	Logger *slog.Logger
	// TLSCertFile and TLSKeyFile are the operator's certificate (chain)
	// and key, used by postgres and pgbouncer instead of the generated
	// ones and reloaded every TLSReloadInterval (default 30s) when they
	// change. TLSCAFile, optional, is what CACertPEM serves with them.
	TLSCertFile, TLSKeyFile, TLSCAFile string
	TLSReloadInterval                  time.Duration
	// ArchiveCommand, when set, turns on continuous WAL archiving
	// (wal_level=replica, archive_mode=on, archive_timeout=60s) with this
	// archive_command, and opens a private unix socket (SocketDir) that only
	// the postgres OS user reaches, as the admin role (peer), for the
	// archiver's tools (pgBackRest). See internal/pitr.
	ArchiveCommand string
	// LogicalReplication sets wal_level=logical, so the cluster can be the
	// source of a follow import (publications and logical slots).
	LogicalReplication bool
	// ReadReplica runs a hot standby of the cluster on ReadReplicaPort
	// (0: the first free port from 18432), see standby.go.
	ReadReplica     bool
	ReadReplicaPort int
	// Standby, when set, makes this cluster a hot standby of a cluster on
	// another host (remote_standby.go).
	Standby *StandbySource
}

// Cluster is a running embedded cluster. Methods are safe for concurrent use.
type Cluster struct {
	cfg        Config
	log        *slog.Logger
	dataDir    string
	pgData     string
	bouncerDir string
	tlsDir     string
	binDir     string
	bouncerBin string
	// bouncerVersion is pgbouncer's major.minor.
	bouncerVersion [2]int
	major          string
	directPort     int
	pooledPort     int
	sessionPort    int
	publicHost     string
	password       string
	owner          *osUser // nil when not running as root

	spawnCh        chan spawnReq
	stopCh         chan struct{}
	pg             *child
	bouncer        *child // transaction mode, pooledPort
	sessionBouncer *child // session mode, sessionPort
	standby        *child // the read replica (Config.ReadReplica), nil without
	standbyPort    int

	poolerGate poolerGate
	syncConn   *pgx.Conn // reused by syncPooler (serialized by poolerGate)
	consoleMu  sync.Mutex
	console    *pgx.Conn // pgbouncer admin console, reused
	// sessionConsole is the session-mode pgbouncer's console (consoleMu).
	sessionConsole *pgx.Conn

	netMu sync.Mutex // serializes ApplyNetwork

	stopOnce sync.Once
	stopErr  error
	tlsWatch sync.WaitGroup // the operator-certificate watcher
}

// Start initializes the data directory if needed, starts postgres and
// pgbouncer and waits until both accept TLS connections.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("localcluster: DataDir is required")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("while resolving data dir: %w", err)
	}
	if cfg.PublicHost == "" {
		cfg.PublicHost = "127.0.0.1"
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 500
	}
	if cfg.PoolerMaxClientConn <= 0 {
		cfg.PoolerMaxClientConn = 10000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{
		cfg:        cfg,
		log:        log,
		dataDir:    dataDir,
		pgData:     filepath.Join(dataDir, "pg"),
		bouncerDir: filepath.Join(dataDir, "pgbouncer"),
		tlsDir:     filepath.Join(dataDir, "tls"),
		publicHost: cfg.PublicHost,
		stopCh:     make(chan struct{}),
	}
	if err := c.prepare(ctx); err != nil {
		return nil, err
	}
	if err := c.launch(ctx); err != nil {
		_ = c.Stop(context.Background())
		return nil, err
	}
	return c, nil
}

// prepare does everything that happens before a child process starts.
func (c *Cluster) prepare(ctx context.Context) error {
	created, err := mkdirNew(c.dataDir, 0o700)
	if err != nil {
		return fmt.Errorf("while creating data dir: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := lookupUser("postgres")
		if err != nil {
			return fmt.Errorf("running as root, but cannot run postgres as the postgres user: %w", err)
		}
		c.owner = u
		if created {
			// We just made it, so no warning: postgres only needs to traverse it.
			if err := os.Chmod(c.dataDir, 0o701); err != nil {
				return fmt.Errorf("while creating data dir: %w", err)
			}
		}
		if err := ensureTraversable(c.dataDir, u, c.log); err != nil {
			return err
		}
	}
	for _, d := range []string{c.bouncerDir, c.tlsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("while creating %s: %w", d, err)
		}
	}
	if err := c.detectBinaries(ctx); err != nil {
		return err
	}
	if c.password, err = loadOrCreatePassword(filepath.Join(c.dataDir, "admin-password")); err != nil {
		return fmt.Errorf("while preparing the admin password: %w", err)
	}
	// The generated CA and certificate exist even with an operator
	// certificate: the operator may drop the flags again.
	if err := ensureTLS(c.tlsDir, c.publicHost, c.log); err != nil {
		return fmt.Errorf("while preparing TLS certificates: %w", err)
	}
	if (c.cfg.TLSCertFile == "") != (c.cfg.TLSKeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.cfg.TLSCAFile != "" && !c.operatorTLS() {
		return errors.New("--tls-ca needs --tls-cert and --tls-key")
	}
	if c.operatorTLS() {
		if _, err := c.installOperatorTLS(); err != nil {
			return err
		}
	}
	if err := c.stopStaleProcesses(); err != nil {
		return err
	}
	if err := c.resolvePorts(); err != nil {
		return err
	}
	if c.cfg.Standby != nil {
		if err := c.prepareRemoteStandby(ctx); err != nil {
			return fmt.Errorf("while making the standby: %w", err)
		}
	} else if err := c.initdbIfNeeded(ctx); err != nil {
		return fmt.Errorf("while initializing postgres: %w", err)
	}
	if err := c.writePostgresConfig(); err != nil {
		return fmt.Errorf("while configuring postgres: %w", err)
	}
	if err := c.writeBouncerConfig(); err != nil {
		return fmt.Errorf("while configuring pgbouncer: %w", err)
	}
	if c.owner != nil {
		if err := c.chownTrees(); err != nil {
			return err
		}
	}
	// pgbouncer needs more descriptors than the usual soft limit of 1024.
	// Re-setting the limit Go already raised makes os/exec pass it on to
	// children instead of restoring the original soft limit.
	// Each client holds one descriptor and each server connection another;
	// root may raise the hard limit to what max_client_conn needs.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		want := uint64(c.cfg.PoolerMaxClientConn) + uint64(c.cfg.MaxConnections) + 1024
		hard := lim.Max
		if lim.Max < want && os.Geteuid() == 0 {
			lim.Max = want
		}
		lim.Cur = lim.Max
		err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if err != nil && lim.Max != hard {
			lim.Max, lim.Cur = hard, hard // e.g. a container without CAP_SYS_RESOURCE
			err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
		if err != nil || lim.Cur < want {
			c.log.Warn("the open-files limit is below what pgbouncer's max_client_conn needs", "component", "pgbouncer",
				"limit", lim.Cur, "wanted", want, "max_client_conn", c.cfg.PoolerMaxClientConn)
		}
	}
	return nil
}

// launch starts postgres, prepares the pooler files, starts pgbouncer and
// then hands both children to their supervisors.
func (c *Cluster) launch(ctx context.Context) error {
	c.spawnCh = make(chan spawnReq)
	go c.spawnLoop()

	c.pg = c.newChild("postgres", filepath.Join(c.binDir, "postgres"), []string{"-D", c.pgData}, c.pgData,
		syscall.SIGINT)
	insts := c.bouncerInstances()
	c.bouncer, c.sessionBouncer = c.newBouncerChild(insts[0]), c.newBouncerChild(insts[1])

	t0 := time.Now()
	p, err := c.pg.start()
	if err != nil {
		return fmt.Errorf("while starting postgres: %w", err)
	}
	if err := c.waitReady(ctx, c.pg, p, c.pingPostgres); err != nil {
		return fmt.Errorf("while starting postgres: %w", err)
	}
	c.log.Info("postgres is ready", "component", "postgres", "port", c.directPort, "elapsed", time.Since(t0).Round(time.Millisecond))

	if err := c.afterPostgresStart(ctx); err != nil {
		return fmt.Errorf("while starting postgres: %w", err)
	}
	// pgbouncer's admin console authenticates capydb_admin from the auth
	// file, so the files must exist before it starts.
	if err := c.syncPooler(ctx, false); err != nil {
		return fmt.Errorf("while starting pgbouncer: %w", err)
	}
	t1 := time.Now()
	p, err = c.bouncer.start()
	if err != nil {
		return fmt.Errorf("while starting pgbouncer: %w", err)
	}
	if err := c.waitReady(ctx, c.bouncer, p, c.pingBouncer); err != nil {
		return fmt.Errorf("while starting pgbouncer: %w", err)
	}
	c.log.Info("pgbouncer is ready", "component", "pgbouncer", "port", c.pooledPort, "elapsed", time.Since(t1).Round(time.Millisecond))
	t2 := time.Now()
	p, err = c.sessionBouncer.start()
	if err != nil {
		return fmt.Errorf("while starting the session-mode pgbouncer: %w", err)
	}
	if err := c.waitReady(ctx, c.sessionBouncer, p, c.pingSessionBouncer); err != nil {
		return fmt.Errorf("while starting the session-mode pgbouncer: %w", err)
	}
	c.log.Info("session-mode pgbouncer is ready", "component", "pgbouncer-session", "port", c.sessionPort, "elapsed", time.Since(t2).Round(time.Millisecond))

	c.pg.superviseInBackground()
	c.bouncer.superviseInBackground()
	c.sessionBouncer.superviseInBackground()
	if c.cfg.ReadReplica {
		if err := c.startStandby(ctx); err != nil {
			return err
		}
	}
	if c.operatorTLS() {
		c.watchOperatorTLS()
	}
	return nil
}

// afterPostgresStart applies catalog settings that must hold on every start.
func (c *Cluster) afterPostgresStart(ctx context.Context) error {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var standby bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return err
	}
	if standby {
		return nil // a standby cluster: its primary's catalogs replicate here
	}
	// Tenant roles must only reach their own database. template0 refuses
	// connections anyway; template1 accepts them unless revoked. CREATE
	// DATABASE does not need CONNECT on the template.
	_, err = conn.Exec(ctx, `REVOKE CONNECT ON DATABASE postgres FROM PUBLIC; REVOKE CONNECT ON DATABASE template1 FROM PUBLIC`)
	if err != nil {
		return fmt.Errorf("while revoking CONNECT from PUBLIC: %w", err)
	}
	if err := c.ensurePoolerAuth(ctx, conn); err != nil {
		return err
	}
	if !c.cfg.ReadReplica {
		return c.dropStandby(ctx, conn)
	}
	return nil
}

// waitReady polls ping until it succeeds, the child exits, or the timeout.
func (c *Cluster) waitReady(ctx context.Context, ch *child, p *proc, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	var lastErr error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during startup (%v); last output:\n%s", ch.name, p.err, ch.tail.String())
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		lastErr = ping(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready within %s: %w; last output:\n%s", ch.name, readyTimeout, lastErr, ch.tail.String())
		case <-p.done:
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay += 20 * time.Millisecond
		}
	}
}

func (c *Cluster) pingPostgres(ctx context.Context) error {
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func (c *Cluster) pingBouncer(ctx context.Context) error {
	conn, err := c.connectConsole(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// The admin console has no SELECT; SHOW VERSION is its cheapest query.
	_, err = conn.Exec(ctx, "SHOW VERSION")
	return err
}

func (c *Cluster) connectAdmin(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.AdminDSNFor(db))
}

// connectConsole opens pgbouncer's admin console, which only speaks the
// simple query protocol.
func (c *Cluster) connectConsole(ctx context.Context) (*pgx.Conn, error) {
	return c.connectConsoleOn(ctx, c.pooledPort)
}

func (c *Cluster) dsn(port int, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(adminUser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + db,
		RawQuery: "sslmode=require&connect_timeout=10",
	}
	return u.String()
}

// AdminDSN is a superuser connection string for database "postgres" over TCP
// 127.0.0.1 with TLS.
func (c *Cluster) AdminDSN() string { return c.AdminDSNFor("postgres") }

// AdminDSNFor is AdminDSN for another database.
func (c *Cluster) AdminDSNFor(db string) string { return c.dsn(c.directPort, db) }

// AdminUser is the superuser created by initdb.
func (c *Cluster) AdminUser() string { return adminUser }

// LogDir is where postgres writes its JSON log files (internal/pglogs).
func (c *Cluster) LogDir() string { return filepath.Join(c.pgData, "log") }

func (c *Cluster) DirectPort() int       { return c.directPort }
func (c *Cluster) PooledPort() int       { return c.pooledPort }
func (c *Cluster) PublicHost() string    { return c.publicHost }
func (c *Cluster) PostgresMajor() string { return c.major }

// BinDir is where postgres, pg_dump, pg_restore and psql live.
func (c *Cluster) BinDir() string { return c.binDir }

// CACertPath is the CA that signed the server certificate of both ports.
func (c *Cluster) CACertPath() string { return filepath.Join(c.tlsDir, "ca.crt") }

// Healthy returns nil when postgres and pgbouncer both answer.
func (c *Cluster) Healthy(ctx context.Context) error {
	if err := c.pingPostgres(ctx); err != nil {
		return fmt.Errorf("postgres is not healthy: %w", err)
	}
	if err := c.pingBouncer(ctx); err != nil {
		return fmt.Errorf("pgbouncer is not healthy: %w", err)
	}
	if err := c.pingSessionBouncer(ctx); err != nil {
		return fmt.Errorf("the session-mode pgbouncer is not healthy: %w", err)
	}
	return nil
}

// stopContext is cancelled when Stop begins, so background work that Stop
// waits for (certificate reloads, a deferred pooler sync) ends promptly.
func (c *Cluster) stopContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c.stopCh; cancel() }()
	return ctx
}

// Stop shuts down pgbouncer, then postgres (fast shutdown), and waits for
// both to exit. It is idempotent.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		close(c.stopCh)
		// No certificate reload may race the shutdown below.
		c.tlsWatch.Wait()
		// A deferred sync may be running (its context is cancelled now).
		c.poolerGate.waitStopped()
		if c.syncConn != nil {
			c.syncConn.Close(context.Background())
			c.syncConn = nil
		}
		c.consoleMu.Lock()
		for _, conn := range []**pgx.Conn{&c.console, &c.sessionConsole} {
			if *conn != nil {
				(*conn).Close(context.Background())
				*conn = nil
			}
		}
		c.consoleMu.Unlock()
		var errs []error
		if c.standby != nil {
			if err := c.standby.stop(ctx, syscall.SIGINT, syscall.SIGQUIT); err != nil {
				errs = append(errs, fmt.Errorf("while stopping the read replica: %w", err))
			}
		}
		for _, b := range []*child{c.bouncer, c.sessionBouncer} {
			if b == nil {
				continue
			}
			if err := b.stop(ctx, syscall.SIGINT, syscall.SIGTERM); err != nil {
				errs = append(errs, fmt.Errorf("while stopping %s: %w", b.name, err))
			}
		}
		if c.pg != nil {
			if err := c.pg.stop(ctx, syscall.SIGINT, syscall.SIGQUIT); err != nil {
				errs = append(errs, fmt.Errorf("while stopping postgres: %w", err))
			}
		}
		for _, ch := range []*child{c.standby, c.bouncer, c.sessionBouncer, c.pg} {
			if ch != nil {
				ch.waitSupervisor()
			}
		}
		if c.spawnCh != nil {
			// Children are gone, so the spawner thread may exit now.
			close(c.spawnCh)
		}
		c.stopErr = errors.Join(errs...)
		if c.stopErr == nil {
			c.log.Info("local cluster stopped")
		}
	})
	return c.stopErr
}
