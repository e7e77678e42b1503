package localcluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestStopWaitsForDeferredSync: Stop cancels a deferred pooler sync in
// flight and waits for it, and no sync starts afterwards. The sync and Stop
// share the kept admin connection; CI's race detector once caught them
// touching it together, so make test runs this under -race too.
func TestStopWaitsForDeferredSync(t *testing.T) {
	ctx := context.Background()
	c := startPoolerCluster(t)

	// Hold the pooler lock so the deferred sync blocks inside syncPooler.
	holder, err := pgx.Connect(ctx, c.AdminDSNFor("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('capydb.pooler'))"); err != nil {
		t.Fatal(err)
	}
	c.SyncPoolerLater()
	running := func() bool {
		c.poolerGate.mu.Lock()
		defer c.poolerGate.mu.Unlock()
		return c.poolerGate.running
	}
	waitFor(t, "the deferred sync to start", running)
	var waiting int
	if err := holder.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting != 1 {
		t.Fatalf("%d sessions wait for the pooler lock, want the deferred sync's 1", waiting)
	}

	// Stop begins, then the lock is released: the sync may now finish and
	// keep its connection while Stop closes it (a race without the gate).
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(ctx) }()
	<-c.stopCh
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Stop hangs behind the deferred sync")
	}
	if running() {
		t.Fatal("a pooler sync still runs after Stop returned")
	}
	if c.syncConn != nil {
		t.Fatal("Stop left the sync connection open")
	}
	if err := c.SyncPooler(ctx); !errors.Is(err, errClusterStopped) {
		t.Fatalf("SyncPooler after Stop = %v, want %v", err, errClusterStopped)
	}
}
