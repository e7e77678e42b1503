package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitJob: polls until the job is terminal; a failed job is an error
// carrying the job's message; an empty id waits for nothing; ctx bounds it.
func TestWaitJob(t *testing.T) {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := polls.Add(1)
		state, errField := "running", ""
		switch {
		case r.URL.Path == "/v1/jobs/job_ok" && n >= 3:
			state = "completed"
		case r.URL.Path == "/v1/jobs/job_bad":
			state, errField = "failed", `, "error": "disk full"`
		case r.URL.Path == "/v1/jobs/job_ok", r.URL.Path == "/v1/jobs/job_slow":
		default:
			http.Error(w, `{"error": "job not found"}`, 404)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		id := strings.TrimPrefix(r.URL.Path, "/v1/jobs/")
		fmt.Fprintf(w, `{"job": {"id": %q, "type": "instance.create", "state": %q%s}}`, id, state, errField)
	}))
	defer srv.Close()
	c, _ := stubClient(srv.URL)
	ctx := context.Background()

	j, err := c.WaitJob(ctx, "job_ok", time.Millisecond, 2*time.Millisecond)
	if err != nil || j.State != "completed" || polls.Load() != 3 {
		t.Fatalf("job_ok: %v %v after %d polls", j, err, polls.Load())
	}
	j, err = c.WaitJob(ctx, "job_bad", time.Millisecond, 2*time.Millisecond)
	if err == nil || j == nil || !strings.Contains(err.Error(), "job job_bad (instance.create) failed: disk full") {
		t.Fatalf("job_bad: %v %v", j, err)
	}
	if j, err := c.WaitJob(ctx, "", time.Millisecond, 2*time.Millisecond); j != nil || err != nil {
		t.Fatalf("empty id: %v %v", j, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitJob(short, "job_slow", 5*time.Millisecond, 2*time.Millisecond); err == nil || !strings.Contains(err.Error(), "is still running") {
		t.Fatalf("job_slow: %v", err)
	}
	if _, err := c.WaitJob(ctx, "job_gone", time.Millisecond, 2*time.Millisecond); StatusOf(err) != 404 {
		t.Fatalf("job_gone: %v", err)
	}
}
