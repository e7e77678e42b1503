package lifecycle

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/store"
)

// UpdateProjectParams are the settings PATCH /v1/projects/{id} may change
// (nil = unchanged).
type UpdateProjectParams struct {
	Environment *string
	AlwaysOn    *bool
}

// UpdateProject changes the environment and/or always_on of a project that
// is not being deleted. Changing the environment makes always_on follow it
// (true for production) unless the same request sets always_on.
func (s *Service) UpdateProject(ctx context.Context, orgID, projectID string, in UpdateProjectParams, actor Actor) (*store.Project, error) {
	var p *store.Project
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		if p.State == store.ProjectDeleting {
			return conflictf("project is being deleted")
		}
		changes := map[string]any{}
		env, alwaysOn := p.Environment, p.AlwaysOn
		if in.Environment != nil && *in.Environment != p.Environment {
			env = *in.Environment
			alwaysOn = env == "production"
			changes["environment"] = map[string]any{"from": p.Environment, "to": env}
		}
		if in.AlwaysOn != nil {
			alwaysOn = *in.AlwaysOn
		}
		if alwaysOn != p.AlwaysOn {
			changes["always_on"] = map[string]any{"from": p.AlwaysOn, "to": alwaysOn}
		}
		if len(changes) == 0 {
			return nil
		}
		if p.UpdatedAt, err = store.UpdateProjectSettings(ctx, tx, p.ID, env, alwaysOn); err != nil {
			return err
		}
		p.Environment, p.AlwaysOn = env, alwaysOn
		return audit(ctx, tx, orgID, p.ID, "project.updated", actor, changes)
	})
	return p, err
}
