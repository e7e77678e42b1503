package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backup verification states and kinds.
const (
	VerifyPending    = "pending"
	VerifyVerified   = "verified"
	VerifyFailed     = "failed"
	VerifyUnverified = "unverified"

	BackupKindManual     = "manual"
	BackupKindScheduled  = "scheduled"
	BackupKindNightly    = "nightly"
	BackupKindPreRestore = "pre_restore"
	BackupKindPreCutover = "pre_cutover"
)

// Backup is a logical dump of a project database in the blob store.
type Backup struct {
	ID                string
	OrganizationID    string
	ProjectID         string
	BackupKey         string
	DatabaseName      string
	Label             *string
	Kind              string
	State             string
	SizeBytes         int64
	ChecksumSHA256    *string
	VerificationState string
	VerifiedAt        *time.Time
	VerificationError *string
	TableCounts       map[string]int64
	ExpiresAt         *time.Time
	JobID             *string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

const backupColumns = `id, organization_id, project_id, backup_key, database_name, label, kind, state, size_bytes,
	checksum_sha256, verification_state, verified_at, verification_error, table_counts, expires_at, job_id,
	created_at, updated_at`

func scanBackup(row pgx.Row) (*Backup, error) {
	var b Backup
	var counts []byte
	err := row.Scan(&b.ID, &b.OrganizationID, &b.ProjectID, &b.BackupKey, &b.DatabaseName, &b.Label, &b.Kind, &b.State,
		&b.SizeBytes, &b.ChecksumSHA256, &b.VerificationState, &b.VerifiedAt, &b.VerificationError, &counts,
		&b.ExpiresAt, &b.JobID, &b.CreatedAt, &b.UpdatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	if len(counts) > 0 {
		_ = json.Unmarshal(counts, &b.TableCounts)
	}
	return &b, nil
}

func collectBackups(rows pgx.Rows, err error) ([]*Backup, error) {
	return collect(rows, err, scanBackup)
}

// InsertBackup writes a new backup record (state running).
func InsertBackup(ctx context.Context, db DB, b *Backup) error {
	return db.QueryRow(ctx, `INSERT INTO backups (id, organization_id, project_id, backup_key, database_name, label,
			kind, state, verification_state, expires_at, job_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at, updated_at`,
		b.ID, b.OrganizationID, b.ProjectID, b.BackupKey, b.DatabaseName, b.Label, b.Kind, b.State,
		b.VerificationState, b.ExpiresAt, b.JobID).Scan(&b.CreatedAt, &b.UpdatedAt)
}

// GetBackup reads a backup by id.
func GetBackup(ctx context.Context, db DB, id string) (*Backup, error) {
	return scanBackup(db.QueryRow(ctx, `SELECT `+backupColumns+` FROM backups WHERE id = $1`, id))
}

// GetBackupByKey reads a project's backup by its key.
func GetBackupByKey(ctx context.Context, db DB, projectID, key string) (*Backup, error) {
	return scanBackup(db.QueryRow(ctx, `SELECT `+backupColumns+` FROM backups WHERE project_id = $1 AND backup_key = $2`,
		projectID, key))
}

// ListBackups returns a project's backups, newest first.
func ListBackups(ctx context.Context, db DB, projectID string) ([]*Backup, error) {
	return collectBackups(db.Query(ctx, `SELECT `+backupColumns+` FROM backups WHERE project_id = $1
		ORDER BY created_at DESC, id DESC`, projectID))
}

// FinishBackupDump records the artifact of a dump (size, checksum, counts).
func FinishBackupDump(ctx context.Context, db DB, id string, size int64, sum string, counts map[string]int64) error {
	b, _ := json.Marshal(counts)
	_, err := db.Exec(ctx, `UPDATE backups SET size_bytes = $2, checksum_sha256 = $3, table_counts = $4, updated_at = now()
		WHERE id = $1`, id, size, sum, b)
	return err
}

// LockExpiredBackups returns backups whose retention ended at now and
// which still hold a file.
func LockExpiredBackups(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*Backup, error) {
	return collectBackups(tx.Query(ctx, `SELECT `+backupColumns+` FROM backups
		WHERE expires_at <= $1 AND state IN ('completed', 'failed')
		  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.type = 'project.backup_delete' AND j.payload->>'backup_id' = backups.id
		      AND j.state IN ('pending', 'running'))
		ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit))
}

// BackupSchedule is a project's daily backup schedule (named default).
type BackupSchedule struct {
	ID             string
	OrganizationID string
	ProjectID      string
	CronHour       int
	CronMinute     int
	IsActive       bool
	Label          string
	RetentionDays  int
	LastJobID      *string
	LastRunAt      *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const scheduleColumns = `id, organization_id, project_id, cron_hour, cron_minute, is_active, label, retention_days,
	last_job_id, last_run_at, created_at, updated_at`

func scanSchedule(row pgx.Row) (*BackupSchedule, error) {
	return scanOne(row, func(s *BackupSchedule) []any {
		return []any{&s.ID, &s.OrganizationID, &s.ProjectID, &s.CronHour, &s.CronMinute, &s.IsActive, &s.Label,
			&s.RetentionDays, &s.LastJobID, &s.LastRunAt, &s.CreatedAt, &s.UpdatedAt}
	})
}

// UpsertBackupSchedule creates or replaces a project's schedule.
func UpsertBackupSchedule(ctx context.Context, db DB, s *BackupSchedule) (*BackupSchedule, error) {
	return scanSchedule(db.QueryRow(ctx, `INSERT INTO backup_schedules (id, organization_id, project_id, cron_hour,
			cron_minute, is_active, label, retention_days)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (project_id) DO UPDATE SET cron_hour = EXCLUDED.cron_hour, cron_minute = EXCLUDED.cron_minute,
			is_active = EXCLUDED.is_active, label = EXCLUDED.label, retention_days = EXCLUDED.retention_days,
			updated_at = now()
		RETURNING `+scheduleColumns, s.ID, s.OrganizationID, s.ProjectID, s.CronHour, s.CronMinute, s.IsActive,
		s.Label, s.RetentionDays))
}

// ListBackupSchedules returns a project's schedules (zero or one).
func ListBackupSchedules(ctx context.Context, db DB, projectID string) ([]*BackupSchedule, error) {
	rows, err := db.Query(ctx, `SELECT `+scheduleColumns+` FROM backup_schedules WHERE project_id = $1`, projectID)
	return collect(rows, err, scanSchedule)
}

// LockActiveSchedules returns every active schedule of a live, ready project.
func LockActiveSchedules(ctx context.Context, tx pgx.Tx) ([]*BackupSchedule, error) {
	rows, err := tx.Query(ctx, `SELECT `+prefixed("s.", scheduleColumns)+` FROM backup_schedules s
		JOIN projects p ON p.id = s.project_id
		WHERE s.is_active AND p.deleted_at IS NULL AND p.state = 'ready' FOR UPDATE OF s SKIP LOCKED`)
	return collect(rows, err, scanSchedule)
}

func prefixed(prefix, cols string) string {
	var out []byte
	start := true
	for i := 0; i < len(cols); i++ {
		ch := cols[i]
		if start && ch != ' ' && ch != '\n' && ch != '\t' {
			out = append(out, prefix...)
			start = false
		}
		out = append(out, ch)
		if ch == ',' {
			start = true
		}
	}
	return string(out)
}

// RestorePoint is a named label for a restore source.
type RestorePoint struct {
	ID                 string
	OrganizationID     string
	ProjectID          string
	Label              string
	Kind               string
	BackupID           *string
	BackupKey          *string
	BackupState        *string
	PITRTime           *time.Time
	Note               *string
	CreatedByActorKind string
	CreatedByActorID   *string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const restorePointSelect = `SELECT r.id, r.organization_id, r.project_id, r.label, r.kind, r.backup_id, b.backup_key,
	b.state, r.pitr_time, r.note, r.created_by_actor_kind, r.created_by_actor_id, r.created_at, r.updated_at
	FROM restore_points r LEFT JOIN backups b ON b.id = r.backup_id`

func scanRestorePoint(row pgx.Row) (*RestorePoint, error) {
	return scanOne(row, func(r *RestorePoint) []any {
		return []any{&r.ID, &r.OrganizationID, &r.ProjectID, &r.Label, &r.Kind, &r.BackupID, &r.BackupKey, &r.BackupState,
			&r.PITRTime, &r.Note, &r.CreatedByActorKind, &r.CreatedByActorID, &r.CreatedAt, &r.UpdatedAt}
	})
}

// InsertRestorePoint writes a restore point.
func InsertRestorePoint(ctx context.Context, db DB, r *RestorePoint) error {
	_, err := db.Exec(ctx, `INSERT INTO restore_points (id, organization_id, project_id, label, kind, backup_id, pitr_time,
			note, created_by_actor_kind, created_by_actor_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, r.ID, r.OrganizationID, r.ProjectID, r.Label, r.Kind,
		r.BackupID, r.PITRTime, r.Note, r.CreatedByActorKind, r.CreatedByActorID)
	return err
}

// GetRestorePoint reads a live restore point of a project.
func GetRestorePoint(ctx context.Context, db DB, projectID, id string) (*RestorePoint, error) {
	return scanRestorePoint(db.QueryRow(ctx, restorePointSelect+` WHERE r.project_id = $1 AND r.id = $2 AND r.deleted_at IS NULL`,
		projectID, id))
}

// ListRestorePoints returns a project's live restore points, newest first.
func ListRestorePoints(ctx context.Context, db DB, projectID string) ([]*RestorePoint, error) {
	rows, err := db.Query(ctx, restorePointSelect+` WHERE r.project_id = $1 AND r.deleted_at IS NULL
		ORDER BY r.created_at DESC, r.id DESC`, projectID)
	return collect(rows, err, scanRestorePoint)
}

// DeleteRestorePoint soft-deletes a restore point; false when there was none.
func DeleteRestorePoint(ctx context.Context, db DB, projectID, id string) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE restore_points SET deleted_at = now(), updated_at = now()
		WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL`, projectID, id)
	return tag.RowsAffected() == 1, err
}

// Export is a downloadable dump of a project.
type Export struct {
	ID             string
	OrganizationID string
	ProjectID      string
	ObjectKey      string
	DatabaseName   string
	State          string
	SizeBytes      int64
	ChecksumSHA256 *string
	JobID          *string
	ExpiresAt      time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const exportColumns = `id, organization_id, project_id, object_key, database_name, state, size_bytes, checksum_sha256,
	job_id, expires_at, created_at, updated_at`

func scanExport(row pgx.Row) (*Export, error) {
	return scanOne(row, func(e *Export) []any {
		return []any{&e.ID, &e.OrganizationID, &e.ProjectID, &e.ObjectKey, &e.DatabaseName, &e.State, &e.SizeBytes,
			&e.ChecksumSHA256, &e.JobID, &e.ExpiresAt, &e.CreatedAt, &e.UpdatedAt}
	})
}

// InsertExport writes a new export (state running).
func InsertExport(ctx context.Context, db DB, e *Export) error {
	return db.QueryRow(ctx, `INSERT INTO project_exports (id, organization_id, project_id, object_key, database_name,
			state, job_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at, updated_at`,
		e.ID, e.OrganizationID, e.ProjectID, e.ObjectKey, e.DatabaseName, e.State, e.JobID, e.ExpiresAt).
		Scan(&e.CreatedAt, &e.UpdatedAt)
}

// GetExport reads a project's export.
func GetExport(ctx context.Context, db DB, projectID, id string) (*Export, error) {
	return scanExport(db.QueryRow(ctx, `SELECT `+exportColumns+` FROM project_exports WHERE project_id = $1 AND id = $2`,
		projectID, id))
}

// ListExports returns a project's exports, newest first.
func ListExports(ctx context.Context, db DB, projectID string) ([]*Export, error) {
	rows, err := db.Query(ctx, `SELECT `+exportColumns+` FROM project_exports WHERE project_id = $1
		ORDER BY created_at DESC, id DESC`, projectID)
	return collect(rows, err, scanExport)
}

// ImportUpload is a one-PUT upload slot for an import.
type ImportUpload struct {
	ObjectKey      string
	OrganizationID string
	ProjectID      string
	MaxBytes       int64
	SizeBytes      *int64
	ChecksumSHA256 *string
	CompletedAt    *time.Time
	ExpiresAt      time.Time
}

// InsertImportUpload writes an upload slot.
func InsertImportUpload(ctx context.Context, db DB, u *ImportUpload) error {
	_, err := db.Exec(ctx, `INSERT INTO import_uploads (object_key, organization_id, project_id, max_bytes, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, u.ObjectKey, u.OrganizationID, u.ProjectID, u.MaxBytes, u.ExpiresAt)
	return err
}

// GetImportUpload reads a project's upload slot.
func GetImportUpload(ctx context.Context, db DB, projectID, key string) (*ImportUpload, error) {
	var u ImportUpload
	err := db.QueryRow(ctx, `SELECT object_key, organization_id, project_id, max_bytes, size_bytes, checksum_sha256,
			completed_at, expires_at FROM import_uploads WHERE project_id = $1 AND object_key = $2`, projectID, key).
		Scan(&u.ObjectKey, &u.OrganizationID, &u.ProjectID, &u.MaxBytes, &u.SizeBytes, &u.ChecksumSHA256,
			&u.CompletedAt, &u.ExpiresAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// CompleteImportUpload records a finished upload; false when the slot was
// already used.
func CompleteImportUpload(ctx context.Context, db DB, key string, size int64, sum string) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE import_uploads SET size_bytes = $2, checksum_sha256 = $3, completed_at = now()
		WHERE object_key = $1 AND completed_at IS NULL`, key, size, sum)
	return tag.RowsAffected() == 1, err
}

// ResetBackupVerification clears an earlier attempt's verification outcome.
func ResetBackupVerification(ctx context.Context, db DB, id string) error {
	_, err := db.Exec(ctx, `UPDATE backups SET verification_state = 'pending', verification_error = NULL WHERE id = $1`, id)
	return err
}

// FailBackupVerification records why a backup did not verify.
func FailBackupVerification(ctx context.Context, db DB, id, msg string) error {
	_, err := db.Exec(ctx, `UPDATE backups SET verification_state = 'failed', verification_error = $2,
		updated_at = now() WHERE id = $1`, id, msg)
	return err
}

// TouchRestorePoints marks the restore points of a backup as changed (it expired).
func TouchRestorePoints(ctx context.Context, db DB, backupID string) error {
	_, err := db.Exec(ctx, `UPDATE restore_points SET updated_at = now() WHERE backup_id = $1`, backupID)
	return err
}

// SetScheduleRun records that a schedule queued job jobID at at.
func SetScheduleRun(ctx context.Context, db DB, id, jobID string, at time.Time) error {
	_, err := db.Exec(ctx, `UPDATE backup_schedules SET last_job_id = $2, last_run_at = $3, updated_at = now()
		WHERE id = $1`, id, jobID, at)
	return err
}

// SetExportArtifact records the size and checksum of a written export.
func SetExportArtifact(ctx context.Context, db DB, id string, size int64, sum string) error {
	_, err := db.Exec(ctx, `UPDATE project_exports SET size_bytes = $2, checksum_sha256 = $3, updated_at = now()
		WHERE id = $1`, id, size, sum)
	return err
}

// ListExpiredExports returns finished exports past their expiry at now.
func ListExpiredExports(ctx context.Context, db DB, now time.Time, limit int) ([]*Export, error) {
	rows, err := db.Query(ctx, `SELECT `+exportColumns+` FROM project_exports
		WHERE expires_at <= $1 AND state IN ('completed', 'failed') LIMIT $2`, now, limit)
	return collect(rows, err, scanExport)
}

// ProjectArtifactKeys lists the stored files of a project: live backups and
// exports, and uploads.
func ProjectArtifactKeys(ctx context.Context, db DB, projectID string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT backup_key FROM backups WHERE project_id = $1 AND state <> 'expired'
		UNION ALL SELECT object_key FROM project_exports WHERE project_id = $1 AND state <> 'expired'
		UNION ALL SELECT object_key FROM import_uploads WHERE project_id = $1`, projectID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
