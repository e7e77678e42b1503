package dataplane_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestWarmPoolConcurrentClaims: eight provisions at once on a pool of
// eight each get a different warm database (its OID), none fails (a claim
// that loses an entry to another moves on to the next), and none falls back
// to CREATE DATABASE.
func TestWarmPoolConcurrentClaims(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.dp.Admin()
	const n = 8
	w := e.dp.EnableWarmPool(n, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = w.Run(runCtx); close(done) }()
	warmOIDs := func() []uint32 {
		rows, _ := admin.Query(ctx, `SELECT oid FROM pg_database WHERE datname LIKE 'capydb\_warm\_%'
			AND shobj_description(oid, 'pg_database') LIKE 'capydb warm %' ORDER BY oid`)
		var out []uint32
		for rows.Next() {
			var o uint32
			_ = rows.Scan(&o)
			out = append(out, o)
		}
		return out
	}
	clustertest.Eventually(t, 2*time.Minute, "a full warm pool", func() bool { return len(warmOIDs()) == n })
	stop()
	<-done
	before := warmOIDs()

	sfx := strings.ToLower(ids.RandomBase62(6))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.dp.CreateTenant(ctx, dataplane.Tenant{Database: fmt.Sprintf("wp_%s_%d", sfx, i), Role: fmt.Sprintf("wpu_%s_%d", sfx, i),
				Password: ids.RandomBase62(24), ConnectionLimit: 15, StatementTimeout: "0", IdleTransactionTimeout: "60s"})
		}()
	}
	wg.Wait()
	var got []uint32
	for i := range n {
		db, role := fmt.Sprintf("wp_%s_%d", sfx, i), fmt.Sprintf("wpu_%s_%d", sfx, i)
		t.Cleanup(func() { _ = e.dp.DropTenant(context.Background(), db, role) })
		if errs[i] != nil {
			t.Fatalf("provision %d: %v", i, errs[i])
		}
		var oid uint32
		var owner string
		if err := admin.QueryRow(ctx, `SELECT oid, pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1`, db).Scan(&oid, &owner); err != nil || owner != role {
			t.Fatalf("%s: owner %q (%v)", db, owner, err)
		}
		got = append(got, oid)
	}
	slices.Sort(got)
	if !slices.Equal(got, before) {
		t.Fatalf("claimed OIDs %v, warm pool had %v: an entry was handed out twice or a provision created its own", got, before)
	}
	if left := warmOIDs(); len(left) != 0 {
		t.Fatalf("warm entries left after %d claims: %v", n, left)
	}
}
