// Package netnstest makes separate hosts on one machine for tests: one
// network namespace per host, each with its own address on a fresh /24
// behind a bridge in the test's own namespace. The test process is the
// bridge's address (.1) and reaches every host over it; a host's traffic
// to another host crosses a veth pair and the bridge, and cutting a host's
// veth is a real network partition (no RST, packets just vanish).
//
// It needs root and the ip command (iproute2); without them it fails the
// test with a message, never skips.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Net is a bridge and the hosts on it.
type Net struct {
	t      testing.TB
	id     string
	bridge string
	prefix string // e.g. "10.163.47."
	hosts  map[string]*Host
	order  []*Host
}

// Host is one network namespace with one address on the bridge.
type Host struct {
	net  *Net
	Name string
	// NS is the namespace's name, for ip netns exec.
	NS string
	// Addr is the host's IPv4 address on the bridge.
	Addr string
	veth string // the bridge-side end of the host's veth pair
}

// RequireRoot fails (never skips) the test when it cannot make namespaces;
// why says what the test needs them for.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root: it makes network namespaces (ip netns add) to %s; run it as root (CI does)", why)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("this test needs the ip command (Debian package iproute2; scripts/ensure-deps.sh installs it)")
	}
}

// New makes one namespace per name (addresses .2, .3, … in order) and
// removes them and the bridge when the test ends, failed or not. Processes
// a test starts in a namespace must be stopped by their own cleanup, which
// runs first when it was registered after New.
func New(t testing.TB, why string, names ...string) *Net {
	t.Helper()
	RequireRoot(t, why)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	// A random /24 in 10.150–249.x that no route of this machine uses yet
	// (tests of several packages make namespaces at the same time).
	var prefix string
	for {
		x, _ := rand.Int(rand.Reader, big.NewInt(100))
		y, _ := rand.Int(rand.Reader, big.NewInt(250))
		prefix = fmt.Sprintf("10.%d.%d.", 150+x.Int64(), 1+y.Int64())
		if out, err := exec.Command("ip", "route", "show", prefix+"0/24").Output(); err == nil && len(out) == 0 {
			break
		}
	}
	n := &Net{t: t, id: id, bridge: "cnb" + id, prefix: prefix, hosts: map[string]*Host{}}
	t.Cleanup(n.teardown)
	n.ip("link", "add", n.bridge, "type", "bridge")
	n.ip("addr", "add", n.prefix+"1/24", "dev", n.bridge)
	n.ip("link", "set", n.bridge, "up")
	for i, name := range names {
		h := &Host{net: n, Name: name, NS: "capyns-" + id + "-" + name,
			Addr: fmt.Sprintf("%s%d", n.prefix, i+2), veth: fmt.Sprintf("cn%s%d", id, i)}
		n.ip("netns", "add", h.NS)
		n.hosts[name] = h
		n.order = append(n.order, h)
		n.ip("link", "add", h.veth, "type", "veth", "peer", "name", h.veth+"p")
		n.ip("link", "set", h.veth+"p", "netns", h.NS)
		n.ip("link", "set", h.veth, "master", n.bridge, "up")
		n.ip("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", h.veth+"p")
		n.ip("-n", h.NS, "link", "set", h.veth+"p", "up")
		n.ip("-n", h.NS, "link", "set", "lo", "up")
	}
	return n
}

// Host returns the named host; an unknown name fails the test.
func (n *Net) Host(name string) *Host {
	n.t.Helper()
	h := n.hosts[name]
	if h == nil {
		n.t.Fatalf("netnstest: no host %q", name)
	}
	return h
}

// Gateway is the test process's own address on the bridge: what a host
// dials to reach a server the test runs (a webhook receiver, say).
func (n *Net) Gateway() string { return n.prefix + "1" }

// CIDR is the hosts' subnet, for pg_hba lines and allow-lists.
func (n *Net) CIDR() string { return n.prefix + "0/24" }

// Command runs name inside the host's namespace. ip netns exec execs the
// program, so the command's process is the program itself: signals reach
// it directly.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// CommandAs runs name inside the host's namespace as user (setpriv execs
// too, so the process is still the program): entering a namespace needs
// root, the program itself may refuse it (postgres does).
func (h *Host) CommandAs(user, name string, args ...string) *exec.Cmd {
	return h.Command("setpriv", append([]string{"--reuid", user, "--regid", user, "--init-groups", "--", name}, args...)...)
}

// Cut takes the host off the network: its veth on the bridge goes down, so
// its packets and the packets to it are dropped, as when a cable or a
// switch port fails. Its processes keep running.
func (h *Host) Cut() {
	h.net.t.Helper()
	h.net.ip("link", "set", h.veth, "down")
}

// Reconnect undoes Cut.
func (h *Host) Reconnect() {
	h.net.t.Helper()
	h.net.ip("link", "set", h.veth, "up")
}

func (n *Net) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (n *Net) teardown() {
	for _, h := range n.order {
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}
