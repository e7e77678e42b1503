package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("CAPYDB_LC_HELPER_DIR"); dir != "" {
		helperProcess(dir)
		return
	}
	os.Exit(m.Run())
}

// helperProcess is the body of the re-executed test binary in
// TestChildrenDieWithParent: start a cluster, report the child pids, block.
func helperProcess(dir string) {
	direct, _ := strconv.Atoi(os.Getenv("CAPYDB_LC_HELPER_DIRECT"))
	pooled, _ := strconv.Atoi(os.Getenv("CAPYDB_LC_HELPER_POOLED"))
	session, _ := strconv.Atoi(os.Getenv("CAPYDB_LC_HELPER_SESSION"))
	c, err := Start(context.Background(), Config{DataDir: dir, Fast: true,
		DirectPort: direct, DirectPortExplicit: true, PooledPort: pooled, PooledPortExplicit: true,
		SessionPort: session, SessionPortExplicit: true})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("PIDS", c.pg.current().cmd.Process.Pid, c.bouncer.current().cmd.Process.Pid)
	select {}
}

// recorder keeps every log record so tests can assert on them and dump
// them when a test fails (t.Log cannot be used from child-output goroutines
// that may outlive the test).
type recorder struct {
	mu   sync.Mutex
	recs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", rec.Time.Format("15:04:05.000"), rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, b.String())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.recs {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.recs = nil
	r.mu.Unlock()
}

func newRecorder(t *testing.T) (*recorder, *slog.Logger) {
	r := &recorder{}
	t.Cleanup(func() {
		if t.Failed() {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Log("cluster log:\n" + strings.Join(r.recs, "\n"))
		}
	})
	return r, slog.New(r)
}

// tempDataDir is a short, postgres-traversable temp dir (t.TempDir nests
// 0700 directories the postgres user could not enter).
func tempDataDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "capydb-lc-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePorts returns n distinct currently free TCP ports.
func freePorts(t *testing.T, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func mustStart(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

// userDSN uses pgx's default query mode on every port: pgbouncer >= 1.21
// tracks prepared statements in transaction mode.
func userDSN(port int, user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=require&connect_timeout=5", user, password, port, db)
}

// query connects with dsn and returns current_user and whether TLS is used.
func query(ctx context.Context, dsn string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var who string
	err = conn.QueryRow(ctx, "SELECT current_user::text || ':' || (SELECT count(*) FROM t)::text").Scan(&who)
	return who, err
}

func adminExec(t *testing.T, c *Cluster, db string, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.AdminDSNFor(db))
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	logs, logger := newRecorder(t)
	dir := tempDataDir(t)
	ports := freePorts(t, 3)
	cfg := Config{
		DataDir: dir, Fast: true, Logger: logger,
		DirectPort: ports[0], DirectPortExplicit: true,
		PooledPort: ports[1], PooledPortExplicit: true,
		SessionPort: ports[2], SessionPortExplicit: true,
	}
	t0 := time.Now()
	c := mustStart(t, cfg)
	t.Logf("fresh start (initdb + both children ready) took %s", time.Since(t0).Round(time.Millisecond))
	if logs.count("initializing a new postgres cluster") != 1 {
		t.Fatal("expected initdb on first start")
	}

	t.Run("admin over TLS", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, c.AdminDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var ssl, super bool
		var user string
		err = conn.QueryRow(ctx, `SELECT s.ssl, current_user, r.rolsuper FROM pg_stat_ssl s, pg_roles r
			WHERE s.pid = pg_backend_pid() AND r.rolname = current_user`).Scan(&ssl, &user, &super)
		if err != nil {
			t.Fatal(err)
		}
		if !ssl || user != c.AdminUser() || !super {
			t.Fatalf("ssl=%v user=%s super=%v", ssl, user, super)
		}
		if c.PostgresMajor() == "" {
			t.Fatalf("major %q", c.PostgresMajor())
		}
		if _, err := os.Stat(filepath.Join(c.BinDir(), "pg_dump")); err != nil {
			t.Fatalf("BinDir: %v", err)
		}
		if err := c.Healthy(ctx); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "admin-password"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("admin-password: %v %v", fi.Mode(), err)
		}
	})

	t.Run("CA verifies server cert on both ports", func(t *testing.T) {
		for _, port := range []int{c.DirectPort(), c.PooledPort()} {
			dsn := fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s&connect_timeout=5",
				c.AdminUser(), port, c.CACertPath())
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Password = c.password
			if port == c.PooledPort() {
				cfg.Database = "pgbouncer"
				cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
			}
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("port %d verify-full: %v", port, err)
			}
			conn.Close(ctx)
		}
	})

	const pw1, pw2 = "first-Secret-1", "second-Secret-2"
	t.Run("tenant via direct and pooled", func(t *testing.T) {
		adminExec(t, c, "postgres",
			`CREATE ROLE app LOGIN PASSWORD '`+pw1+`' CONNECTION LIMIT 15`,
			`CREATE DATABASE appdb OWNER app`,
			`REVOKE CONNECT ON DATABASE appdb FROM PUBLIC`,
			`CREATE ROLE nolimit LOGIN PASSWORD 'x-Secret-3'`,
			`CREATE DATABASE otherdb OWNER nolimit`,
			`CREATE DATABASE "bad name" OWNER nolimit`,
			`CREATE DATABASE controldb`, // owned by the superuser: not pooled
		)
		adminExec(t, c, "appdb", `CREATE TABLE t (i int)`, `INSERT INTO t VALUES (1), (2)`, `ALTER TABLE t OWNER TO app`)
		if err := c.SyncPooler(ctx); err != nil {
			t.Fatal(err)
		}
		ini, _ := os.ReadFile(filepath.Join(dir, "pgbouncer", "databases.ini"))
		// connlimit 15: 10 pooled connections, half per pgbouncer.
		wantLine := fmt.Sprintf("appdb = host=%s port=%d dbname=appdb max_db_connections=5\n", c.SocketDir(), c.DirectPort())
		sessionIni, _ := os.ReadFile(filepath.Join(dir, "pgbouncer", "databases-session.ini"))
		if !strings.Contains(string(sessionIni), wantLine) {
			t.Fatalf("databases-session.ini:\n%s", sessionIni)
		}
		if !strings.Contains(string(ini), wantLine) ||
			!strings.Contains(string(ini), fmt.Sprintf("otherdb = host=%s port=%d dbname=otherdb\n", c.SocketDir(), c.DirectPort())) ||
			strings.Contains(string(ini), "controldb") || strings.Contains(string(ini), "bad name") ||
			strings.Contains(string(ini), "postgres =") {
			t.Fatalf("databases.ini:\n%s", ini)
		}
		users, _ := os.ReadFile(filepath.Join(dir, "pgbouncer", "userlist.txt"))
		// Tenants are looked up with auth_query: only the admin and the
		// lookup's own role are in the auth file.
		if strings.Contains(string(users), `"app"`) || !strings.Contains(string(users), `"capydb_admin" "SCRAM-SHA-256$`) ||
			!strings.Contains(string(users), `"capydb_pooler_auth" "`) {
			t.Fatalf("userlist.txt:\n%s", users)
		}
		for _, f := range []string{"databases.ini", "databases-session.ini", "userlist.txt"} {
			fi, _ := os.Stat(filepath.Join(dir, "pgbouncer", f))
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s mode %v", f, fi.Mode())
			}
		}
		for _, port := range []int{c.DirectPort(), c.PooledPort(), c.SessionPort()} {
			who, err := query(ctx, userDSN(port, "app", pw1, "appdb"))
			if err != nil || who != "app:2" {
				t.Fatalf("port %d: %q %v", port, who, err)
			}
		}
		// The tenant cannot reach the maintenance databases.
		for _, db := range []string{"postgres", "template1"} {
			if _, err := query(ctx, userDSN(c.DirectPort(), "app", pw1, db)); err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("tenant connect to %s: %v", db, err)
			}
		}
	})

	t.Run("password change", func(t *testing.T) {
		// Keep a pooled server connection warm with the old credentials.
		if _, err := query(ctx, userDSN(c.PooledPort(), "app", pw1, "appdb")); err != nil {
			t.Fatal(err)
		}
		adminExec(t, c, "postgres", `ALTER ROLE app PASSWORD '`+pw2+`'`)
		if err := c.SyncPooler(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.ReconnectPooler(ctx, "appdb"); err != nil {
			t.Fatal(err)
		}
		for _, port := range []int{c.DirectPort(), c.PooledPort(), c.SessionPort()} {
			// postgres: "password authentication failed"; pgbouncer: "SASL authentication failed".
			if _, err := query(ctx, userDSN(port, "app", pw1, "appdb")); err == nil || !strings.Contains(err.Error(), "authentication failed") {
				t.Fatalf("port %d: old password: %v", port, err)
			}
			if who, err := query(ctx, userDSN(port, "app", pw2, "appdb")); err != nil || who != "app:2" {
				t.Fatalf("port %d: new password: %q %v", port, who, err)
			}
		}
		if err := c.ReconnectPooler(ctx, "no_such_db"); err != nil {
			t.Fatalf("unknown db: %v", err)
		}
	})

	t.Run("concurrent SyncPooler", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- c.SyncPooler(ctx) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("plain TCP refused", func(t *testing.T) {
		for _, port := range []int{c.DirectPort(), c.PooledPort(), c.SessionPort()} {
			dsn := strings.Replace(userDSN(port, "app", pw2, "appdb"), "sslmode=require", "sslmode=disable", 1)
			if _, err := query(ctx, dsn); err == nil {
				t.Fatalf("port %d accepted a non-TLS connection", port)
			} else {
				t.Logf("port %d without TLS: %v", port, err)
			}
		}
	})

	t.Run("explicit taken port", func(t *testing.T) {
		other := freePorts(t, 1)[0]
		_, err := Start(ctx, Config{DataDir: tempDataDir(t), Fast: true, Logger: logger,
			DirectPort: c.DirectPort(), DirectPortExplicit: true, PooledPort: other, PooledPortExplicit: true})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("--direct-port %d is already in use", c.DirectPort())) {
			t.Fatalf("direct: %v", err)
		}
		_, err = Start(ctx, Config{DataDir: tempDataDir(t), Fast: true, Logger: logger,
			DirectPort: other, DirectPortExplicit: true, PooledPort: c.PooledPort(), PooledPortExplicit: true})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("--pooled-port %d is already in use", c.PooledPort())) {
			t.Fatalf("pooled: %v", err)
		}
	})

	t.Run("supervisor restarts killed postgres", func(t *testing.T) {
		old := c.pg.current().cmd.Process.Pid
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			p := c.pg.current()
			if p.cmd.Process.Pid != old && c.Healthy(ctx) == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("postgres was not restarted")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if logs.count("postgres exited unexpectedly") == 0 {
			t.Fatal("unexpected exit was not logged")
		}
		if who, err := query(ctx, userDSN(c.PooledPort(), "app", pw2, "appdb")); err != nil || who != "app:2" {
			t.Fatalf("pooled after restart: %q %v", who, err)
		}
	})

	t.Run("stop and restart reuses the data dir", func(t *testing.T) {
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Stop(ctx); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "pg", "postmaster.pid")); !os.IsNotExist(err) {
			t.Fatalf("postmaster.pid after Stop: %v", err)
		}
		logs.reset()
		t0 := time.Now()
		c2 := mustStart(t, cfg)
		t.Logf("restart on existing data dir took %s", time.Since(t0).Round(time.Millisecond))
		if logs.count("initializing a new postgres cluster") != 0 {
			t.Fatal("initdb ran again")
		}
		for _, port := range []int{c2.DirectPort(), c2.PooledPort()} {
			if who, err := query(ctx, userDSN(port, "app", pw2, "appdb")); err != nil || who != "app:2" {
				t.Fatalf("port %d after restart: %q %v", port, who, err)
			}
		}
		if err := c2.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPortFallbackAndStaleProcesses(t *testing.T) {
	ctx := context.Background()
	logs, logger := newRecorder(t)
	dir := tempDataDir(t)

	// "Defaults" that are occupied, and fallback ranges that are free.
	var busy []int
	var busyLs []net.Listener
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		busyLs = append(busyLs, l)
		busy = append(busy, l.Addr().(*net.TCPAddr).Port)
	}
	bases := freePorts(t, 3)

	// Not Fast: this cluster goes through a real, durable initdb.
	cfg := Config{DataDir: dir, Logger: logger, DirectPort: busy[0], PooledPort: busy[1], SessionPort: busy[2],
		FallbackDirectBase: bases[0], FallbackPooledBase: bases[1], FallbackSessionBase: bases[2]}
	c := mustStart(t, cfg)
	if logs.count("from_template=false") != 1 {
		t.Fatal("expected a real initdb")
	}
	adminExec(t, c, "postgres", `DO $$BEGIN
		IF current_setting('data_checksums') <> 'on' OR current_setting('fsync') <> 'on' THEN RAISE 'bad settings'; END IF;
		END$$`)
	if c.DirectPort() == busy[0] || c.DirectPort() < bases[0] || c.PooledPort() == busy[1] || c.PooledPort() < bases[1] {
		t.Fatalf("ports %d/%d, busy %v, bases %v", c.DirectPort(), c.PooledPort(), busy, bases)
	}
	if c.SessionPort() == busy[2] || c.SessionPort() < bases[2] {
		t.Fatalf("session port %d, busy %v, bases %v", c.SessionPort(), busy, bases)
	}
	if logs.count("port is taken") != 3 {
		t.Fatal("fallback not logged at WARN")
	}
	var saved portsFile
	b, err := os.ReadFile(filepath.Join(dir, "ports.json"))
	if err != nil || json.Unmarshal(b, &saved) != nil || saved.DirectPort != c.DirectPort() || saved.PooledPort != c.PooledPort() || saved.SessionPort != c.SessionPort() {
		t.Fatalf("ports.json %s %v", b, err)
	}
	directPort, pooledPort, sessionPort := c.DirectPort(), c.PooledPort(), c.SessionPort()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range busyLs {
		l.Close()
	}

	// Stale processes: a postmaster and a pgbouncer running on this data
	// dir that no capydb supervises (as after a SIGKILLed capydb).
	c.directPort, c.pooledPort = directPort, pooledPort
	var stale []*exec.Cmd
	for _, argv := range [][]string{
		{filepath.Join(c.BinDir(), "postgres"), "-D", filepath.Join(dir, "pg")},
		{c.bouncerBin, filepath.Join(dir, "pgbouncer", "pgbouncer.ini")},
		{c.bouncerBin, filepath.Join(dir, "pgbouncer", "pgbouncer-session.ini")},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if c.owner != nil {
			cmd.SysProcAttr.Credential = c.owner.credential()
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		stale = append(stale, cmd)
		ping := c.pingPostgres
		if strings.Contains(argv[0], "pgbouncer") {
			ping = c.pingBouncer
			if strings.HasSuffix(argv[1], "session.ini") {
				ping = c.pingSessionBouncer
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for ping(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("manually started %s did not come up", argv[0])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The busy listeners are gone now: the remembered ports must still win.
	logs.reset()
	c2 := mustStart(t, cfg)
	if c2.DirectPort() != directPort || c2.PooledPort() != pooledPort || c2.SessionPort() != sessionPort {
		t.Fatalf("ports not remembered: %d/%d, want %d/%d", c2.DirectPort(), c2.PooledPort(), directPort, pooledPort)
	}
	for _, cmd := range stale {
		if pidAlive(cmd.Process.Pid) {
			t.Fatalf("stale pid %d still alive", cmd.Process.Pid)
		}
	}
	if logs.count("stale postmaster") != 1 || logs.count("stale pgbouncer") != 2 {
		t.Fatal("stale processes not logged")
	}
	if err := c2.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{c2.pg.current().cmd.Process.Pid, c2.bouncer.current().cmd.Process.Pid} {
		for _, s := range stale {
			if s.Process.Pid == pid {
				t.Fatal("stale process adopted")
			}
		}
	}
}
