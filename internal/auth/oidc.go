package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// OIDCConfig configures human sessions.
type OIDCConfig struct {
	Issuer   string // required: the exact "iss" of accepted tokens
	JWKSURL  string // default: discovered from the issuer
	Audience string // when set, "aud" must contain it
	// DefaultPlan is the plan of organizations created on first sight.
	DefaultPlan string
	// RefreshUnknownKID limits JWKS refreshes caused by tokens with an unknown
	// key id (default: one every 10 seconds).
	RefreshUnknownKID time.Duration
	Log               *slog.Logger
}

// ClockSkew is how far exp, nbf and iat may be off.
const ClockSkew = 60 * time.Second

// OIDC verifies session JWTs (RS256/ES256) against an issuer's JWKS, which is
// cached, refreshed hourly and re-fetched when a token names an unknown key.
type OIDC struct {
	cfg    OIDCConfig
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
}

// SessionClaims are what CapyDB reads from a session token.
type SessionClaims struct {
	Subject string
	OrgID   string
	OrgRole string
	OrgSlug string
}

// IsAdmin reports whether the role claim means organization admin.
func (c *SessionClaims) IsAdmin() bool { return c.OrgRole == "org:admin" || c.OrgRole == "admin" }

// sessionClaims accepts both Clerk forms: flat org_id/org_role/org_slug (v1)
// and the compact o: {id, rol, slg} (v2).
type sessionClaims struct {
	jwt.RegisteredClaims
	OrgID   string `json:"org_id"`
	OrgRole string `json:"org_role"`
	OrgSlug string `json:"org_slug"`
	O       *struct {
		ID  string `json:"id"`
		Rol string `json:"rol"`
		Slg string `json:"slg"`
	} `json:"o"`
}

// NewOIDC builds a verifier. ctx ends the JWKS refresh goroutine. The first
// JWKS fetch may fail (the issuer may be down at start); keys are fetched
// again when a token needs them.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("--oidc-issuer is required for human sessions")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DefaultPlan == "" {
		cfg.DefaultPlan = "business"
	}
	if cfg.RefreshUnknownKID <= 0 {
		cfg.RefreshUnknownKID = 10 * time.Second
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = discoverJWKS(ctx, cfg.Issuer, cfg.Log)
	}
	log := cfg.Log
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		HTTPTimeout:       10 * time.Second,
		RefreshInterval:   time.Hour,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.RefreshUnknownKID), 1),
		// Bounds both the wait for the refresh limiter (no waiting: an
		// exhausted limiter fails at once) and the refresh itself.
		RateLimitWaitMax: 5 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				log.WarnContext(ctx, "refreshing the OIDC JWKS failed", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("while setting up the OIDC JWKS %s: %w", cfg.JWKSURL, err)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256", "ES256"}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithLeeway(ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &OIDC{cfg: cfg, keys: kf, parser: jwt.NewParser(opts...)}, nil
}

// JWKSURL is the key set in use.
func (o *OIDC) JWKSURL() string { return o.cfg.JWKSURL }

// discoverJWKS reads jwks_uri from the issuer's OpenID configuration, falling
// back to <issuer>/.well-known/jwks.json (where Clerk serves it).
func discoverJWKS(ctx context.Context, issuer string, log *slog.Logger) string {
	base := strings.TrimRight(issuer, "/")
	fallback := base + "/.well-known/jwks.json"
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodGet, base+"/.well-known/openid-configuration", nil)
	if err != nil {
		return fallback
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Warn("OIDC discovery failed; using the conventional JWKS path", "issuer", issuer, "error", err)
		return fallback
	}
	defer resp.Body.Close()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&doc) != nil || doc.JWKSURI == "" {
		log.Warn("OIDC discovery document unusable; using the conventional JWKS path", "issuer", issuer, "status", resp.StatusCode)
		return fallback
	}
	return doc.JWKSURI
}

// LooksLikeJWT reports whether a bearer token has the three-segment JWT shape.
func LooksLikeJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts[:2] {
		if p == "" {
			return false
		}
	}
	return true
}

// Verify checks signature, algorithm, issuer, audience, exp/nbf/iat and
// returns the claims CapyDB uses. The error says why (never echoes the token).
func (o *OIDC) Verify(ctx context.Context, token string) (*SessionClaims, error) {
	var c sessionClaims
	if _, err := o.parser.ParseWithClaims(token, &c, o.keys.KeyfuncCtx(ctx)); err != nil {
		return nil, describeJWTError(err)
	}
	if c.Subject == "" {
		return nil, errors.New("token has no subject")
	}
	out := &SessionClaims{Subject: c.Subject, OrgID: c.OrgID, OrgRole: c.OrgRole, OrgSlug: c.OrgSlug}
	if out.OrgID == "" && c.O != nil {
		out.OrgID, out.OrgRole, out.OrgSlug = c.O.ID, c.O.Rol, c.O.Slg
	}
	return out, nil
}

func describeJWTError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("token is expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errors.New("token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errors.New("token has the wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errors.New("token has the wrong audience")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errors.New("token signature is invalid")
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, keyfunc.ErrKeyfunc):
		return errors.New("token is signed with an unknown key")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errors.New("token is missing a required claim (exp, or aud when an audience is configured)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errors.New("token was issued in the future")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errors.New("token is malformed")
	}
	return errors.New("token is invalid")
}

// ErrNoOrganization: a valid session token without an active organization.
var ErrNoOrganization = errors.New("no active organization in the session")

// SessionError is a rejected session token; its message is safe to show.
type SessionError struct{ Reason error }

func (e *SessionError) Error() string { return "invalid session token: " + e.Reason.Error() }

// Session resolves a session JWT to a principal. The organization is found
// by its issuer id and created on first sight.
func (a *Authenticator) Session(ctx context.Context, token string) (*Principal, error) {
	if a.OIDC == nil {
		return nil, ErrUnauthenticated
	}
	c, err := a.OIDC.Verify(ctx, token)
	if err != nil {
		return nil, &SessionError{Reason: err}
	}
	if c.OrgID == "" {
		return nil, ErrNoOrganization
	}
	org, err := a.organizationFor(ctx, c)
	if err != nil {
		return nil, err
	}
	role := "member"
	if c.IsAdmin() {
		role = "admin"
	}
	return &Principal{
		AuthSource: SourceSession, OrganizationID: org.ID, Scopes: []string{ScopeAll}, UserID: c.Subject,
		Role: role, ClerkOrganizationID: c.OrgID, ClerkOrganizationRole: c.OrgRole, ClerkOrganizationSlug: c.OrgSlug,
	}, nil
}

var nonSlugChars = regexp.MustCompile(`[^a-z0-9]+`)

func (a *Authenticator) organizationFor(ctx context.Context, c *SessionClaims) (*store.Organization, error) {
	org, err := store.GetOrganizationByClerkID(ctx, a.Store.Pool, c.OrgID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return org, err
	}
	base := strings.Trim(nonSlugChars.ReplaceAllString(strings.ToLower(c.OrgSlug), "-"), "-")
	if base == "" {
		base = strings.Trim(nonSlugChars.ReplaceAllString(strings.ToLower(c.OrgID), "-"), "-")
	}
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = "org-" + base
	}
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	name := c.OrgSlug
	if name == "" {
		name = c.OrgID
	}
	clerkID := c.OrgID
	var slugClaim *string
	if c.OrgSlug != "" {
		slugClaim = &c.OrgSlug
	}
	plan := "business"
	if a.OIDC != nil {
		plan = a.OIDC.cfg.DefaultPlan
	}
	slug := base
	for attempt := 0; attempt < 5; attempt++ {
		o := &store.Organization{ID: ids.New("org_"), Name: name, Slug: slug, BillingPlan: plan,
			ClerkOrganizationID: &clerkID, ClerkOrganizationSlug: slugClaim}
		err := store.InsertClerkOrganization(ctx, a.Store.Pool, o)
		switch {
		case err == nil:
			return o, nil
		case store.IsUniqueViolation(err, "organizations_clerk_organization_id_key"):
			// Another request created it first.
			return store.GetOrganizationByClerkID(ctx, a.Store.Pool, c.OrgID)
		case store.IsUniqueViolation(err, "organizations_slug_key"):
			slug = base + "-" + strings.ToLower(ids.RandomBase62(6))
		default:
			return nil, fmt.Errorf("while creating the organization of a new session: %w", err)
		}
	}
	return nil, fmt.Errorf("while creating the organization of a new session: no free slug for %q", base)
}
