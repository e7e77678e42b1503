package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/patronitest"
)

// TestHAControlDatabase runs capydb server on a real Patroni pair (etcd,
// synchronous replication) named by a multi-host --database-url, every
// piece on its own host (network namespaces on a bridge: etcd, m1, m2, and
// the server), and fails the control database over three times under a
// steady stream of API requests and with 50 jobs in flight each time: a
// planned switchover, a crash of the new primary (SIGKILL of Patroni and its
// postmaster), and — once the crashed member is back — a network partition
// of the primary (its link goes down; packets vanish, no RST). The crash
// and the partition outlast the queue's 30 s lease (~20-27 s without a
// primary); the queue must still run each job once (internal/queue/outage.go). Every answer
// during the outage must be 503 with Retry-After — never a 500 —, every job
// must complete on its first attempt (none lost, none run twice), every
// project.ready webhook must arrive, and after each failover the API writes
// again with nothing lost.
//
// The server runs in its own namespace, not the test's: then its pool, its
// webhook deliveries and the test's API calls all cross the bridge, and
// cutting a member cuts it off from the server exactly as from the others.
func TestHAControlDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pair := patronitest.Start(t, "capydb")
	dbURL := pair.CreateControlDatabase(ctx, "capydb_ha", "ha-secret-pw", "capydb_control")
	s := startServerOn(t, pair.Net.Host("capydb"), "--database-url", dbURL, "--webhooks-allow-insecure")

	// Webhooks keep their at-least-once promise across the failovers; the
	// receiver is the test process, on the bridge.
	rcv := newHookReceiverOn(t, pair.Net.Gateway())
	hook := s.must(201, "POST", "/v1/organizations/"+s.orgID(t)+"/webhook-endpoints",
		map[string]any{"url": rcv.url("ready"), "event_types": []string{"project.ready"}})
	rcv.setSecret("ready", hook.str("plaintext_secret"))

	first := s.createProject(map[string]any{"name": "before-failover"})

	// A steady reader: what a dashboard or a CI script sees.
	poll := newStatusPoller(s)
	defer poll.stop()

	// 50 provisioning jobs are in flight across the planned switchover.
	acrossSwitchover := startJobs(t, s, "sw", inFlight)
	leader := pair.WaitLeader(10 * time.Second)
	switchAt := time.Now()
	pair.Switchover(leader)
	newLeader := waitNewLeader(t, pair, leader, 60*time.Second)
	promoted := time.Now()
	switchover := writableAgain(t, s, "after-switchover", switchAt)
	exactlyOnce(t, s, acrossSwitchover)
	t.Logf("planned switchover %s -> %s: API accepts writes again %.2f s after the request (%s)",
		leader.Name, newLeader.Name, switchover.Seconds(), afterPromotion(switchAt, switchover, promoted))

	pair.WaitStreaming(120 * time.Second)
	acrossCrash := startJobs(t, s, "cr", inFlight)
	crashAt := time.Now()
	pair.Crash(newLeader)
	survivor := pair.WaitLeader(90 * time.Second)
	promoted = time.Now()
	if survivor != leader {
		t.Fatalf("after the crash %s leads, want %s", survivor.Name, leader.Name)
	}
	failover := writableAgain(t, s, "after-crash", crashAt)
	t.Logf("crash of %s: API accepts writes again %.2f s after the SIGKILL (%s)",
		newLeader.Name, failover.Seconds(), afterPromotion(crashAt, failover, promoted))
	exactlyOnce(t, s, acrossCrash)

	// The crashed member comes back as a standby; then the primary's host
	// drops off the network with 50 jobs in flight. Patroni on it demotes
	// its Postgres when it cannot renew the leader key; the other member
	// takes over when the key expires.
	pair.Restart(newLeader)
	pair.WaitStreaming(240 * time.Second)
	acrossPartition := startJobs(t, s, "pt", inFlight)
	cutAt := time.Now()
	pair.Cut(survivor)
	afterCut := waitNewLeader(t, pair, survivor, 120*time.Second)
	promoted = time.Now()
	partition := writableAgain(t, s, "after-partition", cutAt)
	t.Logf("partition of %s: %s leads, API accepts writes again %.2f s after the link went down (%s)",
		survivor.Name, afterCut.Name, partition.Seconds(), afterPromotion(cutAt, partition, promoted))
	exactlyOnce(t, s, acrossPartition)
	// Back on the network, the old primary must rejoin as a standby (it
	// was demoted, so no split brain), not lead.
	pair.Reconnect(survivor)
	pair.WaitStreaming(240 * time.Second)
	if l := pair.Leader(); l != afterCut {
		t.Fatalf("after the partition healed %v leads, want %s", l, afterCut.Name)
	}

	counts, bad := poll.stop()
	t.Logf("GET /v1/projects every 100 ms during the three failovers: %v, slowest answer %.2f s", counts, poll.slowest.Seconds())
	if len(bad) > 0 {
		t.Fatalf("answers other than 200 or 503+Retry-After during the failovers:\n%s", strings.Join(bad, "\n"))
	}
	if counts[http.StatusOK] == 0 {
		t.Fatal("the poller saw no 200 at all")
	}

	// Nothing acknowledged was lost: every project is listed, and the first
	// one's database still answers on its pooled URL.
	// (More projects than one page of GET /v1/projects: read the table.)
	names := queryStrings(t, pair.SuperuserURL("capydb_control"), "SELECT name FROM projects")
	sort.Strings(names)
	want := []string{"after-crash", "after-partition", "after-switchover", "before-failover"}
	for _, j := range append(append(acrossSwitchover, acrossCrash...), acrossPartition...) {
		want = append(want, j.name)
	}
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("projects after the failovers = %v, want %v", names, want)
	}
	// Every project.ready event reached the receiver, signed, at least once.
	clustertest.Eventually(t, 90*time.Second, "a project.ready delivery per project", func() bool {
		seen := map[string]bool{}
		for _, h := range rcv.of("ready", ok2xx) {
			if id, _ := h.Data["project_id"].(string); id != "" {
				seen[id] = true
			}
		}
		return len(seen) == len(want)
	})
	conns := s.must(200, "GET", "/v1/projects/"+first["id"].(string)+"/connections?show_secrets=true", nil)
	if got := query[int](t, conns.str("connections", "pooled_url"), "SELECT 41 + 1"); got != 42 {
		t.Fatalf("the first project's pooled URL answered %d", got)
	}
}

func queryStrings(t *testing.T, url, sql string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// afterPromotion says how long after the test saw the new leader the API
// accepted a write: the part of the outage that is CapyDB's, not Patroni's.
func afterPromotion(start time.Time, accepted time.Duration, promoted time.Time) string {
	d := start.Add(accepted).Sub(promoted)
	if d < 0 {
		return "before the test saw the new leader"
	}
	return fmt.Sprintf("%.2f s after the test saw the new leader", d.Seconds())
}

// inFlight is how many jobs each failover happens under (issue 19).
const inFlight = 50

type startedJob struct{ name, jobID string }

// startJobs queues n project creations and returns their jobs.
func startJobs(t *testing.T, s *server, prefix string, n int) []startedJob {
	t.Helper()
	out := make([]startedJob, n)
	for i := range out {
		name := fmt.Sprintf("%s-%02d", prefix, i)
		r := s.must(202, "POST", "/v1/projects", map[string]any{"name": name})
		out[i] = startedJob{name: name, jobID: r.str("job", "id")}
	}
	return out
}

// exactlyOnce waits for every job and checks it completed on its first
// attempt: none lost, none handed out a second time.
func exactlyOnce(t *testing.T, s *server, jobs []startedJob) {
	t.Helper()
	for _, j := range jobs {
		job := waitJobThroughOutage(t, s, j.jobID, 180*time.Second)
		if job["state"] != "completed" || job["attempts"] != float64(1) {
			t.Fatalf("job of %s across the failover: state %v after %v attempts (want completed on the first): %v",
				j.name, job["state"], job["attempts"], job["error"])
		}
	}
	t.Logf("all %d jobs completed on their first attempt", len(jobs))
}

// waitNewLeader waits until a member other than old leads.
func waitNewLeader(t *testing.T, pair *patronitest.Pair, old *patronitest.Member, timeout time.Duration) *patronitest.Member {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := pair.Leader(); l != nil && l != old {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no switchover within %s\n%s", timeout, pair.Logs())
	return nil
}

// writableAgain creates a project, retrying while the API answers 503, and
// returns how long after since the API accepted it (a committed write); it
// then waits for the project to be provisioned.
func writableAgain(t *testing.T, s *server, name string, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		r := s.call("POST", "/v1/projects", s.key, map[string]any{"name": name})
		switch r.Status {
		case http.StatusAccepted:
			accepted := time.Since(since)
			job := waitJobThroughOutage(t, s, r.str("job", "id"), 180*time.Second)
			if job["state"] != "completed" {
				t.Fatalf("creating %s ended %v", name, job)
			}
			return accepted
		case http.StatusServiceUnavailable:
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %s", r.Raw)
			}
			time.Sleep(200 * time.Millisecond)
		default:
			t.Fatalf("POST /v1/projects during the failover: %d %s", r.Status, r.Raw)
		}
	}
	t.Fatalf("the API did not accept a write within 120 s of the failover")
	return 0
}

// waitJobThroughOutage polls a job, tolerating 503s, until it is terminal.
func waitJobThroughOutage(t *testing.T, s *server, id string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r := s.call("GET", "/v1/jobs/"+id, s.key, nil)
		if r.Status == http.StatusOK {
			job := r.get("job").(map[string]any)
			if st := job["state"]; st == "completed" || st == "failed" {
				return job
			}
		} else if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("GET /v1/jobs/%s: %d %s", id, r.Status, r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish within %s", id, timeout)
	return nil
}

// statusPoller sends GET /v1/projects every 100 ms and keeps what came back.
type statusPoller struct {
	mu      sync.Mutex
	slowest time.Duration
	counts  map[int]int
	bad     []string
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newStatusPoller(s *server) *statusPoller {
	p := &statusPoller{counts: map[int]int{}, done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", s.url+"/v1/projects", nil)
			req.Header.Set("Authorization", "Bearer "+s.key)
			began := time.Now()
			resp, err := client.Do(req)
			p.took(time.Since(began))
			if err != nil {
				p.record(0, "transport error: "+err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				p.record(200, "")
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && isErrorBody(body):
				p.record(503, "")
			default:
				p.record(resp.StatusCode, resp.Status+" "+resp.Header.Get("Retry-After")+" "+string(body))
			}
		}
	}()
	return p
}

func isErrorBody(b []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error != ""
}

func (p *statusPoller) took(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slowest = max(p.slowest, d)
}

func (p *statusPoller) record(status int, bad string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[status]++
	if bad != "" {
		p.bad = append(p.bad, bad)
	}
}

func (p *statusPoller) stop() (map[int]int, []string) {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts, p.bad
}
