package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Project is one tenant database with its owning login role.
type Project struct {
	ID                 string
	OrganizationID     string
	ClusterID          string
	Name               string
	Slug               string
	Environment        string
	AlwaysOn           bool
	State              string
	PostgresVersion    string
	DatabaseName       string
	OwnerRole          string
	RoleName           string
	PasswordEnc        []byte
	PendingPasswordEnc []byte
	GraceRole          *string
	GraceExpiresAt     *time.Time
	Provisioned        bool
	LatestJobID        *string
	LastError          *string
	CreatedAt          time.Time
	UpdatedAt          time.Time
	DeletedAt          *time.Time
}

const projectColumns = `id, organization_id, cluster_id, name, slug, environment, always_on, state,
	postgres_version, database_name, owner_role, role_name, password_enc, pending_password_enc,
	grace_role, grace_expires_at, provisioned, latest_job_id, last_error, created_at, updated_at, deleted_at`

// projectListColumns reads a list without the encrypted passwords: no list
// needs them, and a secret not read cannot leak (PasswordEnc stays nil).
const projectListColumns = `id, organization_id, cluster_id, name, slug, environment, always_on, state,
	postgres_version, database_name, owner_role, role_name, NULL::bytea, NULL::bytea,
	grace_role, grace_expires_at, provisioned, latest_job_id, last_error, created_at, updated_at, deleted_at`

func scanProject(row pgx.Row) (*Project, error) {
	return scanOne(row, func(p *Project) []any {
		return []any{&p.ID, &p.OrganizationID, &p.ClusterID, &p.Name, &p.Slug, &p.Environment, &p.AlwaysOn,
			&p.State, &p.PostgresVersion, &p.DatabaseName, &p.OwnerRole, &p.RoleName, &p.PasswordEnc,
			&p.PendingPasswordEnc, &p.GraceRole, &p.GraceExpiresAt, &p.Provisioned, &p.LatestJobID,
			&p.LastError, &p.CreatedAt, &p.UpdatedAt, &p.DeletedAt}
	})
}

// InsertProject writes a new project row.
func InsertProject(ctx context.Context, db DB, p *Project) error {
	return db.QueryRow(ctx, `INSERT INTO projects (id, organization_id, cluster_id, name, slug, environment,
			always_on, state, postgres_version, database_name, owner_role, role_name, password_enc, latest_job_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		RETURNING created_at, updated_at`,
		p.ID, p.OrganizationID, p.ClusterID, p.Name, p.Slug, p.Environment, p.AlwaysOn, p.State,
		p.PostgresVersion, p.DatabaseName, p.OwnerRole, p.RoleName, p.PasswordEnc, p.LatestJobID,
	).Scan(&p.CreatedAt, &p.UpdatedAt)
}

// GetProject reads a live (not deleted) project of an organization.
func GetProject(ctx context.Context, db DB, orgID, id string) (*Project, error) {
	return scanProject(db.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects
		WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL`, id, orgID))
}

// GetProjectAny reads a project by id, deleted or not (job handlers).
func GetProjectAny(ctx context.Context, db DB, id string) (*Project, error) {
	return scanProject(db.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = $1`, id))
}

// LockProject reads a live project FOR UPDATE inside a transaction.
func LockProject(ctx context.Context, tx pgx.Tx, orgID, id string) (*Project, error) {
	return scanProject(tx.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects
		WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, orgID))
}

// ProjectPage selects a page of a project list in its (created_at, id) order.
type ProjectPage struct {
	// AfterCreated and AfterID: only projects after this one (zero = from the start).
	AfterCreated time.Time
	AfterID      string
	Limit        int // 0 = no limit
}

// ListProjectsPage returns an organization's live projects, oldest first;
// with onlyID set, just that one (project-scoped keys). pg picks the page:
// from a keyset position, at most Limit rows (the zero page is all of them).
func ListProjectsPage(ctx context.Context, db DB, orgID, onlyID string, pg ProjectPage) ([]*Project, error) {
	var limit *int
	if pg.Limit > 0 {
		limit = &pg.Limit
	}
	rows, err := db.Query(ctx, `SELECT `+projectListColumns+` FROM projects
		WHERE organization_id = $1 AND deleted_at IS NULL AND ($2 = '' OR id = $2)
		  AND ($3 = '' OR (created_at, id) > ($4, $3))
		ORDER BY created_at, id LIMIT $5`, orgID, onlyID, pg.AfterID, pg.AfterCreated, limit)
	return collect(rows, err, scanProject)
}

// SlugTaken reports which live project of the organization holds slug, if any.
func SlugTaken(ctx context.Context, db DB, orgID, slug string) (string, error) {
	var id string
	err := db.QueryRow(ctx, `SELECT id FROM projects WHERE organization_id = $1 AND slug = $2 AND deleted_at IS NULL`,
		orgID, slug).Scan(&id)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return id, err
}

// SlugsWithPrefix lists live slugs equal to prefix or starting with prefix + "-".
func SlugsWithPrefix(ctx context.Context, db DB, orgID, prefix string) (map[string]bool, error) {
	rows, err := db.Query(ctx, `SELECT slug FROM projects WHERE organization_id = $1 AND deleted_at IS NULL
		AND (slug = $2 OR starts_with(slug, $2 || '-'))`, orgID, prefix)
	if err != nil {
		return nil, err
	}
	slugs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(slugs))
	for _, s := range slugs {
		out[s] = true
	}
	return out, nil
}

// CountProjectsByCluster counts live projects per cluster (placement).
func CountProjectsByCluster(ctx context.Context, db DB) (map[string]int, error) {
	rows, err := db.Query(ctx, `SELECT cluster_id, count(*) FROM projects WHERE deleted_at IS NULL GROUP BY cluster_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// SetProjectLastError records why the project's last job failed.
func SetProjectLastError(ctx context.Context, db DB, id, msg string) error {
	_, err := db.Exec(ctx, `UPDATE projects SET last_error = $2, updated_at = now() WHERE id = $1`, id, msg)
	return err
}

// SetProjectLatestJob points the project at the job now working on it.
func SetProjectLatestJob(ctx context.Context, db DB, id, jobID string) error {
	_, err := db.Exec(ctx, `UPDATE projects SET latest_job_id = $2, updated_at = now() WHERE id = $1`, id, jobID)
	return err
}

// UpdateProjectSettings writes environment and always_on and returns the new updated_at.
func UpdateProjectSettings(ctx context.Context, db DB, id, env string, alwaysOn bool) (time.Time, error) {
	var at time.Time
	err := db.QueryRow(ctx, `UPDATE projects SET environment = $2, always_on = $3, updated_at = now()
		WHERE id = $1 RETURNING updated_at`, id, env, alwaysOn).Scan(&at)
	return at, err
}

// SetPendingPassword keeps a rotation's new password (encrypted) so a retry reuses it.
func SetPendingPassword(ctx context.Context, db DB, id string, enc []byte) error {
	_, err := db.Exec(ctx, `UPDATE projects SET pending_password_enc = $2 WHERE id = $1`, id, enc)
	return err
}

// LockPendingPassword reads the current login and the pending password FOR UPDATE.
func LockPendingPassword(ctx context.Context, tx pgx.Tx, id string) (role string, pending []byte, err error) {
	err = tx.QueryRow(ctx, `SELECT role_name, pending_password_enc FROM projects WHERE id = $1 FOR UPDATE`, id).
		Scan(&role, &pending)
	return role, pending, err
}

// CommitPendingPassword makes the pending password current. With newRole
// set, the old login enters a grace window that ends at graceExpires.
func CommitPendingPassword(ctx context.Context, db DB, id, newRole string, graceExpires time.Time) error {
	if newRole == "" {
		_, err := db.Exec(ctx, `UPDATE projects SET password_enc = pending_password_enc, pending_password_enc = NULL,
			last_error = NULL, updated_at = now() WHERE id = $1`, id)
		return err
	}
	_, err := db.Exec(ctx, `UPDATE projects SET password_enc = pending_password_enc, pending_password_enc = NULL,
		grace_role = role_name, grace_expires_at = $3, role_name = $2, last_error = NULL, updated_at = now()
		WHERE id = $1`, id, newRole, graceExpires)
	return err
}

// ClearGrace forgets the grace login (a new rotation retired it early).
func ClearGrace(ctx context.Context, db DB, id string) error {
	_, err := db.Exec(ctx, `UPDATE projects SET grace_role = NULL, grace_expires_at = NULL WHERE id = $1`, id)
	return err
}

// EndGrace forgets the grace login role once retired, if it is still the grace login.
func EndGrace(ctx context.Context, db DB, id, role string) error {
	_, err := db.Exec(ctx, `UPDATE projects SET grace_role = NULL, grace_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND grace_role = $2`, id, role)
	return err
}
