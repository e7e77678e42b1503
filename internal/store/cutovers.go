package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cutover request statuses (PRODUCT.md §22).
const (
	CutoverOpen      = "open"
	CutoverAcked     = "acked"
	CutoverRejected  = "rejected"
	CutoverCompleted = "completed"
)

// CutoverRequest asks an operator to promote a preview to production.
type CutoverRequest struct {
	ID                   string     `json:"id"`
	OrganizationID       string     `json:"organization_id"`
	ProjectID            string     `json:"project_id"`
	PreviewDatabaseID    string     `json:"preview_database_id"`
	Status               string     `json:"status"`
	CustomerNote         *string    `json:"customer_note,omitempty"`
	ExternalTicketRef    *string    `json:"external_ticket_ref,omitempty"`
	OperatorNote         *string    `json:"operator_note,omitempty"`
	RejectedReason       *string    `json:"rejected_reason,omitempty"`
	RequestedByActorKind string     `json:"requested_by_actor_kind"`
	RequestedByActorID   *string    `json:"requested_by_actor_id,omitempty"`
	AckByUserID          *string    `json:"ack_by_user_id,omitempty"`
	AckAt                *time.Time `json:"ack_at,omitempty"`
	PreCutoverBackupID   *string    `json:"pre_cutover_backup_id,omitempty"`
	PromoteJobID         *string    `json:"promote_job_id,omitempty"`
	CompletedAt          *time.Time `json:"completed_at,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

const cutoverColumns = `id, organization_id, project_id, preview_database_id, status, customer_note, external_ticket_ref,
	operator_note, rejected_reason, requested_by_actor_kind, requested_by_actor_id, ack_by_user_id, ack_at,
	pre_cutover_backup_id, promote_job_id, completed_at, created_at, updated_at`

func scanCutover(row pgx.Row) (*CutoverRequest, error) {
	var c CutoverRequest
	err := row.Scan(&c.ID, &c.OrganizationID, &c.ProjectID, &c.PreviewDatabaseID, &c.Status, &c.CustomerNote, &c.ExternalTicketRef,
		&c.OperatorNote, &c.RejectedReason, &c.RequestedByActorKind, &c.RequestedByActorID, &c.AckByUserID, &c.AckAt,
		&c.PreCutoverBackupID, &c.PromoteJobID, &c.CompletedAt, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// InsertCutoverRequest writes a new open request.
func InsertCutoverRequest(ctx context.Context, db DB, c *CutoverRequest) (*CutoverRequest, error) {
	return scanCutover(db.QueryRow(ctx, `INSERT INTO cutover_requests (id, organization_id, project_id, preview_database_id, status,
		customer_note, external_ticket_ref, requested_by_actor_kind, requested_by_actor_id)
		VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8) RETURNING `+cutoverColumns,
		c.ID, c.OrganizationID, c.ProjectID, c.PreviewDatabaseID, c.CustomerNote, c.ExternalTicketRef,
		c.RequestedByActorKind, c.RequestedByActorID))
}

// LiveCutoverForPreview reports whether a preview has an open or acked request.
func LiveCutoverForPreview(ctx context.Context, db DB, previewID string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cutover_requests WHERE preview_database_id = $1
		AND status IN ('open', 'acked'))`, previewID).Scan(&ok)
	return ok, err
}

// ListCutoverRequests lists a project's requests newest first; projectID ""
// lists every request (operators), status "" every status.
func ListCutoverRequests(ctx context.Context, db DB, projectID, status string) ([]*CutoverRequest, error) {
	rows, err := db.Query(ctx, `SELECT `+cutoverColumns+` FROM cutover_requests
		WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR status = $2) ORDER BY created_at DESC, id DESC`, projectID, status)
	return collect(rows, err, scanCutover)
}

// LockCutoverRequest reads a request FOR UPDATE.
func LockCutoverRequest(ctx context.Context, tx pgx.Tx, id string) (*CutoverRequest, error) {
	return scanCutover(tx.QueryRow(ctx, `SELECT `+cutoverColumns+` FROM cutover_requests WHERE id = $1 FOR UPDATE`, id))
}

// GetCutoverRequest reads a request.
func GetCutoverRequest(ctx context.Context, db DB, id string) (*CutoverRequest, error) {
	return scanCutover(db.QueryRow(ctx, `SELECT `+cutoverColumns+` FROM cutover_requests WHERE id = $1`, id))
}

// UpdateCutoverRequest writes the operator-side fields of c.
func UpdateCutoverRequest(ctx context.Context, db DB, c *CutoverRequest) error {
	_, err := db.Exec(ctx, `UPDATE cutover_requests SET status = $2, external_ticket_ref = $3, operator_note = $4,
		rejected_reason = $5, ack_by_user_id = $6, ack_at = $7, pre_cutover_backup_id = $8, promote_job_id = $9,
		completed_at = $10, updated_at = now() WHERE id = $1`,
		c.ID, c.Status, c.ExternalTicketRef, c.OperatorNote, c.RejectedReason, c.AckByUserID, c.AckAt,
		c.PreCutoverBackupID, c.PromoteJobID, c.CompletedAt)
	return err
}
