package integrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/integrations/integrationstest"
)

func TestClientsAgainstStandIns(t *testing.T) {
	ctx := context.Background()
	users := []json.RawMessage{}
	for i := 0; i < 250; i++ {
		users = append(users, json.RawMessage(`{"id":"user_`+string(rune('a'+i%26))+`"}`))
	}
	clerk := integrationstest.NewClerk(t, "sk_test_good", users...)
	vercel := integrationstest.NewVercel(t, "vtok", "prj_v1", "web", "team_1")
	netlify := integrationstest.NewNetlify(t, "ntok", "site-1", "acme")
	e := integrations.Endpoints{Clerk: clerk.URL(), Vercel: vercel.URL(), Netlify: netlify.URL()}

	// Clerk: pages of 100, and a bad key is Clerk's 401 with its message.
	var got int
	for off := 0; ; off += integrations.ClerkPage {
		page, err := e.NewClerk("sk_test_good").ListUsers(ctx, integrations.ClerkPage, off)
		if err != nil {
			t.Fatal(err)
		}
		got += len(page)
		if len(page) < integrations.ClerkPage {
			break
		}
	}
	if got != 250 {
		t.Fatalf("read %d users, want 250", got)
	}
	var ae *integrations.APIError
	if err := e.NewClerk("sk_test_bad").Check(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized ||
		ae.Message != "The provided secret key is invalid" || !ae.Rejected() {
		t.Fatalf("bad key: %v", err)
	}

	// Vercel: by name within the team, env upsert (twice), webhook.
	v := e.NewVercel("vtok", "team_1")
	p, err := v.Project(ctx, "web")
	if err != nil || p.ID != "prj_v1" {
		t.Fatalf("project: %+v %v", p, err)
	}
	if _, err := e.NewVercel("vtok", "").Project(ctx, "web"); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("wrong team: %v", err)
	}
	for _, val := range []string{"postgres://one", "postgres://two"} {
		if err := v.UpsertEnv(ctx, p.ID, []integrations.VercelEnv{{Key: "DATABASE_URL", Value: val, Type: "encrypted",
			Target: []string{"production", "preview", "development"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if env := vercel.Env(); len(env) != 1 || env[0].Value != "postgres://two" {
		t.Fatalf("vercel env %+v", env)
	}
	hook, err := v.CreateWebhook(ctx, p.ID, "http://127.0.0.1/x")
	if err != nil || hook.Secret != vercel.HookSecret {
		t.Fatalf("hook %+v %v", hook, err)
	}

	// Netlify: site, create then update, hook.
	n := e.NewNetlify("ntok")
	site, err := n.Site(ctx, "site-1")
	if err != nil || site.AccountSlug != "acme" {
		t.Fatalf("site %+v %v", site, err)
	}
	for _, val := range []string{"a", "b"} {
		if err := n.SetEnv(ctx, site, "DATABASE_URL", val); err != nil {
			t.Fatal(err)
		}
	}
	if env, ok := netlify.Env("DATABASE_URL"); !ok || len(env.Values) != 1 || env.Values[0].Value != "b" || env.Values[0].Context != "all" {
		t.Fatalf("netlify env %+v", env)
	}
	if err := n.SetBranchEnv(ctx, site, "DATABASE_URL", "feat/x", "pv"); err != nil {
		t.Fatal(err)
	}
	if err := n.SetEnv(ctx, site, "DATABASE_URL", "c"); err != nil {
		t.Fatal(err)
	}
	env, _ := netlify.Env("DATABASE_URL")
	if len(env.Values) != 5 || env.Values[0].Value != "c" || env.Values[4].ContextParameter != "feat/x" || env.Values[4].Value != "pv" {
		t.Fatalf("netlify branch env %+v", env)
	}
	if err := n.CreateHook(ctx, "site-1", "http://127.0.0.1/h", "s3"); err != nil || len(netlify.Hooks()) != 1 {
		t.Fatalf("hook: %v", err)
	}
	if _, err := e.NewNetlify("bad").Site(ctx, "site-1"); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("bad token: %v", err)
	}
}
