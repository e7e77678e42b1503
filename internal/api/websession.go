package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/auth"
)

// The dashboard's sign-in: POST /dashboard/session exchanges an API key
// (pasted once) for an HttpOnly, SameSite=Strict session cookie; GET reads
// the session (and its CSRF token) back; DELETE signs out. These routes are
// the dashboard's own (†, not part of /v1 or the OpenAPI document): the
// browser never stores the key. See docs/dashboard.md.

// SessionCookie names the dashboard session cookie.
const SessionCookie = "capydb_session"

// CSRFHeader carries the session's CSRF token on cookie-authenticated
// mutations.
const CSRFHeader = "X-CSRF-Token"

type webSessionBody struct {
	OrganizationID string    `json:"organization_id"`
	ProjectID      *string   `json:"project_id"`
	Scopes         []string  `json:"scopes"`
	CSRFToken      string    `json:"csrf_token"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func sessionBody(p *auth.Principal, s *auth.WebSession) webSessionBody {
	b := webSessionBody{OrganizationID: p.OrganizationID, Scopes: p.Scopes, CSRFToken: s.CSRF, ExpiresAt: s.ExpiresAt.UTC()}
	if p.ProjectID != "" {
		b.ProjectID = &p.ProjectID
	}
	if b.Scopes == nil {
		b.Scopes = []string{}
	}
	return b
}

func sessionCookie(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// sameOrigin reports whether a browser's Origin (when sent) names this host.
func sameOrigin(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, host)
}

func (s *Server) dashboardSession(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	fail := func(status int, msg string) { writeJSON(w, status, map[string]string{"error": msg}) }
	if s.deps.Auth == nil {
		fail(http.StatusServiceUnavailable, "authentication is not configured")
		return
	}
	switch r.Method {
	case http.MethodGet:
		sess, err := s.sessions.Get(sessionCookie(r))
		if err != nil {
			fail(http.StatusUnauthorized, err.Error())
			return
		}
		p, err := s.deps.Auth.WebSession(r.Context(), sess)
		if err != nil {
			s.sessionAuthFailed(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sessionBody(p, sess))
	case http.MethodPost:
		s.dashboardSignIn(w, r)
	case http.MethodDelete:
		token := sessionCookie(r)
		sess, err := s.sessions.Get(token)
		if err == nil && (!sess.CSRFMatches(r.Header.Get(CSRFHeader)) || !sameOrigin(r.Header.Get("Origin"), r.Host)) {
			fail(http.StatusForbidden, "missing or invalid CSRF token")
			return
		}
		s.sessions.Revoke(token)
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, POST, DELETE")
		fail(http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (s *Server) dashboardSignIn(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) { writeJSON(w, status, map[string]string{"error": msg}) }
	client := auth.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.deps.TrustedProxies)
	limited := func(bucket string) bool {
		if s.deps.Limiter == nil {
			return false
		}
		ok, wait := s.deps.Limiter.Allow(bucket, client)
		if !ok {
			w.Header().Set("Retry-After", auth.RetryAfterSeconds(wait))
			fail(http.StatusTooManyRequests, "rate limit exceeded")
		}
		return !ok
	}
	if limited(auth.BucketAPI) {
		return
	}
	if !sameOrigin(r.Header.Get("Origin"), r.Host) {
		fail(http.StatusForbidden, "cross-origin sign-in is not allowed")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fail(http.StatusUnsupportedMediaType, "the sign-in body must be application/json")
		return
	}
	var body struct {
		APIKey string `json:"api_key"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		fail(http.StatusBadRequest, "request body must be {\"api_key\": \"capy_live_...\"}")
		return
	}
	key := strings.TrimSpace(body.APIKey)
	if key == "" {
		fail(http.StatusBadRequest, "api_key is required")
		return
	}
	p, err := s.deps.Auth.APIKey(r.Context(), key)
	if errors.Is(err, auth.ErrUnauthenticated) {
		if limited(auth.BucketFailedAuth) {
			return
		}
		fail(http.StatusUnauthorized, "invalid, revoked or expired API key")
		return
	}
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "authentication lookup failed", "error", err)
		fail(http.StatusServiceUnavailable, "authentication is temporarily unavailable")
		return
	}
	token, sess := s.sessions.Create(key)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", Expires: sess.ExpiresAt,
		MaxAge: int(time.Until(sess.ExpiresAt).Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusCreated, sessionBody(p, sess))
}

func (s *Server) sessionAuthFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrUnauthenticated) {
		s.sessions.Revoke(sessionCookie(r))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the API key behind this session is revoked or expired: sign in again"})
		return
	}
	s.deps.Log.ErrorContext(r.Context(), "authentication lookup failed", "error", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "authentication is temporarily unavailable"})
}

// cookiePrincipal authenticates an API request that carries no API key by
// its dashboard session cookie. Mutations also need the session's CSRF token
// and, when the browser sends one, a same-host Origin.
func (s *Server) cookiePrincipal(ctx huma.Context) (*auth.Principal, int, string) {
	token := ""
	for _, c := range (&http.Request{Header: http.Header{"Cookie": {ctx.Header("Cookie")}}}).Cookies() {
		if c.Name == SessionCookie {
			token = c.Value
		}
	}
	if token == "" || s.sessions == nil {
		return nil, http.StatusUnauthorized, msgNoCredentials
	}
	sess, err := s.sessions.Get(token)
	if err != nil {
		return nil, http.StatusUnauthorized, err.Error()
	}
	switch ctx.Method() {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !sess.CSRFMatches(ctx.Header(CSRFHeader)) || !sameOrigin(ctx.Header("Origin"), ctx.Host()) {
			return nil, http.StatusForbidden, "missing or invalid CSRF token"
		}
	}
	p, err := s.deps.Auth.WebSession(ctx.Context(), sess)
	switch {
	case err == nil:
		return p, 0, ""
	case errors.Is(err, auth.ErrUnauthenticated):
		s.sessions.Revoke(token)
		return nil, http.StatusUnauthorized, "the API key behind this session is revoked or expired: sign in again"
	}
	s.deps.Log.Error("authentication lookup failed", "error", err)
	return nil, http.StatusServiceUnavailable, "authentication is temporarily unavailable"
}
