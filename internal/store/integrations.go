package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// Integration is a row of project_integrations (API.md §4.17).
type Integration struct {
	ID             string
	OrganizationID string
	ProjectID      string
	Provider       string
	State          string
	ExternalID     *string
	Config         map[string]any // non-secret settings only: served as is
	SecretsEnc     []byte         // sealed JSON (lifecycle.integrationSecrets)
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Integration states.
const (
	IntegrationActive = "active"
	IntegrationError  = "error"
)

const integrationColumns = `id, organization_id, project_id, provider, state, external_id, config, secrets_enc, created_at, updated_at`

func scanIntegration(row pgx.Row) (*Integration, error) {
	i := &Integration{}
	var cfg []byte
	if err := row.Scan(&i.ID, &i.OrganizationID, &i.ProjectID, &i.Provider, &i.State, &i.ExternalID, &cfg,
		&i.SecretsEnc, &i.CreatedAt, &i.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	i.Config = map[string]any{}
	if len(cfg) > 0 {
		if err := json.Unmarshal(cfg, &i.Config); err != nil {
			return nil, err
		}
	}
	return i, nil
}

// ListIntegrations lists a project's integrations by provider.
func ListIntegrations(ctx context.Context, db DB, projectID string) ([]*Integration, error) {
	rows, err := db.Query(ctx, `SELECT `+integrationColumns+` FROM project_integrations
		WHERE project_id = $1 ORDER BY provider`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Integration{}
	for rows.Next() {
		i, err := scanIntegration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// GetIntegration reads a project's integration with one provider.
func GetIntegration(ctx context.Context, db DB, projectID, provider string) (*Integration, error) {
	return scanIntegration(db.QueryRow(ctx, `SELECT `+integrationColumns+` FROM project_integrations
		WHERE project_id = $1 AND provider = $2`, projectID, provider))
}

// LockIntegration is GetIntegration FOR UPDATE.
func LockIntegration(ctx context.Context, tx pgx.Tx, projectID, provider string) (*Integration, error) {
	return scanIntegration(tx.QueryRow(ctx, `SELECT `+integrationColumns+` FROM project_integrations
		WHERE project_id = $1 AND provider = $2 FOR UPDATE`, projectID, provider))
}

// UpsertIntegration writes i (keyed by project and provider) and reads back
// its id and times; created reports whether the row is new.
func UpsertIntegration(ctx context.Context, db DB, i *Integration) (created bool, err error) {
	cfg, err := json.Marshal(i.Config)
	if err != nil {
		return false, err
	}
	err = db.QueryRow(ctx, `INSERT INTO project_integrations (id, organization_id, project_id, provider, state, external_id, config, secrets_enc)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (project_id, provider) DO UPDATE SET state = EXCLUDED.state, external_id = EXCLUDED.external_id,
			config = EXCLUDED.config, secrets_enc = EXCLUDED.secrets_enc, updated_at = now()
		RETURNING id, created_at, updated_at, xmax = 0`,
		i.ID, i.OrganizationID, i.ProjectID, i.Provider, i.State, i.ExternalID, cfg, i.SecretsEnc).
		Scan(&i.ID, &i.CreatedAt, &i.UpdatedAt, &created)
	return created, err
}

// SetIntegrationStatus records the outcome of a sync: the state and config
// keys merged into config (nil values remove a key).
func SetIntegrationStatus(ctx context.Context, db DB, id, state string, patch map[string]any) error {
	set, del := map[string]any{}, []string{}
	for k, v := range patch {
		if v == nil {
			del = append(del, k)
		} else {
			set[k] = v
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `UPDATE project_integrations SET state = $2, config = (config - $4::text[]) || $3::jsonb,
		updated_at = now() WHERE id = $1`, id, state, b, del)
	return err
}

// DeleteIntegration removes a project's integration (and with it the stored
// secrets); ErrNotFound when there is none.
func DeleteIntegration(ctx context.Context, db DB, projectID, provider string) error {
	tag, err := db.Exec(ctx, `DELETE FROM project_integrations WHERE project_id = $1 AND provider = $2`, projectID, provider)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
