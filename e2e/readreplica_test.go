package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestReadReplica: a server with --read-replica runs a hot standby of its
// cluster; a project attached to it gets a read-only URL that sees the
// primary's commits within 1 s, refuses writes (25006), follows credential
// rotation, and disappears again on detach without touching the primary.
func TestReadReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	replicaPort := freePort(t)
	s := startServer(t, "", 0, 0, "--read-replica", "--read-replica-port", fmt.Sprint(replicaPort))

	// The cluster lists its standby, streaming.
	var cl map[string]any
	clustertest.Eventually(t, 10*time.Second, "standby streaming", func() bool {
		cl = s.must(200, "GET", "/v1/clusters", nil).get("clusters").([]any)[0].(map[string]any)
		rr, _ := cl["read_replica"].(map[string]any)
		return rr != nil && rr["streaming"] == true
	})
	if rr := cl["read_replica"].(map[string]any); rr["port"] != float64(replicaPort) {
		t.Fatalf("read_replica.port = %v, want %d", rr["port"], replicaPort)
	}

	// …on GET /status…
	var comp map[string]any
	for _, c := range s.must(200, "GET", "/status", nil).get("components").([]any) {
		if c.(map[string]any)["name"] == "read_replica" {
			comp = c.(map[string]any)
		}
	}
	if comp == nil || comp["status"] != "operational" {
		t.Fatalf("read_replica status component = %v", comp)
	}
	// …and in /metrics.
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"capydb_read_replica_lag_bytes", "capydb_read_replica_lag_seconds", "capydb_read_replica_streaming"} {
		ms := fams[name].GetMetric()
		if len(ms) != 1 || ms[0].GetLabel()[0].GetValue() != cl["id"] {
			t.Fatalf("%s = %v", name, ms)
		}
		if name == "capydb_read_replica_streaming" && ms[0].GetGauge().GetValue() != 1 {
			t.Fatalf("%s = %v, want 1", name, ms[0].GetGauge().GetValue())
		}
	}

	p := s.createProject(map[string]any{"name": "replicated", "environment": "production"})
	pid := p["id"].(string)
	base := "/v1/projects/" + pid
	conns := func() map[string]any {
		return s.must(200, "GET", base+"/connections", nil).get("connections").(map[string]any)
	}
	if _, ok := conns()["read_replica_urls"]; ok {
		t.Fatal("read_replica_urls present before any replica was attached")
	}
	// Not attached, the project's credentials log in nowhere on the
	// standby (its database is there: the standby copies the cluster).
	clustertest.Eventually(t, 15*time.Second, "the project's database replayed on the standby", func() bool {
		return query[bool](t, s.adminDSN(replicaPort, "postgres"), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '"+p["database_name"].(string)+"')")
	})
	refusedOnReplica(t, onPort(t, conns()["direct_url"].(string), replicaPort), "before attach")
	rr := s.must(201, "POST", base+"/read-replicas", nil).get("read_replica").(map[string]any)
	rid := rr["id"].(string)
	if rr["port"] != float64(replicaPort) || rr["project_id"] != pid {
		t.Fatalf("read replica = %v", rr)
	}
	if r := s.call("POST", base+"/read-replicas", s.key, nil); r.Status != 409 {
		t.Fatalf("second attach: status %d, want 409: %s", r.Status, r.Raw)
	}
	list := s.must(200, "GET", base+"/read-replicas", nil).get("read_replicas").([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != rid {
		t.Fatalf("read replicas = %v", list)
	}
	c := conns()
	urls, _ := c["read_replica_urls"].([]any)
	if len(urls) != 1 {
		t.Fatalf("read_replica_urls = %v", c["read_replica_urls"])
	}
	replicaURL := urls[0].(string)
	if !strings.Contains(replicaURL, fmt.Sprintf(":%d/", replicaPort)) {
		t.Fatalf("replica URL %s is not on the standby port %d", redact(replicaURL), replicaPort)
	}
	directURL := c["direct_url"].(string)

	primary, err := connect(directURL)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	// The project logs in on the standby once the attach's network job
	// has rewritten the standby's pg_hba.conf.
	var replica *pgx.Conn
	t0 := time.Now()
	clustertest.Eventually(t, 15*time.Second, "the attached project's login on the replica (its network job)", func() bool {
		replica, err = connect(replicaURL)
		return err == nil
	})
	t.Logf("replica reachable %v after attach", time.Since(t0))
	defer replica.Close(ctx)
	if inRecovery := query[bool](t, replicaURL, "SELECT pg_is_in_recovery()"); !inRecovery {
		t.Fatal("the replica URL reaches a server that is not in recovery")
	}
	if _, err := primary.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}

	// Each committed row shows up on the replica within 1 s; the delays
	// measured are the replica lag docs/fleet.md quotes.
	var lags []time.Duration
	for i := 1; i <= 20; i++ {
		if _, err := primary.Exec(ctx, "INSERT INTO items VALUES ($1, 'row')", i); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		for {
			var n int
			err := replica.QueryRow(ctx, "SELECT count(*) FROM items WHERE id = $1", i).Scan(&n)
			if err == nil && n == 1 {
				break
			}
			if err != nil && !isUndefinedTable(err) {
				t.Fatalf("read on the replica: %v", err)
			}
			if time.Since(t0) > time.Second {
				t.Fatalf("row %d not visible on the replica within 1s (err %v)", i, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lags = append(lags, time.Since(t0))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("replica visibility lag over %d commits: median %v, max %v", len(lags), lags[len(lags)/2], lags[len(lags)-1])

	// Previews never get replicas: an attached project's preview is
	// refused on the standby too.
	pv, pvJob := s.createPreview(pid, map[string]any{"name": "pr-1", "mode": "empty"})
	if j := s.waitJob(pvJob["id"].(string)); j["state"] != "completed" {
		t.Fatalf("preview: %v", j)
	}
	pvDirect, _, _ := s.previewConns(pv["id"].(string))
	refusedOnReplica(t, onPort(t, pvDirect, replicaPort), "for a preview")

	// Writes through the replica URL are refused as read-only.
	_, err = replica.Exec(ctx, "INSERT INTO items VALUES (1000, 'nope')")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("write on the replica: %v, want SQLSTATE 25006", err)
	}

	// A rotated password reaches the replica (roles replicate physically).
	job := s.waitJob(s.must(202, "POST", base+"/credentials/rotate", map[string]any{}).str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("rotation: %v", job)
	}
	c = conns()
	newURL := c["read_replica_urls"].([]any)[0].(string)
	if newURL == replicaURL {
		t.Fatal("the replica URL did not change with the rotated password")
	}
	clustertest.Eventually(t, 5*time.Second, "rotated password on the replica", func() bool {
		conn, err := connect(newURL)
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var n int
		return conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n) == nil && n == 20
	})

	// The standby is supervised: killed, it comes back and catches up.
	pidFile, err := os.ReadFile(filepath.Join(s.dataDir, "pg-standby", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	standbyPID, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(standbyPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.Exec(ctx, "UPDATE items SET note = 'while down' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, "standby restarted and caught up", func() bool {
		conn, err := connect(newURL)
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var note string
		return conn.QueryRow(ctx, "SELECT note FROM items WHERE id = 1").Scan(&note) == nil && note == "while down"
	})

	// The project's network rules reach the running replica.
	rules := func(v4, v6 []string) {
		put := s.must(202, "PUT", base+"/network-restrictions", map[string]any{"db_allowed_cidrs": v4, "db_allowed_cidrs_v6": v6})
		if job := s.waitJob(put.str("job", "id")); job["state"] != "completed" {
			t.Fatalf("apply network: %v", job)
		}
	}
	from3, err := connectFrom("127.0.0.3", newURL)
	if err != nil {
		t.Fatal(err)
	}
	defer from3.Close(ctx)
	rules([]string{"127.0.0.2/32"}, []string{})
	clustertest.Eventually(t, 5*time.Second, "the replica refuses 127.0.0.3", func() bool { return loginFrom("127.0.0.3", newURL) != nil })
	// The job ended the replica session from the address now refused.
	if _, err := from3.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a replica session from 127.0.0.3 survived the rule that refuses it")
	}
	if err := loginFrom("127.0.0.2", newURL); err != nil {
		t.Fatalf("the replica refuses the allowed 127.0.0.2: %v", err)
	}
	rules([]string{"0.0.0.0/0"}, []string{"::/0"})
	clustertest.Eventually(t, 5*time.Second, "the replica accepts 127.0.0.3 again", func() bool { return loginFrom("127.0.0.3", newURL) == nil })

	// Detach: the URL goes, the replica ends the project's session and
	// refuses its logins, the primary keeps its data and takes writes.
	open, err := connect(newURL)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(ctx)
	var held int
	if err := open.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&held); err != nil || held != 20 {
		t.Fatalf("replica session before detach: %d rows, %v", held, err)
	}
	s.must(204, "DELETE", base+"/read-replicas/"+rid, nil)
	clustertest.Eventually(t, 10*time.Second, "the replica session ended by the detach", func() bool {
		return open.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&held) != nil
	})
	refusedOnReplica(t, newURL, "after detach")
	if r := s.call("DELETE", base+"/read-replicas/"+rid, s.key, nil); r.Status != 404 {
		t.Fatalf("second detach: status %d, want 404: %s", r.Status, r.Raw)
	}
	c = conns()
	if _, ok := c["read_replica_urls"]; ok {
		t.Fatalf("read_replica_urls still present after detach: %v", c["read_replica_urls"])
	}
	if got := s.must(200, "GET", base+"/read-replicas", nil).get("read_replicas").([]any); len(got) != 0 {
		t.Fatalf("read replicas after detach = %v", got)
	}
	if n := query[int64](t, c["direct_url"].(string), "INSERT INTO items VALUES (21, 'after') RETURNING (SELECT count(*) FROM items) + 1"); n != 21 {
		t.Fatalf("primary after detach holds %d rows, want 21", n)
	}
	var actions []string
	for _, e := range s.must(200, "GET", base+"/audit-events", nil).get("audit_events").([]any) {
		if a := e.(map[string]any)["action"].(string); strings.HasPrefix(a, "read_replica.") {
			actions = append(actions, a)
		}
	}
	sort.Strings(actions)
	if strings.Join(actions, ",") != "read_replica.attached,read_replica.detached" {
		t.Fatalf("audit events %v, want one attach and one detach", actions)
	}
	primary.Close(ctx)
	replica.Close(ctx)

	// After a crash of capydb (SIGKILL) the restart reuses the standby,
	// which catches up from its slot.
	s.kill()
	s = startServer(t, s.dataDir, s.directPort, s.pooledPort, "--read-replica", "--read-replica-port", fmt.Sprint(replicaPort))
	s.must(201, "POST", base+"/read-replicas", nil)
	again := conns()["read_replica_urls"].([]any)[0].(string)
	clustertest.Eventually(t, 15*time.Second, "row 21 on the restarted replica", func() bool {
		conn, err := connect(again)
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var n int
		return conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n) == nil && n == 21
	})

	// Without the flag the standby and its slot go (no WAL kept for it),
	// attached projects lose the URL and attaching answers 409.
	s.stop()
	s = startServer(t, s.dataDir, s.directPort, s.pooledPort)
	if cl := s.must(200, "GET", "/v1/clusters", nil).get("clusters").([]any)[0].(map[string]any); cl["read_replica"] != nil {
		t.Fatalf("read_replica = %v without --read-replica", cl["read_replica"])
	}
	if c := conns(); c["read_replica_urls"] != nil {
		t.Fatalf("read_replica_urls = %v without --read-replica", c["read_replica_urls"])
	}
	if r := s.call("POST", base+"/read-replicas", s.key, nil); r.Status != 409 || !strings.Contains(r.str("error"), "--read-replica") {
		t.Fatalf("attach without a standby: status %d: %s", r.Status, r.Raw)
	}
	var slots int
	if err := s.admin("postgres").QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots").Scan(&slots); err != nil || slots != 0 {
		t.Fatalf("%d replication slots left on the primary (%v)", slots, err)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "pg-standby")); !os.IsNotExist(err) {
		t.Fatalf("the standby's data directory is still there (%v)", err)
	}
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// refusedOnReplica fails unless logging in at url is refused by the
// standby's pg_hba.conf (28000), within 10 s.
func refusedOnReplica(t *testing.T, url, when string) {
	t.Helper()
	clustertest.Eventually(t, 10*time.Second, "login refused on the replica "+when, func() bool {
		c, err := connect(url)
		if err == nil {
			c.Close(context.Background())
			return false
		}
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "28000" && strings.Contains(pe.Message, "no pg_hba.conf entry")
	})
}

// onPort is rawURL with its port changed: the same login on the standby.
func onPort(t *testing.T, rawURL string, port int) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort(u.Hostname(), fmt.Sprint(port))
	return u.String()
}
