package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
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

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func eventually[C func() bool | func() (bool, error)](timeout time.Duration, cond C) string {
	rec := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		clustertest.Eventually(rec, timeout, "the thing", cond)
	}()
	<-done
	return rec.msg
}

// Eventually returns once the condition holds, and fails with the awaited
// thing's name on a timeout or on the condition's error.
func TestEventually(t *testing.T) {
	n := 0
	if msg := eventually(time.Second, func() bool { n++; return n == 3 }); msg != "" || n != 3 {
		t.Errorf("a condition true on the third poll: %q after %d polls", msg, n)
	}
	if msg := eventually(50*time.Millisecond, func() bool { return false }); msg != "timed out after 50ms waiting for the thing" {
		t.Errorf("timeout: %q", msg)
	}
	if msg := eventually(time.Second, func() (bool, error) { return false, errors.New("boom") }); msg != "waiting for the thing: boom" {
		t.Errorf("error: %q", msg)
	}
}
