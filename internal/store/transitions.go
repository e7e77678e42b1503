package store

import (
	"strings"
	"time"

	"context"

	"github.com/jackc/pgx/v5"
)

// The named transitions (edges in states.go). Each returns a
// *TransitionError when the row is not in a state its edge allows.

// MarkProjectReady: provisioning → ready, once its tenant exists.
func MarkProjectReady(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "project.ready", id, change{set: `provisioned = true, last_error = NULL`})
}

// MarkProjectFailed: provisioning → failed, with the reason.
func MarkProjectFailed(ctx context.Context, db DB, id, msg string) error {
	return move(ctx, db, "project.failed", id, change{set: `last_error = $4`, args: []any{msg}})
}

// RetryProjectProvision: failed → provisioning again, carried out by job jobID.
func RetryProjectProvision(ctx context.Context, db DB, id, jobID string) error {
	return move(ctx, db, "project.retry_provision", id, change{set: `latest_job_id = $4`, args: []any{jobID}})
}

// BeginProjectDelete: any live state → deleting, carried out by job jobID.
func BeginProjectDelete(ctx context.Context, db DB, id, jobID string) error {
	return move(ctx, db, "project.begin_delete", id, change{set: `latest_job_id = $4`, args: []any{jobID}})
}

// MarkProjectDeleted soft-deletes a deleting project and drops its secrets.
func MarkProjectDeleted(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "project.deleted", id, change{
		set: `deleted_at = now(), last_error = NULL, password_enc = ''::bytea, pending_password_enc = NULL`})
}

// BeginProjectRestore: ready → restoring (an overwrite restore, job jobID).
func BeginProjectRestore(ctx context.Context, db DB, id, jobID string) error {
	return move(ctx, db, "project.begin_restore", id, change{set: `latest_job_id = $4`, args: []any{jobID}})
}

// FinishProjectRestore: restoring → ready; lastError nil on success.
func FinishProjectRestore(ctx context.Context, db DB, id string, lastError *string) error {
	return move(ctx, db, "project.finish_restore", id, change{set: `last_error = $4`, args: []any{lastError}})
}

// BeginProjectImport: ready → importing (job jobID).
func BeginProjectImport(ctx context.Context, db DB, id, jobID string) error {
	return move(ctx, db, "project.begin_import", id, change{set: `latest_job_id = $4`, args: []any{jobID}})
}

// FinishProjectImport: importing → ready; lastError nil on success.
func FinishProjectImport(ctx context.Context, db DB, id string, lastError *string) error {
	return move(ctx, db, "project.finish_import", id, change{set: `last_error = $4`, args: []any{lastError}})
}

// BeginPreviewReset: ready or failed → resetting (job jobID).
func BeginPreviewReset(ctx context.Context, db DB, id, jobID string) error {
	return move(ctx, db, "preview.begin_reset", id, change{set: `latest_job_id = $4`, args: []any{jobID}})
}

// PreviewBuild is what a finished build records on its preview.
type PreviewBuild struct {
	CloneStrategy   string
	CloneDurationMS int64
	SourceKind      string
	SourceDatabase  *string
}

// MarkPreviewReady: from (provisioning or resetting, the build's own
// state) → ready, recording how it was built.
func MarkPreviewReady(ctx context.Context, db DB, id, from string, b PreviewBuild) error {
	return move(ctx, db, "preview.ready", id, change{from: []string{from},
		set: `last_error = NULL, clone_strategy = $4, clone_duration_ms = $5, source_kind = $6, source_database = $7,
			source_backup_key = NULL, source_restore_time = NULL`,
		args: []any{b.CloneStrategy, b.CloneDurationMS, b.SourceKind, b.SourceDatabase}})
}

// MarkPreviewFailed: from (provisioning or resetting) → failed, with the reason.
func MarkPreviewFailed(ctx context.Context, db DB, id, from, msg string) error {
	return move(ctx, db, "preview.failed", id, change{from: []string{from}, set: `last_error = $4`, args: []any{msg}})
}

// BeginPreviewDelete: any live state → deleting, for reason, by job jobID.
func BeginPreviewDelete(ctx context.Context, db DB, id, reason, jobID string) error {
	return move(ctx, db, "preview.begin_delete", id, change{set: `delete_reason = $4, latest_job_id = $5`,
		args: []any{reason, jobID}})
}

// MarkPreviewDeleted soft-deletes a preview and drops its secret; it returns
// the project and the recorded delete reason for the event.
func MarkPreviewDeleted(ctx context.Context, db DB, id string) (projectID string, reason *string, err error) {
	err = move(ctx, db, "preview.deleted", id, change{
		set:       `deleted_at = now(), password_enc = ''::bytea, last_error = NULL`,
		returning: `project_id, delete_reason`, dest: []any{&projectID, &reason}})
	return projectID, reason, err
}

// DeletedPreview is one preview soft-deleted with its project.
type DeletedPreview struct{ ID, Reason string }

// MarkProjectPreviewsDeleted soft-deletes every live preview of a project
// (in the project deletion's final transaction).
func MarkProjectPreviewsDeleted(ctx context.Context, db DB, projectID string) ([]DeletedPreview, error) {
	e := EdgeByName("preview.deleted")
	rows, err := db.Query(ctx, `UPDATE preview_databases SET deleted_at = now(), state = $2,
			delete_reason = coalesce(delete_reason, 'manual'), password_enc = ''::bytea, updated_at = now()
		WHERE project_id = $1 AND deleted_at IS NULL AND state = ANY($3) RETURNING id, delete_reason`,
		projectID, e.To, e.From)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeletedPreview, error) {
		var d DeletedPreview
		return d, r.Scan(&d.ID, &d.Reason)
	})
}

// MarkPreviewRestored marks a preview ready with the contents of backupKey.
func MarkPreviewRestored(ctx context.Context, db DB, id, backupKey string) error {
	return move(ctx, db, "preview.restored", id, change{
		set:  `last_error = NULL, source_kind = 'backup', source_backup_key = $4, source_restore_time = NULL`,
		args: []any{backupKey}})
}

// MarkPreviewRestoredAt marks a preview ready with the contents of its
// project at a point in time.
func MarkPreviewRestoredAt(ctx context.Context, db DB, id string, at time.Time) error {
	return move(ctx, db, "preview.restored", id, change{
		set:  `last_error = NULL, source_kind = 'pitr', source_backup_key = NULL, source_restore_time = $4`,
		args: []any{at}})
}

// FailPreviewRestore: resetting → ready (previous contents kept), with the reason.
func FailPreviewRestore(ctx context.Context, db DB, id, msg string) error {
	return move(ctx, db, "preview.restore_failed", id, change{set: `last_error = $4`, args: []any{msg}})
}

// MarkBackupCompleted: running → completed and verified.
func MarkBackupCompleted(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "backup.completed", id, change{
		set: `verification_state = 'verified', verified_at = now(), verification_error = NULL`})
}

// MarkBackupFailed: running → failed. With a job's message, a pending
// verification fails too and keeps the first error it recorded.
func MarkBackupFailed(ctx context.Context, db DB, id string, msg *string) error {
	if msg == nil {
		return move(ctx, db, "backup.failed", id, change{})
	}
	return move(ctx, db, "backup.failed", id, change{
		set: `verification_state = CASE WHEN verification_state = 'pending' THEN 'failed' ELSE verification_state END,
			verification_error = coalesce(verification_error, $4)`, args: []any{*msg}})
}

// MarkBackupExpired: its file is gone; the record stays for the audit trail.
func MarkBackupExpired(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "backup.expired", id, change{})
}

// MarkExportCompleted: running → completed.
func MarkExportCompleted(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "export.completed", id, change{})
}

// MarkExportFailed: running → failed.
func MarkExportFailed(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "export.failed", id, change{})
}

// MarkExportExpired: its file is gone.
func MarkExportExpired(ctx context.Context, db DB, id string) error {
	return move(ctx, db, "export.expired", id, change{})
}

// ExpireProjectArtifacts, in project.delete: backups and exports expire,
// uploads, restore points, the schedule and integrations go.
func ExpireProjectArtifacts(ctx context.Context, tx pgx.Tx, projectID string) error {
	be, ee := EdgeByName("backup.expired"), EdgeByName("export.expired")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE backups SET state = $2, updated_at = now() WHERE project_id = $1 AND state = ANY($3)`, []any{be.To, be.From}},
		{`UPDATE project_exports SET state = $2, updated_at = now() WHERE project_id = $1 AND state = ANY($3)`, []any{ee.To, ee.From}},
		{`DELETE FROM import_uploads WHERE project_id = $1`, nil},
		{`UPDATE restore_points SET deleted_at = now(), updated_at = now() WHERE project_id = $1 AND deleted_at IS NULL`, nil},
		{`DELETE FROM backup_schedules WHERE project_id = $1`, nil},
		{`DELETE FROM project_integrations WHERE project_id = $1`, nil}, // their sealed secrets with them
	} {
		if _, err := tx.Exec(ctx, q.sql, append([]any{projectID}, q.args...)...); err != nil {
			return err
		}
	}
	return nil
}

// LockOrgCreates serializes project creations in an organization whose
// slugs could collide, until the transaction ends, so derived slugs do not
// race. slug is the wanted slug or the base a slug is derived from: every
// candidate (base, base-2, base-3…) has the same root (trailing "-<digits>"
// groups removed), so creations that could pick the same slug take the same
// lock, and the others (a burst of differently named projects) do not wait
// for each other's commits.
func LockOrgCreates(ctx context.Context, tx pgx.Tx, orgID, slug string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capydb.org.' || $1 || '.' || $2))`, orgID, SlugRoot(slug))
	return err
}

// SlugRoot is slug without its trailing "-<digits>" groups ("foo-2-3" → "foo").
func SlugRoot(slug string) string {
	for {
		i := strings.LastIndexByte(slug, '-')
		if i <= 0 || i == len(slug)-1 || strings.Trim(slug[i+1:], "0123456789") != "" {
			return slug
		}
		slug = slug[:i]
	}
}
