package store

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
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

// RecordSQL writes a Studio query's audit event and, when hist is set, its
// history entry: one statement, so one round trip and atomic. It does not
// wait for the WAL flush (synchronous_commit off for this transaction): the
// record is committed and ordered before the caller answers, and only a
// crash of the control database within the WAL writer's delay could lose
// it, which keeps a disk fsync out of every query's latency. Now and then
// it prunes the project's history to the newest entries.
func RecordSQL(ctx context.Context, db DB, a *AuditEvent, hist *SQLHistoryEntry) error {
	meta, err := json.Marshal(a.Metadata)
	if err != nil {
		return err
	}
	if hist == nil {
		_, err = db.Exec(ctx, `WITH s AS (SELECT set_config('synchronous_commit', 'off', true))
			INSERT INTO audit_events (id, organization_id, project_id, action, actor_kind, actor_id, metadata)
			SELECT $1, $2, $3, $4, $5, $6, $7 FROM s`, a.ID, a.OrganizationID, a.ProjectID, a.Action, a.ActorKind, a.ActorID, meta)
		return err
	}
	if hist.StatementKinds == nil {
		hist.StatementKinds = []string{}
	}
	_, err = db.Exec(ctx, `WITH s AS (SELECT set_config('synchronous_commit', 'off', true)),
		a AS (INSERT INTO audit_events (id, organization_id, project_id, action, actor_kind, actor_id, metadata)
			SELECT $1, $2, $3, $4, $5, $6, $7 FROM s)
		INSERT INTO sql_history (id, organization_id, project_id, query, statement_kinds, read_only,
			duration_ms, row_count, error, actor_kind, actor_id)
		SELECT $8, $2, $3, $9, $10, $11, $12, $13, $14, $5, $6 FROM s`,
		a.ID, a.OrganizationID, a.ProjectID, a.Action, a.ActorKind, a.ActorID, meta,
		hist.ID, hist.Query, hist.StatementKinds, hist.ReadOnly, hist.DurationMS, hist.RowCount, hist.Error)
	if err != nil {
		return err
	}
	if rand.IntN(50) == 0 {
		_, err = db.Exec(ctx, `DELETE FROM sql_history WHERE project_id = $1 AND id IN (
			SELECT id FROM sql_history WHERE project_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2)`, hist.ProjectID, sqlHistoryKeep)
	}
	return err
}
