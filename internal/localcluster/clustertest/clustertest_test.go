package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

var startupTime time.Duration

func TestMain(m *testing.M) {
	t0 := time.Now()
	_, stop, err := clustertest.StartForMain()
	startupTime = time.Since(t0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func TestShared(t *testing.T) {
	t.Logf("StartForMain took %s", startupTime.Round(time.Millisecond))
	c := clustertest.Shared(t)
	if c != clustertest.Shared(t) {
		t.Fatal("Shared must return the same cluster")
	}
	ctx := context.Background()
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync=%q %v (want Fast mode)", fsync, err)
	}
}
