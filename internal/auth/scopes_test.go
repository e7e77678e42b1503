package auth

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeScopes(t *testing.T) {
	got, err := NormalizeScopes([]string{"projects:read", "jobs:read", "projects:read"}, false)
	if err != nil || !slices.Equal(got, []string{"projects:read", "jobs:read"}) {
		t.Fatalf("dedupe: %v %v", got, err)
	}
	if got, err := NormalizeScopes([]string{"*"}, false); err != nil || !slices.Equal(got, []string{"*"}) {
		t.Fatalf("*: %v %v", got, err)
	}
	for _, c := range []struct {
		scopes  []string
		project bool
		want    string
	}{
		{nil, false, "at least one"},
		{[]string{}, true, "at least one"},
		{[]string{"projects:admin"}, false, `unknown scope "projects:admin"`},
		{[]string{"Projects:Read"}, false, "unknown scope"},
		{[]string{"*"}, true, "* is not allowed on a project-scoped key"},
		{[]string{"projects:read", "organizations:read"}, true, "organizations:read is not allowed"},
		{[]string{"api_keys:write"}, true, "api_keys:write is not allowed"},
	} {
		if _, err := NormalizeScopes(c.scopes, c.project); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NormalizeScopes(%v, %v) = %v, want error with %q", c.scopes, c.project, err, c.want)
		}
	}
	if _, err := NormalizeScopes(ProjectKeyScopes, true); err != nil {
		t.Fatalf("every project-key scope must be allowed: %v", err)
	}
	if len(AllScopes) != 11 || len(ProjectKeyScopes) != 7 {
		t.Fatalf("%d scopes, %d project-key scopes", len(AllScopes), len(ProjectKeyScopes))
	}
}

// TestCanGrant: the subset rule.
func TestCanGrant(t *testing.T) {
	admin := &Principal{AuthSource: SourceAPIKey, Scopes: []string{"*"}}
	limited := &Principal{AuthSource: SourceAPIKey, Scopes: []string{"api_keys:write", "projects:read"}}
	everything := &Principal{AuthSource: SourceAPIKey, Scopes: append([]string(nil), AllScopes...)}
	if admin.FirstUngrantable([]string{"*", "projects:write"}) != "" {
		t.Fatal("* must grant everything")
	}
	if s := limited.FirstUngrantable([]string{"projects:read", "projects:write"}); s != "projects:write" {
		t.Fatalf("limited key granted %q", s)
	}
	if limited.FirstUngrantable([]string{"projects:read"}) != "" {
		t.Fatal("a held scope must be grantable")
	}
	if limited.CanGrant("*") {
		t.Fatal("* granted by a limited key")
	}
	if !everything.CanGrant("*") {
		t.Fatal("a key holding all eleven scopes may grant *")
	}
	session := &Principal{AuthSource: SourceSession, Scopes: []string{"*"}, Role: "member"}
	if session.IsAdmin() || !(&Principal{AuthSource: SourceSession, Role: "admin"}).IsAdmin() || !admin.IsAdmin() {
		t.Fatal("IsAdmin: keys and admin sessions only")
	}
}
