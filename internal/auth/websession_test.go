package auth

import (
	"context"
	"testing"
	"time"
)

func TestWebSessions(t *testing.T) {
	w := NewWebSessions()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return now }
	key := KeyPrefix + "0123456789012345678901234567890123456789"
	tok, s := w.Create(key)
	if len(tok) != 43 || len(s.CSRF) != 43 || tok == s.CSRF || !s.ExpiresAt.Equal(now.Add(WebSessionTTL)) {
		t.Fatalf("token %q csrf %q expires %v", tok, s.CSRF, s.ExpiresAt)
	}
	if string(s.keyHash) != string(HashKey(key)) {
		t.Fatal("the session must hold the key's hash")
	}
	if got, err := w.Get(tok); err != nil || got != s {
		t.Fatalf("get: %v", err)
	}
	for _, bad := range []string{"", tok + "x", s.CSRF} {
		if _, err := w.Get(bad); err != ErrNoWebSession {
			t.Fatalf("get %q: %v", bad, err)
		}
	}
	if !s.CSRFMatches(s.CSRF) || s.CSRFMatches("") || s.CSRFMatches(s.CSRF[1:]) || s.CSRFMatches(tok) {
		t.Fatal("CSRF comparison")
	}
	// Expiry.
	now = now.Add(WebSessionTTL)
	if _, err := w.Get(tok); err != ErrNoWebSession {
		t.Fatalf("expired session: %v", err)
	}
	if len(w.byID) != 0 {
		t.Fatal("an expired session is dropped on sight")
	}
	// Revocation.
	tok2, _ := w.Create(key)
	w.Revoke(tok2)
	if _, err := w.Get(tok2); err != ErrNoWebSession {
		t.Fatalf("revoked session: %v", err)
	}
	// OIDC sessions hold a copy of their principal.
	p := &Principal{AuthSource: SourceSession, OrganizationID: "org_1", Scopes: []string{ScopeAll}, UserID: "user_1", Role: "member"}
	tok3, s3 := w.CreateFor(p)
	p.Role = "admin"
	got, err := (&Authenticator{}).WebSession(context.Background(), s3)
	if err != nil || got.Role != "member" || got.OrganizationID != "org_1" || got.AuthSource != SourceSession {
		t.Fatalf("OIDC session principal: %+v %v", got, err)
	}
	got.Scopes = nil
	if again, _ := (&Authenticator{}).WebSession(context.Background(), s3); len(again.Scopes) != 1 {
		t.Fatal("callers must not be able to change the stored principal")
	}
	w.Revoke(tok3)

	// The table is bounded: expired sessions go first, then the oldest.
	for i := 0; i < maxWebSessions; i++ {
		w.Create(key)
	}
	newest, _ := w.Create(key)
	if len(w.byID) != maxWebSessions {
		t.Fatalf("%d sessions, want the cap %d", len(w.byID), maxWebSessions)
	}
	if _, err := w.Get(newest); err != nil {
		t.Fatal("the newest session must survive the cap")
	}
}
