package capydb

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A stand-in server for the client's own behaviour (headers, retries, error
// mapping); the operations themselves are tested against a real server in
// e2e TestGoClient.
func TestClientHeadersRetriesAndErrors(t *testing.T) {
	var gets, posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer capy_live_k" || r.Header.Get("User-Agent") != "capydb-go" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"missing credentials"}`))
			return
		}
		switch {
		case r.URL.Path == "/api/capydb/v1/regions" && gets.Add(1) < 3:
			w.WriteHeader(503)
			w.Write([]byte(`{"error":"not ready"}`))
		case r.URL.Path == "/api/capydb/v1/regions":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"regions":["local"]}`))
		case r.Method == "POST":
			posts.Add(1)
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
			w.Write([]byte(`{"error":"busy"}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"project not found"}`))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/api/capydb/", "capy_live_k", WithGETRetryWaits([]time.Duration{0, time.Millisecond, time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := c.ListRegionsWithResponse(ctx)
	if err != nil || gets.Load() != 3 || r.JSON200 == nil || len(r.JSON200.Regions) != 1 {
		t.Fatalf("GET after two 503s: %v, %d attempts, %+v", err, gets.Load(), r)
	}
	_, err = c.GetProjectWithResponse(ctx, "prj_x")
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 404 || re.Message != "project not found" || re.Path != "/api/capydb/v1/projects/prj_x" || !IsNotFound(err) {
		t.Fatalf("404: %#v", err)
	}
	_, err = c.CreateProjectWithResponse(ctx, CreateProjectBody{Name: "x"})
	if !errors.As(err, &re) || re.StatusCode != 503 || re.RetryAfter != 7*time.Second || posts.Load() != 1 {
		t.Fatalf("POST 503 (never retried): %#v, %d attempts", err, posts.Load())
	}
	anon, _ := New(srv.URL+"/api/capydb", "")
	if _, err := anon.ListRegionsWithResponse(ctx); StatusCode(err) != 401 {
		t.Fatalf("no key: %v", err)
	}
	if _, err := New("  ", "k"); err == nil {
		t.Fatal("an empty base URL was accepted")
	}
}
