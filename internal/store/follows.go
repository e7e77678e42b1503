package store

import (
	"context"
	"time"
)

// ProjectFollow is a follow import in progress (one per project).
type ProjectFollow struct {
	ProjectID      string
	OrganizationID string
	Name           string
	SourceURLEnc   []byte
	Streaming      bool
	StartJobID     string
	CreatedAt      time.Time
}

// InsertProjectFollow records a follow import being started.
func InsertProjectFollow(ctx context.Context, db DB, f *ProjectFollow) error {
	_, err := db.Exec(ctx, `INSERT INTO project_follows (project_id, organization_id, name, source_url_enc, start_job_id)
		VALUES ($1, $2, $3, $4, $5)`, f.ProjectID, f.OrganizationID, f.Name, f.SourceURLEnc, f.StartJobID)
	return err
}

// GetProjectFollow reads a project's follow import (ErrNotFound: none).
func GetProjectFollow(ctx context.Context, db DB, projectID string) (*ProjectFollow, error) {
	var f ProjectFollow
	err := db.QueryRow(ctx, `SELECT project_id, organization_id, name, source_url_enc, streaming, start_job_id, created_at
		FROM project_follows WHERE project_id = $1`, projectID).
		Scan(&f.ProjectID, &f.OrganizationID, &f.Name, &f.SourceURLEnc, &f.Streaming, &f.StartJobID, &f.CreatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &f, nil
}

// MarkProjectFollowStreaming records that the start job finished.
func MarkProjectFollowStreaming(ctx context.Context, db DB, projectID string) error {
	_, err := db.Exec(ctx, `UPDATE project_follows SET streaming = true WHERE project_id = $1`, projectID)
	return err
}

// DeleteProjectFollow forgets a project's follow import.
func DeleteProjectFollow(ctx context.Context, db DB, projectID string) error {
	_, err := db.Exec(ctx, `DELETE FROM project_follows WHERE project_id = $1`, projectID)
	return err
}
