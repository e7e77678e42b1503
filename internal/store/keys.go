package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListAPIKeys returns every key of an organization, newest first, revoked
// and expired ones included.
func ListAPIKeys(ctx context.Context, db DB, orgID string) ([]*APIKey, error) {
	rows, err := db.Query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE organization_id = $1
		ORDER BY created_at DESC, id DESC`, orgID)
	return collect(rows, err, scanKey)
}

// LockAPIKey reads one key of an organization FOR UPDATE.
func LockAPIKey(ctx context.Context, tx pgx.Tx, orgID, id string) (*APIKey, error) {
	return scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE id = $1 AND organization_id = $2 FOR UPDATE`, id, orgID))
}

// RevokeAPIKey sets revoked_at once; revoking again keeps the first time.
func RevokeAPIKey(ctx context.Context, db DB, id string) (time.Time, error) {
	var at time.Time
	err := db.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 RETURNING revoked_at`, id).Scan(&at)
	return at, notFound(err)
}

// UpdateOrganization changes the name and/or billing e-mail (nil = unchanged,
// "" e-mail = cleared).
func UpdateOrganization(ctx context.Context, db DB, id string, name, billingEmail *string) (*Organization, error) {
	clearEmail := billingEmail != nil && *billingEmail == ""
	if clearEmail {
		billingEmail = nil
	}
	return scanOrg(db.QueryRow(ctx, `UPDATE organizations SET
			name = coalesce($2, name),
			billing_email = CASE WHEN $4 THEN NULL ELSE coalesce($3, billing_email) END,
			updated_at = now()
		WHERE id = $1 RETURNING `+orgColumns, id, name, billingEmail, clearEmail))
}

// GetOrganizationByClerkID finds the organization mapped to an issuer's organization id.
func GetOrganizationByClerkID(ctx context.Context, db DB, clerkID string) (*Organization, error) {
	return scanOrg(db.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE clerk_organization_id = $1`, clerkID))
}

// InsertClerkOrganization creates an organization mapped to an issuer's
// organization; it returns ErrNotFound-free unique violations to the caller
// (slug or clerk id taken) so it can retry or re-read.
func InsertClerkOrganization(ctx context.Context, db DB, o *Organization) error {
	return db.QueryRow(ctx, `INSERT INTO organizations (id, name, slug, billing_plan, clerk_organization_id, clerk_organization_slug)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at, updated_at`,
		o.ID, o.Name, o.Slug, o.BillingPlan, o.ClerkOrganizationID, o.ClerkOrganizationSlug).Scan(&o.CreatedAt, &o.UpdatedAt)
}

// LoginSession is a device login (the CLI's `capydb login`).
type LoginSession struct {
	ID              string
	PollTokenHash   []byte
	State           string // pending, completed
	KeyName         string
	DeviceName      *string
	Source          string
	Scopes          []string
	KeyExpiresAt    *time.Time
	ExpiresAt       time.Time
	OrganizationID  *string
	GrantedScopes   []string
	ApprovedByKind  *string
	ApprovedByID    *string
	CreatedByUserID *string
	AuthorizedAt    *time.Time
	APIKeyID        *string
	DeliveredAt     *time.Time
	CreatedAt       time.Time
}

const loginColumns = `id, poll_token_hash, state, key_name, device_name, source, scopes, key_expires_at,
	expires_at, organization_id, granted_scopes, approved_by_kind, approved_by_id, created_by_user_id,
	authorized_at, api_key_id, delivered_at, created_at`

func scanLogin(row pgx.Row) (*LoginSession, error) {
	return scanOne(row, func(l *LoginSession) []any {
		return []any{&l.ID, &l.PollTokenHash, &l.State, &l.KeyName, &l.DeviceName, &l.Source, &l.Scopes,
			&l.KeyExpiresAt, &l.ExpiresAt, &l.OrganizationID, &l.GrantedScopes, &l.ApprovedByKind, &l.ApprovedByID,
			&l.CreatedByUserID, &l.AuthorizedAt, &l.APIKeyID, &l.DeliveredAt, &l.CreatedAt}
	})
}

// InsertLoginSession stores a new pending device login.
func InsertLoginSession(ctx context.Context, db DB, l *LoginSession) error {
	if l.Scopes == nil {
		l.Scopes = []string{}
	}
	return db.QueryRow(ctx, `INSERT INTO cli_login_sessions (id, poll_token_hash, key_name, device_name, source,
			scopes, key_expires_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING state, created_at`,
		l.ID, l.PollTokenHash, l.KeyName, l.DeviceName, l.Source, l.Scopes, l.KeyExpiresAt, l.ExpiresAt,
	).Scan(&l.State, &l.CreatedAt)
}

// GetLoginSession reads a device login by id.
func GetLoginSession(ctx context.Context, db DB, id string) (*LoginSession, error) {
	return scanLogin(db.QueryRow(ctx, `SELECT `+loginColumns+` FROM cli_login_sessions WHERE id = $1`, id))
}

// LockLoginSession reads a device login FOR UPDATE.
func LockLoginSession(ctx context.Context, tx pgx.Tx, id string) (*LoginSession, error) {
	return scanLogin(tx.QueryRow(ctx, `SELECT `+loginColumns+` FROM cli_login_sessions WHERE id = $1 FOR UPDATE`, id))
}

// ApproveLoginSession marks a pending session completed for an organization.
func ApproveLoginSession(ctx context.Context, db DB, l *LoginSession) error {
	return db.QueryRow(ctx, `UPDATE cli_login_sessions SET state = 'completed', organization_id = $2,
			granted_scopes = $3, approved_by_kind = $4, approved_by_id = $5, created_by_user_id = $6,
			authorized_at = now()
		WHERE id = $1 RETURNING authorized_at`,
		l.ID, l.OrganizationID, l.GrantedScopes, l.ApprovedByKind, l.ApprovedByID, l.CreatedByUserID,
	).Scan(&l.AuthorizedAt)
}

// MarkLoginDelivered records the key the session handed out (once).
func MarkLoginDelivered(ctx context.Context, db DB, id, keyID string) error {
	_, err := db.Exec(ctx, `UPDATE cli_login_sessions SET api_key_id = $2, delivered_at = now() WHERE id = $1`, id, keyID)
	return err
}

// DeleteExpiredLoginSessions forgets device logins a day after they expired.
func DeleteExpiredLoginSessions(ctx context.Context, db DB) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM cli_login_sessions WHERE expires_at < now() - interval '1 day'`)
	return tag.RowsAffected(), err
}

// StoredAuditEvent is an audit row as read back.
type StoredAuditEvent struct {
	AuditEvent
	CreatedAt time.Time
}

// ListProjectAuditEvents returns a project's audit events, newest first.
func ListProjectAuditEvents(ctx context.Context, db DB, orgID, projectID string, limit int) ([]*StoredAuditEvent, error) {
	rows, err := db.Query(ctx, `SELECT id, organization_id, project_id, action, actor_kind, actor_id, metadata, created_at
		FROM audit_events WHERE organization_id = $1 AND project_id = $2
		ORDER BY created_at DESC, id DESC LIMIT $3`, orgID, projectID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*StoredAuditEvent{}
	for rows.Next() {
		var e StoredAuditEvent
		var meta []byte
		if err := rows.Scan(&e.ID, &e.OrganizationID, &e.ProjectID, &e.Action, &e.ActorKind, &e.ActorID, &meta, &e.CreatedAt); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(meta, &e.Metadata); err != nil || e.Metadata == nil {
			e.Metadata = map[string]any{}
		}
		out = append(out, &e)
	}
	return out, rows.Err()
}

// PreviewProject returns the project of a live preview of the organization
// (the access middleware's tenancy check for {previewID} paths).
func PreviewProject(ctx context.Context, db DB, orgID, previewID string) (string, error) {
	var projectID string
	err := db.QueryRow(ctx, `SELECT project_id FROM preview_databases
		WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL`, previewID, orgID).Scan(&projectID)
	return projectID, notFound(err)
}
