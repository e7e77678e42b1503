package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// EphemeralOrgID is the operator-owned organization that holds unclaimed
// ephemeral databases (PRODUCT.md §24).
const EphemeralOrgID = "org_ephemeral"

// Ephemeral is a row of ephemeral_databases.
type Ephemeral struct {
	ProjectID   string
	OwnerKey    string
	ExpiresAt   time.Time
	ClaimedAt   *time.Time
	DestroyedAt *time.Time
	CreatedAt   time.Time
}

const ephemeralColumns = `project_id, owner_key, expires_at, claimed_at, destroyed_at, created_at`

func scanEphemeral(row pgx.Row) (*Ephemeral, error) {
	e := &Ephemeral{}
	err := row.Scan(&e.ProjectID, &e.OwnerKey, &e.ExpiresAt, &e.ClaimedAt, &e.DestroyedAt, &e.CreatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return e, nil
}

// EnsureEphemeralOrg creates the ephemeral organization (plan vibe) once.
func EnsureEphemeralOrg(ctx context.Context, db DB) (*Organization, error) {
	if _, err := db.Exec(ctx, `INSERT INTO organizations (id, name, slug, billing_plan)
		VALUES ($1, 'Ephemeral databases', 'capydb-ephemeral', 'vibe') ON CONFLICT (id) DO NOTHING`, EphemeralOrgID); err != nil {
		return nil, err
	}
	return GetOrganization(ctx, db, EphemeralOrgID)
}

// InsertEphemeral records an ephemeral database.
func InsertEphemeral(ctx context.Context, db DB, projectID string, tokenHash []byte, owner string, expires time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO ephemeral_databases (project_id, claim_token_hash, owner_key, expires_at)
		VALUES ($1, $2, $3, $4)`, projectID, tokenHash, owner, expires)
	return err
}

// OpenEphemeral lists the unclaimed, undestroyed ephemeral databases of an
// owner, oldest first, after taking a transaction lock on the owner so that
// concurrent creates count each other.
func OpenEphemeral(ctx context.Context, tx pgx.Tx, owner string) ([]*Ephemeral, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capydb.ephemeral:' || $1))`, owner); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT `+ephemeralColumns+` FROM ephemeral_databases
		WHERE owner_key = $1 AND claimed_at IS NULL AND destroyed_at IS NULL ORDER BY expires_at`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Ephemeral
	for rows.Next() {
		e, err := scanEphemeral(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LockEphemeralByToken locks the live (unclaimed, undestroyed, unexpired)
// ephemeral database with this id and token hash; ErrNotFound otherwise.
func LockEphemeralByToken(ctx context.Context, tx pgx.Tx, projectID string, tokenHash []byte, now time.Time) (*Ephemeral, error) {
	return scanEphemeral(tx.QueryRow(ctx, `SELECT `+ephemeralColumns+` FROM ephemeral_databases
		WHERE project_id = $1 AND claim_token_hash = $2 AND claimed_at IS NULL AND expires_at > $3
		FOR UPDATE`, projectID, tokenHash, now))
}

// MarkEphemeralDestroyed records an early destroy or an expiry.
func MarkEphemeralDestroyed(ctx context.Context, db DB, projectID string) error {
	_, err := db.Exec(ctx, `UPDATE ephemeral_databases SET destroyed_at = coalesce(destroyed_at, now()) WHERE project_id = $1`, projectID)
	return err
}

// DueEphemeral locks the unclaimed ephemeral databases past their expiry
// that are not destroyed yet (a claim waiting on the lock then finds them
// expired: 404, never a claimed project that the reaper deletes).
func DueEphemeral(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT project_id FROM ephemeral_databases
		WHERE claimed_at IS NULL AND destroyed_at IS NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2
		FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ClaimEphemeral moves an ephemeral project, its jobs and audit events into
// orgID as an ordinary production project with the given slug.
func ClaimEphemeral(ctx context.Context, tx pgx.Tx, projectID, orgID, slug string) error {
	if _, err := tx.Exec(ctx, `UPDATE projects SET organization_id = $2, slug = $3, environment = 'production',
		always_on = true, updated_at = now() WHERE id = $1`, projectID, orgID, slug); err != nil {
		return err
	}
	for _, table := range []string{"jobs", "audit_events"} {
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET organization_id = $2 WHERE project_id = $1`, projectID, orgID); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE ephemeral_databases SET claimed_at = now(), claimed_by_org = $2 WHERE project_id = $1`, projectID, orgID)
	return err
}
