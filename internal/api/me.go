package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
)

// ViewerOutput is GET /v1/me (bare).
type ViewerOutput struct {
	Body struct {
		Organization *Organization `json:"organization"`
		Principal    Principal     `json:"principal"`
	}
}

func (s *Server) registerMe() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getViewer", Method: http.MethodGet, Path: "/v1/me"},
		Summary: "Who am I", Tags: []string{"identity"}},
		func(ctx context.Context, _ *struct{}) (*ViewerOutput, error) {
			p := principal(ctx)
			out := &ViewerOutput{}
			if p.OrganizationID != "" {
				org, err := store.GetOrganization(ctx, s.deps.Store.Pool, p.OrganizationID)
				if err != nil {
					return nil, s.fail(ctx, err, "organization not found")
				}
				out.Body.Organization = toOrganization(org)
			}
			out.Body.Principal = toPrincipal(p)
			return out, nil
		})
}

func toPrincipal(p *auth.Principal) Principal {
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return Principal{
		AuthSource: p.AuthSource, OrganizationID: p.OrganizationID, Scopes: scopes,
		IsAdmin: p.AuthSource == "admin_token", UserID: p.UserID, Role: p.Role,
		APIKeyID: p.APIKeyID, ProjectID: p.ProjectID, ClerkOrganizationID: p.ClerkOrganizationID,
		ClerkOrganizationRole: p.ClerkOrganizationRole, ClerkOrganizationSlug: p.ClerkOrganizationSlug,
	}
}
