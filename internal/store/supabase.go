package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
)

// SupabaseProject is a project's names in the Supabase facade.
type SupabaseProject struct {
	ProjectID string
	Ref       string // 20 lower-case letters
	Number    int64  // Supabase's integer project id
	BranchID  string // UUID of the project's default branch
}

// SupabaseBranch is a preview's names and branch metadata in the facade.
type SupabaseBranch struct {
	PreviewID string
	ProjectID string
	Ref       string
	BranchID  string
	Meta      map[string]any
}

// SupabaseProjectByRef finds an organization's live project by its ref,
// its default branch's UUID, or its CapyDB id.
func SupabaseProjectByRef(ctx context.Context, db DB, orgID, x string) (*SupabaseProject, error) {
	var p SupabaseProject
	err := db.QueryRow(ctx, `SELECT id, supabase_ref, supabase_number, supabase_branch_id::text FROM projects
		WHERE organization_id = $1 AND deleted_at IS NULL
		  AND (supabase_ref = $2 OR id = $2 OR supabase_branch_id::text = lower($2))`, orgID, x).
		Scan(&p.ProjectID, &p.Ref, &p.Number, &p.BranchID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &p, err
}

// SupabaseProjects returns the facade names of an organization's live projects by project id.
func SupabaseProjects(ctx context.Context, db DB, orgID string) (map[string]*SupabaseProject, error) {
	rows, err := db.Query(ctx, `SELECT id, supabase_ref, supabase_number, supabase_branch_id::text FROM projects
		WHERE organization_id = $1 AND deleted_at IS NULL`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*SupabaseProject{}
	for rows.Next() {
		var p SupabaseProject
		if err := rows.Scan(&p.ProjectID, &p.Ref, &p.Number, &p.BranchID); err != nil {
			return nil, err
		}
		out[p.ProjectID] = &p
	}
	return out, rows.Err()
}

// SupabaseProjectNumber reads a project's integer id, deleted or not (the
// delete answer is written after the delete was queued).
func SupabaseProjectNumber(ctx context.Context, db DB, orgID, projectID string) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT supabase_number FROM projects WHERE organization_id = $1 AND id = $2`, orgID, projectID).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	return n, err
}

const supabaseBranchColumns = `id, project_id, supabase_ref, supabase_branch_id::text, supabase_meta`

func scanSupabaseBranch(row pgx.Row) (*SupabaseBranch, error) {
	var b SupabaseBranch
	var meta []byte
	if err := row.Scan(&b.PreviewID, &b.ProjectID, &b.Ref, &b.BranchID, &meta); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if err := json.Unmarshal(meta, &b.Meta); err != nil {
		return nil, err
	}
	return &b, nil
}

// SupabaseBranchByRef finds an organization's live preview by its branch
// UUID, its ref or its CapyDB id.
func SupabaseBranchByRef(ctx context.Context, db DB, orgID, x string) (*SupabaseBranch, error) {
	return scanSupabaseBranch(db.QueryRow(ctx, `SELECT `+supabaseBranchColumns+` FROM preview_databases
		WHERE organization_id = $1 AND deleted_at IS NULL
		  AND (supabase_branch_id::text = lower($2) OR supabase_ref = $2 OR id = $2)`, orgID, x))
}

// SupabaseBranches returns the facade names of a project's live previews by preview id.
func SupabaseBranches(ctx context.Context, db DB, projectID string) (map[string]*SupabaseBranch, error) {
	rows, err := db.Query(ctx, `SELECT `+supabaseBranchColumns+` FROM preview_databases
		WHERE project_id = $1 AND deleted_at IS NULL`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*SupabaseBranch{}
	for rows.Next() {
		b, err := scanSupabaseBranch(rows)
		if err != nil {
			return nil, err
		}
		out[b.PreviewID] = b
	}
	return out, rows.Err()
}

// MergeSupabaseBranchMeta merges keys into a preview's branch metadata.
func MergeSupabaseBranchMeta(ctx context.Context, db DB, previewID string, meta map[string]any) error {
	j, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `UPDATE preview_databases SET supabase_meta = supabase_meta || $2::jsonb, updated_at = now()
		WHERE id = $1`, previewID, string(j))
	return err
}

// InsertSupabaseToken stores an sbp_ alias of the API key with id keyID.
func InsertSupabaseToken(ctx context.Context, db DB, tokenHash []byte, keyID string) error {
	tag, err := db.Exec(ctx, `INSERT INTO supabase_access_tokens (token_hash, key_hash)
		SELECT $1, key_hash FROM api_keys WHERE id = $2 AND revoked_at IS NULL`, tokenHash, keyID)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// SupabaseTokenKey returns the hash of the API key an sbp_ token aliases.
func SupabaseTokenKey(ctx context.Context, db DB, tokenHash []byte) ([]byte, error) {
	var kh []byte
	err := db.QueryRow(ctx, `SELECT key_hash FROM supabase_access_tokens WHERE token_hash = $1`, tokenHash).Scan(&kh)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return kh, err
}
