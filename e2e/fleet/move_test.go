package fleet

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const checksumSQL = `SELECT count(*) || ':' || md5(string_agg(id::text || v, ',' ORDER BY id)) FROM t`

// moveAndDrain moves a project with data from the control plane's cluster to
// the node (same credentials, identical contents, URLs naming the node, the
// old database gone), then drains the node: every project comes back.
func moveAndDrain(t *testing.T, h *hosts, a *api, cpDir string, admin func(...string) string, local, node string) {
	ctx := context.Background()
	r := a.must(202, "POST", "/v1/projects", map[string]any{"name": "mover", "cluster_id": local})
	a.waitJob(str(r, "job", "id"))
	id := str(r, "project", "id")
	before := a.must(200, "GET", "/v1/projects/"+id+"/connections", nil)
	oldDirect := str(before, "connections", "direct_url")
	psql(t, h, "client", oldDirect, `CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g`)
	want := psql(t, h, "client", oldDirect, checksumSQL)
	db := str(a.must(200, "GET", "/v1/projects/"+id, nil), "project", "database_name")

	job := admin("project", "move", id, "--to", "node-b")
	a.waitJob(job)
	result := a.must(200, "GET", "/v1/jobs/"+job, nil)
	t.Logf("move of a 20000-row project: write-unavailable window %v ms", field(result, "job", "result", "write_unavailable_ms"))

	p := a.must(200, "GET", "/v1/projects/"+id, nil)
	if str(p, "project", "cluster_id") != node {
		t.Fatalf("after the move the project is on %s, want %s", str(p, "project", "cluster_id"), node)
	}
	after := a.must(200, "GET", "/v1/projects/"+id+"/connections", nil)
	for _, u := range []string{str(after, "connections", "direct_url"), str(after, "connections", "pooled_url")} {
		nu, _ := url.Parse(u)
		ou, _ := url.Parse(oldDirect)
		npw, _ := nu.User.Password()
		opw, _ := ou.User.Password()
		if nu.Hostname() != h.addr["node"] || nu.User.Username() != ou.User.Username() || npw != opw {
			t.Fatalf("moved project's URL %s: want host %s and unchanged credentials", redact(u), h.addr["node"])
		}
		if got := psql(t, h, "client", u, checksumSQL); got != want {
			t.Fatalf("moved data through %s: %s, want %s", redact(u), got, want)
		}
	}
	psql(t, h, "client", str(after, "connections", "direct_url"), `INSERT INTO t VALUES (0, 'written after the move')`)
	crossTenantRefused(t, h, a, id, node, str(after, "connections", "direct_url"), db)

	raw, err := os.ReadFile(filepath.Join(cpDir, "control-database-url"))
	if err != nil {
		t.Fatal(err)
	}
	owner := connectNode(t, strings.Replace(strings.TrimSpace(string(raw)), "127.0.0.1", h.addr["cp"], 1))
	eventually(t, 60*time.Second, "the old database dropped from the source cluster", func() bool {
		var n int
		_ = owner.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, db).Scan(&n)
		return n == 0
	})
	var events, audits int
	if err := owner.QueryRow(ctx, `SELECT (SELECT count(*) FROM events WHERE type = 'project.moved' AND data->>'project_id' = $1),
		(SELECT count(*) FROM audit_events WHERE action = 'project.moved' AND project_id = $1)`, id).Scan(&events, &audits); err != nil || events != 1 || audits != 1 {
		t.Fatalf("project.moved: %d events, %d audit entries (%v), want one each", events, audits, err)
	}

	// Drain the node: every project moves to the control plane's cluster.
	onNode := a.clusters()["node-b"]["projects"].(float64)
	out := admin("cluster", "drain", "node-b")
	jobs := strings.Split(strings.TrimSpace(out), "\n")
	if float64(len(jobs)) != onNode {
		t.Fatalf("drain queued %d moves for %v projects: %q", len(jobs), onNode, out)
	}
	for _, line := range jobs {
		_, j, _ := strings.Cut(line, "\t")
		a.waitJob(j)
	}
	cl := a.clusters()
	if cl["node-b"]["projects"] != float64(0) || cl["node-b"]["state"] != "draining" {
		t.Fatalf("after drain node-b holds %v projects in state %v", cl["node-b"]["projects"], cl["node-b"]["state"])
	}
	back := a.must(200, "GET", "/v1/projects/"+id+"/connections", nil)
	if got := psql(t, h, "client", str(back, "connections", "pooled_url"), `SELECT count(*) FROM t`); got != "20001" {
		t.Fatalf("the project drained back has %s rows, want 20001", got)
	}
}

// crossTenantRefused: on the node, a project's credentials open no other
// project's database (the isolation of the embedded cluster holds there).
func crossTenantRefused(t *testing.T, h *hosts, a *api, id, node, direct, db string) {
	t.Helper()
	for _, p := range field(a.must(200, "GET", "/v1/projects", nil), "projects").([]any) {
		other := p.(map[string]any)
		if other["cluster_id"] != node || other["id"] == id {
			continue
		}
		cross := strings.Replace(direct, "/"+db+"?", "/"+other["database_name"].(string)+"?", 1)
		out, err := h.command("client", "psql", "-X", "-A", "-t", "-c", "SELECT 1", cross).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied for database") {
			t.Fatalf("project %s's login opened %s's database on the node: %v %s", id, other["id"], err, out)
		}
		return
	}
	t.Fatal("no second project on the node to try")
}
