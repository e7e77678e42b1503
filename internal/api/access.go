package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/auth"
)

// AccessRule is who may call one operation. The route table is these rules:
// the middleware enforces them and the OpenAPI document describes them.
type AccessRule struct {
	OperationID string
	Method      string
	Path        string
	Anonymous   bool   // no credential needed
	Scope       string // empty with !Anonymous = any valid credential
	OrgKeyOnly  bool   // project-scoped keys get 403
	AdminOnly   bool   // human sessions need the admin role
}

// Rules lists every operation's access rule (used by the matrix tests).
func (s *Server) Rules() []AccessRule { return s.rules }

type opSpec struct {
	AccessRule
	Status  int
	Summary string
	Tags    []string
}

// register adds one operation with its access rule.
func register[I, O any](s *Server, spec opSpec, handler func(context.Context, *I) (*O, error)) {
	spec.AccessRule.Path = spec.Path
	s.rules = append(s.rules, spec.AccessRule)
	op := huma.Operation{
		OperationID:   spec.OperationID,
		Method:        spec.Method,
		Path:          spec.Path,
		Summary:       spec.Summary,
		Tags:          spec.Tags,
		DefaultStatus: spec.Status,
		Metadata:      map[string]any{"access": spec.AccessRule},
	}
	if !spec.Anonymous {
		op.Security = []map[string][]string{{"bearer": {}}}
		desc := "Requires a valid credential"
		if spec.Scope != "" {
			desc = "Requires scope `" + spec.Scope + "`"
		}
		if spec.OrgKeyOnly {
			desc += "; project-scoped keys are refused"
		}
		if spec.AdminOnly {
			desc += "; human sessions need the organization admin role"
		}
		op.Description = desc + "."
		op.Middlewares = huma.Middlewares{s.authMiddleware(spec.AccessRule)}
	}
	huma.Register(s.api, op, handler)
}

// authMiddleware authenticates the caller and enforces the rule's scope,
// organization-key and admin requirements.
func (s *Server) authMiddleware(rule AccessRule) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		p, status, msg := s.authenticate(ctx)
		if p == nil {
			_ = huma.WriteErr(s.api, ctx, status, msg)
			return
		}
		if rule.Scope != "" && !p.Has(rule.Scope) {
			_ = huma.WriteErr(s.api, ctx, http.StatusForbidden, "missing scope "+rule.Scope)
			return
		}
		if rule.OrgKeyOnly && p.ProjectScoped() {
			_ = huma.WriteErr(s.api, ctx, http.StatusForbidden, "project-scoped API keys cannot use this route")
			return
		}
		if rule.AdminOnly && !p.IsAdmin() {
			_ = huma.WriteErr(s.api, ctx, http.StatusForbidden, "this action requires the organization admin role")
			return
		}
		next(huma.WithValue(ctx, principalKey{}, p))
	}
}

type principalKey struct{}

func principal(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

func (s *Server) authenticate(ctx huma.Context) (*auth.Principal, int, string) {
	authz := strings.TrimSpace(ctx.Header("Authorization"))
	xkey := strings.TrimSpace(ctx.Header("X-API-Key"))
	var bearer string
	if authz != "" {
		scheme, token, ok := strings.Cut(authz, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, http.StatusUnauthorized, "invalid or missing credentials"
		}
		bearer = strings.TrimSpace(token)
	}
	if bearer != "" && xkey != "" && bearer != xkey {
		return nil, http.StatusUnauthorized, "conflicting credentials"
	}
	key := bearer
	if key == "" {
		key = xkey
	}
	if key == "" {
		return nil, http.StatusUnauthorized, "invalid or missing credentials"
	}
	p, err := s.deps.Auth.APIKey(ctx.Context(), key)
	if err != nil {
		if err == auth.ErrUnauthenticated {
			return nil, http.StatusUnauthorized, "invalid or missing credentials"
		}
		s.deps.Log.Error("authentication lookup failed", "error", err)
		return nil, http.StatusServiceUnavailable, "authentication is temporarily unavailable"
	}
	return p, 0, ""
}
