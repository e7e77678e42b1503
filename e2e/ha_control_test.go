package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/patronitest"
)

// TestHAControlDatabase runs capydb server on a real Patroni pair (etcd,
// synchronous replication) named by a multi-host --database-url, and fails
// the control database over twice under a steady stream of API requests: a
// planned switchover, then a crash of the new primary (SIGKILL of Patroni and
// its postmaster). Every answer during the outage must be 503 with
// Retry-After — never a 500 — the job in flight across the switchover must
// complete, and after each failover the API writes again with nothing lost.
func TestHAControlDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pair := patronitest.Start(t)
	dbURL := pair.CreateControlDatabase(ctx, "capydb_ha", "ha-secret-pw", "capydb_control")
	s := startServer(t, "", 0, 0, "--database-url", dbURL)

	first := s.createProject(map[string]any{"name": "before-failover"})

	// A steady reader: what a dashboard or a CI script sees.
	poll := newStatusPoller(s)
	defer poll.stop()

	// A provisioning job straddles the planned switchover.
	created := s.must(202, "POST", "/v1/projects", map[string]any{"name": "across-switchover"})
	leader := pair.WaitLeader(10 * time.Second)
	switchAt := time.Now()
	pair.Switchover(leader)
	newLeader := waitNewLeader(t, pair, leader, 60*time.Second)
	job := waitJobThroughOutage(t, s, created.str("job", "id"), 120*time.Second)
	if job["state"] != "completed" {
		t.Fatalf("the job across the switchover ended %v", job)
	}
	switchover := writableAgain(t, s, "after-switchover", switchAt)
	t.Logf("planned switchover %s -> %s: API writes again %.2f s after the request", leader.Name, newLeader.Name, switchover.Seconds())

	pair.WaitStreaming(120 * time.Second)
	crashAt := time.Now()
	pair.Crash(newLeader)
	survivor := pair.WaitLeader(90 * time.Second)
	if survivor != leader {
		t.Fatalf("after the crash %s leads, want %s", survivor.Name, leader.Name)
	}
	failover := writableAgain(t, s, "after-crash", crashAt)
	t.Logf("crash of %s: API writes again %.2f s after the SIGKILL", newLeader.Name, failover.Seconds())

	counts, bad := poll.stop()
	t.Logf("GET /v1/projects every 100 ms during both failovers: %v", counts)
	if len(bad) > 0 {
		t.Fatalf("answers other than 200 or 503+Retry-After during the failovers:\n%s", strings.Join(bad, "\n"))
	}
	if counts[http.StatusOK] == 0 {
		t.Fatal("the poller saw no 200 at all")
	}

	// Nothing acknowledged was lost: every project is listed, and the first
	// one's database still answers on its pooled URL.
	list := s.must(200, "GET", "/v1/projects?limit=100", nil)
	var names []string
	for _, p := range list.get("projects").([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	sort.Strings(names)
	want := []string{"across-switchover", "after-crash", "after-switchover", "before-failover"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("projects after the failovers = %v, want %v", names, want)
	}
	conns := s.must(200, "GET", "/v1/projects/"+first["id"].(string)+"/connections?show_secrets=true", nil)
	if got := query[int](t, conns.str("connections", "pooled_url"), "SELECT 41 + 1"); got != 42 {
		t.Fatalf("the first project's pooled URL answered %d", got)
	}
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
// returns how long after since it was accepted and provisioned.
func writableAgain(t *testing.T, s *server, name string, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		r := s.call("POST", "/v1/projects", s.key, map[string]any{"name": name})
		switch r.Status {
		case http.StatusAccepted:
			job := waitJobThroughOutage(t, s, r.str("job", "id"), 120*time.Second)
			if job["state"] != "completed" {
				t.Fatalf("creating %s ended %v", name, job)
			}
			return time.Since(since)
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
	mu     sync.Mutex
	counts map[int]int
	bad    []string
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
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
			resp, err := client.Do(req)
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
