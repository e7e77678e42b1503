package cli

import (
	"testing"
	"time"
)

// TestPollSchedule: --wait polls fast first (a job that takes 200 ms is seen
// done by the poll at ~240 ms), then settles at one poll every 2 s. How fast
// a real job returns is measured by capybench's cliwait benchmark.
func TestPollSchedule(t *testing.T) {
	want := []time.Duration{50, 75, 112, 168, 253}
	for i, w := range want {
		if got := pollSchedule(i).Round(time.Millisecond); got != w*time.Millisecond && got != (w+1)*time.Millisecond {
			t.Errorf("pollSchedule(%d) = %v, want ~%dms", i, got, w)
		}
	}
	// The polls' cumulative times: the first one at or after 200 ms comes before 250 ms.
	at := time.Duration(0)
	for n := 0; at < 200*time.Millisecond; n++ {
		at += pollSchedule(n)
	}
	if at > 250*time.Millisecond {
		t.Errorf("a 200 ms job is first seen done at %v", at)
	}
	prev := time.Duration(0)
	for n := 0; n < 40; n++ {
		d := pollSchedule(n)
		if d < prev || d > 2*time.Second {
			t.Fatalf("pollSchedule(%d) = %v after %v: must grow and stay within 2s", n, d, prev)
		}
		prev = d
	}
	if prev != 2*time.Second || pollSchedule(1000) != 2*time.Second {
		t.Errorf("long jobs are polled every %v, want 2s", prev)
	}
}
