package auth

import "context"

type internalPrincipalKey struct{}

// WithInternalPrincipal marks an in-process request (the Supabase facade
// calling /v1) as made by p, already authenticated and rate-limited. Only
// code in this process can set a context value, so no client can forge it.
func WithInternalPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, internalPrincipalKey{}, p)
}

// InternalPrincipal returns the principal WithInternalPrincipal set, or nil.
func InternalPrincipal(ctx context.Context) *Principal {
	p, _ := ctx.Value(internalPrincipalKey{}).(*Principal)
	return p
}
