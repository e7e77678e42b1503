package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Project states.
const (
	ProjectProvisioning = "provisioning"
	ProjectReady        = "ready"
	ProjectRestoring    = "restoring"
	ProjectImporting    = "importing"
	ProjectDeleting     = "deleting"
	ProjectFailed       = "failed"
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

func scanProject(row pgx.Row) (*Project, error) {
	var p Project
	err := row.Scan(&p.ID, &p.OrganizationID, &p.ClusterID, &p.Name, &p.Slug, &p.Environment, &p.AlwaysOn,
		&p.State, &p.PostgresVersion, &p.DatabaseName, &p.OwnerRole, &p.RoleName, &p.PasswordEnc,
		&p.PendingPasswordEnc, &p.GraceRole, &p.GraceExpiresAt, &p.Provisioned, &p.LatestJobID,
		&p.LastError, &p.CreatedAt, &p.UpdatedAt, &p.DeletedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &p, nil
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

// ListProjects returns an organization's live projects, oldest first; with
// onlyID set, just that one (project-scoped keys).
func ListProjects(ctx context.Context, db DB, orgID, onlyID string) ([]*Project, error) {
	return ListProjectsPage(ctx, db, orgID, onlyID, ProjectPage{})
}

// ProjectPage selects a page of a project list in its (created_at, id) order.
type ProjectPage struct {
	// AfterCreated and AfterID: only projects after this one (zero = from the start).
	AfterCreated time.Time
	AfterID      string
	Limit        int // 0 = no limit
}

// ListProjectsPage is ListProjects from a keyset position, at most Limit rows.
func ListProjectsPage(ctx context.Context, db DB, orgID, onlyID string, pg ProjectPage) ([]*Project, error) {
	var limit *int
	if pg.Limit > 0 {
		limit = &pg.Limit
	}
	rows, err := db.Query(ctx, `SELECT `+projectColumns+` FROM projects
		WHERE organization_id = $1 AND deleted_at IS NULL AND ($2 = '' OR id = $2)
		  AND ($3 = '' OR (created_at, id) > ($4, $3))
		ORDER BY created_at, id LIMIT $5`, orgID, onlyID, pg.AfterID, pg.AfterCreated, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Project{}
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
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
