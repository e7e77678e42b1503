package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// EnqueueMove refuses what cannot move (with a 409 kind), and otherwise
// marks the project moving and queues the job on the target's cluster,
// once.
func TestEnqueueMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := controlDB(t)
	_, p := seedProject(t, s)
	addCluster := func(name, state, version string) string {
		c := &store.Cluster{ID: ids.New("cl_"), Name: name, Provider: "external", Region: "local", PublicHost: "10.0.0.9",
			DirectPort: 5432, PooledPort: 6432, PostgresVersion: version, State: state}
		if err := store.UpsertClusterByName(ctx, s.Store.Pool, c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	open := addCluster("b", "active", "15")
	cordoned := addCluster("c", "cordoned", "15")
	newer := addCluster("d", "active", "16")
	actor := Actor{Kind: "operator"}
	conflict := func(target, want string) {
		t.Helper()
		_, err := EnqueueMove(ctx, s.Store, p.ID, target, actor)
		var de *domainerr.Error
		if !errors.As(err, &de) || de.Kind != domainerr.Conflict || !strings.Contains(err.Error(), want) {
			t.Fatalf("move to %s: %v, want a conflict saying %q", target, err, want)
		}
	}
	conflict(p.ClusterID, "already on cluster")
	conflict(cordoned, "is cordoned")
	conflict(newer, "runs postgres 16")
	if _, err := EnqueueMove(ctx, s.Store, "prj_missing", open, actor); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("move of a missing project: %v", err)
	}

	j, err := EnqueueMove(ctx, s.Store, p.ID, open, actor)
	if err != nil {
		t.Fatal(err)
	}
	if j.Type != JobProjectMove || deref(j.ClusterID) != open || deref(j.LockedResource) != "project:"+p.ID {
		t.Fatalf("move job: type %s cluster %s lock %s", j.Type, deref(j.ClusterID), deref(j.LockedResource))
	}
	var in movePayload
	if err := j.DecodePayload(&in); err != nil || in.Source != p.ClusterID || in.SourceHost != "127.0.0.1" || in.SourcePort != 5432 {
		t.Fatalf("move payload %+v (%v)", in, err)
	}
	var moveTo string
	if err := s.Store.Pool.QueryRow(ctx, `SELECT move_to FROM projects WHERE id = $1`, p.ID).Scan(&moveTo); err != nil || moveTo != open {
		t.Fatalf("move_to = %q (%v), want %s", moveTo, err, open)
	}
	conflict(open, "already moving")
	// A project moving to a cluster counts for its load in placement.
	var target *store.Cluster
	if err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		target, err = store.PlaceTx(ctx, tx, "", "15")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if target == nil || target.ID == open {
		t.Fatalf("placement chose %v, want the cluster the project leaves (both count one project)", target)
	}
}
