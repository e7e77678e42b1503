package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// Dashboard sessions: a person pastes an API key once into the sign-in form;
// the server keeps only the key's SHA-256 hash next to a random session token
// whose hash is the map key, and hands the token to the browser as an
// HttpOnly cookie. Every request resolves the key again (apiKeyByHash), so
// revoking or expiring the key ends its sessions at once, and the principal
// is exactly the key's: the same scope and tenant checks apply.
//
// Sessions live in memory: a restart signs everyone out, which is the safe
// direction for a single-process server.

// WebSessionTTL is how long a dashboard session lasts.
const WebSessionTTL = 12 * time.Hour

// maxWebSessions bounds memory if someone signs in in a loop.
const maxWebSessions = 10000

// ErrNoWebSession means a missing, unknown, expired or revoked session cookie.
var ErrNoWebSession = errors.New("the dashboard session is invalid or expired: sign in again")

// WebSession is one signed-in browser.
type WebSession struct {
	CSRF      string
	ExpiresAt time.Time
	keyHash   []byte
	// principal is set for OIDC sign-ins (the ID token was verified once).
	principal *Principal
}

// WebSessions is the in-memory session table.
type WebSessions struct {
	mu   sync.Mutex
	byID map[[32]byte]*WebSession
	now  func() time.Time
}

// NewWebSessions returns an empty table.
func NewWebSessions() *WebSessions {
	return &WebSessions{byID: map[[32]byte]*WebSession{}, now: time.Now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a session for a plaintext key already checked by APIKey and
// returns the cookie token (shown to the browser only).
func (w *WebSessions) Create(plaintextKey string) (token string, s *WebSession) {
	return w.insert(&WebSession{CSRF: randomToken(), ExpiresAt: w.now().Add(WebSessionTTL), keyHash: HashKey(plaintextKey)})
}

// CreateFor starts a session for a principal whose OIDC ID token was just
// verified (the authorization-code sign-in). It lasts WebSessionTTL; the
// issuer is not asked again until the next sign-in.
func (w *WebSessions) CreateFor(p *Principal) (token string, s *WebSession) {
	cp := *p
	return w.insert(&WebSession{CSRF: randomToken(), ExpiresAt: w.now().Add(WebSessionTTL), principal: &cp})
}

func (w *WebSessions) insert(s *WebSession) (string, *WebSession) {
	token := randomToken()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byID) >= maxWebSessions {
		w.sweepLocked()
	}
	if len(w.byID) >= maxWebSessions {
		// Still full of live sessions: drop the one closest to expiry.
		var oldest [32]byte
		var at time.Time
		for id, v := range w.byID {
			if at.IsZero() || v.ExpiresAt.Before(at) {
				oldest, at = id, v.ExpiresAt
			}
		}
		delete(w.byID, oldest)
	}
	w.byID[sha256.Sum256([]byte(token))] = s
	return token, s
}

func (w *WebSessions) sweepLocked() {
	now := w.now()
	for id, v := range w.byID {
		if !v.ExpiresAt.After(now) {
			delete(w.byID, id)
		}
	}
}

// Get returns the live session of a cookie token.
func (w *WebSessions) Get(token string) (*WebSession, error) {
	if token == "" {
		return nil, ErrNoWebSession
	}
	id := sha256.Sum256([]byte(token))
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.byID[id]
	if !ok {
		return nil, ErrNoWebSession
	}
	if !s.ExpiresAt.After(w.now()) {
		delete(w.byID, id)
		return nil, ErrNoWebSession
	}
	return s, nil
}

// Revoke ends a session (sign-out). Unknown tokens are a no-op.
func (w *WebSessions) Revoke(token string) {
	id := sha256.Sum256([]byte(token))
	w.mu.Lock()
	delete(w.byID, id)
	w.mu.Unlock()
}

// CSRFMatches compares a request's CSRF header with the session's in
// constant time.
func (s *WebSession) CSRFMatches(header string) bool {
	return header != "" && subtle.ConstantTimeCompare([]byte(header), []byte(s.CSRF)) == 1
}

// WebSession resolves a session to the principal of its API key, checking
// the key again (revoked or expired keys end the session).
func (a *Authenticator) WebSession(ctx context.Context, s *WebSession) (*Principal, error) {
	if s.principal != nil {
		cp := *s.principal
		return &cp, nil
	}
	return a.apiKeyByHash(ctx, s.keyHash)
}
