package bgsvc_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), clustertest.Shared(t).AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// The notifier wakes once when LISTEN takes effect and on every NOTIFY, and
// listens again after its connection is killed.
func TestNotifier(t *testing.T) {
	p := pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	channel := "bgsvc_test_" + ids.New("")
	n := &bgsvc.Notifier{Pool: p, Channel: channel, Wake: bgsvc.NewWake(), Listening: &bgsvc.Signal[struct{}]{}}
	n.Listening.Arm()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.Run(runCtx) }()

	waitWake := func(what string) {
		t.Helper()
		select {
		case <-n.Wake:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake-up %s", what)
		}
	}
	if _, err := n.Listening.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitWake("when LISTEN took effect")
	if _, err := p.Exec(ctx, `SELECT pg_notify($1, 'x')`, channel); err != nil {
		t.Fatal(err)
	}
	waitWake("on NOTIFY")

	if _, err := p.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, "LISTEN "+channel); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listening.Wait(20 * time.Second); err != nil {
		t.Fatalf("not listening again after the connection was killed: %v", err)
	}
	waitWake("after reconnecting")
	if _, err := p.Exec(ctx, `SELECT pg_notify($1, 'y')`, channel); err != nil {
		t.Fatal(err)
	}
	waitWake("on NOTIFY after reconnecting")

	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// One transaction leads a round; a second one does not until the first ends.
func TestTryLeadTx(t *testing.T) {
	p := pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "bgsvc.test." + ids.New("")
	tx1, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx) //nolint:errcheck
	lead := func(tx pgx.Tx) bool {
		t.Helper()
		ok, err := bgsvc.TryLeadTx(ctx, tx, name)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lead(tx1) {
		t.Fatal("first transaction is not the leader")
	}
	err = pgx.BeginFunc(ctx, p, func(tx2 pgx.Tx) error {
		if lead(tx2) {
			t.Error("second transaction leads while the first holds the round")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_ = pgx.BeginFunc(ctx, p, func(tx3 pgx.Tx) error {
		if !lead(tx3) {
			t.Error("no leader after the first transaction ended")
		}
		return nil
	})
}
