package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestParseRateLimit(t *testing.T) {
	for in, want := range map[string]RateLimit{
		"20/s:100": {Events: 20, Per: time.Second, Burst: 100},
		"10/m:5":   {Events: 10, Per: time.Minute, Burst: 5},
		"3/h:1":    {Events: 3, Per: time.Hour, Burst: 1},
		"off":      {},
	} {
		got, err := ParseRateLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseRateLimit(%q) = %+v, %v", in, got, err)
		}
		if in != "off" && got.String() != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
	for _, bad := range []string{"", "20", "20/s", "x/s:1", "20/d:1", "20/s:0", "-1/s:5"} {
		if _, err := ParseRateLimit(bad); err == nil {
			t.Errorf("ParseRateLimit(%q) accepted", bad)
		}
	}
}

// TestLimiterBuckets: the burst is served, then 429 with a Retry-After that
// matches the refill rate; clients and buckets are independent; refilled
// buckets are forgotten.
func TestLimiterBuckets(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(map[string]RateLimit{BucketLoginStart: {Events: 10, Per: time.Minute, Burst: 5}, BucketAPI: {}})
	l.now = func() time.Time { return now }
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow(BucketLoginStart, "198.51.100.1"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow(BucketLoginStart, "198.51.100.1")
	if ok || wait <= 0 || wait > 6*time.Second {
		t.Fatalf("6th request: ok=%v wait=%s (want refused, about 6s)", ok, wait)
	}
	if got := RetryAfterSeconds(wait); got != "6" {
		t.Fatalf("Retry-After %q", got)
	}
	// A refused request does not consume: after the wait exactly one more passes.
	now = now.Add(wait)
	if ok, _ := l.Allow(BucketLoginStart, "198.51.100.1"); !ok {
		t.Fatal("refused after waiting Retry-After")
	}
	if ok, _ := l.Allow(BucketLoginStart, "198.51.100.1"); ok {
		t.Fatal("second request after one refill passed")
	}
	if ok, _ := l.Allow(BucketLoginStart, "198.51.100.2"); !ok {
		t.Fatal("another client was limited")
	}
	// IPv6 clients are limited per /64.
	for i := 0; i < 5; i++ {
		l.Allow(BucketLoginStart, fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	if ok, _ := l.Allow(BucketLoginStart, "2001:db8:1:2:ffff::9"); ok {
		t.Fatal("another address of the same /64 got a fresh bucket")
	}
	if ok, _ := l.Allow(BucketLoginStart, "2001:db8:1:3::1"); !ok {
		t.Fatal("another /64 was limited")
	}
	if ok, _ := l.Allow(BucketLoginPoll, "198.51.100.1"); !ok {
		t.Fatal("another bucket was limited")
	}
	// "off" means unlimited.
	for i := 0; i < 1000; i++ {
		if ok, _ := l.Allow(BucketAPI, "198.51.100.1"); !ok {
			t.Fatal("disabled bucket limited")
		}
	}
	if l.Len() != 5 {
		t.Fatalf("%d buckets, want 5", l.Len())
	}
	now = now.Add(time.Hour)
	l.Allow(BucketFailedAuth, "198.51.100.9")
	if l.Len() != 1 {
		t.Fatalf("%d buckets after everything refilled, want 1 (the new one)", l.Len())
	}
	if d := DefaultRateLimits(); d[BucketAPI].String() != "20/s:100" || d[BucketLoginStart].String() != "10/m:5" ||
		d[BucketLoginPoll].String() != "120/m:20" || d[BucketFailedAuth].String() != "10/m:10" {
		t.Fatalf("defaults: %v", d)
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8,::1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Fatal("bad prefix accepted")
	}
	if _, err := ParseTrustedProxies("proxy.local"); err == nil {
		t.Fatal("host name accepted")
	}
	cases := []struct {
		name, peer string
		xff        []string
		proxies    []netip.Prefix
		want       string
	}{
		{"no proxies configured: header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, nil, "203.0.113.5"},
		{"untrusted peer: header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, proxies, "203.0.113.5"},
		{"trusted peer: client from header", "127.0.0.1:4000", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"spoofed left entries ignored", "127.0.0.1:4000", []string{"6.6.6.6, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"proxy chain skipped", "127.0.0.1:4000", []string{"198.51.100.1, 10.1.2.3", "10.9.9.9"}, proxies, "198.51.100.1"},
		{"garbage stops the walk", "127.0.0.1:4000", []string{"198.51.100.1, nonsense, 10.1.2.3"}, proxies, "10.1.2.3"},
		{"trusted peer without header", "127.0.0.1:4000", nil, proxies, "127.0.0.1"},
		{"ipv6 peer", "[::1]:4000", []string{"2001:db8::7"}, proxies, "2001:db8::7"},
		{"ipv4-mapped peer", "[::ffff:127.0.0.1]:4000", []string{"198.51.100.3"}, proxies, "198.51.100.3"},
	}
	for _, c := range cases {
		if got := ClientAddr(c.peer, c.xff, c.proxies); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
