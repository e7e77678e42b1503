package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from a table; each name may have a sequence of
// answers, so a test can re-point a name between two lookups (rebinding).
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]string
	calls   map[string]int
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	seq, ok := f.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := f.calls[host]
	if i >= len(seq) {
		i = len(seq) - 1
	}
	f.calls[host]++
	var out []netip.Addr
	for _, s := range seq[i] {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestIsPublic(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.255.255.254", "::1", "0.0.0.0", "0.1.2.3", "::",
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"100.64.0.1", "100.127.255.255", "169.254.0.1", "169.254.169.254", "fe80::1",
		"fc00::1", "fd00:ec2::254", "fd12:3456::1",
		"224.0.0.1", "239.255.255.250", "ff02::1", "255.255.255.255", "240.0.0.1",
		"192.0.2.10", "198.51.100.1", "203.0.113.7", "2001:db8::1", "198.18.0.1",
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", // IPv4-mapped
		"64:ff9b::7f00:1", "64:ff9b::a00:1", // NAT64 of loopback and 10/8
		"2002:7f00:1::1", "2002:c0a8:101::1", // 6to4 of loopback and 192.168/16
		"2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
		"::127.0.0.1",                          // IPv4-compatible
	}
	for _, s := range refused {
		if IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("%s is public, want refused", s)
		}
	}
	allowed := []string{
		"93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "172.15.255.255",
		"2606:4700:4700::1111", "2a00:1450:4001:81c::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	for _, s := range allowed {
		if !IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("%s is refused, want public", s)
		}
	}
}

func TestCheckName(t *testing.T) {
	g := &Guard{}
	for _, h := range []string{"localhost", "LOCALHOST.", "api.localhost", "db.internal", "metadata.google.internal",
		"printer.local", "router.home.arpa", "intranet", "", " ", "/var/run/postgresql", "a@b.com", "fe80::1%eth0"} {
		if err := g.CheckName(h); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("CheckName(%q) = %v, want ErrNotAllowed", h, err)
		}
	}
	for _, h := range []string{"example.com", "hooks.example.co.uk", "93.184.216.34", "[2606:4700::1]", "local.example.com", "internal.example.com"} {
		if err := g.CheckName(h); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", h, err)
		}
	}
	insecure := &Guard{AllowPrivate: true}
	for _, h := range []string{"localhost", "receiver", "db.internal"} {
		if err := insecure.CheckName(h); err != nil {
			t.Errorf("AllowPrivate: CheckName(%q) = %v", h, err)
		}
	}
}

func TestResolve(t *testing.T) {
	r := &fakeResolver{answers: map[string][][]string{
		"public.example":  {{"93.184.216.34", "2606:2800:220:1::1"}},
		"private.example": {{"10.1.2.3"}},
		"mixed.example":   {{"93.184.216.34", "127.0.0.1"}},
		"meta.example":    {{"169.254.169.254"}},
		"mapped.example":  {{"::ffff:192.168.0.1"}},
		"cgnat.example":   {{"100.64.1.1"}},
		"ula.example":     {{"fd00:ec2::254"}},
	}}
	g := &Guard{Resolver: r}
	ctx := context.Background()
	addrs, err := g.Resolve(ctx, "public.example")
	if err != nil || len(addrs) != 2 || addrs[0].String() != "93.184.216.34" {
		t.Fatalf("public.example: %v %v", addrs, err)
	}
	for _, h := range []string{"private.example", "mixed.example", "meta.example", "mapped.example", "cgnat.example", "ula.example",
		"127.0.0.1", "[::1]", "0x7f000001", "2130706433", "127.1", "0177.0.0.1", "169.254.169.254"} {
		if _, err := g.Resolve(ctx, h); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Resolve(%q) = %v, want ErrNotAllowed", h, err)
		}
	}
	if _, err := g.Resolve(ctx, "nxdomain.example"); err == nil || errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "does not resolve") {
		t.Errorf("unknown name: %v", err)
	}

	insecure := &Guard{Resolver: r, AllowPrivate: true}
	if a, err := insecure.Resolve(ctx, "private.example"); err != nil || a[0].String() != "10.1.2.3" {
		t.Errorf("AllowPrivate private.example: %v %v", a, err)
	}
	if _, err := insecure.Resolve(ctx, "127.0.0.1"); err != nil {
		t.Errorf("AllowPrivate 127.0.0.1: %v", err)
	}
	// Metadata stays refused even for local development.
	for _, h := range []string{"meta.example", "169.254.169.254", "ula.example"} {
		if _, err := insecure.Resolve(ctx, h); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("AllowPrivate %s: %v, want ErrNotAllowed", h, err)
		}
	}
}

// listen starts a TCP server on loopback that answers "ok" and counts connections.
func listen(t *testing.T) (port string, conns *int32, mu *sync.Mutex) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n int32
	var m sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			m.Lock()
			n++
			m.Unlock()
			_, _ = io.WriteString(c, "ok")
			c.Close()
		}
	}()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p, &n, &m
}

// TestDialRebinding: a name that passed the check at save time but now
// resolves to loopback is refused at connect time, and nothing connects.
func TestDialRebinding(t *testing.T) {
	port, conns, mu := listen(t)
	r := &fakeResolver{answers: map[string][][]string{
		"rebind.example": {{"93.184.216.34"}, {"127.0.0.1"}},
	}}
	g := &Guard{Resolver: r}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := g.Resolve(ctx, "rebind.example"); err != nil {
		t.Fatalf("first lookup (save time): %v", err)
	}
	if _, err := g.DialContext(ctx, "tcp", net.JoinHostPort("rebind.example", port)); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("dial after rebinding: %v, want ErrNotAllowed", err)
	}
	for _, addr := range []string{"127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port, "localhost:" + port} {
		if _, err := g.DialContext(ctx, "tcp", addr); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("dial %s: %v, want ErrNotAllowed", addr, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if *conns != 0 {
		t.Fatalf("%d connections reached the loopback listener", *conns)
	}
}

// TestDialAllowPrivate: local development may reach loopback, through the
// checked address.
func TestDialAllowPrivate(t *testing.T) {
	port, conns, mu := listen(t)
	r := &fakeResolver{answers: map[string][][]string{"receiver.test": {{"127.0.0.1"}}}}
	g := &Guard{Resolver: r, AllowPrivate: true}
	c, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort("receiver.test", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "ok" {
		t.Fatalf("read %q", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if *conns != 1 {
		t.Fatalf("connections: %d", *conns)
	}
}

// TestControl: the dialer hook refuses a private socket address on its own,
// for code that dials without DialContext.
func TestControl(t *testing.T) {
	port, conns, mu := listen(t)
	g := &Guard{}
	d := net.Dialer{Control: g.Control, Timeout: 2 * time.Second}
	if _, err := d.Dial("tcp", "127.0.0.1:"+port); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("dial with Control: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if *conns != 0 {
		t.Fatalf("%d connections got through", *conns)
	}
}
