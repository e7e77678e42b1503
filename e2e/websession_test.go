package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Dashboard sessions (internal/api/websession.go): an API key pasted once
// becomes an HttpOnly SameSite=Strict cookie; mutations with the cookie need
// the session's CSRF token and a same-host Origin.

// cookieJar signs keys in once each and returns the headers a browser would
// send with their session: the cookie and the CSRF token.
type cookieJar struct {
	s  *server
	mu sync.Mutex
	by map[string]http.Header
}

func newCookieJar(s *server) *cookieJar { return &cookieJar{s: s, by: map[string]http.Header{}} }

func (j *cookieJar) headers(t *testing.T, key string) http.Header {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if h, ok := j.by[key]; ok {
		return h.Clone()
	}
	tok, csrf := signIn(t, j.s, key)
	h := http.Header{"Cookie": {"capydb_session=" + tok}, "X-Csrf-Token": {csrf}}
	j.by[key] = h
	return h.Clone()
}

func signIn(t *testing.T, s *server, key string) (token, csrf string) {
	t.Helper()
	r := s.req("POST", "/dashboard/session", hdr(), map[string]string{"api_key": key})
	if r.Status != 201 {
		t.Fatalf("sign in: %d %s", r.Status, r.Raw)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "capydb_session" {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge < 11*3600 || c.MaxAge > 12*3600 {
				t.Fatalf("session cookie attributes: %+v", c)
			}
			token = c.Value
		}
	}
	csrf = r.str("csrf_token")
	if len(token) < 40 || len(csrf) < 40 || token == csrf {
		t.Fatalf("sign in gave token %d chars, csrf %d chars", len(token), len(csrf))
	}
	if exp, err := time.Parse(time.RFC3339, r.str("expires_at")); err != nil || time.Until(exp) < 11*time.Hour {
		t.Fatalf("expires_at %q", r.str("expires_at"))
	}
	return token, csrf
}

func merge(h http.Header, kv ...string) http.Header {
	out := hdr(kv...)
	for k, v := range h {
		out[k] = v
	}
	return out
}

func TestDashboardSession(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	s := f.s
	// Bad sign-ins: clear errors, no cookie.
	for _, c := range []struct {
		h      http.Header
		body   any
		status int
		msg    string
	}{
		{hdr(), map[string]string{"api_key": "capy_live_" + strings.Repeat("x", 40)}, 401, "invalid, revoked or expired"},
		{hdr(), map[string]string{"api_key": ""}, 400, "api_key is required"},
		{hdr(), map[string]string{"key": s.key}, 400, "api_key"},
		{hdr(), "not json", 400, "api_key"},
		{hdr("Content-Type", "text/plain"), map[string]string{"api_key": s.key}, 415, "application/json"},
		{hdr("Origin", "https://evil.example"), map[string]string{"api_key": s.key}, 403, "cross-origin"},
	} {
		r := s.req("POST", "/dashboard/session", c.h, c.body)
		expectStatus(t, "sign-in "+c.msg, r, c.status, c.msg)
		if r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("a failed sign-in set a cookie: %s", r.Header.Get("Set-Cookie"))
		}
	}
	expectStatus(t, "no session", s.req("GET", "/dashboard/session", hdr(), nil), 401, "sign in again")

	tok, csrf := signIn(t, s, s.key)
	cookie := "capydb_session=" + tok
	if r := s.req("GET", "/dashboard/session", hdr("Cookie", cookie), nil); r.Status != 200 || r.str("organization_id") != f.orgID || r.str("csrf_token") != csrf {
		t.Fatalf("session: %d %s", r.Status, r.Raw)
	}
	// Reads need only the cookie; mutations the CSRF token and a same-host Origin.
	if r := s.req("GET", "/v1/projects", hdr("Cookie", cookie), nil); r.Status != 200 || len(r.get("projects").([]any)) != 2 {
		t.Fatalf("list with cookie: %d %s", r.Status, r.Raw)
	}
	body := map[string]any{"name": "via cookie"}
	expectStatus(t, "no csrf", s.req("POST", "/v1/projects", hdr("Cookie", cookie), body), 403, "CSRF")
	expectStatus(t, "wrong csrf", s.req("POST", "/v1/projects", hdr("Cookie", cookie, "X-CSRF-Token", csrf+"x"), body), 403, "CSRF")
	expectStatus(t, "cross origin", s.req("POST", "/v1/projects", hdr("Cookie", cookie, "X-CSRF-Token", csrf, "Origin", "http://evil.example"), body), 403, "CSRF")
	expectStatus(t, "sign-out without csrf", s.req("DELETE", "/dashboard/session", hdr("Cookie", cookie), nil), 403, "CSRF")
	if n := len(s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)); n != 2 {
		t.Fatalf("a refused mutation created a project: %d projects", n)
	}
	created := s.req("POST", "/v1/projects", hdr("Cookie", cookie, "X-CSRF-Token", csrf, "Origin", s.url), body)
	expectStatus(t, "create with cookie", created, 202, "")
	if created.str("project", "name") != "via cookie" {
		t.Fatalf("created %s", created.Raw)
	}
	// An API key in the request wins over the cookie (no CSRF needed for keys).
	if r := s.req("GET", "/v1/projects", hdr("Cookie", cookie, "Authorization", "Bearer capy_live_short"), nil); r.Status != 401 {
		t.Fatalf("a bad bearer with a good cookie: %d", r.Status)
	}

	// A session is exactly its key: a project key's session sees one project
	// and none of the organization routes.
	projKey, _ := f.key(t, map[string]any{"name": "p", "scopes": projectKeyScopes, "project_id": f.this["id"]})
	jar := newCookieJar(s)
	ph := jar.headers(t, projKey)
	if l := s.req("GET", "/v1/projects", merge(ph), nil).get("projects").([]any); len(l) != 1 || l[0].(map[string]any)["id"] != f.this["id"] {
		t.Fatalf("project-key session lists %v", l)
	}
	expectStatus(t, "sibling via project session", s.req("GET", "/v1/projects/"+f.sibling["id"].(string), merge(ph), nil), 404, "not found")
	expectStatus(t, "org route via project session", s.req("GET", "/v1/organizations/"+f.orgID+"/api-keys", merge(ph), nil), 403, "project-scoped")

	// Revoking the key ends its sessions at once.
	k2, k2meta := f.key(t, map[string]any{"name": "short-lived", "scopes": []string{"*"}})
	h2 := jar.headers(t, k2)
	expectStatus(t, "before revoke", s.req("GET", "/v1/projects", merge(h2), nil), 200, "")
	expectStatus(t, "revoke", s.req("DELETE", "/v1/organizations/"+f.orgID+"/api-keys/"+k2meta["id"].(string), bearer(s.key), nil), 200, "")
	expectStatus(t, "after revoke", s.req("GET", "/v1/projects", merge(h2), nil), 401, "sign in again")

	// Sign-out revokes the session and clears the cookie.
	out := s.req("DELETE", "/dashboard/session", hdr("Cookie", cookie, "X-CSRF-Token", csrf, "Origin", s.url), nil)
	if out.Status != 204 || !strings.Contains(out.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign out: %d %v", out.Status, out.Header)
	}
	expectStatus(t, "after sign-out", s.req("GET", "/v1/projects", hdr("Cookie", cookie), nil), 401, "sign in again")
	expectStatus(t, "method", s.req("PUT", "/dashboard/session", hdr(), nil), 405, "method not allowed")
}
