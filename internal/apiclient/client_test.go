package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder stands in for time: it records the waits instead of sleeping.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return nil
}

func stubClient(url string) (*Client, *recorder) {
	c := New(url, "capy_live_test", "v1.2.3 (abc)", time.Second)
	r := &recorder{}
	c.Sleep = r.sleep
	return c, r
}

func TestDefaultRetrySchedule(t *testing.T) {
	want := []time.Duration{0, time.Second, 3 * time.Second}
	if len(DefaultDelays) != len(want) {
		t.Fatalf("DefaultDelays = %v", DefaultDelays)
	}
	for i := range want {
		if DefaultDelays[i] != want[i] {
			t.Fatalf("DefaultDelays = %v, want %v", DefaultDelays, want)
		}
	}
	if c := New("http://x/", "", "", 0); len(c.Delays) != 3 || c.BaseURL != "http://x" || c.HTTP.Timeout != 30*time.Second {
		t.Fatalf("New defaults: %+v", c)
	}
}

func TestGetRetriedOn503ThenOK(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if r.Header.Get("User-Agent") != "capydb-cli/v1.2.3" || r.Header.Get("Authorization") != "Bearer capy_live_test" ||
			r.Header.Get("Accept") != "application/json" || r.Header.Get("Content-Type") != "" {
			t.Errorf("headers: %v", r.Header)
		}
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"not ready"}`))
			return
		}
		_, _ = w.Write([]byte(`{"projects":[{"id":"prj_1","name":"A","slug":"a","extra_field":{"x":1}}]}`))
	}))
	defer srv.Close()
	c, rec := stubClient(srv.URL)
	ps, err := c.ListProjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(ps) != 1 || ps[0].ID != "prj_1" {
		t.Fatalf("calls %d, projects %+v", calls, ps)
	}
	if len(rec.waits) != 2 || rec.waits[0] != 0 || rec.waits[1] != time.Second {
		t.Fatalf("waits %v, want [0s 1s]", rec.waits)
	}
	// The object marshals back to exactly what the server sent.
	b, _ := json.Marshal(ps[0])
	if !strings.Contains(string(b), `"extra_field":{"x":1}`) {
		t.Fatalf("passthrough lost a field: %s", b)
	}
}

func TestGetGivesUpAfterThreeAttempts(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	}))
	defer srv.Close()
	c, rec := stubClient(srv.URL)
	_, err := c.GetJob(context.Background(), "job_1")
	var e *Error
	if !errors.As(err, &e) || e.Status != 502 || e.Message != "HTTP 502: <html>bad gateway</html>" {
		t.Fatalf("err = %v", err)
	}
	if calls != 3 || len(rec.waits) != 3 || rec.waits[2] != 3*time.Second {
		t.Fatalf("calls %d waits %v", calls, rec.waits)
	}
}

func TestNon5xxAndOtherMethodsNotRetried(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/jobs/job_404":
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"job not found"}`))
		default:
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"error":"busy"}`))
		}
	}))
	defer srv.Close()
	c, rec := stubClient(srv.URL)
	ctx := context.Background()
	if _, err := c.GetJob(ctx, "job_404"); StatusOf(err) != 404 || err.Error() != "job not found" {
		t.Fatalf("404: %v", err)
	}
	if _, _, err := c.CreateProject(ctx, CreateProjectRequest{Name: "x"}); StatusOf(err) != 503 {
		t.Fatalf("POST: %v", err)
	}
	if _, err := c.DeleteProject(ctx, "prj_1", ""); StatusOf(err) != 503 {
		t.Fatalf("DELETE: %v", err)
	}
	if _, err := c.RotateCredentials(ctx, "prj_1", 0); StatusOf(err) != 503 {
		t.Fatalf("rotate: %v", err)
	}
	want := map[string]int{"GET /v1/jobs/job_404": 1, "POST /v1/projects": 1, "DELETE /v1/projects/prj_1": 1,
		"POST /v1/projects/prj_1/credentials/rotate": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s sent %d times, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if len(rec.waits) != 4 {
		t.Fatalf("waits %v: only the first attempt of each call", rec.waits)
	}
}

func TestNetworkErrorsRetriedForGetOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	c, rec := stubClient("http://" + addr)
	_, err = c.ListProjects(context.Background())
	var ne *NetworkError
	if !errors.As(err, &ne) || !strings.HasPrefix(err.Error(), "cannot reach http://"+addr+": ") || strings.Contains(err.Error(), "Get \"") {
		t.Fatalf("err = %v", err)
	}
	if len(rec.waits) != 3 {
		t.Fatalf("GET attempts %d, want 3", len(rec.waits))
	}
	rec.waits = nil
	if _, err := c.RotateCredentials(context.Background(), "prj_1", 2); !errors.As(err, &ne) {
		t.Fatalf("POST err = %v", err)
	}
	if len(rec.waits) != 1 {
		t.Fatalf("POST attempts %d, want 1", len(rec.waits))
	}
}

func TestBodiesAndAnonymousRoutes(t *testing.T) {
	type seen struct {
		auth, poll, body, ctype string
	}
	var mu sync.Mutex
	reqs := map[string]seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		mu.Lock()
		reqs[r.Method+" "+r.URL.Path] = seen{r.Header.Get("Authorization"), r.Header.Get("X-CapyDB-Poll-Token"), string(b[:n]), r.Header.Get("Content-Type")}
		mu.Unlock()
		switch {
		case r.URL.Path == "/v1/cli/login/sessions" && r.Method == "POST":
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"session_id":"cls_1","poll_token":"clp_x","state":"pending","expires_at":"2030-01-01T00:00:00Z"}`))
		case strings.HasPrefix(r.URL.Path, "/v1/cli/login/sessions/"):
			_, _ = w.Write([]byte(`{"session_id":"cls_1","state":"pending","expires_at":"2030-01-01T00:00:00Z"}`))
		default:
			w.WriteHeader(202)
			_, _ = w.Write([]byte(`{"job":{"id":"job_1","type":"branch.reset","state":"pending"}}`))
		}
	}))
	defer srv.Close()
	c, _ := stubClient(srv.URL)
	ctx := context.Background()
	if _, err := c.ResetPreview(ctx, "pvw_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateCredentials(ctx, "prj_1", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateCredentials(ctx, "prj_2", 5); err != nil {
		t.Fatal(err)
	}
	s, err := c.StartLogin(ctx, LoginStartRequest{Name: "n"})
	if err != nil || s.PollToken != "clp_x" {
		t.Fatalf("start: %+v %v", s, err)
	}
	if _, err := c.PollLogin(ctx, "cls_1", "clp_x"); err != nil {
		t.Fatal(err)
	}
	checks := map[string]seen{
		"POST /v1/preview-databases/pvw_1/reset":     {auth: "Bearer capy_live_test"},
		"POST /v1/projects/prj_1/credentials/rotate": {auth: "Bearer capy_live_test"},
		"POST /v1/projects/prj_2/credentials/rotate": {auth: "Bearer capy_live_test", body: `{"grace_hours":5}`, ctype: "application/json"},
		"POST /v1/cli/login/sessions":                {body: `{"name":"n"}`, ctype: "application/json"},
		"GET /v1/cli/login/sessions/cls_1":           {poll: "clp_x"},
	}
	for k, want := range checks {
		if got := reqs[k]; got != want {
			t.Errorf("%s: got %+v, want %+v", k, got, want)
		}
	}
}

func TestUserAgent(t *testing.T) {
	for in, want := range map[string]string{"": "capydb-cli/dev", "dev": "capydb-cli/dev", "v0.3.0-4-gabc dirty": "capydb-cli/v0.3.0-4-gabc"} {
		if got := UserAgent(in); got != want {
			t.Errorf("UserAgent(%q) = %q, want %q", in, got, want)
		}
	}
}
