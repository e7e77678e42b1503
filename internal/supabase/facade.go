// Package supabase is the Supabase-compatible Management API facade served
// at /api/supabase/v1 (docs/supabase-compatibility.md). Its handlers
// translate Supabase's routes and shapes onto CapyDB's own /v1 operations,
// called in process with the caller's principal, so the scopes, tenancy,
// jobs and audit of /v1 apply unchanged: the facade never runs DDL itself.
package supabase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Prefix is where the facade is mounted; Supabase clients take
// https://<host>/api/supabase as their API endpoint.
const Prefix = "/api/supabase"

// Deps are what the facade needs.
type Deps struct {
	// Backend serves CapyDB's /v1 routes (called in process).
	Backend http.Handler
	// Authenticate resolves the request's credential exactly as /v1 does
	// (API keys as Bearer tokens, rate limits); nil principal = refused.
	Authenticate func(r *http.Request) (*auth.Principal, *Error)
	Store        *store.Store
	Log          *slog.Logger
	Version      string
	// JobWait bounds how long a write waits for its CapyDB job (Supabase's
	// answers report the change as made); 0 = 60 s.
	JobWait time.Duration
}

// Rule is who may call one facade operation (published as x-capydb-access).
type Rule struct {
	OperationID string `json:"-"`
	Method      string `json:"-"`
	Path        string `json:"-"`
	Scope       string `json:"scope,omitempty"`
	OrScope     string `json:"or_scope,omitempty"`
	OrgKeyOnly  bool   `json:"org_key_only,omitempty"`
	// NotOffered marks a Supabase feature CapyDB does not offer (always 404).
	NotOffered bool `json:"not_offered,omitempty"`
}

// Facade is the facade's http.Handler.
type Facade struct {
	deps  Deps
	api   huma.API
	mux   *http.ServeMux
	rules []Rule
}

// Error is Supabase's error body: {"message": "..."}.
type Error struct {
	status  int
	Message string `json:"message"`
	headers http.Header
}

func (e *Error) Error() string           { return e.Message }
func (e *Error) GetStatus() int          { return e.status }
func (e *Error) GetHeaders() http.Header { return e.headers }

// Errorf builds a facade error.
func Errorf(status int, format string, a ...any) *Error {
	return &Error{status: status, Message: fmt.Sprintf(format, a...)}
}

// WithHeader adds a response header to the error (e.g. Retry-After).
func (e *Error) WithHeader(k, v string) *Error {
	if e.headers == nil {
		e.headers = http.Header{}
	}
	e.headers.Set(k, v)
	return e
}

// New builds the facade.
func New(deps Deps) *Facade {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.JobWait == 0 {
		deps.JobWait = 60 * time.Second
	}
	f := &Facade{deps: deps, mux: http.NewServeMux()}
	cfg := huma.Config{
		OpenAPI: &huma.OpenAPI{
			OpenAPI: "3.1.0",
			Info: &huma.Info{Title: "CapyDB: Supabase-compatible Management API", Version: deps.Version,
				Description: "The database half of Supabase's Management API, served by CapyDB (docs/supabase-compatibility.md). " +
					"Use a CapyDB API key as the Bearer access token. Errors are `{\"message\": \"...\"}`."},
			Servers: []*huma.Server{{URL: Prefix}},
			Components: &huma.Components{
				Schemas: huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer),
				SecuritySchemes: map[string]*huma.SecurityScheme{
					"bearer": {Type: "http", Scheme: "bearer", Description: "CapyDB API key (capy_live_...)"},
				},
			},
		},
		OpenAPIPath:   "/v1/openapi",
		Formats:       huma.DefaultFormats,
		DefaultFormat: "application/json",
		Transformers:  []huma.Transformer{supabaseErrors},
	}
	f.api = humago.New(f.mux, cfg)
	f.registerProjects()
	f.registerBranches()
	f.registerConfig()
	f.registerNetwork()
	f.registerSQL()
	f.registerBackups()
	f.registerNotOffered()
	f.registerTokens()
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, "not found")
	})
	return f
}

// Rules lists every operation's access rule (the facade access test walks them).
func (f *Facade) Rules() []Rule { return f.rules }

// OpenAPI returns the facade's document.
func (f *Facade) OpenAPI() *huma.OpenAPI { return f.api.OpenAPI() }

// ServeHTTP serves requests under Prefix.
func (f *Facade) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok || !strings.HasPrefix(rest, "/v1/") {
		writeMessage(w, http.StatusNotFound, "not found")
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = rest, ""
	f.mux.ServeHTTP(w, r2)
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// supabaseErrors turns every error body (huma's validation errors use the
// process-wide CapyDB shape) into {"message": ...}.
func supabaseErrors(_ huma.Context, status string, v any) (any, error) {
	if _, ok := v.(*Error); ok || !strings.HasPrefix(status, "4") && !strings.HasPrefix(status, "5") {
		return v, nil
	}
	if e, ok := v.(error); ok {
		return map[string]string{"message": e.Error()}, nil
	}
	return v, nil
}

// register adds one operation with its rule.
func register[I, O any](f *Facade, rule Rule, status int, summary string, handler func(context.Context, *I) (*O, error)) {
	f.rules = append(f.rules, rule)
	desc := "Requires a valid CapyDB API key"
	if rule.Scope != "" {
		desc = "Requires scope `" + rule.Scope + "`"
		if rule.OrScope != "" {
			desc += " or `" + rule.OrScope + "`"
		}
	}
	if rule.OrgKeyOnly {
		desc += "; project-scoped keys are refused"
	}
	op := huma.Operation{
		OperationID: rule.OperationID, Method: rule.Method, Path: rule.Path, Summary: summary,
		Description: desc + ".", DefaultStatus: status,
		Security:    []map[string][]string{{"bearer": {}}},
		Extensions:  map[string]any{"x-capydb-access": rule},
		Middlewares: huma.Middlewares{f.authMiddleware(rule)},
	}
	if rule.NotOffered {
		op.Description = "Not offered by CapyDB: always 404. " + op.Description
	}
	huma.Register(f.api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := handler(ctx, in)
		if err != nil {
			return nil, f.internalErr(ctx, err)
		}
		return out, nil
	})
}

type principalKey struct{}

func principal(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

// authMiddleware authenticates like /v1 and enforces the rule's scope; the
// tenancy of refs is checked when they are resolved (foreign refs are 404).
func (f *Facade) authMiddleware(rule Rule) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		r, _ := humago.Unwrap(ctx)
		if ctx.Header("Authorization") == "" && ctx.Header("X-API-Key") == "" {
			_ = writeErr(ctx, Errorf(http.StatusUnauthorized, "Unauthorized"))
			return
		}
		p, e := f.deps.Authenticate(r)
		if p == nil {
			_ = writeErr(ctx, e)
			return
		}
		switch {
		case rule.OrgKeyOnly && p.ProjectScoped():
			_ = writeErr(ctx, Errorf(http.StatusForbidden, "project-scoped API keys cannot use this route"))
			return
		case rule.Scope != "" && !p.Has(rule.Scope) && (rule.OrScope == "" || !p.Has(rule.OrScope)):
			msg := "missing scope " + rule.Scope
			if rule.OrScope != "" {
				msg += " or " + rule.OrScope
			}
			_ = writeErr(ctx, Errorf(http.StatusForbidden, "%s", msg))
			return
		}
		// Tenancy before any input is parsed (as /v1): another
		// organization's ref, or a project-scoped key's sibling, is 404.
		rctx := huma.WithValue(ctx, principalKey{}, p)
		var err error
		switch {
		case strings.Contains(rule.Path, "{ref}"):
			_, err = f.project(rctx.Context(), ctx.Param("ref"))
		case strings.Contains(rule.Path, "{branch_id_or_ref}"):
			_, err = f.resolveBranch(rctx.Context(), ctx.Param("branch_id_or_ref"))
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				f.deps.Log.ErrorContext(ctx.Context(), "supabase facade access check failed", "error", err)
				e = Errorf(http.StatusInternalServerError, "internal server error")
			}
			_ = writeErr(ctx, e)
			return
		}
		next(rctx)
	}
}

func writeErr(ctx huma.Context, e *Error) error {
	for k, vs := range e.headers {
		for _, v := range vs {
			ctx.SetHeader(k, v)
		}
	}
	ctx.SetHeader("Content-Type", "application/json")
	ctx.SetStatus(e.status)
	return json.NewEncoder(ctx.BodyWriter()).Encode(e)
}

// call runs one CapyDB /v1 operation in process as the caller and decodes
// its answer into out; a CapyDB error becomes the same status with
// {"message"} (404s keep CapyDB's wording).
func (f *Facade) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(auth.WithInternalPrincipal(ctx, principal(ctx)), method, "http://capydb.internal"+path, rd)
	if err != nil {
		return err
	}
	req.RemoteAddr = "127.0.0.1:0"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.deps.Backend.ServeHTTP(rec, req)
	if rec.Code >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if e.Error == "" {
			e.Error = http.StatusText(rec.Code)
		}
		out := Errorf(rec.Code, "%s", e.Error)
		if ra := rec.Header().Get("Retry-After"); ra != "" {
			out.WithHeader("Retry-After", ra)
		}
		return out
	}
	if out == nil || rec.Body.Len() == 0 {
		return nil
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		return fmt.Errorf("while decoding %s %s: %w", method, path, err)
	}
	return nil
}

// job is the part of a CapyDB job the facade reads from /v1 answers.
type job struct {
	ID    string  `json:"id"`
	State string  `json:"state"`
	Error *string `json:"error"`
}

// waitJob waits (bounded by JobWait) for a job the caller just queued; a
// failed job is a 400 with its error (Postgres or the pooler refused the
// change). The job is read from the queue directly: the caller's key need
// not hold jobs:read to make a change.
func (f *Facade) waitJob(ctx context.Context, id string) error {
	j, err := queue.Await(ctx, f.deps.JobWait, func(ctx context.Context) (*queue.Job, error) {
		return queue.Get(ctx, f.deps.Store.Pool, principal(ctx).OrganizationID, id)
	})
	switch {
	case errors.Is(err, queue.ErrNotFinished):
		return Errorf(http.StatusGatewayTimeout, "job %s is still %s; the change is applied when it finishes", id, j.State)
	case err != nil:
		return err
	case j.State == queue.StateFailed:
		return Errorf(http.StatusBadRequest, "%s", j.FailureMessage("the change failed"))
	}
	return nil
}

// internalErr hides an unexpected error behind Supabase's generic message.
func (f *Facade) internalErr(ctx context.Context, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	f.deps.Log.ErrorContext(ctx, "supabase facade failed", "error", err)
	return Errorf(http.StatusInternalServerError, "internal server error")
}
