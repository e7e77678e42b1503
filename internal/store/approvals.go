package store

import (
	"context"
	"time"
)

// Approval is a single-use token that allows one destructive action.
type Approval struct {
	ID             string
	OrganizationID string
	ProjectID      string
	Action         string
	TokenHash      []byte
	ExpiresAt      time.Time
	UsedAt         *time.Time
	JobID          *string
}

// InsertApproval stores a minted approval (only the token's hash).
func InsertApproval(ctx context.Context, db DB, a *Approval) error {
	_, err := db.Exec(ctx, `INSERT INTO approvals (id, organization_id, project_id, action, token_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, a.ID, a.OrganizationID, a.ProjectID, a.Action, a.TokenHash, a.ExpiresAt)
	return err
}

// LockApprovalByHash reads an approval FOR UPDATE by its token hash.
func LockApprovalByHash(ctx context.Context, db DB, orgID string, hash []byte) (*Approval, error) {
	var a Approval
	err := db.QueryRow(ctx, `SELECT id, organization_id, project_id, action, token_hash, expires_at, used_at, job_id
		FROM approvals WHERE token_hash = $1 AND organization_id = $2 FOR UPDATE`, hash, orgID).Scan(
		&a.ID, &a.OrganizationID, &a.ProjectID, &a.Action, &a.TokenHash, &a.ExpiresAt, &a.UsedAt, &a.JobID)
	if err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// UseApproval marks an approval consumed by a job.
func UseApproval(ctx context.Context, db DB, id, jobID string) error {
	_, err := db.Exec(ctx, `UPDATE approvals SET used_at = now(), job_id = $2 WHERE id = $1`, id, jobID)
	return err
}
