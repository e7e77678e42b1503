package store_test

import (
	"errors"
	"testing"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// A project has at most one read replica per cluster; one left from before
// a move to another cluster is replaced; the standby's port is per cluster.
func TestReadReplicas(t *testing.T) {
	f, ctx := newFixture(t)
	p := f.project(t, f.org, "web")
	if port, err := store.ClusterReadReplicaPort(ctx, f.st.Pool, f.cluster.ID); err != nil || port != 0 {
		t.Fatalf("port before = %d, %v; want 0", port, err)
	}
	if err := store.SetClusterReadReplicaPort(ctx, f.st.Pool, f.cluster.ID, 18432); err != nil {
		t.Fatal(err)
	}
	if port, err := store.ClusterReadReplicaPort(ctx, f.st.Pool, f.cluster.ID); err != nil || port != 18432 {
		t.Fatalf("port = %d, %v; want 18432", port, err)
	}
	if _, err := store.ClusterReadReplicaPort(ctx, f.st.Pool, "cl_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing cluster: %v", err)
	}

	first := &store.ReadReplica{ID: ids.New("rr_"), ProjectID: p.ID, ClusterID: f.cluster.ID}
	if ok, err := store.InsertReadReplica(ctx, f.st.Pool, first); err != nil || !ok || first.CreatedAt.IsZero() {
		t.Fatalf("insert: %v %v %v", ok, err, first.CreatedAt)
	}
	again := &store.ReadReplica{ID: ids.New("rr_"), ProjectID: p.ID, ClusterID: f.cluster.ID}
	if ok, err := store.InsertReadReplica(ctx, f.st.Pool, again); err != nil || ok {
		t.Fatalf("second insert on the same cluster: %v %v, want not inserted", ok, err)
	}
	other := &store.Cluster{ID: ids.New("cl_"), Name: "other", Provider: "node", Region: "local",
		PublicHost: "10.0.0.2", DirectPort: 5432, PooledPort: 6432, PostgresVersion: "15", State: "active"}
	if err := store.UpsertClusterByName(ctx, f.st.Pool, other); err != nil {
		t.Fatal(err)
	}
	moved := &store.ReadReplica{ID: ids.New("rr_"), ProjectID: p.ID, ClusterID: other.ID}
	if ok, err := store.InsertReadReplica(ctx, f.st.Pool, moved); err != nil || !ok {
		t.Fatalf("insert after a move: %v %v, want the stale one replaced", ok, err)
	}
	list, err := store.ListReadReplicas(ctx, f.st.Pool, p.ID)
	if err != nil || len(list) != 1 || list[0].ID != moved.ID || list[0].ClusterID != other.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := store.DeleteReadReplica(ctx, f.st.Pool, p.ID, first.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of the replaced id: %v, want ErrNotFound", err)
	}
	if err := store.DeleteReadReplica(ctx, f.st.Pool, p.ID, moved.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := store.ListReadReplicas(ctx, f.st.Pool, p.ID); len(list) != 0 {
		t.Fatalf("list after delete = %+v", list)
	}
}
