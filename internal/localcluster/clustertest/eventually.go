package clustertest

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Eventually polls cond until it reports true, failing t when timeout
// passes first or when cond (of the form func() (bool, error)) returns an
// error. what names the awaited state in the failure. Polls start 10 ms
// apart and slow to 50 ms.
func Eventually[C func() bool | func() (bool, error)](t testing.TB, timeout time.Duration, what string, cond C) {
	t.Helper()
	check := func() (bool, error) {
		switch f := any(cond).(type) {
		case func() bool:
			return f(), nil
		case func() (bool, error):
			return f()
		}
		panic("unreachable")
	}
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		ok, err := check()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pause)
		if pause < 50*time.Millisecond {
			pause += 10 * time.Millisecond
		}
	}
}

// Logger returns a logger that writes WARN and above to t's log (shown when
// the test fails, or with -v).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
