package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// SQLHistoryEntry is one Studio query of a project.
type SQLHistoryEntry struct {
	ID             string
	OrganizationID string
	ProjectID      string
	Query          string
	StatementKinds []string
	ReadOnly       bool
	DurationMS     int64
	RowCount       int64
	Error          *string
	ActorKind      string
	ActorID        *string
	CreatedAt      time.Time
}

// sqlHistoryKeep is how many entries a project keeps; older ones are pruned
// as new ones arrive.
const sqlHistoryKeep = 500

// InsertSQLHistory records a query and prunes the project's oldest entries.
func InsertSQLHistory(ctx context.Context, db DB, e *SQLHistoryEntry) error {
	if e.StatementKinds == nil {
		e.StatementKinds = []string{}
	}
	_, err := db.Exec(ctx, `INSERT INTO sql_history (id, organization_id, project_id, query, statement_kinds, read_only,
		duration_ms, row_count, error, actor_kind, actor_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		e.ID, e.OrganizationID, e.ProjectID, e.Query, e.StatementKinds, e.ReadOnly, e.DurationMS, e.RowCount, e.Error, e.ActorKind, e.ActorID)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `DELETE FROM sql_history WHERE project_id = $1 AND id IN (
		SELECT id FROM sql_history WHERE project_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2)`, e.ProjectID, sqlHistoryKeep)
	return err
}

// ListSQLHistory returns a project's queries, newest first.
func ListSQLHistory(ctx context.Context, db DB, projectID string, limit int) ([]*SQLHistoryEntry, error) {
	rows, err := db.Query(ctx, `SELECT id, organization_id, project_id, query, statement_kinds, read_only, duration_ms,
		row_count, error, actor_kind, actor_id, created_at FROM sql_history WHERE project_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, projectID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*SQLHistoryEntry, error) {
		var e SQLHistoryEntry
		err := r.Scan(&e.ID, &e.OrganizationID, &e.ProjectID, &e.Query, &e.StatementKinds, &e.ReadOnly, &e.DurationMS,
			&e.RowCount, &e.Error, &e.ActorKind, &e.ActorID, &e.CreatedAt)
		return &e, err
	})
}

// Snippet is a saved SQL snippet of a project.
type Snippet struct {
	ID             string
	OrganizationID string
	ProjectID      string
	Name           string
	Description    *string
	Query          string
	Visibility     string // user (its author only) or project
	AuthorKind     string
	AuthorID       *string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const snippetCols = `id, organization_id, project_id, name, description, query, visibility, author_kind, author_id, created_at, updated_at`

func scanSnippet(r pgx.CollectableRow) (*Snippet, error) {
	var s Snippet
	err := r.Scan(&s.ID, &s.OrganizationID, &s.ProjectID, &s.Name, &s.Description, &s.Query, &s.Visibility,
		&s.AuthorKind, &s.AuthorID, &s.CreatedAt, &s.UpdatedAt)
	return &s, err
}

// visibleTo is the condition for snippets a caller may see: the project's,
// and its own user snippets. Arguments $2 and $3 are the caller.
const visibleTo = `(visibility = 'project' OR (author_kind = $2 AND author_id IS NOT DISTINCT FROM $3))`

// ListSnippets returns the snippets of a project the caller may see, by name.
func ListSnippets(ctx context.Context, db DB, projectID, actorKind string, actorID *string) ([]*Snippet, error) {
	rows, err := db.Query(ctx, `SELECT `+snippetCols+` FROM sql_snippets WHERE project_id = $1 AND `+visibleTo+`
		ORDER BY name, id`, projectID, actorKind, actorID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanSnippet)
}

// GetSnippet returns one snippet the caller may see, or ErrNotFound.
func GetSnippet(ctx context.Context, db DB, projectID, actorKind string, actorID *string, id string) (*Snippet, error) {
	rows, err := db.Query(ctx, `SELECT `+snippetCols+` FROM sql_snippets WHERE project_id = $1 AND `+visibleTo+` AND id = $4`,
		projectID, actorKind, actorID, id)
	if err != nil {
		return nil, err
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanSnippet)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return s, err
}

// InsertSnippet stores a new snippet.
func InsertSnippet(ctx context.Context, db DB, s *Snippet) error {
	return db.QueryRow(ctx, `INSERT INTO sql_snippets (id, organization_id, project_id, name, description, query, visibility,
		author_kind, author_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING created_at, updated_at`,
		s.ID, s.OrganizationID, s.ProjectID, s.Name, s.Description, s.Query, s.Visibility, s.AuthorKind, s.AuthorID).
		Scan(&s.CreatedAt, &s.UpdatedAt)
}

// UpdateSnippet saves name, description, query and visibility of a snippet
// the caller may see.
func UpdateSnippet(ctx context.Context, db DB, actorKind string, actorID *string, s *Snippet) error {
	err := db.QueryRow(ctx, `UPDATE sql_snippets SET name = $4, description = $5, query = $6, visibility = $7, updated_at = now()
		WHERE project_id = $1 AND `+visibleTo+` AND id = $8 RETURNING updated_at`,
		s.ProjectID, actorKind, actorID, s.Name, s.Description, s.Query, s.Visibility, s.ID).Scan(&s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// DeleteSnippet removes a snippet the caller may see.
func DeleteSnippet(ctx context.Context, db DB, projectID, actorKind string, actorID *string, id string) error {
	tag, err := db.Exec(ctx, `DELETE FROM sql_snippets WHERE project_id = $1 AND `+visibleTo+` AND id = $4`,
		projectID, actorKind, actorID, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}
