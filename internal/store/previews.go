package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Preview modes.
const (
	PreviewModeEmpty = "empty"
	PreviewModeClone = "clone"
)

// Preview is a disposable database of a project, with its own login role.
type Preview struct {
	ID                string
	OrganizationID    string
	ProjectID         string
	ClusterID         string
	Name              string
	Mode              string
	State             string
	TTLExpiresAt      time.Time
	DatabaseName      string
	RoleName          string
	PasswordEnc       []byte
	SourceKind        *string
	SourceDatabase    *string
	SourceBackupKey   *string
	SourceRestoreTime *time.Time
	CloneStrategy     *string
	CloneDurationMS   *int64
	LastError         *string
	LatestJobID       *string
	DeleteReason      *string
	// Protected previews never expire (the TTL reaper skips them).
	Protected bool
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time
}

const previewColumns = `id, organization_id, project_id, cluster_id, name, mode, state, ttl_expires_at,
	database_name, role_name, password_enc, source_kind, source_database, source_backup_key,
	source_restore_time, clone_strategy, clone_duration_ms, last_error, latest_job_id, delete_reason,
	protected, created_at, updated_at, deleted_at`

func scanPreview(row pgx.Row) (*Preview, error) {
	return scanOne(row, func(p *Preview) []any {
		return []any{&p.ID, &p.OrganizationID, &p.ProjectID, &p.ClusterID, &p.Name, &p.Mode, &p.State,
			&p.TTLExpiresAt, &p.DatabaseName, &p.RoleName, &p.PasswordEnc, &p.SourceKind, &p.SourceDatabase,
			&p.SourceBackupKey, &p.SourceRestoreTime, &p.CloneStrategy, &p.CloneDurationMS, &p.LastError,
			&p.LatestJobID, &p.DeleteReason, &p.Protected, &p.CreatedAt, &p.UpdatedAt, &p.DeletedAt}
	})
}

func collectPreviews(rows pgx.Rows, err error) ([]*Preview, error) {
	return collect(rows, err, scanPreview)
}

// InsertPreview writes a new preview row.
func InsertPreview(ctx context.Context, db DB, p *Preview) error {
	return db.QueryRow(ctx, `INSERT INTO preview_databases (id, organization_id, project_id, cluster_id, name, mode,
			state, ttl_expires_at, database_name, role_name, password_enc, source_kind, source_database, latest_job_id, protected)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		RETURNING created_at, updated_at`,
		p.ID, p.OrganizationID, p.ProjectID, p.ClusterID, p.Name, p.Mode, p.State, p.TTLExpiresAt,
		p.DatabaseName, p.RoleName, p.PasswordEnc, p.SourceKind, p.SourceDatabase, p.LatestJobID, p.Protected,
	).Scan(&p.CreatedAt, &p.UpdatedAt)
}

// GetPreview reads a preview of an organization that is not yet deleted.
func GetPreview(ctx context.Context, db DB, orgID, id string) (*Preview, error) {
	return scanPreview(db.QueryRow(ctx, `SELECT `+previewColumns+` FROM preview_databases
		WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL`, id, orgID))
}

// GetPreviewAny reads a preview by id, deleted or not (job handlers).
func GetPreviewAny(ctx context.Context, db DB, id string) (*Preview, error) {
	return scanPreview(db.QueryRow(ctx, `SELECT `+previewColumns+` FROM preview_databases WHERE id = $1`, id))
}

// LockPreview reads a live preview FOR UPDATE inside a transaction.
func LockPreview(ctx context.Context, tx pgx.Tx, orgID, id string) (*Preview, error) {
	return scanPreview(tx.QueryRow(ctx, `SELECT `+previewColumns+` FROM preview_databases
		WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, orgID))
}

// ListPreviews returns a project's previews until their deletion completes, oldest first.
func ListPreviews(ctx context.Context, db DB, projectID string) ([]*Preview, error) {
	rows, err := db.Query(ctx, `SELECT `+previewColumns+` FROM preview_databases
		WHERE project_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`, projectID)
	return collectPreviews(rows, err)
}

// CountLivePreviews counts a project's previews that count against the plan
// (every state except deleting).
func CountLivePreviews(ctx context.Context, db DB, projectID string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM preview_databases
		WHERE project_id = $1 AND deleted_at IS NULL AND state <> 'deleting'`, projectID).Scan(&n)
	return n, err
}

// PreviewNameHolder returns the id of the live preview of a project called
// name (case-insensitively), or "".
func PreviewNameHolder(ctx context.Context, db DB, projectID, name string) (string, error) {
	var id string
	err := db.QueryRow(ctx, `SELECT id FROM preview_databases WHERE project_id = $1 AND lower(name) = lower($2)
		AND deleted_at IS NULL AND state <> 'deleting'`, projectID, name).Scan(&id)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return id, err
}

// LockDuePreviews locks up to limit live previews whose TTL ran out at now,
// skipping rows another transaction holds.
func LockDuePreviews(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*Preview, error) {
	rows, err := tx.Query(ctx, `SELECT `+previewColumns+` FROM preview_databases
		WHERE deleted_at IS NULL AND state <> 'deleting' AND ttl_expires_at <= $1 AND NOT protected
		ORDER BY ttl_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	return collectPreviews(rows, err)
}

// SetPreviewTTL moves a preview's expiry.
func SetPreviewTTL(ctx context.Context, db DB, id string, expires time.Time) error {
	_, err := db.Exec(ctx, `UPDATE preview_databases SET ttl_expires_at = $2, updated_at = now() WHERE id = $1`, id, expires)
	return err
}

// SetPreviewLastError records why a live preview's last job failed.
func SetPreviewLastError(ctx context.Context, db DB, id, msg string) error {
	_, err := db.Exec(ctx, `UPDATE preview_databases SET last_error = $2, updated_at = now() WHERE id = $1 AND deleted_at IS NULL`,
		id, msg)
	return err
}

// SetPreviewSourceTime records the point in time a preview is restored to.
func SetPreviewSourceTime(ctx context.Context, db DB, id string, t time.Time) error {
	_, err := db.Exec(ctx, `UPDATE preview_databases SET source_restore_time = $2 WHERE id = $1`, id, t)
	return err
}

// SetPreviewSourceBackup records the backup a preview is restored from.
func SetPreviewSourceBackup(ctx context.Context, db DB, id, key string) error {
	_, err := db.Exec(ctx, `UPDATE preview_databases SET source_backup_key = $2 WHERE id = $1`, id, key)
	return err
}
