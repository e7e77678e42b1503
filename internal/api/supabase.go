package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/supabase"
)

// mountSupabase serves the Supabase-compatible facade at /api/supabase/v1;
// it calls back into root (the /v1 routes) in process.
func (s *Server) mountSupabase(root *http.ServeMux) {
	s.supabase = supabase.New(supabase.Deps{Backend: root, Authenticate: s.supabaseAuth, Store: s.deps.Store,
		Log: s.deps.Log, Version: s.deps.Version})
	root.Handle(supabase.Prefix+"/", s.supabase)
}

// Supabase returns the facade (its rules and document, for tests).
func (s *Server) Supabase() *supabase.Facade { return s.supabase }

// supabaseAuth authenticates a facade request the way authMiddleware does:
// the API bucket, the same credentials, the failed-authentication bucket.
func (s *Server) supabaseAuth(r *http.Request) (*auth.Principal, *supabase.Error) {
	ctx := humago.NewContext(nil, r, nil)
	allow := func(bucket string) *supabase.Error {
		if s.deps.Limiter == nil {
			return nil
		}
		if ok, wait := s.deps.Limiter.Allow(bucket, s.clientAddr(ctx)); !ok {
			return supabase.Errorf(http.StatusTooManyRequests, "rate limit exceeded").WithHeader("Retry-After", auth.RetryAfterSeconds(wait))
		}
		return nil
	}
	if e := allow(auth.BucketAPI); e != nil {
		return nil, e
	}
	p, status, msg := s.supabaseToken(ctx)
	if p == nil && status == 0 {
		p, status, msg = s.authenticate(ctx)
	}
	if p != nil {
		return p, nil
	}
	if status == http.StatusUnauthorized && msg != msgNoCredentials {
		if e := allow(auth.BucketFailedAuth); e != nil {
			return nil, e
		}
	}
	if status == http.StatusUnauthorized {
		msg = "Unauthorized: " + msg
	}
	return nil, supabase.Errorf(status, "%s", msg)
}

// supabaseToken resolves an sbp_ Bearer token (status 0: not one).
func (s *Server) supabaseToken(ctx huma.Context) (*auth.Principal, int, string) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(ctx.Header("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tok, auth.SupabaseTokenPrefix) {
		return nil, 0, ""
	}
	p, err := s.deps.Auth.SupabaseToken(ctx.Context(), tok)
	switch {
	case err == nil:
		return p, 0, ""
	case errors.Is(err, auth.ErrUnauthenticated):
		return nil, http.StatusUnauthorized, "invalid, revoked or expired access token"
	}
	s.deps.Log.Error("authentication lookup failed", "error", err)
	return nil, http.StatusServiceUnavailable, "authentication is temporarily unavailable"
}
