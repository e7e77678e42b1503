package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// UpdateProjectBody is PATCH /v1/projects/{projectID}. The immutable fields
// are declared only to refuse them with a message naming them.
type UpdateProjectBody struct {
	Environment     string  `json:"environment,omitempty" doc:"production or non_production"`
	AlwaysOn        *bool   `json:"always_on,omitempty"`
	Name            *string `json:"name,omitempty" doc:"cannot be changed"`
	Slug            *string `json:"slug,omitempty" doc:"cannot be changed"`
	Region          *string `json:"region,omitempty" doc:"cannot be changed"`
	PostgresVersion *string `json:"postgres_version,omitempty" doc:"cannot be changed"`
}

// UpdateProjectInput wraps it.
type UpdateProjectInput struct {
	ProjectID string `path:"projectID"`
	Body      UpdateProjectBody
}

func (s *Server) registerProjectSettings() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "updateProject", Method: http.MethodPatch,
		Path: "/v1/projects/{projectID}", Scope: auth.ScopeProjectsWrite},
		Summary: "Change a project's environment or always_on", Tags: []string{"projects"}},
		func(ctx context.Context, in *UpdateProjectInput) (*ProjectOutput, error) {
			b := in.Body
			for field, v := range map[string]*string{"name": b.Name, "slug": b.Slug, "region": b.Region, "postgres_version": b.PostgresVersion} {
				if v != nil {
					return nil, errorf(http.StatusBadRequest, "%s cannot be changed", field)
				}
			}
			if b.Environment == "" && b.AlwaysOn == nil {
				return nil, errorf(http.StatusBadRequest, "send at least one of environment, always_on")
			}
			var params lifecycle.UpdateProjectParams
			if b.Environment != "" {
				if b.Environment != "production" && b.Environment != "non_production" {
					return nil, errorf(http.StatusBadRequest, "environment must be one of production or non_production")
				}
				params.Environment = &b.Environment
			}
			params.AlwaysOn = b.AlwaysOn
			p, org, err := s.loadProject(ctx, in.ProjectID)
			if err != nil {
				return nil, err
			}
			p, err = s.deps.Lifecycle.UpdateProject(ctx, p.OrganizationID, p.ID, params, actor(ctx))
			if err != nil {
				return nil, s.fail(ctx, err, "project not found")
			}
			c, _ := store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID)
			out := &ProjectOutput{}
			out.Body.Project = toProject(p, org, c)
			return out, nil
		})
}
