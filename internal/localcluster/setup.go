package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/capydb/capydb/internal/netrules"
)

// detectBinaries finds postgres/initdb and pgbouncer and the server major.
func (c *Cluster) detectBinaries(ctx context.Context) error {
	c.binDir = c.cfg.BinDir
	if c.binDir == "" {
		c.binDir = detectBinDir(c.pgData)
	}
	if c.binDir == "" {
		return errors.New("cannot find the PostgreSQL server binaries (install the postgresql package or pass the bin dir)")
	}
	for _, b := range []string{"postgres", "initdb"} {
		if _, err := os.Stat(filepath.Join(c.binDir, b)); err != nil {
			return fmt.Errorf("PostgreSQL bin dir %s has no %s: %w", c.binDir, b, err)
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(c.binDir, "postgres"), "--version").Output()
	if err != nil {
		return fmt.Errorf("while running postgres --version: %w", err)
	}
	m := regexp.MustCompile(`\(PostgreSQL\) (\d+)`).FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("cannot parse postgres --version output %q", strings.TrimSpace(string(out)))
	}
	c.major = string(m[1])
	if b, err := os.ReadFile(filepath.Join(c.pgData, "PG_VERSION")); err == nil {
		if v := strings.TrimSpace(string(b)); v != c.major {
			return fmt.Errorf("data dir %s was created by PostgreSQL %s but the binaries in %s are PostgreSQL %s", c.pgData, v, c.binDir, c.major)
		}
	}

	c.bouncerBin, c.bouncerVersion, err = findBouncer(ctx, c.cfg.PgBouncerPath, c.cfg.AllowOldPgBouncer)
	if err != nil {
		return err
	}
	if !versionAtLeast(c.bouncerVersion, MinPgBouncer) {
		c.log.Warn("running an old pgbouncer: prepared statements on the pooled URL will fail or return wrong answers",
			"component", "pgbouncer", "path", c.bouncerBin, "version", versionString(c.bouncerVersion))
	}
	return nil
}

// detectBinDir prefers the major version an existing data dir was created
// with, then pg_config --bindir (when it really holds a server), then the
// highest /usr/lib/postgresql/*/bin.
func detectBinDir(pgData string) string {
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "postgres"))
		return err == nil
	}
	if b, err := os.ReadFile(filepath.Join(pgData, "PG_VERSION")); err == nil {
		if d := filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(b)), "bin"); has(d) {
			return d
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" && has(d) {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	return ""
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// initdbIfNeeded creates PGDATA when PG_VERSION is missing. initdb writes
// into a scratch directory that is renamed into place, so a crash during
// initdb never leaves a half-initialized DataDir/pg behind.
func (c *Cluster) initdbIfNeeded(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.pgData, "PG_VERSION")); err == nil {
		return nil
	}
	if entries, err := os.ReadDir(c.pgData); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty but has no PG_VERSION; refusing to initdb over it", c.pgData)
	}
	t0 := time.Now()
	c.log.Info("initializing a new postgres cluster with initdb", "pgdata", c.pgData)
	scratch := c.pgData + ".initdb-tmp"
	if err := c.freshScratch(scratch); err != nil {
		return err
	}
	defer os.RemoveAll(scratch)

	fromTemplate := false
	if c.cfg.Fast {
		if err := c.copyInitdbTemplate(ctx, scratch); err != nil {
			c.log.Info("initdb template unavailable; running initdb", "reason", err.Error())
			if err := c.freshScratch(scratch); err != nil {
				return err
			}
		} else {
			fromTemplate = true
		}
	}
	if !fromTemplate {
		if err := c.runInitdb(ctx, scratch, c.password); err != nil {
			return err
		}
	}
	// An empty DataDir/pg may exist (e.g. created by an operator); replace it.
	if err := os.Remove(c.pgData); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(scratch, c.pgData); err != nil {
		return err
	}
	c.log.Info("initdb done", "elapsed", time.Since(t0).Round(time.Millisecond), "from_template", fromTemplate)
	return nil
}

// runInitdb runs initdb (as the postgres user when we are root) into the
// existing empty directory dir, with password for the admin role.
func (c *Cluster) runInitdb(ctx context.Context, dir, password string) error {
	pwFile := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".pwfile")
	if err := writeFileAtomic(pwFile, []byte(password+"\n"), 0o600, c.owner); err != nil {
		return err
	}
	defer os.Remove(pwFile)

	args := []string{"-D", dir, "--data-checksums", "--auth=scram-sha-256", "--pwfile=" + pwFile,
		"-U", adminUser, "-E", "UTF8", "--locale=C"}
	if c.cfg.Fast {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "initdb"), args...)
	cmd.Dir = filepath.Dir(dir)
	cmd.Env = childEnv()
	if c.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.owner.credential()}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb failed: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// hasLibrary reports whether the server can load a module (Debian layout:
// <bin>/../lib/<name>.so), so that a host without an optional package
// still starts.
func (c *Cluster) hasLibrary(name string) bool {
	_, err := os.Stat(filepath.Join(filepath.Dir(c.binDir), "lib", name+".so"))
	return err == nil
}

// pgQuote quotes a postgresql.conf string value.
func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// writePostgresConfig rewrites capydb.conf and pg_hba.conf on every start
// so that port or host changes apply, and makes postgresql.conf include it.
func (c *Cluster) writePostgresConfig() error {
	listen := c.listenAddress()
	var b strings.Builder
	b.WriteString("# Written by capydb on every start; edits are lost. Use ALTER SYSTEM for your own settings.\n")
	fmt.Fprintf(&b, "port = %d\n", c.directPort)
	fmt.Fprintf(&b, "listen_addresses = %s\n", pgQuote(listen))
	// One private unix socket (0700, only postgres' own OS user reaches
	// it): pgBouncer's server logins and pgBackRest use it; every other
	// client uses TCP + TLS.
	if err := c.ensureSocketDir(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", pgQuote(c.SocketDir()))
	b.WriteString("unix_socket_permissions = 0700\n")
	if c.cfg.ArchiveCommand != "" {
		b.WriteString("wal_level = replica\narchive_mode = on\narchive_timeout = 60\n")
		fmt.Fprintf(&b, "archive_command = %s\n", pgQuote(c.cfg.ArchiveCommand))
	}
	if c.cfg.LogicalReplication {
		// After the archive block: logical includes everything replica logs.
		b.WriteString("wal_level = logical\n")
	}
	b.WriteString("ssl = on\n")
	crt, key := c.serverCertFiles()
	fmt.Fprintf(&b, "ssl_cert_file = %s\n", pgQuote(crt))
	fmt.Fprintf(&b, "ssl_key_file = %s\n", pgQuote(key))
	b.WriteString("password_encryption = 'scram-sha-256'\n")
	fmt.Fprintf(&b, "max_connections = %d\n", c.cfg.MaxConnections)
	preload := "pg_stat_statements"
	if c.hasLibrary("pg_qualstats") {
		// The index advisor's predicate statistics. Sampling keeps the
		// overhead low on a busy cluster; tests (Fast) sample every query.
		preload += ",pg_qualstats"
		rate := "0.1"
		if c.cfg.Fast {
			rate = "1"
		}
		fmt.Fprintf(&b, "pg_qualstats.sample_rate = %s\n", rate)
	}
	fmt.Fprintf(&b, "shared_preload_libraries = %s\n", pgQuote(preload))
	// The server log is JSON (one object per line: a statement's newlines
	// cannot forge entries) in <pgdata>/log, which internal/pglogs tails
	// and attributes to project databases. Output before the collector
	// starts still reaches stderr, which capydb forwards.
	b.WriteString("logging_collector = on\n")
	b.WriteString("log_destination = 'jsonlog'\n")
	b.WriteString("log_directory = 'log'\n")
	b.WriteString("log_filename = 'postgresql-%Y%m%d-%H%M%S.log'\n")
	b.WriteString("log_rotation_age = '1d'\nlog_rotation_size = '64MB'\n")
	b.WriteString("log_line_prefix = '%m [%p] %q%u@%d '\n")
	if c.cfg.Fast {
		b.WriteString("# Fast mode (tests): not crash safe.\n")
		// synchronous_commit stays on: with it off, commits still sitting in
		// WAL buffers are lost when tests SIGKILL postgres (the supervisor
		// test then sees a password change vanish). fsync = off already
		// makes commits cheap: WAL reaches the kernel, not the disk.
		b.WriteString("fsync = off\nfull_page_writes = off\n")
	}
	if c.cfg.Standby != nil {
		b.WriteString(c.remoteStandbySettings())
	}
	if err := writeFileAtomic(filepath.Join(c.pgData, "capydb.conf"), []byte(b.String()), 0o600, c.owner); err != nil {
		return err
	}

	// pg_hba.conf comes from the last applied network policy (defaults:
	// TLS + SCRAM only, no plain TCP), plus the private socket line for
	// pgBackRest when WAL is archived.
	policy, err := c.loadNetworkPolicy()
	if err != nil {
		return err
	}
	if c.cfg.ArchiveCommand != "" {
		ident := "# Written by capydb on every start.\ncapydb " + c.osUserName() + " " + adminUser + "\n"
		if err := writeFileAtomic(filepath.Join(c.pgData, "pg_ident.conf"), []byte(ident), 0o600, c.owner); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(filepath.Join(c.pgData, "pg_hba.conf"), c.postgresHBA(policy), 0o600, c.owner); err != nil {
		return err
	}

	confPath := filepath.Join(c.pgData, "postgresql.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		return err
	}
	const include = "include = 'capydb.conf'"
	for _, line := range strings.Split(string(conf), "\n") {
		if strings.TrimSpace(line) == include {
			return nil
		}
	}
	if len(conf) > 0 && conf[len(conf)-1] != '\n' {
		conf = append(conf, '\n')
	}
	conf = append(conf, "\n# Settings managed by capydb (rewritten on every start).\n"+include+"\n"...)
	return writeFileAtomic(confPath, conf, 0o600, c.owner)
}

// writeBouncerConfig rewrites both pgbouncer configs on every start:
// pgbouncer.ini (transaction pooling, the pooled port) and
// pgbouncer-session.ini (session pooling, the session port). They share the
// auth file; their [databases] sections live in databases.ini and
// databases-session.ini, which SyncPooler regenerates.
func (c *Cluster) writeBouncerConfig() error {
	policy, err := c.loadNetworkPolicy()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.bouncerDir, bouncerHBA), hbaRejectPoolerAuth(netrules.Render(policy, netrules.PgBouncer)), 0o600, c.owner); err != nil {
		return err
	}
	for _, b := range c.bouncerInstances() {
		if err := writeFileAtomic(filepath.Join(c.bouncerDir, b.ini), []byte(c.bouncerIni(b)), 0o600, c.owner); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) bouncerIni(inst bouncerInstance) string {
	listen := c.listenAddress()
	var b strings.Builder
	b.WriteString("; Written by capydb on every start; edits are lost.\n")
	b.WriteString("[pgbouncer]\n")
	fmt.Fprintf(&b, "listen_addr = %s\n", listen)
	fmt.Fprintf(&b, "listen_port = %d\n", inst.port)
	b.WriteString("unix_socket_dir =\n")
	// auth_type = hba: hba.conf (the network rules) picks the method per
	// client; scram-sha-256 lines check the secrets in auth_file.
	b.WriteString("auth_type = hba\n")
	fmt.Fprintf(&b, "auth_hba_file = %s\n", filepath.Join(c.bouncerDir, bouncerHBA))
	fmt.Fprintf(&b, "auth_file = %s\n", filepath.Join(c.bouncerDir, "userlist.txt"))
	// Roles not in auth_file (every tenant) are looked up at login
	// (poolerauth.go): a new role needs no RELOAD.
	fmt.Fprintf(&b, "auth_user = %s\nauth_dbname = %s\nauth_query = %s\n", poolerAuthRole, poolerAuthDB, poolerAuthQuery)
	fmt.Fprintf(&b, "pool_mode = %s\n", inst.mode)
	fmt.Fprintf(&b, "max_client_conn = %d\n", c.cfg.PoolerMaxClientConn)
	b.WriteString("default_pool_size = 20\n")
	// A server login that fails (e.g. a RELOAD raced a client's SCRAM
	// handshake) is retried after this many seconds; the default 15 s would
	// stall clients that long.
	b.WriteString("server_login_retry = 1\n")
	b.WriteString("ignore_startup_parameters = extra_float_digits\n")
	if versionAtLeast(c.bouncerVersion, MinPgBouncer) {
		// Protocol-level prepared statements: pgBouncer re-prepares a
		// client's statements on whichever server connection it gets.
		fmt.Fprintf(&b, "max_prepared_statements = %d\n", maxPreparedStatements)
	}
	if c.cfg.AllowPlaintext {
		// hba.conf decides per database: hostssl lines unless a project
		// was allowed plaintext.
		b.WriteString("client_tls_sslmode = prefer\n")
	} else {
		b.WriteString("client_tls_sslmode = require\n")
	}
	crt, key := c.serverCertFiles()
	fmt.Fprintf(&b, "client_tls_cert_file = %s\n", crt)
	fmt.Fprintf(&b, "client_tls_key_file = %s\n", key)
	// Server connections go over postgres' private unix socket (see
	// renderDatabases): no TLS there.
	b.WriteString("server_tls_sslmode = disable\n")
	// Without explicit CA files pgbouncer loads the system CA bundle on
	// every start and RELOAD (~40 ms each, measured); our own CA is enough.
	fmt.Fprintf(&b, "server_tls_ca_file = %s\n", filepath.Join(c.tlsDir, "ca.crt"))
	fmt.Fprintf(&b, "client_tls_ca_file = %s\n", filepath.Join(c.tlsDir, "ca.crt"))
	fmt.Fprintf(&b, "admin_users = %s\n", adminUser)
	fmt.Fprintf(&b, "pidfile = %s\n", filepath.Join(c.bouncerDir, inst.pid))
	// Like postgres' defaults: no line per connection (auth failures are
	// still logged).
	b.WriteString("log_connections = 0\nlog_disconnections = 0\n")
	b.WriteString("; No logfile: pgbouncer logs to stderr, which capydb forwards.\n")
	// pgbouncer accepts a %include at the end of the file; the included
	// file starts its own [databases] section.
	fmt.Fprintf(&b, "%%include %s\n", filepath.Join(c.bouncerDir, inst.databases))
	return b.String()
}

// BinDir is the PostgreSQL server bin directory this host would use for a new
// cluster (for tools such as the Patroni test harness that run their own).
func BinDir() string { return detectBinDir("") }

// freshScratch makes dir an empty directory owned by the cluster's system
// user, removing whatever an interrupted earlier attempt left there.
func (c *Cluster) freshScratch(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return c.owner.chown(dir)
}
