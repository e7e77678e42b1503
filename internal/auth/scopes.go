package auth

import (
	"fmt"
	"slices"
)

// ProjectKeyScopes are the only scopes a project-scoped key may hold.
var ProjectKeyScopes = []string{
	ScopeProjectsRead, ScopeProjectsWrite, ScopeCredentialsRead, ScopeBackupsRead, ScopeBackupsWrite,
	ScopeJobsRead, ScopeSchemaRead,
}

// ValidScope reports whether s is one of the eleven scopes or "*".
func ValidScope(s string) bool { return s == ScopeAll || slices.Contains(AllScopes, s) }

// NormalizeScopes validates the scopes of a key to be minted and removes
// duplicates (keeping the first occurrence). A project-scoped key may hold
// only ProjectKeyScopes, and never "*".
func NormalizeScopes(scopes []string, projectScoped bool) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("scopes must contain at least one scope")
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if !ValidScope(s) {
			return nil, fmt.Errorf("scopes: unknown scope %q", s)
		}
		if projectScoped && !slices.Contains(ProjectKeyScopes, s) {
			return nil, fmt.Errorf("scopes: %s is not allowed on a project-scoped key (allowed: projects:read, projects:write, credentials:read, backups:read, backups:write, jobs:read, schema:read)", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// CanGrant reports whether the principal may mint a key holding scope: it
// must hold the scope itself; "*" can only be granted by a holder of every scope.
func (p *Principal) CanGrant(scope string) bool {
	if scope != ScopeAll {
		return p.Has(scope)
	}
	for _, s := range AllScopes {
		if !p.Has(s) {
			return false
		}
	}
	return true
}

// FirstUngrantable returns the first scope the principal may not grant, or "".
func (p *Principal) FirstUngrantable(scopes []string) string {
	for _, s := range scopes {
		if !p.CanGrant(s) {
			return s
		}
	}
	return ""
}
