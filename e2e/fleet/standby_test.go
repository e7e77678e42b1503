package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestStandbyClusterFailover: node B runs a cluster, node C a standby
// cluster of it (capydb admin cluster add-replica), a client host uses both.
// A project's read replica on C's pgBouncer shows commits within a second
// and refuses writes with 25006; detaching leaves the primary alone. Then
// the operator fails over to C while B runs and a writer commits: B's node
// stops its cluster cleanly when it sees the fence, every acknowledged row
// is on C, the project's URLs name C, writes work, one project.moved event
// is recorded, and B's node refuses to start again (fenced). Last, node-c gets a standby node-d and its host crashes (every
// process SIGKILLed) under the same writer: a forced failover to node-d
// reports how many acknowledged commits asynchronous replication lost.
func TestStandbyClusterFailover(t *testing.T) {
	h := newHosts(t, "cp", "nodeb", "nodec", "noded", "client")
	cpDir := filepath.Join(t.TempDir(), "cp")
	common := []string{"--log-format", "json", "--unsafe-no-fsync"}
	a := startControlPlane(t, h, cpDir, common)
	admin := func(args ...string) (string, error) {
		out, err := h.command("cp", binary, append(append([]string{"admin"}, args...), "--data-dir", cpDir)...).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), errors.New(strings.TrimSpace(string(ee.Stderr)))
		}
		return strings.TrimSpace(string(out)), err
	}
	mustAdmin := func(args ...string) string {
		t.Helper()
		out, err := admin(args...)
		if err != nil {
			t.Fatalf("capydb admin %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	sk, err := os.ReadFile(filepath.Join(cpDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	nodeDir := func(name string) string {
		d := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "secret.key"), sk, 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	nodeArgs := func(dsn, dir, host string) []string {
		return append([]string{"node", "--database-url", dsn, "--data-dir", dir, "--public-host", h.addr[host],
			"--heartbeat-interval", "500ms"}, common...)
	}

	bDSN := mustAdmin("node", "add", "node-b", "--control-host", h.addr["cp"])
	bDir := nodeDir("nodeb")
	bProc, bID := start(t, h, "nodeb", "Cluster:", nodeArgs(bDSN, bDir, "nodeb")...)
	mustAdmin("cluster", "cordon", "local")

	// A standby of the embedded cluster or of a standby is refused.
	if _, err := admin("cluster", "add-replica", "local", "--name", "x"); err == nil || !strings.Contains(err.Error(), "embedded") {
		t.Fatalf("add-replica of the embedded cluster: %v, want a refusal naming --read-replica", err)
	}
	cDSN := mustAdmin("cluster", "add-replica", "node-b", "--name", "node-c", "--control-host", h.addr["cp"])
	cDir := nodeDir("nodec")
	cProc, cID := start(t, h, "nodec", "Cluster:", nodeArgs(cDSN, cDir, "nodec")...)
	var nc map[string]any
	eventually(t, 60*time.Second, "node-c listed as a streaming standby of node-b", func() bool {
		nc = a.clusters()["node-c"]
		return nc["replica_of"] == bID && field(nc, "replication", "streaming") == true
	})
	t.Logf("node-c in GET /v1/clusters: state %v, replication %v", nc["state"], nc["replication"])
	_, metrics := a.call("GET", "/metrics", nil)
	if !strings.Contains(str(metrics, "raw"), `capydb_read_replica_streaming{cluster_id="`+cID+`"} 1`) {
		t.Fatalf("/metrics has no streaming gauge for node-c:\n%s", tail(str(metrics, "raw")))
	}
	// Placement never picks a standby; naming it is a 400.
	if st, body := a.call("POST", "/v1/projects", map[string]any{"name": "on-standby", "cluster_id": cID}); st != 400 ||
		!strings.Contains(str(body, "error"), "standby") {
		t.Fatalf("create on a standby cluster: %d %v, want 400 naming the standby", st, body)
	}

	p := createProject(t, a, "replicated")
	if p.cluster != bID {
		t.Fatalf("project on %s, want node-b %s", p.cluster, bID)
	}
	psql(t, h, "client", p.direct, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')`)

	// A standby registered and removed again: node-b makes its slot at its
	// next heartbeat and drops it once the standby's row is gone.
	mustAdmin("cluster", "add-replica", "node-b", "--name", "node-x")
	xID := str(a.clusters()["node-x"], "id")
	slotCount := func() string {
		return psql(t, h, "client", p.direct, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'capydb_replica_`+
			strings.ToLower(strings.TrimPrefix(xID, "cl_"))+`'`)
	}
	eventually(t, 15*time.Second, "node-b's slot for node-x", func() bool { return slotCount() == "1" })
	mustAdmin("cluster", "remove-replica", "node-x")
	if _, ok := a.clusters()["node-x"]; ok {
		t.Fatal("node-x is still listed after remove-replica")
	}
	eventually(t, 15*time.Second, "node-b dropping node-x's slot", func() bool { return slotCount() == "0" })
	rr := a.must(201, "POST", "/v1/projects/"+p.id+"/read-replicas", nil)
	if str(rr, "read_replica", "cluster_id") != cID {
		t.Fatalf("read replica attached to %v, want the standby cluster %s", rr, cID)
	}
	conns := a.must(200, "GET", "/v1/projects/"+p.id+"/connections", nil)
	urls, _ := field(conns, "connections", "read_replica_urls").([]any)
	if len(urls) != 1 {
		t.Fatalf("read_replica_urls: %v, want one", urls)
	}
	replicaURL := urls[0].(string)
	if u, _ := url.Parse(replicaURL); u.Hostname() != h.addr["nodec"] || u.Port() != strconv.Itoa(int(nc["pooled_port"].(float64))) {
		t.Fatalf("read replica URL %s: want node-c's host and pooled port", redact(replicaURL))
	}
	// The standby's pgBouncer learns the new database at its next heartbeat.
	eventually(t, 30*time.Second, "the project reachable through the standby's pgBouncer", func() bool {
		out, err := h.command("client", "psql", "-X", "-A", "-t", "-c", "SELECT v FROM t WHERE id = 1", replicaURL).CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "one"
	})

	ctx := context.Background()
	primary := connectURL(t, p.direct)
	replica := connectURL(t, strings.Replace(replicaURL, "sslmode=require", "sslmode=require&default_query_exec_mode=simple_protocol", 1))
	var lags []time.Duration
	for i := 2; i < 22; i++ {
		if _, err := primary.Exec(ctx, `INSERT INTO t VALUES ($1, 'lag')`, i); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		for {
			var n int
			if err := replica.QueryRow(ctx, `SELECT count(*) FROM t WHERE id = $1`, i).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Since(t0) > time.Second {
				t.Fatalf("row %d not visible on the standby cluster within 1 s of its commit", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lags = append(lags, time.Since(t0))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("standby cluster lag over the network (commit on node-b → row visible through node-c's pgBouncer): median %v, max %v",
		lags[len(lags)/2], lags[len(lags)-1])
	_, err = replica.Exec(ctx, `INSERT INTO t VALUES (100, 'refused')`)
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("write through the read replica URL: %v, want SQLSTATE 25006", err)
	}
	// A rotated password reaches the standby (roles replicate; its
	// pgBouncer reloads its auth file at the node's next heartbeat).
	rot := a.must(202, "POST", "/v1/projects/"+p.id+"/credentials/rotate", map[string]any{})
	a.waitJob(str(rot, "job", "id"))
	rotated, _ := field(a.must(200, "GET", "/v1/projects/"+p.id+"/connections", nil), "connections", "read_replica_urls").([]any)
	if len(rotated) != 1 || rotated[0] == replicaURL {
		t.Fatalf("read_replica_urls after rotation: %v", rotated)
	}
	t1 := time.Now()
	eventually(t, 15*time.Second, "the rotated credentials working through the standby's pgBouncer", func() bool {
		out, err := h.command("client", "psql", "-X", "-A", "-t", "-c", "SELECT count(*) > 0 FROM t", rotated[0].(string)).CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "t"
	})
	t.Logf("rotated credentials usable on the standby's pooled URL %v after the rotation job completed", time.Since(t1).Round(time.Millisecond))
	// A project without a read replica cannot log in on the standby.
	other := createProject(t, a, "not-attached")
	onStandby := strings.Replace(other.pooled, h.addr["nodeb"], h.addr["nodec"], 1)
	onStandby = strings.Replace(onStandby, ":"+strconv.Itoa(int(a.clusters()["node-b"]["pooled_port"].(float64))),
		":"+strconv.Itoa(int(nc["pooled_port"].(float64))), 1)
	// (Its database reaches the standby's pgBouncer at the next heartbeat:
	// until then the refusal could be "no such database" instead.)
	time.Sleep(2 * time.Second)
	refusedOnStandby(t, h, onStandby, "a project without a read replica")
	a.must(204, "DELETE", "/v1/projects/"+p.id+"/read-replicas/"+str(rr, "read_replica", "id"), nil)
	if got := field(a.must(200, "GET", "/v1/projects/"+p.id+"/connections", nil), "connections", "read_replica_urls"); got != nil {
		t.Fatalf("read_replica_urls after detach: %v", got)
	}
	// Detaching refuses the project's logins there too (next heartbeat).
	refusedOnStandby(t, h, rotated[0].(string), "the detached project")
	if _, err := primary.Exec(ctx, `INSERT INTO t VALUES (22, 'after detach')`); err != nil {
		t.Fatalf("the primary after detach: %v", err)
	}
	replica.Close(ctx)

	// A planned failover while node-b runs and a writer commits rows one by
	// one: the fence makes node-b's node stop its cluster cleanly (and exit),
	// so every acknowledged row must be on node-c.
	w := startWriter(primary, 1000)
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	out := mustAdmin("cluster", "failover", "node-b", "--to", "node-c")
	t.Logf("planned failover (node-b running) took %v: %s", time.Since(t0).Round(time.Millisecond), out)
	select {
	case <-bProc.done:
	case <-time.After(30 * time.Second):
		t.Fatal("node-b's node did not stop when it was fenced")
	}
	if !strings.Contains(bProc.output(), "fenced") {
		t.Fatalf("node-b stopped without naming the fence:\n%s", bProc.output())
	}
	last := w.wait()
	var res struct {
		CleanStop bool     `json:"clean_stop"`
		Projects  []string `json:"projects"`
		PromoteMS int64    `json:"promote_ms"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.CleanStop || len(res.Projects) != 2 || !slices.Contains(res.Projects, p.id) {
		t.Fatalf("failover result %q (%v): want clean_stop and both projects", out, err)
	}
	after := a.must(200, "GET", "/v1/projects/"+p.id+"/connections", nil)
	direct, pooled := str(after, "connections", "direct_url"), str(after, "connections", "pooled_url")
	for _, u := range []string{direct, pooled} {
		if pu, _ := url.Parse(u); pu.Hostname() != h.addr["nodec"] {
			t.Fatalf("after failover the URL %s does not name node-c", redact(u))
		}
	}
	got := psql(t, h, "client", direct, `SELECT count(*) FILTER (WHERE v = 'load') || ':' || coalesce(max(id) FILTER (WHERE v = 'load'), 0) FROM t`)
	wantN := 0
	if last > 0 {
		wantN = last - 999
	}
	if !strings.HasPrefix(got, strconv.Itoa(wantN)+":") && got != strconv.Itoa(wantN+1)+":"+strconv.Itoa(last+1) {
		t.Fatalf("after a planned failover the writer's rows are %s, want %d rows up to id %d (every acknowledged commit)", got, wantN, last)
	}
	t.Logf("planned failover: %d acknowledged commits, %s present on node-c (none lost)", wantN, got)
	// The new primary takes writes on both URLs and new projects.
	eventually(t, 30*time.Second, "writes through the pooled URL on node-c", func() bool {
		out, err := h.command("client", "psql", "-X", "-A", "-t", "-q", "-c", "INSERT INTO t VALUES (-1, 'on c') ON CONFLICT DO NOTHING; SELECT v FROM t WHERE id = -1", pooled).CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "on c"
	})
	cl := a.clusters()
	if cl["node-b"]["state"] != "fenced" || cl["node-b"]["failed_over_to"] != cID || cl["node-c"]["replica_of"] != nil {
		t.Fatalf("after failover: node-b %v, node-c %v", cl["node-b"], cl["node-c"])
	}
	owner := ownerConn(t, h, cpDir)
	var events int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'project.moved' AND data->>'project_id' = $1
		AND data->>'reason' = 'failover'`, p.id).Scan(&events); err != nil || events != 1 {
		t.Fatalf("project.moved events for the failover: %d (%v), want 1", events, err)
	}
	mustAdmin("cluster", "uncordon", "local")
	mustAdmin("cluster", "cordon", "local")
	q := createProject(t, a, "after-failover")
	if q.cluster != cID {
		t.Fatalf("a new project went to %s, want the promoted node-c %s", q.cluster, cID)
	}
	psql(t, h, "client", q.pooled, `SELECT 1`)

	// node-b comes back: fenced, it refuses to run its postgres.
	cmd := h.command("nodeb", binary, nodeArgs(bDSN, bDir, "nodeb")...)
	outB, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outB), "fenced") {
		t.Fatalf("node-b restarted after the failover: %v %s, want a refusal naming the fence", err, tail(string(outB)))
	}
	if out, err := h.command("client", "psql", "-X", "-c", "SELECT 1", strings.Replace(p.direct, h.addr["nodec"], h.addr["nodeb"], 1)).CombinedOutput(); err == nil {
		t.Fatalf("the fenced node-b still accepts connections: %s", out)
	}

	// node-c (the primary now) gets a standby node-d; then node-c's host
	// crashes while the writer commits.
	dDSN := mustAdmin("cluster", "add-replica", "node-c", "--name", "node-d", "--control-host", h.addr["cp"])
	_, dID := start(t, h, "noded", "Cluster:", nodeArgs(dDSN, nodeDir("noded"), "noded")...)
	eventually(t, 60*time.Second, "node-d streaming from node-c", func() bool {
		return field(a.clusters()["node-d"], "replication", "streaming") == true
	})
	onC := connectURL(t, direct)
	w = startWriter(onC, 100000)
	time.Sleep(time.Second)
	crashHost(t, h, "nodec")
	<-cProc.done
	last = w.wait()
	out = mustAdmin("cluster", "failover", "node-c", "--to", "node-d", "--force")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.CleanStop || len(res.Projects) != 3 {
		t.Fatalf("forced failover after a crash: %q (%v): want clean_stop false and the three projects", out, err)
	}
	after = a.must(200, "GET", "/v1/projects/"+p.id+"/connections", nil)
	var present, maxID int
	if err := connectURL(t, str(after, "connections", "direct_url")).QueryRow(ctx,
		`SELECT count(*), coalesce(max(id), 0) FROM t WHERE id >= 100000`).Scan(&present, &maxID); err != nil {
		t.Fatal(err)
	}
	acked := 0
	if last > 0 {
		acked = last - 99999
	}
	if present < acked-1000 || maxID > last+1 {
		t.Fatalf("after the crash: %d of %d acknowledged rows present (max id %d, last acknowledged %d)", present, acked, maxID, last)
	}
	t.Logf("host crash of the primary under a single-row writer, asynchronous replication: %d acknowledged commits, %d present on the promoted standby, %d lost",
		acked, present, max(0, acked-present))
	if cl := a.clusters(); cl["node-c"]["state"] != "fenced" || cl["node-d"]["replica_of"] != nil || dID == "" {
		t.Fatalf("after the second failover: node-c %v, node-d %v", cl["node-c"], cl["node-d"])
	}
}

// writer commits single-row inserts until its connection fails.
type writer struct {
	last chan int
}

func startWriter(conn *pgx.Conn, from int) *writer {
	w := &writer{last: make(chan int, 1)}
	go func() {
		last := 0
		for i := from; ; i++ {
			if _, err := conn.Exec(context.Background(), `INSERT INTO t VALUES ($1, 'load')`, i); err != nil {
				w.last <- last
				return
			}
			last = i
		}
	}()
	return w
}

// wait returns the last acknowledged id (0: none).
func (w *writer) wait() int { return <-w.last }

// crashHost SIGKILLs every process in host's namespace at once: the host
// is gone without a shutdown (no WAL sent after the kill).
func crashHost(t *testing.T, h *hosts, host string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", h.netns[host]).Output()
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(out))
	if len(pids) == 0 {
		t.Fatalf("no processes on %s to crash", host)
	}
	if out, err := exec.Command("kill", append([]string{"-KILL"}, pids...)...).CombinedOutput(); err != nil {
		t.Logf("kill: %v %s", err, out)
	}
}

func connectURL(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ownerConn(t *testing.T, h *hosts, cpDir string) *pgx.Conn {
	raw, err := os.ReadFile(filepath.Join(cpDir, "control-database-url"))
	if err != nil {
		t.Fatal(err)
	}
	return connectNode(t, strings.Replace(strings.TrimSpace(string(raw)), "127.0.0.1", h.addr["cp"], 1))
}

func tail(s string) string { return s[max(0, len(s)-3000):] }

// refusedOnStandby waits until the standby refuses url's login by its HBA
// rules (Postgres' or pgBouncer's), not for any other reason.
func refusedOnStandby(t *testing.T, h *hosts, url, what string) {
	t.Helper()
	var last string
	eventually(t, 15*time.Second, what+" refused on the standby", func() bool {
		out, err := h.command("client", "psql", "-X", "-c", "SELECT 1", url).CombinedOutput()
		last = string(out)
		return err != nil && (strings.Contains(last, "pg_hba") || strings.Contains(last, "rejected"))
	})
	t.Logf("%s on the standby: %s", what, strings.TrimSpace(last))
}
