package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixture is one organization with one cluster on a fresh control database.
type fixture struct {
	st      *store.Store
	org     *store.Organization
	cluster *store.Cluster
}

// newFixture marks the test parallel (each has its own database) and
// returns its fixture and a context that ends with it.
func newFixture(t *testing.T) (*fixture, context.Context) {
	t.Helper()
	t.Parallel()
	st := storetest.ControlDB(t, 4)
	f := &fixture{st: st, org: insertOrg(t, st, "acme")}
	f.cluster = &store.Cluster{ID: ids.New("cl_"), Name: "local", Provider: "embedded", Region: "local",
		PublicHost: "127.0.0.1", DirectPort: 5432, PooledPort: 6432, PostgresVersion: "15", State: "active"}
	if err := store.UpsertClusterByName(ctxT(t), st.Pool, f.cluster); err != nil {
		t.Fatal(err)
	}
	return f, ctxT(t)
}

func insertOrg(t *testing.T, st *store.Store, slug string) *store.Organization {
	t.Helper()
	o := &store.Organization{ID: ids.New("org_"), Name: strings.ToUpper(slug), Slug: slug, BillingPlan: "ship"}
	if err := store.InsertOrganization(ctxT(t), st.Pool, o); err != nil {
		t.Fatalf("inserting organization %s: %v", slug, err)
	}
	return o
}

// project inserts a ready project called slug in org.
func (f *fixture) project(t *testing.T, org *store.Organization, slug string) *store.Project {
	t.Helper()
	db := "db_" + slug + "_" + strings.ToLower(ids.RandomBase62(6))
	p := &store.Project{ID: ids.New("prj_"), OrganizationID: org.ID, ClusterID: f.cluster.ID, Name: "Project " + slug,
		Slug: slug, Environment: "production", State: store.ProjectReady, PostgresVersion: "15",
		DatabaseName: db, OwnerRole: "u_" + slug, RoleName: "u_" + slug, PasswordEnc: []byte("sealed-" + slug)}
	if err := store.InsertProject(ctxT(t), f.st.Pool, p); err != nil {
		t.Fatalf("inserting project %s: %v", slug, err)
	}
	return p
}
