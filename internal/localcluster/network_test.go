package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/netrules"
)

// loginFrom connects, runs SELECT 1 and closes; nil means the login worked.
func loginFrom(ctx context.Context, src string, port int, user, password, db string) error {
	cfg, err := pgx.ParseConfig(userDSN(port, user, password, db))
	if err != nil {
		return err
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	cfg.DialFunc = d.DialContext
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

type failures struct {
	mu  sync.Mutex
	got []AuthFailure
}

func (f *failures) add(a AuthFailure) { f.mu.Lock(); f.got = append(f.got, a); f.mu.Unlock() }
func (f *failures) count(db, addr, source string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.got {
		if a.Database == db && a.Addr.String() == addr && strings.HasPrefix(a.Source, source) {
			n++
		}
	}
	return n
}

func TestNetworkRules(t *testing.T) {
	ctx := context.Background()
	ports := freePorts(t, 3)
	var fails failures
	_, logger := newRecorder(t)
	c := mustStart(t, Config{DataDir: tempDataDir(t), Fast: true, Logger: logger,
		DirectPort: ports[0], DirectPortExplicit: true, PooledPort: ports[1], PooledPortExplicit: true,
		SessionPort: ports[2], SessionPortExplicit: true, OnAuthFailure: fails.add})
	adminExec(t, c, "postgres",
		`CREATE ROLE neta LOGIN PASSWORD 'pwa'`, `CREATE DATABASE neta OWNER neta`,
		`CREATE ROLE netb LOGIN PASSWORD 'pwb'`, `CREATE DATABASE netb OWNER netb`)
	if err := c.SyncPooler(ctx); err != nil {
		t.Fatal(err)
	}
	allPorts := []int{c.DirectPort(), c.PooledPort(), c.SessionPort()}
	expect := func(src, user, pw, db string, ok bool) {
		t.Helper()
		for _, port := range allPorts {
			err := loginFrom(ctx, src, port, user, pw, db)
			if ok && err != nil {
				t.Errorf("%s from %s on port %d: want a login, got %v", db, src, port, err)
			}
			if !ok && err == nil {
				t.Errorf("%s from %s on port %d: want a refusal, got a login", db, src, port)
			}
		}
	}
	// Defaults: everyone, from any loopback address.
	expect("127.0.0.2", "neta", "pwa", "neta", true)
	expect("127.0.0.3", "neta", "pwa", "neta", true)

	// A session from 127.0.0.3 open on each port before the change.
	var held []*pgx.Conn
	for _, port := range allPorts {
		cfg, _ := pgx.ParseConfig(userDSN(port, "neta", "pwa", "neta"))
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
		cfg.DialFunc = d.DialContext
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		held = append(held, conn)
	}

	policy := netrules.Policy{Projects: []netrules.Project{{Database: "neta", Restricted: true,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("2001:db8::/32")}}}}
	t0 := time.Now()
	if err := c.ApplyNetwork(ctx, func(context.Context) (netrules.Policy, error) { return policy, nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("ApplyNetwork (both files, reloads, 3 sessions ended): %s", time.Since(t0).Round(time.Millisecond))
	expect("127.0.0.2", "neta", "pwa", "neta", true)
	expect("127.0.0.3", "neta", "pwa", "neta", false)
	expect("127.0.0.3", "netb", "pwb", "netb", true) // another project is unaffected
	expect("127.0.0.1", "neta", "pwa", "neta", true) // the host itself (pgbouncer's server logins)
	for i, conn := range held {
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
			t.Errorf("port %d: a session from 127.0.0.3 survived the new allow-list", allPorts[i])
		}
	}
	// The control plane still works: admin on postgres and both consoles.
	if err := c.Healthy(ctx); err != nil {
		t.Fatalf("control plane after the allow-list: %v", err)
	}
	if err := c.SyncPooler(ctx); err != nil {
		t.Fatal(err)
	}

	// A ban beats the allow-list; the host itself cannot be banned.
	policy.Projects[0].Bans = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}
	if err := c.ApplyNetwork(ctx, func(context.Context) (netrules.Policy, error) { return policy, nil }); err != nil {
		t.Fatal(err)
	}
	expect("127.0.0.2", "neta", "pwa", "neta", false)
	expect("127.0.0.1", "neta", "pwa", "neta", true)

	// Failed logins through the pgBouncers are reported with database and
	// address (postgres' own come from its jsonlog via internal/pglogs; the
	// e2e ban test counts both).
	for _, port := range allPorts {
		if err := loginFrom(ctx, "127.0.0.5", port, "netb", "wrong", "netb"); err == nil {
			t.Fatal("a wrong password logged in")
		}
	}
	waitFor(t, "auth failures from the logs", func() bool {
		return fails.count("netb", "127.0.0.5", "pgbouncer") == 2
	})

	// Back to the defaults; the files survive a restart of the policy file.
	if err := c.ApplyNetwork(ctx, func(context.Context) (netrules.Policy, error) { return netrules.Policy{}, nil }); err != nil {
		t.Fatal(err)
	}
	expect("127.0.0.3", "neta", "pwa", "neta", true)
	if b, err := os.ReadFile(filepath.Join(c.dataDir, networkFile)); err != nil || strings.Contains(string(b), "neta") {
		t.Fatalf("network.json after reset: %q %v", b, err)
	}
}

// A broken pg_hba.conf is never loaded: the previous file stays and logins work.
func TestBrokenHBAIsNotLoaded(t *testing.T) {
	ctx := context.Background()
	c := mustStart(t, Config{DataDir: tempDataDir(t), Fast: true})
	path := filepath.Join(c.pgData, "pg_hba.conf")
	before, _ := os.ReadFile(path)
	err := c.swapPostgresHBA(ctx, []byte("hostssl all all 10.0.0.1/99 scram-sha-256\n"))
	if err == nil || !strings.Contains(err.Error(), "invalid") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("want the pg_hba_file_rules error, got %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Fatalf("pg_hba.conf changed after a refused swap:\n%s", after)
	}
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// plainDSN is userDSN without TLS.
func plainDSN(port int, user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=5", user, password, port, db)
}

func plainLogin(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// TestPlaintextProject: with the operator's AllowPlaintext a project marked
// Plaintext takes clients without TLS on every port; other projects still
// need TLS; and without the operator flag the project mark does nothing.
func TestPlaintextProject(t *testing.T) {
	ctx := context.Background()
	for _, operator := range []bool{true, false} {
		ports := freePorts(t, 3)
		c := mustStart(t, Config{DataDir: tempDataDir(t), Fast: true, AllowPlaintext: operator,
			DirectPort: ports[0], DirectPortExplicit: true, PooledPort: ports[1], PooledPortExplicit: true,
			SessionPort: ports[2], SessionPortExplicit: true})
		adminExec(t, c, "postgres",
			`CREATE ROLE pla LOGIN PASSWORD 'pwa'`, `CREATE DATABASE pla OWNER pla`,
			`CREATE ROLE plb LOGIN PASSWORD 'pwb'`, `CREATE DATABASE plb OWNER plb`)
		if err := c.SyncPooler(ctx); err != nil {
			t.Fatal(err)
		}
		policy := netrules.Policy{Projects: []netrules.Project{{Database: "pla", Plaintext: true}}}
		if err := c.ApplyNetwork(ctx, func(context.Context) (netrules.Policy, error) { return policy, nil }); err != nil {
			t.Fatal(err)
		}
		for _, port := range []int{c.DirectPort(), c.PooledPort(), c.SessionPort()} {
			err := plainLogin(ctx, plainDSN(port, "pla", "pwa", "pla"))
			if operator && err != nil {
				t.Errorf("operator allows plaintext: pla on port %d without TLS refused: %v", port, err)
			}
			if !operator && err == nil {
				t.Errorf("operator forbids plaintext: pla on port %d logged in without TLS", port)
			}
			if err := plainLogin(ctx, plainDSN(port, "plb", "pwb", "plb")); err == nil {
				t.Errorf("plb (TLS only) logged in without TLS on port %d", port)
			}
			if err := plainLogin(ctx, userDSN(port, "pla", "pwa", "pla")); err != nil {
				t.Errorf("pla with TLS on port %d: %v", port, err)
			}
		}
	}
}
