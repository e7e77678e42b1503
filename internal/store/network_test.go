package store_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/store"
)

// TestNetworkRules: lists and bans come back per database for live
// projects only; expired bans are neither listed nor rendered and are
// swept; the applied mark skips a list changed after the job was queued.
func TestNetworkRules(t *testing.T) {
	f, ctx := newFixture(t)
	db := f.st.Pool
	a, b, c := f.project(t, f.org, "neta"), f.project(t, f.org, "netb"), f.project(t, f.org, "netc")
	rows, err := store.ClusterNetwork(ctx, db, f.cluster.ID)
	if err != nil || len(rows) != 0 {
		t.Fatalf("no rules yet: %v %v", rows, err)
	}
	if _, err := store.GetProjectNetwork(ctx, db, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no list: %v", err)
	}
	queued := time.Now()
	if _, err := store.PutProjectNetwork(ctx, db, a.ID, []string{"203.0.113.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	ban := netip.MustParseAddr("198.51.100.7")
	if err := store.InsertBan(ctx, db, b.ID, ban, 10, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertBan(ctx, db, c.ID, ban, 10, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	rows, err = store.ClusterNetwork(ctx, db, f.cluster.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Database] = fmt.Sprint(r.Restricted, r.V4, r.V6, r.Bans)
	}
	want := map[string]string{a.DatabaseName: "true [203.0.113.0/24] [] []", b.DatabaseName: "false [] [] [198.51.100.7]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ClusterNetwork = %v, want %v", got, want)
	}
	if id, err := store.ProjectIDByDatabase(ctx, db, f.cluster.ID, b.DatabaseName); err != nil || id != b.ID {
		t.Fatalf("ProjectIDByDatabase: %q %v", id, err)
	}

	// Applied only when the list did not change after the job was queued.
	if err := store.MarkNetworkApplied(ctx, db, a.ID, queued); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.GetProjectNetwork(ctx, db, a.ID); n.Status != store.NetworkStored {
		t.Fatalf("a stale job marked the newer list applied: %+v", n)
	}
	if err := store.MarkNetworkApplied(ctx, db, a.ID, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.GetProjectNetwork(ctx, db, a.ID); n.Status != store.NetworkApplied || n.AppliedAt == nil || len(n.AllowedCIDRsV6) != 0 {
		t.Fatalf("after apply: %+v", n)
	}

	if bans, err := store.ListBans(ctx, db, c.ID); err != nil || len(bans) != 0 {
		t.Fatalf("an expired ban is listed: %v %v", bans, err)
	}
	if err := store.DeleteBan(ctx, db, c.ID, ban); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unban of an expired ban: %v", err)
	}
	clusters, err := store.DeleteExpiredBans(ctx, db)
	if err != nil || fmt.Sprint(clusters) != fmt.Sprint([]string{f.cluster.ID}) {
		t.Fatalf("DeleteExpiredBans: %v %v", clusters, err)
	}
	if err := store.DeleteBan(ctx, db, b.ID, ban); err != nil {
		t.Fatal(err)
	}
	if bans, _ := store.ListBans(ctx, db, b.ID); len(bans) != 0 {
		t.Fatalf("bans after unban: %v", bans)
	}
}
