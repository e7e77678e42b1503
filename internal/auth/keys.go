package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// Key sources.
const (
	KeySourceAPI       = "api"
	KeySourceDashboard = "dashboard"
	KeySourceCLI       = "cli"
	KeySourceAgent     = "agent"
)

// Actor is who did something, for the audit log.
type Actor struct{ Kind, ID string }

// Actor returns the principal as an audit actor.
func (p *Principal) Actor() Actor {
	k, id := p.ActorKind()
	return Actor{Kind: k, ID: id}
}

// Audit appends an audit event (projectID nil = organization-level).
func Audit(ctx context.Context, db store.DB, orgID string, projectID *string, action string, actor Actor, meta map[string]any) error {
	a := &store.AuditEvent{ID: ids.New("aud_"), OrganizationID: orgID, ProjectID: projectID, Action: action,
		ActorKind: actor.Kind, Metadata: meta}
	if a.ActorKind == "" {
		a.ActorKind = "system"
	}
	if actor.ID != "" {
		a.ActorID = &actor.ID
	}
	return store.InsertAuditEvent(ctx, db, a)
}

// CreateKey stores a new key (id, hash and prefix are filled in) together
// with its api_key.created audit event, and returns the plaintext, which
// exists nowhere else afterwards.
func CreateKey(ctx context.Context, st *store.Store, k *store.APIKey, actor Actor) (string, error) {
	var plain string
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		plain, err = insertKey(ctx, tx, k, actor, nil)
		return err
	})
	return plain, err
}

func insertKey(ctx context.Context, db store.DB, k *store.APIKey, actor Actor, extra map[string]any) (string, error) {
	plain, hash, prefix := NewKey()
	k.ID, k.KeyHash, k.KeyPrefix = ids.New("key_"), hash, prefix
	if err := store.InsertAPIKey(ctx, db, k); err != nil {
		return "", fmt.Errorf("while storing an API key: %w", err)
	}
	meta := map[string]any{"api_key_id": k.ID, "name": k.Name, "scopes": k.Scopes, "source": k.Source}
	for key, v := range extra {
		meta[key] = v
	}
	// Project-scoped keys are audited on their project; organization keys
	// are organization-level events (no project).
	if err := Audit(ctx, db, k.OrganizationID, k.ProjectID, "api_key.created", actor, meta); err != nil {
		return "", err
	}
	return plain, nil
}

// RevokeKey revokes a key of the organization on behalf of by (idempotent)
// and audits the first revocation. store.ErrNotFound when the key is not the
// organization's; a domainerr.Forbidden when its scopes are not a subset of
// by's: revoking is held to the rule of creation, so a key with only
// api_keys:write cannot take out the organization's admin keys.
func RevokeKey(ctx context.Context, st *store.Store, by *Principal, keyID string) error {
	return st.InTx(ctx, func(tx pgx.Tx) error {
		k, err := store.LockAPIKey(ctx, tx, by.OrganizationID, keyID)
		if err != nil {
			return err
		}
		if scope := by.FirstUngrantable(k.Scopes); scope != "" {
			return domainerr.Errorf(domainerr.Forbidden, "cannot revoke a key holding scope %s, which this credential does not hold", scope)
		}
		if k.RevokedAt != nil {
			return nil
		}
		if _, err := store.RevokeAPIKey(ctx, tx, k.ID); err != nil {
			return err
		}
		return Audit(ctx, tx, by.OrganizationID, k.ProjectID, "api_key.revoked", by.Actor(), map[string]any{"api_key_id": k.ID, "name": k.Name})
	})
}

// Device login.

// LoginTTL is how long a device login may wait for approval.
const LoginTTL = 10 * time.Minute

// LoginKeyTTL is the lifetime of a device-login key when none was requested.
const LoginKeyTTL = 90 * 24 * time.Hour

// Device-login errors the API maps to statuses.
var (
	ErrLoginNotFound = errors.New("login session not found")           // 404
	ErrLoginExpired  = errors.New("login session expired")             // 410
	ErrLoginApproved = errors.New("login session is already approved") // 409
)

// UngrantableError: the approver (or key creator) lacks a requested scope (403).
type UngrantableError struct{ Scope string }

func (e *UngrantableError) Error() string { return "cannot grant scope " + e.Scope }

// LoginRequest is a validated device-login start.
type LoginRequest struct {
	KeyName      string
	DeviceName   *string
	Source       string
	Scopes       []string
	KeyExpiresAt *time.Time
}

// StartLogin stores a pending device login and returns it with its poll
// token (only the token's hash is kept).
func StartLogin(ctx context.Context, st *store.Store, r LoginRequest) (*store.LoginSession, string, error) {
	token := "clp_" + ids.RandomBase62(40)
	l := &store.LoginSession{
		ID: ids.New("cls_"), PollTokenHash: hashToken(token), KeyName: r.KeyName, DeviceName: r.DeviceName,
		Source: r.Source, Scopes: r.Scopes, KeyExpiresAt: r.KeyExpiresAt, ExpiresAt: time.Now().Add(LoginTTL),
	}
	// Forget sessions that expired over a day ago (start is rate-limited, so this stays cheap).
	if _, err := store.DeleteExpiredLoginSessions(ctx, st.Pool); err != nil {
		return nil, "", fmt.Errorf("while removing expired login sessions: %w", err)
	}
	if err := store.InsertLoginSession(ctx, st.Pool, l); err != nil {
		return nil, "", fmt.Errorf("while storing a login session: %w", err)
	}
	return l, token, nil
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// PollLogin checks the poll token and, on the first poll after approval,
// mints the key and returns its plaintext (exactly once: the session row is
// locked and the delivered key recorded in the same transaction).
func PollLogin(ctx context.Context, st *store.Store, id, token string) (*store.LoginSession, string, error) {
	var l *store.LoginSession
	var plain string
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if l, err = lockLogin(ctx, tx, id); err != nil {
			return err
		}
		if token == "" || subtle.ConstantTimeCompare(l.PollTokenHash, hashToken(token)) != 1 {
			return ErrLoginNotFound
		}
		if !l.ExpiresAt.After(time.Now()) {
			return ErrLoginExpired
		}
		if l.State != "completed" || l.APIKeyID != nil || l.OrganizationID == nil {
			return nil
		}
		k := &store.APIKey{OrganizationID: *l.OrganizationID, Name: l.KeyName, Scopes: l.GrantedScopes,
			DeviceName: l.DeviceName, Source: l.Source, CreatedByUserID: l.CreatedByUserID, ExpiresAt: l.KeyExpiresAt}
		if k.ExpiresAt == nil {
			exp := l.AuthorizedAt.Add(LoginKeyTTL)
			k.ExpiresAt = &exp
		}
		actor := Actor{Kind: deref(l.ApprovedByKind), ID: deref(l.ApprovedByID)}
		plain, err = insertKey(ctx, tx, k, actor, map[string]any{"login_session_id": l.ID})
		if err != nil {
			return err
		}
		l.APIKeyID = &k.ID
		return store.MarkLoginDelivered(ctx, tx, l.ID, k.ID)
	})
	if err != nil {
		return nil, "", err
	}
	return l, plain, nil
}

// GetLogin reads a device login for the approval page (404/410 errors).
func GetLogin(ctx context.Context, st *store.Store, id string) (*store.LoginSession, error) {
	l, err := store.GetLoginSession(ctx, st.Pool, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrLoginNotFound
	}
	if err != nil {
		return nil, err
	}
	if !l.ExpiresAt.After(time.Now()) {
		return l, ErrLoginExpired
	}
	return l, nil
}

// ApproveLogin authorizes a pending device login for the approver's
// organization. The key gets the requested scopes (each must be grantable by
// the approver) or else the approver's own scopes.
func ApproveLogin(ctx context.Context, st *store.Store, id string, approver *Principal) (*store.LoginSession, error) {
	var l *store.LoginSession
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if l, err = lockLogin(ctx, tx, id); err != nil {
			return err
		}
		if !l.ExpiresAt.After(time.Now()) {
			return ErrLoginExpired
		}
		if l.State != "pending" {
			return ErrLoginApproved
		}
		granted := l.Scopes
		if len(granted) == 0 {
			granted = append([]string(nil), approver.Scopes...)
		} else if s := approver.FirstUngrantable(granted); s != "" {
			return &UngrantableError{Scope: s}
		}
		kind, actorID := approver.ActorKind()
		org := approver.OrganizationID
		l.OrganizationID, l.GrantedScopes = &org, granted
		l.ApprovedByKind, l.ApprovedByID = &kind, nilIfEmpty(actorID)
		if approver.AuthSource == SourceSession {
			l.CreatedByUserID = nilIfEmpty(approver.UserID)
		}
		l.State = "completed"
		return store.ApproveLoginSession(ctx, tx, l)
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lockLogin reads a device login FOR UPDATE; an unknown one is ErrLoginNotFound.
func lockLogin(ctx context.Context, tx pgx.Tx, id string) (*store.LoginSession, error) {
	l, err := store.LockLoginSession(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrLoginNotFound
	}
	return l, err
}
