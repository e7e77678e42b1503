package lifecycle

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/capydb/capydb/internal/store"
)

func TestDeriveSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Shop API":        "shop-api",
		"  My  App!! ":    "my-app",
		"2024 budget":     "p-2024-budget",
		"___":             "p",
		"Ünïcode Name":    "n-code-name",
		"a--b":            "a-b",
		"Trailing dash -": "trailing-dash",
	} {
		got := DeriveSlug(in)
		if got != want {
			t.Errorf("DeriveSlug(%q) = %q, want %q", in, got, want)
		}
		if !ValidSlug(got) {
			t.Errorf("DeriveSlug(%q) = %q is not a valid slug", in, got)
		}
	}
}

func TestValidSlug(t *testing.T) {
	for s, ok := range map[string]bool{"shop": true, "a": true, "a-1": true, "1a": false, "A": false, "a-": false, "a_b": false, "": false} {
		if ValidSlug(s) != ok {
			t.Errorf("ValidSlug(%q) = %v", s, !ok)
		}
	}
}

func TestBuildURL(t *testing.T) {
	u := BuildURL("u_shop_x", "Pw0rd", "db.example.com", 6432, "db_shop_x")
	if u != "postgres://u_shop_x:Pw0rd@db.example.com:6432/db_shop_x?sslmode=require" {
		t.Fatalf("BuildURL = %s", u)
	}
	if v6 := BuildURL("u", "p", "::1", 5432, "d"); v6 != "postgres://u:p@[::1]:5432/d?sslmode=require" {
		t.Fatalf("IPv6 host: %s", v6)
	}
	if _, err := url.Parse(u); err != nil {
		t.Fatal(err)
	}
}

func TestHasInvisible(t *testing.T) {
	for s, want := range map[string]bool{
		"Shop API": false, "Café ☕": false, "日本語": false,
		"a\u202Eb": true, "a\u200Bb": true, "\uFEFF": true, "a\u2066": true, "a\u0007": true, "a\u00ADb": true,
	} {
		if HasInvisible(s) != want {
			t.Errorf("HasInvisible(%q) = %v", s, !want)
		}
	}
}

// TestSlugRoot: every slug a create may pick from a base (base, base-2, …)
// has the base's root, so creates that could collide take the same lock.
func TestSlugRoot(t *testing.T) {
	for in, want := range map[string]string{"foo": "foo", "foo-2": "foo", "foo-2-3": "foo", "foo-bar": "foo-bar",
		"foo-bar-10": "foo-bar", "p-2024-budget": "p-2024-budget", "p-2024": "p", "a-": "a-", "-1": "-1", "foo-2x": "foo-2x"} {
		if got := store.SlugRoot(in); got != want {
			t.Errorf("SlugRoot(%q) = %q, want %q", in, got, want)
		}
	}
	for _, base := range []string{"shop", "race-2", "p-2024-budget", "a-1-b"} {
		for n := 2; n < 12; n++ {
			if cand := fmt.Sprintf("%s-%d", base, n); store.SlugRoot(cand) != store.SlugRoot(base) {
				t.Errorf("candidate %s of base %s has root %s, base %s", cand, base, store.SlugRoot(cand), store.SlugRoot(base))
			}
		}
	}
}
