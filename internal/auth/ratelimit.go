package auth

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is one token bucket: Per is refilled at Events per Per, up to Burst.
// The zero value (Events 0) means unlimited.
type RateLimit struct {
	Events int
	Per    time.Duration
	Burst  int
}

// Off reports whether the bucket is disabled.
func (r RateLimit) Off() bool { return r.Events <= 0 }

func (r RateLimit) String() string {
	if r.Off() {
		return "off"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return fmt.Sprintf("%d/%s:%d", r.Events, unit, r.Burst)
}

// ParseRateLimit reads "EVENTS/UNIT:BURST" (UNIT s, m or h; e.g. "20/s:100",
// "10/m:5") or "off".
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return RateLimit{}, nil
	}
	ratepart, burstPart, ok := strings.Cut(s, ":")
	events, unit, ok2 := strings.Cut(ratepart, "/")
	if !ok || !ok2 {
		return RateLimit{}, fmt.Errorf("rate limit %q: want EVENTS/UNIT:BURST such as 20/s:100, or off", s)
	}
	n, err := strconv.Atoi(events)
	if err != nil || n <= 0 {
		return RateLimit{}, fmt.Errorf("rate limit %q: events must be a positive integer", s)
	}
	burst, err := strconv.Atoi(burstPart)
	if err != nil || burst <= 0 {
		return RateLimit{}, fmt.Errorf("rate limit %q: burst must be a positive integer", s)
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok {
		return RateLimit{}, fmt.Errorf("rate limit %q: unit must be s, m or h", s)
	}
	return RateLimit{Events: n, Per: per, Burst: burst}, nil
}

// Rate-limit buckets (API.md §1.11).
const (
	BucketAPI        = "api"
	BucketLoginStart = "cli_login_start"
	BucketLoginPoll  = "cli_login_poll"
	BucketFailedAuth = "failed_auth"
	// BucketEphemeralCreate: POST /v1/ephemeral-databases per client address.
	BucketEphemeralCreate = "ephemeral_create"
	// BucketIntegrationReceiver: the inbound integration receivers, keyed
	// by project (not by client address: the providers send from many).
	BucketIntegrationReceiver = "integration_receiver"
)

// DefaultRateLimits are the per-client-address defaults.
func DefaultRateLimits() map[string]RateLimit {
	return map[string]RateLimit{
		BucketAPI:                 {Events: 20, Per: time.Second, Burst: 100},
		BucketLoginStart:          {Events: 10, Per: time.Minute, Burst: 5},
		BucketLoginPoll:           {Events: 120, Per: time.Minute, Burst: 20},
		BucketFailedAuth:          {Events: 10, Per: time.Minute, Burst: 10},
		BucketEphemeralCreate:     {Events: 10, Per: time.Hour, Burst: 10},
		BucketIntegrationReceiver: {Events: 20, Per: time.Second, Burst: 20},
	}
}

// Limiter holds one token bucket per (bucket, client address).
type Limiter struct {
	limits map[string]RateLimit
	now    func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// NewLimiter builds a limiter; buckets missing from limits use the defaults.
func NewLimiter(limits map[string]RateLimit) *Limiter {
	all := DefaultRateLimits()
	for k, v := range limits {
		all[k] = v
	}
	return &Limiter{limits: all, now: time.Now, buckets: map[string]*rate.Limiter{}}
}

// Allow takes one token from the client's bucket. When there is none it
// returns false and how long until one is available.
func (l *Limiter) Allow(bucket, client string) (bool, time.Duration) {
	lim, ok := l.bucket(bucket, client)
	if !ok {
		return true, 0
	}
	now := l.now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// RetryAfterSeconds renders a delay for the Retry-After header (at least 1).
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

func (l *Limiter) bucket(bucket, client string) (*rate.Limiter, bool) {
	cfg, ok := l.limits[bucket]
	if !ok || cfg.Off() {
		return nil, false
	}
	key := bucket + "\x00" + clientKey(client)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	lim, ok := l.buckets[key]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(float64(cfg.Events)/cfg.Per.Seconds()), cfg.Burst)
		l.buckets[key] = lim
	}
	return lim, true
}

// clientKey is what a bucket is keyed by: an IPv4 address, or the /64 of an
// IPv6 address (one host usually holds a whole /64, so rotating addresses
// inside it must not buy more requests).
func clientKey(client string) string {
	a, err := netip.ParseAddr(client)
	if err != nil || !a.Is6() || a.Is4In6() {
		return client
	}
	p, err := a.Prefix(64)
	if err != nil {
		return client
	}
	return p.String()
}

// sweep forgets buckets that have refilled completely: a new one is identical.
func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, lim := range l.buckets {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(l.buckets, k)
		}
	}
}

// Len is the number of live buckets (tests).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR prefixes.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not an address or CIDR prefix", part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not an address or CIDR prefix", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the caller's address for rate limiting: the TCP peer, unless
// the peer is a trusted proxy; then the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (addresses further left
// are whatever the client claimed and are never believed).
func ClientAddr(remoteAddr string, xff []string, proxies []netip.Prefix) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if len(proxies) == 0 || !trusted(peer, proxies) {
		return peer.String()
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !trusted(a, proxies) {
			return a.String()
		}
		last = a
	}
	return last.String()
}
