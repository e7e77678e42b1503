package bgsvc

import (
	"os"
	"strings"
	"time"
)

// Clock is the time source of every scheduler (what is due, what expired).
// Services take one so tests can move time; nil is the real time.
type Clock func() time.Time

// Now is the clock's time, or time.Now for a nil clock.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// FileClock is a clock for end-to-end tests that drive a real binary: the
// file holds an RFC 3339 time, read on every call so a test moves time by
// rewriting it. A missing or unreadable file reads as the real time.
func FileClock(path string) Clock {
	return func() time.Time {
		if b, err := os.ReadFile(path); err == nil {
			if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err == nil {
				return t
			}
		}
		return time.Now()
	}
}
