package store_test

import (
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// Projects are read only within their organization; a deleted project
// disappears from every live read (and frees its slug) but stays readable
// by id for the job handlers.
func TestProjects(t *testing.T) {
	f, ctx := newFixture(t)
	other := insertOrg(t, f.st, "other")
	web := f.project(t, f.org, "web")
	webAPI := f.project(t, f.org, "web-api")
	mobile := f.project(t, f.org, "mobile")
	foreign := f.project(t, other, "web")

	got, err := store.GetProject(ctx, f.st.Pool, f.org.ID, web.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Project web" || got.Slug != "web" || got.ClusterID != f.cluster.ID || got.State != store.ProjectReady ||
		got.DatabaseName != web.DatabaseName || string(got.PasswordEnc) != "sealed-web" || got.DeletedAt != nil ||
		!got.CreatedAt.Equal(web.CreatedAt) || got.Provisioned || got.LastError != nil {
		t.Errorf("GetProject read back %+v, want the inserted %+v", got, web)
	}
	if _, err := store.GetProject(ctx, f.st.Pool, other.ID, web.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetProject from another organization: %v, want ErrNotFound", err)
	}

	list, err := store.ListProjectsPage(ctx, f.st.Pool, f.org.ID, "", store.ProjectPage{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := projectIDs(list); !reflect.DeepEqual(ids, []string{web.ID, webAPI.ID, mobile.ID}) {
		t.Errorf("ListProjectsPage = %v, want the organization's three, oldest first", ids)
	}
	if p := list[0]; p.PasswordEnc != nil || p.PendingPasswordEnc != nil || p.DatabaseName != web.DatabaseName || !p.CreatedAt.Equal(web.CreatedAt) {
		t.Errorf("ListProjectsPage row %+v: want the row without its encrypted passwords", p)
	}
	first, err := store.ListProjectsPage(ctx, f.st.Pool, f.org.ID, "", store.ProjectPage{Limit: 2})
	if err != nil || !reflect.DeepEqual(projectIDs(first), []string{web.ID, webAPI.ID}) {
		t.Errorf("ListProjectsPage(limit 2) = %v (%v), want the two oldest", projectIDs(first), err)
	}
	rest, err := store.ListProjectsPage(ctx, f.st.Pool, f.org.ID, "", store.ProjectPage{AfterCreated: webAPI.CreatedAt, AfterID: webAPI.ID})
	if err != nil || !reflect.DeepEqual(projectIDs(rest), []string{mobile.ID}) {
		t.Errorf("ListProjectsPage(after %s) = %v (%v), want the rest", webAPI.ID, projectIDs(rest), err)
	}
	only, err := store.ListProjectsPage(ctx, f.st.Pool, f.org.ID, mobile.ID, store.ProjectPage{})
	if err != nil || !reflect.DeepEqual(projectIDs(only), []string{mobile.ID}) {
		t.Errorf("ListProjectsPage(only %s) = %v (%v)", mobile.ID, projectIDs(only), err)
	}
	if none, err := store.ListProjectsPage(ctx, f.st.Pool, f.org.ID, foreign.ID, store.ProjectPage{}); err != nil || len(none) != 0 || none == nil {
		t.Errorf("ListProjectsPage(only a foreign project) = %#v (%v), want an empty, non-nil list", none, err)
	}

	if id, err := store.SlugTaken(ctx, f.st.Pool, f.org.ID, "web"); err != nil || id != web.ID {
		t.Errorf("SlugTaken(web) = %q (%v), want %s", id, err, web.ID)
	}
	if id, err := store.SlugTaken(ctx, f.st.Pool, f.org.ID, "shop"); err != nil || id != "" {
		t.Errorf("SlugTaken(shop) = %q (%v), want none", id, err)
	}
	slugs, err := store.SlugsWithPrefix(ctx, f.st.Pool, f.org.ID, "web")
	if err != nil || !reflect.DeepEqual(slugs, map[string]bool{"web": true, "web-api": true}) {
		t.Errorf("SlugsWithPrefix(web) = %v (%v), want web and web-api only", slugs, err)
	}
	counts, err := store.CountProjectsByCluster(ctx, f.st.Pool)
	if err != nil || !reflect.DeepEqual(counts, map[string]int{f.cluster.ID: 4}) {
		t.Errorf("CountProjectsByCluster = %v (%v), want 4 on %s", counts, err, f.cluster.ID)
	}

	if _, err := f.st.Pool.Exec(ctx, `UPDATE projects SET deleted_at = now(), state = 'deleting' WHERE id = $1`, web.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetProject(ctx, f.st.Pool, f.org.ID, web.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetProject of a deleted project: %v, want ErrNotFound", err)
	}
	if del, err := store.GetProjectAny(ctx, f.st.Pool, web.ID); err != nil || del.DeletedAt == nil || del.State != store.ProjectDeleting {
		t.Errorf("GetProjectAny of a deleted project = %+v (%v), want it with deleted_at set", del, err)
	}
	if id, err := store.SlugTaken(ctx, f.st.Pool, f.org.ID, "web"); err != nil || id != "" {
		t.Errorf("SlugTaken(web) after the delete = %q (%v), want free", id, err)
	}
	counts, err = store.CountProjectsByCluster(ctx, f.st.Pool)
	if err != nil || counts[f.cluster.ID] != 3 {
		t.Errorf("CountProjectsByCluster after a delete = %v (%v), want 3", counts, err)
	}
	again := f.project(t, f.org, "web") // the slug is free again
	list, err = store.ListProjectsPage(ctx, f.st.Pool, f.org.ID, "", store.ProjectPage{})
	if err != nil || !reflect.DeepEqual(projectIDs(list), []string{webAPI.ID, mobile.ID, again.ID}) {
		t.Errorf("ListProjectsPage after delete and re-create = %v (%v)", projectIDs(list), err)
	}
}

func projectIDs(ps []*store.Project) []string {
	return idsOf(ps, func(p *store.Project) string { return p.ID })
}

func idsOf[T any](xs []*T, id func(*T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

// API keys are found by hash only, listed newest first, revoked once (the
// first time sticks), and touched at most once a minute.
func TestAPIKeys(t *testing.T) {
	f, ctx := newFixture(t)
	p := f.project(t, f.org, "api")
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Microsecond)
	first := apiKey(f.org.ID, "first", nil, nil)
	second := apiKey(f.org.ID, "second", &p.ID, &expires)
	for _, k := range []*store.APIKey{first, second} {
		if err := store.InsertAPIKey(ctx, f.st.Pool, k); err != nil {
			t.Fatal(err)
		}
	}

	got, err := store.GetAPIKeyByHash(ctx, f.st.Pool, second.KeyHash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != second.ID || got.OrganizationID != f.org.ID || got.Name != "second" || got.KeyPrefix != second.KeyPrefix ||
		!reflect.DeepEqual(got.Scopes, []string{"projects:read", "previews:write"}) || got.ProjectID == nil || *got.ProjectID != p.ID ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.Source != "api" || got.RevokedAt != nil || got.LastUsedAt != nil {
		t.Errorf("GetAPIKeyByHash = %+v, want the inserted second key", got)
	}
	unknown := sha256.Sum256([]byte("capy_unknown"))
	if _, err := store.GetAPIKeyByHash(ctx, f.st.Pool, unknown[:]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAPIKeyByHash(unknown) = %v, want ErrNotFound", err)
	}

	keys, err := store.ListAPIKeys(ctx, f.st.Pool, f.org.ID)
	if err != nil || len(keys) != 2 || keys[0].ID != second.ID || keys[1].ID != first.ID {
		t.Errorf("ListAPIKeys = %v (%v), want second then first", keyIDs(keys), err)
	}

	at, err := store.RevokeAPIKey(ctx, f.st.Pool, first.ID)
	if err != nil || at.IsZero() {
		t.Fatalf("RevokeAPIKey = %v, %v", at, err)
	}
	again, err := store.RevokeAPIKey(ctx, f.st.Pool, first.ID)
	if err != nil || !again.Equal(at) {
		t.Errorf("revoking again = %v (%v), want the first revocation time %v", again, err, at)
	}
	if _, err := store.RevokeAPIKey(ctx, f.st.Pool, "key_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeAPIKey(missing) = %v, want ErrNotFound", err)
	}

	if err := store.TouchAPIKey(ctx, f.st.Pool, second.ID); err != nil {
		t.Fatal(err)
	}
	touched, err := store.GetAPIKeyByHash(ctx, f.st.Pool, second.KeyHash)
	if err != nil || touched.LastUsedAt == nil {
		t.Fatalf("after TouchAPIKey last_used_at = %v (%v), want set", touched.LastUsedAt, err)
	}
	if err := store.TouchAPIKey(ctx, f.st.Pool, second.ID); err != nil {
		t.Fatal(err)
	}
	if k, err := store.GetAPIKeyByHash(ctx, f.st.Pool, second.KeyHash); err != nil || !k.LastUsedAt.Equal(*touched.LastUsedAt) {
		t.Errorf("a second touch within the minute moved last_used_at to %v (%v), want it kept at %v", k.LastUsedAt, err, touched.LastUsedAt)
	}
}

func apiKey(orgID, name string, projectID *string, expires *time.Time) *store.APIKey {
	plain := "capy_" + ids.RandomBase62(24)
	hash := sha256.Sum256([]byte(plain))
	return &store.APIKey{ID: ids.New("key_"), OrganizationID: orgID, Name: name, KeyHash: hash[:], KeyPrefix: plain[:9],
		Scopes: []string{"projects:read", "previews:write"}, ProjectID: projectID, ExpiresAt: expires, Source: "api"}
}

func keyIDs(ks []*store.APIKey) []string {
	return idsOf(ks, func(k *store.APIKey) string { return k.ID })
}

// Organizations are found by id or slug; an update changes only what it is
// given, and an empty e-mail clears it.
func TestOrganizations(t *testing.T) {
	f, ctx := newFixture(t)
	for _, ref := range []string{f.org.ID, "acme"} {
		o, err := store.GetOrganizationByRef(ctx, f.st.Pool, ref)
		if err != nil || o.ID != f.org.ID || o.Name != "ACME" || o.BillingPlan != "ship" || o.BillingEmail != nil {
			t.Errorf("GetOrganizationByRef(%s) = %+v (%v)", ref, o, err)
		}
	}
	if _, err := store.GetOrganizationByRef(ctx, f.st.Pool, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetOrganizationByRef(nope) = %v, want ErrNotFound", err)
	}

	email := "billing@acme.test"
	o, err := store.UpdateOrganization(ctx, f.st.Pool, f.org.ID, nil, &email)
	if err != nil || o.Name != "ACME" || o.BillingEmail == nil || *o.BillingEmail != email || !o.UpdatedAt.After(f.org.UpdatedAt) {
		t.Errorf("setting the e-mail: %+v (%v)", o, err)
	}
	name, empty := "Acme Inc", ""
	o, err = store.UpdateOrganization(ctx, f.st.Pool, f.org.ID, &name, nil)
	if err != nil || o.Name != name || o.BillingEmail == nil || *o.BillingEmail != email {
		t.Errorf("renaming kept the e-mail? %+v (%v)", o, err)
	}
	o, err = store.UpdateOrganization(ctx, f.st.Pool, f.org.ID, nil, &empty)
	if err != nil || o.Name != name || o.BillingEmail != nil {
		t.Errorf("clearing the e-mail: %+v (%v)", o, err)
	}
	if _, err := store.UpdateOrganization(ctx, f.st.Pool, "org_missing", &name, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateOrganization(missing) = %v, want ErrNotFound", err)
	}
}

// Webhook endpoints belong to one organization: reads, updates, secret
// changes and deletes from another organization find nothing.
func TestWebhookEndpoints(t *testing.T) {
	f, ctx := newFixture(t)
	other := insertOrg(t, f.st, "other")
	desc := "deploys"
	a := &store.WebhookEndpoint{ID: ids.New("whe_"), OrganizationID: f.org.ID, URL: "https://a.example/hook",
		Description: &desc, IsActive: true, SecretEnc: []byte("sealed-a")}
	b := &store.WebhookEndpoint{ID: ids.New("whe_"), OrganizationID: f.org.ID, URL: "https://b.example/hook",
		EventTypes: []string{"job.failed"}, SecretEnc: []byte("sealed-b")}
	for _, e := range []*store.WebhookEndpoint{a, b} {
		if err := store.InsertWebhookEndpoint(ctx, f.st.Pool, e); err != nil {
			t.Fatal(err)
		}
	}

	got, err := store.GetWebhookEndpoint(ctx, f.st.Pool, f.org.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != a.URL || got.Description == nil || *got.Description != desc || !got.IsActive ||
		got.EventTypes == nil || len(got.EventTypes) != 0 || string(got.SecretEnc) != "sealed-a" ||
		got.LastFinishedState != nil || got.PendingFailing {
		t.Errorf("GetWebhookEndpoint = %+v, want the inserted endpoint with no event-type filter and no deliveries", got)
	}
	if _, err := store.GetWebhookEndpoint(ctx, f.st.Pool, other.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetWebhookEndpoint from another organization = %v, want ErrNotFound", err)
	}
	list, err := store.ListWebhookEndpoints(ctx, f.st.Pool, f.org.ID)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID ||
		!reflect.DeepEqual(list[1].EventTypes, []string{"job.failed"}) || list[1].IsActive {
		t.Errorf("ListWebhookEndpoints = %+v (%v), want a then b (inactive, job.failed only)", list, err)
	}
	if none, err := store.ListWebhookEndpoints(ctx, f.st.Pool, other.ID); err != nil || none == nil || len(none) != 0 {
		t.Errorf("ListWebhookEndpoints(other) = %#v (%v), want an empty, non-nil list", none, err)
	}

	b.URL, b.IsActive, b.EventTypes = "https://b.example/v2", true, nil
	if err := store.UpdateWebhookEndpoint(ctx, f.st.Pool, b); err != nil {
		t.Fatal(err)
	}
	if got, err := store.GetWebhookEndpoint(ctx, f.st.Pool, f.org.ID, b.ID); err != nil || got.URL != "https://b.example/v2" ||
		!got.IsActive || len(got.EventTypes) != 0 || !got.UpdatedAt.Equal(b.UpdatedAt) {
		t.Errorf("after UpdateWebhookEndpoint: %+v (%v)", got, err)
	}
	moved := *b
	moved.OrganizationID = other.ID
	if err := store.UpdateWebhookEndpoint(ctx, f.st.Pool, &moved); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateWebhookEndpoint under another organization = %v, want ErrNotFound", err)
	}

	if err := store.SetWebhookEndpointSecret(ctx, f.st.Pool, other.ID, a.ID, []byte("stolen")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetWebhookEndpointSecret from another organization = %v, want ErrNotFound", err)
	}
	if err := store.SetWebhookEndpointSecret(ctx, f.st.Pool, f.org.ID, a.ID, []byte("sealed-a2")); err != nil {
		t.Fatal(err)
	}
	if got, err := store.GetWebhookEndpoint(ctx, f.st.Pool, f.org.ID, a.ID); err != nil || string(got.SecretEnc) != "sealed-a2" {
		t.Errorf("secret after SetWebhookEndpointSecret = %q (%v)", got.SecretEnc, err)
	}

	if err := store.DeleteWebhookEndpoint(ctx, f.st.Pool, other.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteWebhookEndpoint from another organization = %v, want ErrNotFound", err)
	}
	if err := store.DeleteWebhookEndpoint(ctx, f.st.Pool, f.org.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteWebhookEndpoint(ctx, f.st.Pool, f.org.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting twice = %v, want ErrNotFound", err)
	}
	if list, err := store.ListWebhookEndpoints(ctx, f.st.Pool, f.org.ID); err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("after the delete ListWebhookEndpoints = %+v (%v), want b only", list, err)
	}
}
