package cli

import (
	"testing"
	"time"
)

// TestPollSchedule: --wait polls fast first (a job that takes 200 ms is seen
// done by ~250 ms), is never more than a quarter (+50 ms) late, and settles
// at one poll every 2 s. How fast real jobs return is measured by capybench
// (-only cliwait), not here.
func TestPollSchedule(t *testing.T) {
	for i := 0; i < 5; i++ {
		if d := pollSchedule(i); d != 50*time.Millisecond {
			t.Errorf("pollSchedule(%d) = %v, want 50ms", i, d)
		}
	}
	firstAfter := func(job time.Duration) time.Duration {
		at := time.Duration(0)
		for n := 0; at < job; n++ {
			at += pollSchedule(n)
		}
		return at
	}
	if at := firstAfter(200 * time.Millisecond); at > 250*time.Millisecond {
		t.Errorf("a 200 ms job is first seen done at %v", at)
	}
	for _, job := range []time.Duration{300, 700, 1500, 5000, 20000} {
		job *= time.Millisecond
		if at := firstAfter(job); at > job+job/4+50*time.Millisecond {
			t.Errorf("a %v job is first seen done at %v", job, at)
		}
	}
	prev, at := time.Duration(0), time.Duration(0)
	for n := 0; n < 200; n++ {
		d := pollSchedule(n)
		if d < prev || d > 2*time.Second {
			t.Fatalf("pollSchedule(%d) = %v after %v: must grow and stay within 2s", n, d, prev)
		}
		prev, at = d, at+d
	}
	if prev != 2*time.Second || pollSchedule(100000) != 2*time.Second {
		t.Errorf("long jobs are polled every %v, want 2s", prev)
	}
	if n := polls(time.Minute); n > 50 {
		t.Errorf("%d polls in the first minute", n)
	}
}

// polls counts the polls of the first d.
func polls(d time.Duration) int {
	at, n := time.Duration(0), 0
	for ; at <= d; n++ {
		at += pollSchedule(n)
	}
	return n
}
