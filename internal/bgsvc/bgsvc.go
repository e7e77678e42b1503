// Package bgsvc is the small kit every background service is built from:
// a one-slot wake channel, a notifier that turns a LISTEN channel into
// wake-ups, jittered backoff, a cancellable sleep, the worker id, a loop
// that runs at once and then on a ticker (Every, and Periodic services built
// on it), one clock for schedulers, a leader lock for rounds that one server
// should run at a time, and test signals. Services keep the blocking
// Run(ctx) contract; the kit only holds the parts every loop used to copy.
package bgsvc

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"
)

// Wake is a one-slot wake-up channel: any number of Signal calls made
// before the loop looks collapse into one wake-up, and Signal never blocks.
type Wake chan struct{}

// NewWake returns an empty Wake.
func NewWake() Wake { return make(Wake, 1) }

// Signal wakes the loop that receives from w, unless a wake-up is pending.
func (w Wake) Signal() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// Sleep waits d or until ctx ends, whichever is first, and returns
// ctx.Err(). A non-positive d does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff is the wait after the n-th failure (1-based): base·2^(n−1),
// capped at max, with ±20 % jitter so that many retries started together
// spread out.
func Backoff(base, max time.Duration, n int) time.Duration {
	d := float64(base) * math.Pow(2, float64(n-1))
	if d > float64(max) || math.IsInf(d, 0) {
		d = float64(max)
	}
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}

// WorkerID is "<hostname>:<pid>", the default id a process writes into the
// claims it takes. The queue relies on this shape to find the claims of a
// dead process on the same host, so keep it.
func WorkerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// Every runs round at once and then every interval until ctx ends (the
// ticker with an initial tick that reapers, schedulers and pruners share).
// A round that overruns the interval delays the next one; rounds never
// overlap.
func Every(ctx context.Context, interval time.Duration, round func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Default sets the knob *v to def when it is unset (zero or negative): the
// one rule every service's Config defaults follow.
func Default[T ~int | ~int64 | ~float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
