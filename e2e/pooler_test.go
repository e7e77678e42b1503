package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
)

// console opens pgBouncer's admin console on port as the cluster's admin.
func (s *server) console(t *testing.T, port int) *pgx.Conn {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := connect(fmt.Sprintf("postgres://capydb_admin:%s@127.0.0.1:%d/pgbouncer?sslmode=require", strings.TrimSpace(string(pw)), port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// backendsOf lists the server processes connected to db, as postgres sees them.
func backendsOf(t *testing.T, admin *pgx.Conn, db string) []int32 {
	t.Helper()
	rows, err := admin.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = $1 ORDER BY pid`, db)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// TestProvisionLeavesOtherPoolsAlone: while other projects are provisioned
// (each one publishes itself to both pgBouncers), project A's pooled and
// session-mode clients keep working on the very same server connections:
// no server connection of A is closed.
func TestProvisionLeavesOtherPoolsAlone(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	admin := s.admin("postgres")
	a := s.createProject(map[string]any{"name": "alone", "environment": "non_production"})
	c := s.must(200, "GET", "/v1/projects/"+a["id"].(string)+"/connections", nil)
	db := a["database_name"].(string)
	var clients []*pgx.Conn
	for _, u := range []string{c.str("connections", "pooled_url"), c.str("connections", "session_url")} {
		conn, err := connect(u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		clients = append(clients, conn)
	}
	pidOf := func(conn *pgx.Conn) int32 {
		var pid int32
		if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatalf("A's pooled session failed during provisioning: %v", err)
		}
		return pid
	}
	want := []int32{pidOf(clients[0]), pidOf(clients[1])}
	before := backendsOf(t, admin, db)
	if len(before) < 2 {
		t.Fatalf("A has %d server connections, want the two pgBouncers' (%v)", len(before), before)
	}
	consoles := map[int]*pgx.Conn{s.pooledPort: s.console(t, s.pooledPort), s.sessionPort: s.console(t, s.sessionPort)}
	servers := map[int][]string{}
	for port, con := range consoles {
		if servers[port] = showServers(t, con, db); len(servers[port]) == 0 {
			t.Fatalf("SHOW SERVERS on port %d lists no server connection of A", port)
		}
	}
	reloads := strings.Count(s.logText(), "RELOAD command issued")
	for i := range 4 {
		s.createProject(map[string]any{"name": fmt.Sprintf("other-%d", i), "environment": "non_production"})
		for k, conn := range clients {
			if got := pidOf(conn); got != want[k] {
				t.Fatalf("after provision %d, A's client %d runs on server %d, was %d: its server connection was replaced", i, k, got, want[k])
			}
		}
	}
	after := backendsOf(t, admin, db)
	for _, pid := range before {
		if !slices.Contains(after, pid) {
			t.Fatalf("server connection %d of A was closed during provisioning (before %v, after %v)", pid, before, after)
		}
	}
	// Let the pooler sync that provisioning defers run, then: no RELOAD, and
	// each pgBouncer still has every server connection of A it had.
	time.Sleep(2 * time.Second)
	if n := strings.Count(s.logText(), "RELOAD command issued") - reloads; n != 0 {
		t.Fatalf("provisioning four projects sent %d RELOADs", n)
	}
	for port, con := range consoles {
		now := showServers(t, con, db)
		for _, k := range servers[port] {
			if !slices.Contains(now, k) {
				t.Fatalf("SHOW SERVERS on port %d: A's server %s is gone (before %v, after %v)", port, k, servers[port], now)
			}
		}
		t.Logf("SHOW SERVERS on port %d, A's servers before %v, after %v", port, servers[port], now)
	}
}

// showServers lists db's rows of SHOW SERVERS as "remote_pid@connect_time
// local_port".
func showServers(t *testing.T, console *pgx.Conn, db string) []string {
	t.Helper()
	rows, err := localcluster.ConsoleRows(context.Background(), console, "SHOW SERVERS")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r["database"] == db {
			out = append(out, r["remote_pid"]+"@"+r["connect_time"]+" "+r["local_port"])
		}
	}
	return out
}

// TestReloadDuringServerLogins: pgBouncer RELOADs (every provision,
// rotation and deletion makes one) while clients log in and pgBouncer makes
// server logins for them: each client ends its own server process, so the
// next client's login needs a new one. Every client login and query
// succeeds, and neither pgBouncer crashes (1.24 did, on RELOAD during TLS
// server logins, before server connections went over the unix socket).
func TestReloadDuringServerLogins(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	a := s.createProject(map[string]any{"name": "reload", "environment": "non_production"})
	c := s.must(200, "GET", "/v1/projects/"+a["id"].(string)+"/connections", nil)
	consoles := []*pgx.Conn{s.console(t, s.pooledPort), s.console(t, s.sessionPort)}
	urls := []string{c.str("connections", "pooled_url"), c.str("connections", "session_url")}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var ok, failed, reloads atomic.Int64
	var firstErr atomic.Value // string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, con := range consoles {
				if _, err := con.Exec(context.Background(), "RELOAD"); err != nil {
					firstErr.CompareAndSwap(nil, "RELOAD: "+err.Error())
					failed.Add(1)
					return
				}
				reloads.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				conn, err := connect(urls[w%2])
				if err == nil {
					_, err = conn.Exec(context.Background(), `SELECT 1`)
					if err == nil {
						// The tenant ends its own server process (its error is
						// expected): the next login needs a new server login.
						_, _ = conn.Exec(context.Background(), `SELECT pg_terminate_backend(pg_backend_pid())`)
					}
					conn.Close(context.Background())
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d failures (%d logins ok, %d reloads); first: %v", failed.Load(), ok.Load(), reloads.Load(), firstErr.Load())
	}
	if ok.Load() < 40 || reloads.Load() < 40 {
		t.Fatalf("too little happened to tell: %d logins, %d reloads", ok.Load(), reloads.Load())
	}
	if logs := s.logText(); strings.Contains(logs, "exited unexpectedly") {
		t.Fatalf("a pgBouncer crashed:\n%s", logs[max(0, len(logs)-4000):])
	}
	t.Logf("%d client logins with a new server login each, %d reloads, 0 errors", ok.Load(), reloads.Load())
}
