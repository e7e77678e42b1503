// Package auth knows who is calling: API keys (stored as SHA-256 hashes),
// their scopes and project confinement, and the principal a request runs as.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// KeyPrefix starts every API key.
const KeyPrefix = "capy_live_"

// Scopes.
const (
	ScopeAll                = "*"
	ScopeProjectsRead       = "projects:read"
	ScopeProjectsWrite      = "projects:write"
	ScopeCredentialsRead    = "credentials:read"
	ScopeBackupsRead        = "backups:read"
	ScopeBackupsWrite       = "backups:write"
	ScopeJobsRead           = "jobs:read"
	ScopeOrganizationsRead  = "organizations:read"
	ScopeOrganizationsWrite = "organizations:write"
	ScopeAPIKeysRead        = "api_keys:read"
	ScopeAPIKeysWrite       = "api_keys:write"
	ScopeSchemaRead         = "schema:read"
)

// AllScopes are the eleven tenant scopes that "*" stands for.
var AllScopes = []string{
	ScopeProjectsRead, ScopeProjectsWrite, ScopeCredentialsRead, ScopeBackupsRead, ScopeBackupsWrite,
	ScopeJobsRead, ScopeOrganizationsRead, ScopeOrganizationsWrite, ScopeAPIKeysRead, ScopeAPIKeysWrite,
	ScopeSchemaRead,
}

// Principal is the caller of a request.
type Principal struct {
	AuthSource     string // api_key, clerk_session, admin_token
	OrganizationID string
	Scopes         []string
	APIKeyID       string
	ProjectID      string // set for project-scoped keys
	UserID         string
	Role           string // sessions: admin or member
	// Sessions: the issuer's organization claims as sent.
	ClerkOrganizationID   string
	ClerkOrganizationRole string
	ClerkOrganizationSlug string
}

// Auth sources.
const (
	SourceAPIKey  = "api_key"
	SourceSession = "clerk_session"
)

// Has reports whether the principal holds scope.
func (p *Principal) Has(scope string) bool {
	return slices.Contains(p.Scopes, ScopeAll) || slices.Contains(p.Scopes, scope)
}

// ProjectScoped reports whether the principal is confined to one project.
func (p *Principal) ProjectScoped() bool { return p.ProjectID != "" }

// IsAdmin reports whether the principal may perform admin-gated actions:
// every API key (scopes decide), and sessions with the admin role.
func (p *Principal) IsAdmin() bool { return p.AuthSource == "api_key" || p.Role == "admin" }

// Actor kind for the audit log.
func (p *Principal) ActorKind() (kind, id string) {
	switch p.AuthSource {
	case "api_key":
		return "api_key", p.APIKeyID
	case "admin_token":
		return "operator", ""
	default:
		return "user", p.UserID
	}
}

// NewKey returns a fresh plaintext API key, its hash and its display prefix.
func NewKey() (plaintext string, hash []byte, prefix string) {
	plaintext = KeyPrefix + ids.RandomBase62(40)
	h := sha256.Sum256([]byte(plaintext))
	return plaintext, h[:], plaintext[:len(KeyPrefix)+4]
}

// HashKey is the lookup hash of a plaintext key.
func HashKey(plaintext string) []byte {
	h := sha256.Sum256([]byte(plaintext))
	return h[:]
}

// ErrUnauthenticated means missing, malformed, unknown, revoked or expired credentials.
var ErrUnauthenticated = errors.New("invalid or missing credentials")

// Authenticator resolves credentials to principals.
type Authenticator struct {
	Store *store.Store
	// OIDC verifies human session JWTs; nil when no issuer is configured.
	OIDC *OIDC
}

// APIKey resolves a plaintext key. Nothing is cached, so revocation and
// expiry take effect on the next request.
func (a *Authenticator) APIKey(ctx context.Context, plaintext string) (*Principal, error) {
	if !strings.HasPrefix(plaintext, KeyPrefix) || len(plaintext) < len(KeyPrefix)+32 {
		return nil, ErrUnauthenticated
	}
	return a.apiKeyByHash(ctx, HashKey(plaintext))
}

// apiKeyByHash resolves a key by its hash (API keys and dashboard sessions).
func (a *Authenticator) apiKeyByHash(ctx context.Context, hash []byte) (*Principal, error) {
	k, err := store.GetAPIKeyByHash(ctx, a.Store.Pool, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !k.ExpiresAt.After(time.Now())) {
		return nil, ErrUnauthenticated
	}
	if k.LastUsedAt == nil || time.Since(*k.LastUsedAt) > time.Minute {
		go func(id string) {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = store.TouchAPIKey(c, a.Store.Pool, id)
		}(k.ID)
	}
	p := &Principal{AuthSource: "api_key", OrganizationID: k.OrganizationID, Scopes: k.Scopes, APIKeyID: k.ID}
	if k.ProjectID != nil {
		p.ProjectID = *k.ProjectID
	}
	return p, nil
}

// MintKey stores a new organization key and returns its plaintext (shown once).
func MintKey(ctx context.Context, db store.DB, orgID, name string, scopes []string, source string) (string, *store.APIKey, error) {
	plain, hash, prefix := NewKey()
	k := &store.APIKey{
		ID: ids.New("key_"), OrganizationID: orgID, Name: name, KeyHash: hash, KeyPrefix: prefix,
		Scopes: scopes, Source: source,
	}
	if err := store.InsertAPIKey(ctx, db, k); err != nil {
		return "", nil, err
	}
	return plain, k, nil
}

type ctxKey struct{}

// WithPrincipal stores the principal in a context.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's principal (nil on anonymous routes).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}
