// Package netguard keeps outbound connections the server makes on a user's
// behalf (webhook deliveries, import sources) away from private networks:
// loopback, RFC 1918, link-local, CGNAT, unique-local, cloud metadata and the
// like. Names are resolved and every address is checked, and dials go only to
// an address that was checked, so a name that is re-pointed between the check
// and the connection (DNS rebinding) still cannot reach a private address.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotAllowed is the one answer for a refused host; its text is part of the API.
var ErrNotAllowed = errors.New("host is not allowed")

// Resolver looks names up; *net.Resolver is one, tests use a fake.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard checks hosts and dials only to allowed addresses.
type Guard struct {
	// Resolver defaults to net.DefaultResolver.
	Resolver Resolver
	// AllowPrivate permits private, loopback and other non-public addresses
	// and names (local development only). Cloud metadata addresses stay refused.
	AllowPrivate bool
	// Dialer is used for the connection itself (timeouts, keep-alive); its
	// Control hook is replaced by the guard's own check.
	Dialer net.Dialer
}

// refusedNames are host names (and suffixes) that never leave the machine or
// the private network.
var refusedSuffixes = []string{".localhost", ".internal", ".local", ".localdomain", ".home.arpa"}

func parsePrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// blocked4 are the IPv4 ranges that are not the public internet.
var blocked4 = parsePrefixes(
	"0.0.0.0/8",       // "this network", unspecified
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local (cloud metadata lives here)
	"172.16.0.0/12",   // RFC 1918
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
)

// Public IPv6 is global unicast (2000::/3) minus these. Everything outside
// 2000::/3 (loopback, unspecified, unique-local fc00::/7 with the EC2
// metadata address fd00:ec2::254, link-local, multicast, IPv4-compatible
// and -translated forms) is refused by that rule alone.
var (
	global6  = netip.MustParsePrefix("2000::/3")
	blocked6 = parsePrefixes(
		"2001::/32",     // Teredo (tunnels to arbitrary IPv4)
		"2001:2::/48",   // benchmarking
		"2001:10::/28",  // ORCHID
		"2001:20::/28",  // ORCHIDv2
		"2001:db8::/32", // documentation
		"3fff::/20",     // documentation (RFC 9637)
	)
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// metadata addresses are refused even when private addresses are allowed:
// no webhook or import ever has a reason to talk to them.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("169.254.170.2"), // ECS task metadata
}

// CheckAddr reports whether a connection to addr may be made (nil) or not
// (ErrNotAllowed).
func (g *Guard) CheckAddr(addr netip.Addr) error {
	if !addr.IsValid() {
		return ErrNotAllowed
	}
	addr = addr.Unmap().WithZone("")
	for _, m := range metadata {
		if addr == m {
			return ErrNotAllowed
		}
	}
	if g.AllowPrivate {
		return nil
	}
	if !IsPublic(addr) {
		return ErrNotAllowed
	}
	return nil
}

// IsPublic reports whether addr is a public unicast address.
func IsPublic(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		for _, p := range blocked4 {
			if p.Contains(addr) {
				return false
			}
		}
		return true
	}
	// Forms that carry an IPv4 address inside are judged by that address.
	b := addr.As16()
	if nat64.Contains(addr) {
		return IsPublic(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	if sixTo4.Contains(addr) {
		return IsPublic(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	if !global6.Contains(addr) {
		return false
	}
	for _, p := range blocked6 {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// CheckName refuses host names that name the local machine or a private
// network by convention, and strings that are not host names at all. IP
// literals pass here; CheckAddr judges them.
func (g *Guard) CheckName(host string) error {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if h == "" || strings.ContainsAny(h, "/\\@ %") {
		// Empty, a unix socket path, or something that is not a host.
		return ErrNotAllowed
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return nil
	}
	if g.AllowPrivate {
		return nil
	}
	if h == "localhost" || !strings.Contains(h, ".") {
		// Single-label names resolve through search domains to internal hosts.
		return ErrNotAllowed
	}
	for _, s := range refusedSuffixes {
		if strings.HasSuffix(h, s) {
			return ErrNotAllowed
		}
	}
	return nil
}

// Resolve checks host and returns its addresses, all of which are allowed.
// A name with any refused address is refused as a whole: a rebinding
// attacker would otherwise mix one public and one private record.
func (g *Guard) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if err := g.CheckName(host); err != nil {
		return nil, err
	}
	h := strings.Trim(strings.TrimSuffix(strings.TrimSpace(host), "."), "[]")
	if a, err := netip.ParseAddr(h); err == nil {
		if err := g.CheckAddr(a); err != nil {
			return nil, err
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	if strings.HasPrefix(h, "0x") || isAllDigitsAndDots(h) {
		// Forms like 2130706433 or 0x7f.1 that some resolvers read as IPv4.
		return nil, ErrNotAllowed
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", h)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, fmt.Errorf("host %s does not resolve", h)
		}
		return nil, fmt.Errorf("while resolving %s: %w", h, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("host %s does not resolve", h)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return nil, err
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

func isAllDigitsAndDots(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// DialContext resolves and checks the host of address, then connects to the
// checked addresses only (in order, until one answers). Use it as an
// http.Transport's DialContext. The socket's final address is checked once
// more in the dialer's Control hook.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("invalid port %q", port)
	}
	addrs, err := g.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	d := g.Dialer
	d.Control = g.control
	if d.Timeout == 0 {
		d.Timeout = 10 * time.Second
	}
	var firstErr error
	for _, a := range addrs {
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, mustPort(port)).String())
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("no %s address for %s", network, host)
	}
	return nil, firstErr
}

func mustPort(p string) uint16 {
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

// control is a net.Dialer Control hook: the last word on the address the
// kernel is about to connect to.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return ErrNotAllowed
	}
	return g.CheckAddr(ap.Addr())
}

// Control is the same check for callers that build their own net.Dialer.
func (g *Guard) Control(network, address string, c syscall.RawConn) error {
	return g.control(network, address, c)
}
