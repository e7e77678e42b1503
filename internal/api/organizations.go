package api

import (
	"context"
	"net/http"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// OrganizationOutput is {organization}.
type OrganizationOutput struct {
	Body struct {
		Organization *Organization `json:"organization"`
	}
}

// UpdateOrganizationBody is PATCH /v1/organizations/{orgID}. Slug and plan
// are declared only to refuse them with a clear message.
type UpdateOrganizationBody struct {
	Name         *string `json:"name,omitempty" doc:"1-100 characters"`
	BillingEmail *string `json:"billing_email,omitempty" doc:"an e-mail address, or \"\" to clear it"`
	Slug         *string `json:"slug,omitempty" doc:"cannot be changed"`
	BillingPlan  *string `json:"billing_plan,omitempty" doc:"cannot be changed (an operator setting)"`
}

// UpdateOrganizationInput wraps it.
type UpdateOrganizationInput struct {
	OrgID string `path:"orgID"`
	Body  UpdateOrganizationBody
}

func (s *Server) registerOrganizations() {
	tags := []string{"organizations"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getOrganization", Method: http.MethodGet,
		Path: "/v1/organizations/{orgID}", Scope: auth.ScopeOrganizationsRead, OrgKeyOnly: true},
		Summary: "Get the organization", Tags: tags},
		func(ctx context.Context, _ *OrgPath) (*OrganizationOutput, error) {
			org, err := store.GetOrganization(ctx, s.deps.Store.Pool, principal(ctx).OrganizationID)
			if err != nil {
				return nil, s.fail(ctx, err, "organization not found")
			}
			out := &OrganizationOutput{}
			out.Body.Organization = toOrganization(org)
			return out, nil
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "updateOrganization", Method: http.MethodPatch,
		Path: "/v1/organizations/{orgID}", Scope: auth.ScopeOrganizationsWrite, OrgKeyOnly: true, AdminOnly: true},
		Summary: "Change the organization's name or billing e-mail", Tags: tags}, s.updateOrganization)
}

func (s *Server) updateOrganization(ctx context.Context, in *UpdateOrganizationInput) (*OrganizationOutput, error) {
	pr := principal(ctx)
	b := in.Body
	switch {
	case b.Slug != nil:
		return nil, errorf(http.StatusBadRequest, "slug cannot be changed")
	case b.BillingPlan != nil:
		return nil, errorf(http.StatusBadRequest, "billing_plan cannot be changed through the API; the plan is an operator setting")
	case b.Name == nil && b.BillingEmail == nil:
		return nil, errorf(http.StatusBadRequest, "send at least one of name, billing_email")
	}
	meta := map[string]any{}
	if b.Name != nil {
		name := strings.TrimSpace(*b.Name)
		if name == "" || utf8.RuneCountInString(name) > 100 || lifecycle.HasInvisible(name) {
			return nil, errorf(http.StatusBadRequest, "name must be 1-100 characters without control or invisible format characters")
		}
		b.Name = &name
		meta["name"] = name
	}
	if b.BillingEmail != nil && *b.BillingEmail != "" {
		a, err := mail.ParseAddress(*b.BillingEmail)
		if err != nil || a.Address != *b.BillingEmail {
			return nil, errorf(http.StatusBadRequest, "billing_email must be an e-mail address such as ops@example.com")
		}
		meta["billing_email_changed"] = true
	} else if b.BillingEmail != nil {
		meta["billing_email_cleared"] = true
	}
	var org *store.Organization
	err := s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		org, err = store.UpdateOrganization(ctx, tx, pr.OrganizationID, b.Name, b.BillingEmail)
		if err != nil {
			return err
		}
		return auth.Audit(ctx, tx, pr.OrganizationID, nil, "organization.updated", pr.Actor(), meta)
	})
	if err != nil {
		return nil, s.fail(ctx, err, "organization not found")
	}
	out := &OrganizationOutput{}
	out.Body.Organization = toOrganization(org)
	return out, nil
}
