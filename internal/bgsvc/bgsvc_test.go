package bgsvc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// Backoff doubles from base, stops at max (also when 2^n overflows), and
// spreads ±20 %. The queue's job retries and the webhook dispatcher's
// delivery retries both use it.
func TestBackoff(t *testing.T) {
	base, maxD := 100*time.Millisecond, 3*time.Second
	for n := 1; n <= 12; n++ {
		nominal := min(base<<(n-1), maxD)
		lo, hi := time.Duration(float64(nominal)*0.8), time.Duration(float64(nominal)*1.2)
		seen := map[time.Duration]bool{}
		for range 300 {
			d := bgsvc.Backoff(base, maxD, n)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%v, %v, %d) = %v, want within [%v, %v]", base, maxD, n, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(%d): only %d distinct values in 300 calls: no jitter", n, len(seen))
		}
	}
	// Huge attempt numbers overflow 2^n to +Inf: still capped.
	for _, n := range []int{64, 1100, 10_000, 1 << 20} {
		if d := bgsvc.Backoff(base, maxD, n); d < time.Duration(float64(maxD)*0.8) || d > time.Duration(float64(maxD)*1.2) {
			t.Errorf("Backoff(%d) = %v, want about %v", n, d, maxD)
		}
	}
	// The webhook dispatcher's defaults (30 s doubling to an hour).
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute, 8: time.Hour, 60: time.Hour} {
		for range 50 {
			if got := bgsvc.Backoff(30*time.Second, time.Hour, n); got < want*8/10 || got > want*12/10 {
				t.Fatalf("Backoff(30s, 1h, %d) = %s, want %s ±20%%", n, got, want)
			}
		}
	}
}

// Sleep waits its time, stops early when ctx ends, and never waits for a
// non-positive duration.
func TestSleep(t *testing.T) {
	start := time.Now()
	if err := bgsvc.Sleep(context.Background(), 30*time.Millisecond); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Errorf("Sleep = %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start = time.Now()
	if err := bgsvc.Sleep(ctx, time.Minute); !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled Sleep = %v after %v", err, time.Since(start))
	}
	if err := bgsvc.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(0) on a cancelled ctx = %v", err)
	}
	if err := bgsvc.Sleep(context.Background(), -time.Second); err != nil {
		t.Errorf("Sleep(<0) = %v", err)
	}
}

// Many signals before the loop looks are one wake-up; Signal never blocks.
func TestWake(t *testing.T) {
	w := bgsvc.NewWake()
	for range 5 {
		w.Signal()
	}
	<-w
	select {
	case <-w:
		t.Error("five signals gave two wake-ups")
	default:
	}
}

// Every runs a round at once, then on the ticker, and returns when ctx ends.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var rounds atomic.Int32
	first := make(chan time.Duration, 1)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bgsvc.Every(ctx, 20*time.Millisecond, func(context.Context) {
			if rounds.Add(1) == 1 {
				first <- time.Since(start)
			}
			if rounds.Load() == 3 {
				cancel()
			}
		})
	}()
	if d := <-first; d > 15*time.Millisecond {
		t.Errorf("first round after %v, want at once", d)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after cancel")
	}
	if n := rounds.Load(); n != 3 {
		t.Errorf("rounds = %d, want 3", n)
	}
}

// An unarmed signal swallows events; an armed one hands them to Wait.
func TestSignal(t *testing.T) {
	var s bgsvc.Signal[int]
	s.Send(1) // unarmed: nothing happens, nothing blocks
	if _, err := s.Wait(time.Millisecond); err == nil {
		t.Error("Wait on an unarmed signal succeeded")
	}
	var nilSignal *bgsvc.Signal[int]
	nilSignal.Send(1)
	s.Arm()
	s.Send(7)
	if v, err := s.Wait(time.Second); err != nil || v != 7 {
		t.Errorf("Wait = %d, %v", v, err)
	}
	if _, err := s.Wait(10 * time.Millisecond); err == nil {
		t.Error("Wait without an event succeeded")
	}
	for i := range 10_000 { // more than the buffer: dropped, not blocked
		s.Send(i)
	}
}

// A nil clock is the real time; a file clock reads its file on every call
// and falls back to the real time.
func TestClock(t *testing.T) {
	var real bgsvc.Clock
	if d := time.Since(real.Now()); d < 0 || d > time.Second {
		t.Errorf("nil clock is %v off", d)
	}
	path := t.TempDir() + "/clock"
	fc := bgsvc.FileClock(path)
	if d := time.Since(fc.Now()); d < 0 || d > time.Second {
		t.Errorf("file clock without a file is %v off", d)
	}
	for _, ts := range []string{"2030-03-01T09:00:00Z", "2030-03-04T11:00:00Z\n"} {
		if err := writeFile(path, ts); err != nil {
			t.Fatal(err)
		}
		if got := fc.Now().UTC().Format(time.RFC3339); got+"\n" != ts && got != ts {
			t.Errorf("file clock = %s, want %q", got, ts)
		}
	}
	if err := writeFile(path, "not a time"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(fc.Now()); d < 0 || d > time.Second {
		t.Errorf("file clock with a bad file is %v off", d)
	}
}

// A periodic service fills its defaults, hands each round its clock's time
// and reports each round on its Round signal.
func TestPeriodic(t *testing.T) {
	if c := (bgsvc.PeriodicConfig{}).WithDefaults(time.Minute, "x"); c.Interval != time.Minute || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
	at := time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)
	cfg := bgsvc.PeriodicConfig{Interval: 10 * time.Millisecond, Clock: func() time.Time { return at }}.WithDefaults(time.Minute, "x")
	seen := make(chan time.Time, 100)
	p := bgsvc.NewPeriodic(cfg, func(_ context.Context, now time.Time) int { seen <- now; return 7 })
	p.TestSignals.Round.Arm()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for range 2 {
		if n, err := p.TestSignals.Round.Wait(5 * time.Second); err != nil || n != 7 {
			t.Fatalf("Round = %d, %v", n, err)
		}
		if now := <-seen; !now.Equal(at) {
			t.Errorf("round saw %v, want the clock's %v", now, at)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
