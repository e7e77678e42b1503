package cli

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPollSchedule: --wait polls fast first (a job that takes 200 ms is seen
// done by ~250 ms), is never more than a quarter (+50 ms) late, and settles
// at one poll every 2 s. How fast real jobs return is measured by capybench
// (-only cliwait), not here.
func TestPollSchedule(t *testing.T) {
	for i := 0; i < 5; i++ {
		if d := pollSchedule(i); d != 50*time.Millisecond {
			t.Errorf("pollSchedule(%d) = %v, want 50ms", i, d)
		}
	}
	firstAfter := func(job time.Duration) time.Duration {
		at := time.Duration(0)
		for n := 0; at < job; n++ {
			at += pollSchedule(n)
		}
		return at
	}
	if at := firstAfter(200 * time.Millisecond); at > 250*time.Millisecond {
		t.Errorf("a 200 ms job is first seen done at %v", at)
	}
	for _, job := range []time.Duration{300, 700, 1500, 5000, 20000} {
		job *= time.Millisecond
		if at := firstAfter(job); at > job+job/4+50*time.Millisecond {
			t.Errorf("a %v job is first seen done at %v", job, at)
		}
	}
	prev, at := time.Duration(0), time.Duration(0)
	for n := 0; n < 200; n++ {
		d := pollSchedule(n)
		if d < prev || d > 2*time.Second {
			t.Fatalf("pollSchedule(%d) = %v after %v: must grow and stay within 2s", n, d, prev)
		}
		prev, at = d, at+d
	}
	if prev != 2*time.Second || pollSchedule(100000) != 2*time.Second {
		t.Errorf("long jobs are polled every %v, want 2s", prev)
	}
	if n := polls(time.Minute); n > 50 {
		t.Errorf("%d polls in the first minute", n)
	}
}

// polls counts the polls of the first d.
func polls(d time.Duration) int {
	at, n := time.Duration(0), 0
	for ; at <= d; n++ {
		at += pollSchedule(n)
	}
	return n
}

// TestWaitSurvivesRateLimit: 429s while polling slow the CLI down instead of
// counting as failed polls (five of those in a row end the wait).
func TestWaitSurvivesRateLimit(t *testing.T) {
	done := strings.Replace(jobJSON, `"queued"`, `"completed"`, 1)
	var mu sync.Mutex
	polls := 0
	s, _ := backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/backups": reply(202, `{"job":`+jobJSON+`}`),
		"GET /v1/jobs/job_9": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			polls++
			n := polls
			mu.Unlock()
			if n <= 7 {
				reply(429, `{"error":"rate limit exceeded"}`)(w, r)
				return
			}
			reply(200, `{"job":`+done+`}`)(w, r)
		},
	})
	r := runCLI(t, "backups", "create", "--project", "shop", "--wait", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"state": "completed"`) || s.count("GET /v1/jobs/job_9") != 8 {
		t.Fatalf("wait through 429s: %d %q %s (%d polls)", r.code, r.stdout, r.stderr, s.count("GET /v1/jobs/job_9"))
	}
	// Other failures still end the wait after five in a row.
	s.set("GET /v1/jobs/job_9", reply(502, `{"error":"bad gateway"}`))
	before := s.count("GET /v1/jobs/job_9")
	r = runCLI(t, "backups", "create", "--project", "shop", "--wait")
	if r.code != 1 || !strings.Contains(r.stderr, "5 failed polls in a row") || s.count("GET /v1/jobs/job_9")-before != 15 {
		t.Fatalf("5xx: %d %s (%d requests)", r.code, r.stderr, s.count("GET /v1/jobs/job_9")-before)
	}
}
