package fleet

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFleet: a control plane (with its embedded cluster) on one host, a
// `capydb node` on another, a client on a third. Projects are placed by
// state and load inside the create transaction, their URLs name the host
// of their cluster and work from the client host (also with verify-full
// against GET /v1/ca.pem), cordon keeps projects off a cluster, and the
// node's credential reaches only its own cluster's rows.
func TestFleet(t *testing.T) {
	h := newHosts(t, "cp", "node", "client")
	cpDir := filepath.Join(t.TempDir(), "cp")
	nodeDir := filepath.Join(t.TempDir(), "node")
	common := []string{"--log-format", "json", "--unsafe-no-fsync"}

	a := startControlPlane(t, h, cpDir, common)
	local := a.clusters()["local"]
	if local == nil || local["state"] != "active" {
		t.Fatalf("the embedded cluster is not registered and active: %v", a.clusters())
	}

	admin := func(args ...string) string {
		t.Helper()
		out, err := h.command("cp", binary, append(append([]string{"admin"}, args...), "--data-dir", cpDir)...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(interface{ Stderr() []byte }); ok {
				msg = string(ee.Stderr())
			}
			t.Fatalf("capydb admin %s: %v %s", strings.Join(args, " "), err, msg)
		}
		return strings.TrimSpace(string(out))
	}
	nodeDSN := admin("node", "add", "node-b", "--region", "local", "--control-host", h.addr["cp"])
	if u, err := url.Parse(nodeDSN); err != nil || u.Hostname() != h.addr["cp"] || !strings.HasPrefix(u.User.Username(), "capydb_node_") {
		t.Fatalf("node URL %q does not name the control host and a node login", redact(nodeDSN))
	}
	// A registered node that never starts: its jobs must wait for it.
	_ = admin("node", "add", "node-c", "--region", "local")
	if got := a.clusters()["node-c"]["state"]; got != "offline" {
		t.Fatalf("a node that never started is %v, want offline", got)
	}

	// The node gets the control plane's secret key (it decrypts its
	// projects' passwords), nothing else from the control plane's disk.
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sk, err := os.ReadFile(filepath.Join(cpDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nodeDir, "secret.key"), sk, 0o600); err != nil {
		t.Fatal(err)
	}
	nodeArgs := append([]string{"node", "--database-url", nodeDSN, "--data-dir", nodeDir,
		"--public-host", h.addr["node"], "--heartbeat-interval", "1s"}, common...)
	nodeProc, nodeCluster := start(t, h, "node", "Cluster:", nodeArgs...)
	var nb map[string]any
	eventually(t, 30*time.Second, "node-b active in GET /v1/clusters", func() bool {
		nb = a.clusters()["node-b"]
		return nb["state"] == "active" && nb["public_host"] == h.addr["node"] && nb["last_heartbeat_at"] != nil
	})
	if nb["id"] != nodeCluster || nb["provider"] != "external" || nb["postgres_version"] != local["postgres_version"] {
		t.Fatalf("node-b in the registry: %v (the node said it runs %s)", nb, nodeCluster)
	}

	// Cordon the embedded cluster: the next project goes to the node.
	admin("cluster", "cordon", "local")
	onNode := createProject(t, a, "on-node")
	if onNode.cluster != nodeCluster {
		t.Fatalf("project placed on %s with local cordoned, want the node's %s", onNode.cluster, nodeCluster)
	}
	// Open the embedded cluster again and cordon the node: the next goes home.
	admin("cluster", "uncordon", "local")
	admin("cluster", "cordon", "node-b")
	onLocal := createProject(t, a, "on-local")
	if onLocal.cluster != str(local, "id") {
		t.Fatalf("project placed on %s with node-b cordoned, want local %s", onLocal.cluster, local["id"])
	}
	// Everything cordoned: a clear 409, and no project row left behind.
	admin("cluster", "cordon", "local")
	status, body := a.call("POST", "/v1/projects", map[string]any{"name": "nowhere"})
	if status != 409 || !strings.Contains(str(body, "error"), "cordoned") {
		t.Fatalf("create with every cluster cordoned: %d %v, want 409 naming cordon", status, body)
	}
	for _, p := range field(a.must(200, "GET", "/v1/projects", nil), "projects").([]any) {
		if p.(map[string]any)["name"] == "nowhere" {
			t.Fatal("a refused create left a project behind")
		}
	}
	if n := a.clusters()["node-b"]["projects"]; n != float64(1) {
		t.Fatalf("node-b counts %v projects, want 1 (cordon does not touch existing ones)", n)
	}
	admin("cluster", "uncordon", "local")
	admin("cluster", "uncordon", "node-b")

	// URLs name each cluster's host and work from the client host, both
	// with sslmode=require as handed out and with verify-full.
	caStatus, ca := a.call("GET", "/v1/ca.pem", nil)
	if caStatus != 200 || strings.Count(str(ca, "raw"), "BEGIN CERTIFICATE") < 2 {
		t.Fatalf("GET /v1/ca.pem: %d, want the CAs of both clusters: %v", caStatus, ca)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(str(ca, "raw")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []project{onNode, onLocal} {
		host := h.addr["cp"]
		if p.cluster == nodeCluster {
			host = h.addr["node"]
		}
		for _, u := range []string{p.direct, p.pooled} {
			parsed, err := url.Parse(u)
			if err != nil || parsed.Hostname() != host {
				t.Fatalf("project %s URL %s does not name its cluster's host %s", p.name, redact(u), host)
			}
			if got := psql(t, h, "client", u, "SELECT current_database()"); got != p.database {
				t.Fatalf("%s from the client host: got %q, want %q", redact(u), got, p.database)
			}
			verify := strings.Replace(u, "sslmode=require", "sslmode=verify-full&sslrootcert="+url.QueryEscape(caFile), 1)
			if got := psql(t, h, "client", verify, "SELECT 1"); got != "1" {
				t.Fatalf("verify-full to %s: %q", redact(verify), got)
			}
		}
	}

	checkNodeConfinement(t, h, cpDir, nodeDSN, nodeCluster, a.clusters()["node-c"], onNode, onLocal)

	// SIGKILL the node: a job for its cluster waits (nobody else runs it),
	// the project on the control plane's cluster keeps working, and once the
	// heartbeat is overdue the cluster is offline and new projects go elsewhere.
	if err := nodeProc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-nodeProc.done
	r := a.must(202, "POST", "/v1/projects", map[string]any{"name": "waits", "cluster_id": nodeCluster})
	waitsJob, waitsID := str(r, "job", "id"), str(r, "project", "id")
	if got := psql(t, h, "client", onLocal.direct, "SELECT 1"); got != "1" {
		t.Fatalf("the project on the surviving cluster: %q", got)
	}
	eventually(t, 60*time.Second, "node-b offline after missed heartbeats", func() bool {
		return a.clusters()["node-b"]["state"] == "offline"
	})
	if j := a.must(200, "GET", "/v1/jobs/"+waitsJob, nil); str(j, "job", "state") != "pending" || field(j, "job", "attempts") != float64(0) {
		t.Fatalf("the offline node's job: %v, want pending with no attempt", j)
	}
	if p := createProject(t, a, "while-offline"); p.cluster != str(local, "id") {
		t.Fatalf("project placed on %s while node-b is offline, want local", p.cluster)
	}
	// The node returns: its waiting job runs, once.
	start(t, h, "node", "Cluster:", nodeArgs...)
	a.waitJob(waitsJob)
	if j := a.must(200, "GET", "/v1/jobs/"+waitsJob, nil); field(j, "job", "attempts") != float64(1) {
		t.Fatalf("the waiting job ran %v times, want 1", field(j, "job", "attempts"))
	}
	c := a.must(200, "GET", "/v1/projects/"+waitsID+"/connections", nil)
	if got := psql(t, h, "client", str(c, "connections", "pooled_url"), "SELECT current_user"); !strings.HasPrefix(got, "u_waits_") {
		t.Fatalf("the project created while its node was down: connected as %q", got)
	}
	if st := a.clusters()["node-b"]["state"]; st != "active" {
		t.Fatalf("node-b after its restart: %v, want active", st)
	}
	spreadConcurrentCreates(t, a, str(local, "id"), nodeCluster)
	moveAndDrain(t, h, a, cpDir, admin, str(local, "id"), nodeCluster)
}

// spreadConcurrentCreates creates projects at once while both clusters hold
// as many: placement inside the create transaction sees each concurrent
// create, so they split evenly (a check before the transaction would put
// most on the same cluster). It logs the provisioning throughput.
func spreadConcurrentCreates(t *testing.T, a *api, local, node string) {
	before := a.clusters()
	if before["local"]["projects"] != before["node-b"]["projects"] {
		t.Fatalf("clusters start uneven: local %v, node-b %v", before["local"]["projects"], before["node-b"]["projects"])
	}
	const n = 8
	jobs := make(chan string, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, r := a.call("POST", "/v1/projects", map[string]any{"name": fmt.Sprintf("spread-%d", i)})
			if status != 202 {
				t.Errorf("concurrent create %d: %d %v", i, status, r)
				jobs <- ""
				return
			}
			jobs <- str(r, "job", "id")
		}()
	}
	wg.Wait()
	close(jobs)
	for id := range jobs {
		if id != "" {
			a.waitJob(id)
		}
	}
	elapsed := time.Since(start)
	after := a.clusters()
	want := before["local"]["projects"].(float64) + n/2
	if after["local"]["projects"] != want || after["node-b"]["projects"] != want {
		t.Fatalf("%d concurrent creates split local %v / node-b %v, want %v each", n, after["local"]["projects"], after["node-b"]["projects"], want)
	}
	t.Logf("provisioned %d projects over 2 clusters (2 hosts) in %v (%.1f projects/s)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
}

type project struct {
	id, name, cluster, database, direct, pooled string
}

// createProject creates a project, waits for it and reads its URLs.
func createProject(t *testing.T, a *api, name string) project {
	t.Helper()
	r := a.must(202, "POST", "/v1/projects", map[string]any{"name": name})
	a.waitJob(str(r, "job", "id"))
	id := str(r, "project", "id")
	p := a.must(200, "GET", "/v1/projects/"+id, nil)
	c := a.must(200, "GET", "/v1/projects/"+id+"/connections", nil)
	return project{id: id, name: name, cluster: str(p, "project", "cluster_id"), database: str(p, "project", "database_name"),
		direct: str(c, "connections", "direct_url"), pooled: str(c, "connections", "pooled_url")}
}

// checkNodeConfinement connects with the node's own control-database
// credential (as a compromised node would) and shows that it sees and
// claims only its own cluster's rows, while the control plane sees more.
func checkNodeConfinement(t *testing.T, h *hosts, cpDir, nodeDSN, nodeCluster string, nodeC map[string]any, onNode, onLocal project) {
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join(cpDir, "control-database-url"))
	if err != nil {
		t.Fatal(err)
	}
	ownerDSN := strings.Replace(strings.TrimSpace(string(raw)), "127.0.0.1", h.addr["cp"], 1)
	owner := connectNode(t, ownerDSN)
	node := connectNode(t, nodeDSN)

	// A pending job of node-c, which never started: nobody may claim it.
	otherJob := "job_fleettest" + randomHex(4)
	if _, err := owner.Exec(ctx, `INSERT INTO jobs (id, type, organization_id, cluster_id, payload)
		SELECT $1, 'instance.create', organization_id, $2, '{}' FROM projects WHERE id = $3`,
		otherJob, nodeC["id"], onLocal.id); err != nil {
		t.Fatal(err)
	}

	var all, mine, foreign int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&all); err != nil {
		t.Fatal(err)
	}
	if err := node.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE cluster_id IS DISTINCT FROM $1) FROM jobs`, nodeCluster).Scan(&mine, &foreign); err != nil {
		t.Fatal(err)
	}
	if foreign != 0 || mine == 0 || mine >= all {
		t.Fatalf("the node sees %d jobs (%d of other clusters); the control plane sees %d", mine, foreign, all)
	}
	var projects []string
	rows, err := node.Query(ctx, `SELECT id FROM projects`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		projects = append(projects, id)
	}
	if rows.Err() != nil || len(projects) != 1 || projects[0] != onNode.id {
		t.Fatalf("the node sees projects %v (%v), want only %s", projects, rows.Err(), onNode.id)
	}
	var clusters int
	if err := node.QueryRow(ctx, `SELECT count(*) FROM clusters`).Scan(&clusters); err != nil || clusters != 1 {
		t.Fatalf("the node sees %d clusters (%v), want its own only", clusters, err)
	}
	// A direct claim of another cluster's job changes nothing.
	tag, err := node.Exec(ctx, `UPDATE jobs SET state = 'running', claimed_by = 'thief' WHERE id = $1`, otherJob)
	if err != nil || tag.RowsAffected() != 0 {
		t.Fatalf("the node claimed another cluster's job: %v rows, %v", tag.RowsAffected(), err)
	}
	// Nor can it write a job into another cluster, or read credentials.
	if _, err := node.Exec(ctx, `INSERT INTO jobs (id, type, organization_id, cluster_id) VALUES ('job_x', 'instance.create', 'org_x', $1)`, nodeC["id"]); err == nil ||
		!strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("inserting another cluster's job: %v, want a row-level security violation", err)
	}
	for _, table := range []string{"api_keys", "webhook_endpoints"} {
		if _, err := node.Exec(ctx, `SELECT count(*) FROM `+table); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("reading %s with the node's credential: %v, want permission denied", table, err)
		}
	}
	// The node-c job waited: neither the control plane's worker nor node-b ran it.
	time.Sleep(3 * time.Second)
	var state string
	var attempts int
	if err := owner.QueryRow(ctx, `SELECT state, attempts FROM jobs WHERE id = $1`, otherJob).Scan(&state, &attempts); err != nil {
		t.Fatal(err)
	}
	if state != "pending" || attempts != 0 {
		t.Fatalf("node-c's job is %s after %d attempts, want pending and untouched", state, attempts)
	}
}
