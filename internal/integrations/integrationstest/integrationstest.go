// Package integrationstest has local stand-ins for the third-party APIs
// CapyDB calls (Clerk, Vercel, Netlify). Each is an httptest server on
// loopback that answers the documented routes the way the provider does and
// checks every request the way the provider's docs describe it (method,
// path, bearer token, content type, body shape); anything else fails the
// test and gets the provider's error answer.
package integrationstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// base holds what every stand-in shares.
type base struct {
	t     testing.TB
	token string
	srv   *httptest.Server
	mu    sync.Mutex
	calls []string // "METHOD path?query" of every request, in order
}

// URL is the stand-in's base URL (the --*-api-url flag's value).
func (b *base) URL() string { return b.srv.URL }

// Calls lists the requests received so far.
func (b *base) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *base) start(t testing.TB, h http.HandlerFunc) {
	b.t = t
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.calls = append(b.calls, r.Method+" "+r.URL.RequestURI())
		b.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(b.srv.Close)
}

// RevokeToken makes the stand-in refuse the token from now on (a token
// revoked at the provider).
func (b *base) RevokeToken() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.token = "\x00revoked"
}

// authorized checks "Authorization: Bearer <token>"; a wrong token is the
// provider's 401/403 (not a test failure: tests send bad tokens on purpose).
func (b *base) authorized(r *http.Request) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.Header.Get("Authorization") == "Bearer "+b.token
}

// reject fails the test: the request is not what the provider documents.
func (b *base) reject(w http.ResponseWriter, r *http.Request, why string) {
	b.t.Errorf("%s stand-in: %s %s: %s", strings.SplitN(b.srv.URL, "//", 2)[1], r.Method, r.URL.RequestURI(), why)
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"message": why}, "message": why})
}

// readJSON decodes a JSON request body strictly (unknown fields are a
// request the provider would not understand).
func (b *base) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		b.reject(w, r, "Content-Type is "+ct+", want application/json")
		return false
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		b.reject(w, r, err.Error())
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		b.reject(w, r, "body "+string(raw)+": "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
