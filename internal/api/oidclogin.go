package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/capydb/capydb/internal/auth"
)

// Dashboard sign-in with the OIDC authorization-code flow and PKCE (S256),
// enabled by --oidc-issuer plus --oidc-client-id. /dashboard/oidc/login sends
// the browser to the issuer with a fresh state and code challenge (the
// verifier stays on the server, the state also in a short-lived cookie that
// binds the callback to this browser); /dashboard/oidc/callback checks the
// state, redeems the code with the verifier, verifies the ID token exactly
// like a session bearer token (signature, issuer, audience, organization
// claims) and opens a dashboard session for that principal.

// OIDCClient is the dashboard's registration at the issuer.
type OIDCClient struct {
	Issuer       string
	ClientID     string
	ClientSecret string // empty for a public client (PKCE alone)
	// HTTP talks to the issuer (nil: a client with a 10 s timeout).
	HTTP *http.Client
}

const (
	oidcStateCookie = "capydb_oidc_state"
	oidcLoginTTL    = 10 * time.Minute
)

type oidcPending struct {
	verifier string
	expires  time.Time
}

type oidcLogin struct {
	cfg     OIDCClient
	mu      sync.Mutex
	pending map[string]oidcPending
	// endpoints from the issuer's discovery document, fetched once.
	authURL, tokenURL string
}

func newOIDCLogin(cfg OIDCClient) *oidcLogin {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	return &oidcLogin{cfg: cfg, pending: map[string]oidcPending{}}
}

func (o *oidcLogin) discover(ctx context.Context) (authURL, tokenURL string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.authURL != "" {
		return o.authURL, o.tokenURL, nil
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(o.cfg.Issuer, "/")+"/.well-known/openid-configuration", nil)
	resp, err := o.cfg.HTTP.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var doc struct {
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&doc) != nil || doc.AuthorizationEndpoint == "" || doc.TokenEndpoint == "" {
		return "", "", fmt.Errorf("the issuer's discovery document is unusable (HTTP %d)", resp.StatusCode)
	}
	o.authURL, o.tokenURL = doc.AuthorizationEndpoint, doc.TokenEndpoint
	return o.authURL, o.tokenURL, nil
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func callbackURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/dashboard/oidc/callback"
}

// redirect answers a 302 past responseWriter, which turns the router's
// redirects into JSON 404s.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.Header().Set("Cache-Control", "no-store")
	if rw, ok := w.(*responseWriter); ok {
		rw.wroteHeader, rw.status = true, http.StatusFound
		rw.ResponseWriter.WriteHeader(http.StatusFound)
		return
	}
	w.WriteHeader(http.StatusFound)
}

func (s *Server) oidcLoginStart(w http.ResponseWriter, r *http.Request) {
	o := s.oidc
	if o == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "OIDC sign-in is not configured (--oidc-issuer and --oidc-client-id)"})
		return
	}
	authURL, _, err := o.discover(r.Context())
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "OIDC discovery failed", "error", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the OIDC issuer cannot be reached; try again"})
		return
	}
	state, verifier := randomString(), randomString()
	sum := sha256.Sum256([]byte(verifier))
	now := time.Now()
	o.mu.Lock()
	for k, p := range o.pending {
		if now.After(p.expires) {
			delete(o.pending, k)
		}
	}
	if len(o.pending) >= maxPendingLogins {
		o.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many sign-ins in progress; try again shortly"})
		return
	}
	o.pending[state] = oidcPending{verifier: verifier, expires: now.Add(oidcLoginTTL)}
	o.mu.Unlock()
	q := url.Values{
		"response_type": {"code"}, "client_id": {o.cfg.ClientID}, "redirect_uri": {callbackURL(r)},
		"scope": {"openid profile email"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	sep := "?"
	if strings.Contains(authURL, "?") {
		sep = "&"
	}
	// Lax, not Strict: the callback is a top-level navigation from the issuer.
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: state, Path: "/dashboard/oidc", MaxAge: int(oidcLoginTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	redirect(w, authURL+sep+q.Encode())
}

const maxPendingLogins = 1000

func (s *Server) oidcLoginCallback(w http.ResponseWriter, r *http.Request) {
	o := s.oidc
	fail := func(status int, msg string) { writeJSON(w, status, map[string]string{"error": msg}) }
	if o == nil {
		fail(http.StatusNotFound, "OIDC sign-in is not configured")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, "the issuer refused the sign-in: "+e)
		return
	}
	state, code := q.Get("state"), q.Get("code")
	c, err := r.Cookie(oidcStateCookie)
	if state == "" || code == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		fail(http.StatusBadRequest, "this sign-in was not started in this browser (state mismatch): start again")
		return
	}
	o.mu.Lock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	o.mu.Unlock()
	if !ok || time.Now().After(p.expires) {
		fail(http.StatusBadRequest, "this sign-in expired or was already used: start again")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: "", Path: "/dashboard/oidc", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	idToken, err := o.redeem(r, code, p.verifier)
	if err != nil {
		s.deps.Log.WarnContext(r.Context(), "OIDC code redemption failed", "error", err)
		fail(http.StatusUnauthorized, "the issuer did not accept the sign-in code: start again")
		return
	}
	pr, err := s.deps.Auth.Session(r.Context(), idToken)
	var se *auth.SessionError
	switch {
	case errors.As(err, &se):
		fail(http.StatusUnauthorized, se.Error())
		return
	case errors.Is(err, auth.ErrNoOrganization):
		fail(http.StatusForbidden, "your account has no active organization at the issuer")
		return
	case err != nil:
		s.deps.Log.ErrorContext(r.Context(), "OIDC session lookup failed", "error", err)
		fail(http.StatusServiceUnavailable, "authentication is temporarily unavailable")
		return
	}
	token, sess := s.sessions.CreateFor(pr)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", Expires: sess.ExpiresAt,
		MaxAge: int(time.Until(sess.ExpiresAt).Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	redirect(w, "/dashboard/")
}

// redeem exchanges the code (with the PKCE verifier) for the ID token.
func (o *oidcLogin) redeem(r *http.Request, code, verifier string) (string, error) {
	_, tokenURL, err := o.discover(r.Context())
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callbackURL(r)},
		"client_id": {o.cfg.ClientID}, "code_verifier": {verifier}}
	if o.cfg.ClientSecret != "" {
		form.Set("client_secret", o.cfg.ClientSecret)
	}
	req, _ := http.NewRequestWithContext(r.Context(), "POST", tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := o.cfg.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("token endpoint answered HTTP %d with an unreadable body", resp.StatusCode)
	}
	if resp.StatusCode != 200 || body.IDToken == "" {
		return "", fmt.Errorf("token endpoint answered HTTP %d (%s) without an id_token", resp.StatusCode, body.Error)
	}
	return body.IDToken, nil
}

// dashboardConfig tells the sign-in page which modes exist.
func (s *Server) dashboardConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]bool{"api_key": true, "oidc": s.oidc != nil})
}
