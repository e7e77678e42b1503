package api

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// AccessRule is who may call one operation. The route table is these rules:
// the middleware enforces them and the OpenAPI document describes them (each
// operation carries its rule as x-capydb-access).
type AccessRule struct {
	OperationID string `json:"-"`
	Method      string `json:"-"`
	Path        string `json:"-"`
	Anonymous   bool   `json:"anonymous,omitempty"`    // no credential needed
	Scope       string `json:"scope,omitempty"`        // empty with !Anonymous = any valid credential
	OrScope     string `json:"or_scope,omitempty"`     // a second scope that is accepted instead of Scope
	OrgKeyOnly  bool   `json:"org_key_only,omitempty"` // project-scoped keys get 403
	AdminOnly   bool   `json:"admin_only,omitempty"`   // human sessions need the admin role
	// DeniedMessage replaces the generic 403 message of scope and role checks.
	DeniedMessage string `json:"-"`
}

// Rules lists every operation's access rule (used by the matrix tests).
func (s *Server) Rules() []AccessRule { return s.rules }

type opSpec struct {
	AccessRule
	Status  int
	Summary string
	// Description leads the operation's description (routes beyond the
	// spec start with †).
	Description string
	Tags        []string
	// RateLimit names the token bucket of an anonymous route (authenticated
	// routes always use the API bucket).
	RateLimit string
	// NoSuccess marks a route that always answers an error (a stub of a
	// feature this server does not offer): the document declares no 2xx.
	NoSuccess bool
	// Errors are the route's 4xx answers beyond those errorStatuses derives
	// from the rule (e.g. 410, 428).
	Errors []int
	// Addition marks a self-hosted route beyond API.md (a † in its description).
	Addition bool
	// Middleware runs after the access checks (e.g. a feature gate).
	Middleware func(huma.Context, func(huma.Context))
	// RawJSONBody: the input's RawBody is a JSON object huma must not
	// validate (signed webhook bodies are read only after their signature
	// is checked); the document declares it an object.
	RawJSONBody bool
}

// scanRawBodyFirst refuses an input whose RawBody breaks scanJSON's rules
// before handler sees it.
func scanRawBodyFirst[I, O any](handler func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return func(ctx context.Context, in *I) (*O, error) {
		if f := reflect.ValueOf(in).Elem().FieldByName("RawBody"); f.IsValid() && f.Kind() == reflect.Slice {
			if err := scanJSON(f.Bytes()); err != nil {
				return nil, errorf(http.StatusBadRequest, "%s", err.Error())
			}
		}
		return handler(ctx, in)
	}
}

// register adds one operation with its access rule.
func register[I, O any](s *Server, spec opSpec, handler func(context.Context, *I) (*O, error)) {
	spec.AccessRule.Path = spec.Path
	checkTags(spec)
	s.rules = append(s.rules, spec.AccessRule)
	op := huma.Operation{
		OperationID:   spec.OperationID,
		Method:        spec.Method,
		Path:          spec.Path,
		Summary:       spec.Summary,
		Tags:          spec.Tags,
		DefaultStatus: spec.Status,
		Metadata:      map[string]any{"access": spec.AccessRule},
		Extensions:    map[string]any{"x-capydb-access": spec.AccessRule},
		Responses:     s.errorResponses(errorStatuses(spec, hasRequestBody(reflect.TypeFor[I]()))),
		// Anonymous operations say so (security: []); the others name the scheme.
		Security:         []map[string][]string{},
		SkipValidateBody: spec.RawJSONBody,
	}
	if spec.RawJSONBody {
		// huma limits Body inputs to 1 MiB by default, RawBody ones not at all.
		op.MaxBodyBytes = 1 << 20
		// The raw body skips huma's decoding, so the rule every JSON body
		// follows (valid, no duplicate keys, no NUL) is checked here, first.
		handler = scanRawBodyFirst(handler)
	}
	if !spec.Anonymous {
		op.Security = []map[string][]string{{"bearer": {}}}
		desc := "Requires a valid credential"
		if spec.Scope != "" {
			desc = "Requires scope `" + spec.Scope + "`"
			if spec.OrScope != "" {
				desc += " or `" + spec.OrScope + "`"
			}
		}
		if spec.OrgKeyOnly {
			desc += "; project-scoped keys are refused"
		}
		if spec.AdminOnly {
			desc += "; human sessions need the organization admin role"
		}
		op.Description = strings.TrimSpace(spec.Description + " " + desc + ".")
		op.Middlewares = huma.Middlewares{s.authMiddleware(spec.AccessRule)}
	} else {
		op.Description = strings.TrimSpace(spec.Description + " No credential needed.")
		if spec.RateLimit != "" {
			op.Middlewares = huma.Middlewares{s.rateLimitMiddleware(spec.RateLimit)}
		}
	}
	if spec.Middleware != nil {
		op.Middlewares = append(op.Middlewares, spec.Middleware)
	}
	if spec.Addition {
		op.Description = "† Self-hosted addition, not in the hosted API. " + op.Description
	}
	if s.httpRequests != nil {
		// Counted by route template, never by raw path (bounded labels).
		op.Middlewares = append(huma.Middlewares{s.countRequests}, op.Middlewares...)
	}
	huma.Register(s.api, op, handler)
	if spec.RawJSONBody {
		if o := s.api.OpenAPI().Paths[spec.Path].Post; o != nil && o.OperationID == spec.OperationID && o.RequestBody != nil {
			o.RequestBody.Content[jsonMediaType].Schema = &huma.Schema{Type: "object",
				Description: "the provider's event, read only after its signature is verified"}
		}
	}
	if spec.NoSuccess {
		item := s.api.OpenAPI().Paths[spec.Path]
		for _, o := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if o == nil || o.OperationID != spec.OperationID {
				continue
			}
			for code := range o.Responses {
				if strings.HasPrefix(code, "2") {
					delete(o.Responses, code)
				}
			}
		}
	}
}

// countRequests counts each answer by route template and status.
func (s *Server) countRequests(ctx huma.Context, next func(huma.Context)) {
	next(ctx)
	op := ctx.Operation()
	s.httpRequests.WithLabelValues(op.Method, op.Path, strconv.Itoa(ctx.Status())).Inc()
}

// rateLimitMiddleware applies one bucket to an anonymous route.
func (s *Server) rateLimitMiddleware(bucket string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		key := s.clientAddr(ctx)
		if bucket == auth.BucketIntegrationReceiver {
			// Per project (API.md §1.11): providers deliver from many addresses.
			key = "project:" + ctx.Param("projectID")
		}
		if s.limitedBy(ctx, bucket, key) {
			return
		}
		next(ctx)
	}
}

// limited takes a token from the client's bucket and answers 429 when there is none.
func (s *Server) limited(ctx huma.Context, bucket string) bool {
	return s.limitedBy(ctx, bucket, s.clientAddr(ctx))
}

// limitedBy is limited with an explicit bucket key.
func (s *Server) limitedBy(ctx huma.Context, bucket, key string) bool {
	if s.deps.Limiter == nil {
		return false
	}
	ok, wait := s.deps.Limiter.Allow(bucket, key)
	if ok {
		return false
	}
	ctx.SetHeader("Retry-After", auth.RetryAfterSeconds(wait))
	_ = huma.WriteErr(s.api, ctx, http.StatusTooManyRequests, "rate limit exceeded")
	return true
}

func (s *Server) clientAddr(ctx huma.Context) string {
	var xff []string
	if len(s.deps.TrustedProxies) > 0 {
		ctx.EachHeader(func(name, value string) {
			if strings.EqualFold(name, "X-Forwarded-For") {
				xff = append(xff, value)
			}
		})
	}
	return auth.ClientAddr(ctx.RemoteAddr(), xff, s.deps.TrustedProxies)
}

var pathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// authMiddleware authenticates the caller, enforces the rule's scope,
// organization-key and admin requirements, and then the tenancy of the ids
// in the path it knows (organization, project, job, preview): whatever the
// handler does, another organization's resource or a project-scoped key's
// sibling is 404 before any input is parsed.
func (s *Server) authMiddleware(rule AccessRule) func(huma.Context, func(huma.Context)) {
	var params []string
	for _, m := range pathParam.FindAllStringSubmatch(rule.Path, -1) {
		params = append(params, m[1])
	}
	deny := func(ctx huma.Context, generic string) {
		msg := generic
		if rule.DeniedMessage != "" {
			msg = rule.DeniedMessage
		}
		_ = huma.WriteErr(s.api, ctx, http.StatusForbidden, msg)
	}
	return func(ctx huma.Context, next func(huma.Context)) {
		// The Supabase facade's in-process calls were authenticated and
		// rate-limited once by the facade; scopes and tenancy apply as usual.
		p := auth.InternalPrincipal(ctx.Context())
		var status int
		var msg string
		if p == nil {
			if s.limited(ctx, auth.BucketAPI) {
				return
			}
			p, status, msg = s.authenticate(ctx)
		}
		if p == nil {
			if status == http.StatusUnauthorized && msg != msgNoCredentials && s.limited(ctx, auth.BucketFailedAuth) {
				return
			}
			_ = huma.WriteErr(s.api, ctx, status, msg)
			return
		}
		switch {
		case rule.OrgKeyOnly && p.ProjectScoped():
			deny(ctx, "project-scoped API keys cannot use this route")
			return
		case rule.Scope != "" && !p.Has(rule.Scope) && (rule.OrScope == "" || !p.Has(rule.OrScope)):
			if rule.OrScope != "" {
				deny(ctx, "missing scope "+rule.Scope+" or "+rule.OrScope)
			} else {
				deny(ctx, "missing scope "+rule.Scope)
			}
			return
		case rule.AdminOnly && !p.IsAdmin():
			deny(ctx, "this action requires the organization admin role")
			return
		}
		rctx := huma.WithValue(huma.WithValue(ctx, principalKey{}, p), checkedProjectKey{}, &checkedProject{})
		for _, name := range params {
			check, ok := s.resolvers[name]
			if !ok || !strings.HasPrefix(rule.Path, ResolvedPrefixes[name]) {
				continue
			}
			if err := check(rctx.Context(), p, ctx.Param(name)); err != nil {
				var ae *apiError
				if errors.As(err, &ae) {
					_ = huma.WriteErr(s.api, ctx, ae.status, ae.Message)
				} else {
					s.deps.Log.ErrorContext(ctx.Context(), "access check failed", "param", name, "error", err)
					_ = huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "internal error")
				}
				return
			}
		}
		next(rctx)
	}
}

// checkedProject carries the project row the access check read to the
// handler of the same request (loadProject), so a project route reads it
// once rather than twice.
type checkedProject struct{ project *store.Project }

type checkedProjectKey struct{}

// resolver checks that the caller may see the resource a path id names; it
// returns an *apiError (404) when not.
type resolver func(ctx context.Context, p *auth.Principal, id string) error

// ResolvedPrefixes are where each path id is checked by the middleware: in
// its resource's own tree only (an {projectID} elsewhere, such as an
// unclaimed ephemeral database, is not a project of the caller's yet).
var ResolvedPrefixes = map[string]string{
	"orgID":     "/v1/organizations/{orgID}",
	"projectID": "/v1/projects/{projectID}",
	"jobID":     "/v1/jobs/{jobID}",
	"previewID": "/v1/preview-databases/{previewID}",
}

func (s *Server) defaultResolvers() map[string]resolver {
	return map[string]resolver{
		"orgID": func(ctx context.Context, p *auth.Principal, id string) error {
			if id == p.OrganizationID {
				return nil
			}
			org, err := store.GetOrganization(ctx, s.deps.Store.Pool, p.OrganizationID)
			if err != nil {
				return notFoundOr(err, "organization not found")
			}
			if id == org.Slug {
				return nil
			}
			return errorf(http.StatusNotFound, "organization not found")
		},
		"projectID": func(ctx context.Context, p *auth.Principal, id string) error {
			if p.ProjectScoped() && p.ProjectID != id {
				return errorf(http.StatusNotFound, "project not found")
			}
			pr, err := store.GetProject(ctx, s.deps.Store.Pool, p.OrganizationID, id)
			if err == nil {
				if c, ok := ctx.Value(checkedProjectKey{}).(*checkedProject); ok {
					c.project = pr
				}
			}
			return notFoundOr(err, "project not found")
		},
		"jobID": func(ctx context.Context, p *auth.Principal, id string) error {
			j, err := queue.Get(ctx, s.deps.Store.Pool, p.OrganizationID, id)
			if err != nil {
				return notFoundOr(err, "job not found")
			}
			if p.ProjectScoped() && (j.ProjectID == nil || *j.ProjectID != p.ProjectID) {
				return errorf(http.StatusNotFound, "job not found")
			}
			return nil
		},
		"previewID": func(ctx context.Context, p *auth.Principal, id string) error {
			projectID, err := store.PreviewProject(ctx, s.deps.Store.Pool, p.OrganizationID, id)
			if err != nil {
				return notFoundOr(err, "preview not found")
			}
			if p.ProjectScoped() && projectID != p.ProjectID {
				return errorf(http.StatusNotFound, "preview not found")
			}
			return nil
		},
	}
}

func notFoundOr(err error, msg string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "%s", msg)
	}
	return err
}

type principalKey struct{}

func principal(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

const msgNoCredentials = "invalid or missing credentials"

// authenticate resolves the request's credential. Missing credentials are
// 401 with msgNoCredentials; every other 401 counts as a failed authentication.
func (s *Server) authenticate(ctx huma.Context) (*auth.Principal, int, string) {
	authz := strings.TrimSpace(ctx.Header("Authorization"))
	xkey := strings.TrimSpace(ctx.Header("X-API-Key"))
	var bearer string
	if authz != "" {
		scheme, token, ok := strings.Cut(authz, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, http.StatusUnauthorized, "authorization must be a Bearer token"
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
		// No API key: the dashboard's session cookie, if any.
		return s.cookiePrincipal(ctx)
	}
	var p *auth.Principal
	var err error
	switch {
	case strings.HasPrefix(key, auth.KeyPrefix):
		p, err = s.deps.Auth.APIKey(ctx.Context(), key)
	case bearer != "" && s.deps.Auth.OIDC != nil && auth.LooksLikeJWT(key):
		p, err = s.deps.Auth.Session(ctx.Context(), key)
	default:
		return nil, http.StatusUnauthorized, "invalid API key or session token"
	}
	var se *auth.SessionError
	switch {
	case err == nil:
		return p, 0, ""
	case errors.Is(err, auth.ErrUnauthenticated):
		return nil, http.StatusUnauthorized, "invalid, revoked or expired API key"
	case errors.As(err, &se):
		return nil, http.StatusUnauthorized, se.Error()
	case errors.Is(err, auth.ErrNoOrganization):
		return nil, http.StatusForbidden, err.Error()
	}
	s.deps.Log.Error("authentication lookup failed", "error", err)
	return nil, http.StatusServiceUnavailable, "authentication is temporarily unavailable"
}
