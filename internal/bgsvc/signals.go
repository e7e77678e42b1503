package bgsvc

import (
	"context"
	"fmt"
	"time"
)

// Signal is a test hook a service fires at a point of interest (a batch
// reaped, a round finished), River's TestSignals idea: a test arms it and
// waits for the event instead of polling the database. Unarmed, which is
// always the case outside tests, Send does nothing.
type Signal[T any] struct{ ch chan T }

// signalBuffer is how many events an armed signal keeps for a slow reader;
// more are dropped rather than block the service.
const signalBuffer = 256

// Arm makes the signal record events. Call it before the service runs.
func (s *Signal[T]) Arm() { s.ch = make(chan T, signalBuffer) }

// Send records v when the signal is armed. It never blocks.
func (s *Signal[T]) Send(v T) {
	if s == nil || s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
	}
}

// Wait returns the next event, or an error when none comes within timeout.
func (s *Signal[T]) Wait(timeout time.Duration) (T, error) {
	var zero T
	if s.ch == nil {
		return zero, fmt.Errorf("signal not armed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case v := <-s.ch:
		return v, nil
	case <-ctx.Done():
		return zero, fmt.Errorf("no signal within %s", timeout)
	}
}
