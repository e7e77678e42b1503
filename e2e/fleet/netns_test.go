package fleet

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

// hosts are network namespaces joined by a bridge in the test's own
// namespace: each is a separate host with its own address and ports, and
// the test process reaches all of them over the bridge.
type hosts struct {
	t      *testing.T
	bridge string
	prefix string // e.g. "10.213.47."
	netns  map[string]string
	addr   map[string]string
}

// requireRoot fails (never skips) the test when it cannot make namespaces.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("e2e/fleet needs root: it makes network namespaces (ip netns add) to run the control plane and the nodes as separate hosts; run it as root (CI does), e.g. sudo make test-fleet")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("e2e/fleet needs the ip command (Debian package iproute2; scripts/ensure-deps.sh installs it)")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newHosts makes one namespace per name (addresses .2, .3, …) on a fresh
// /24 and removes everything when the test ends, failed or not.
func newHosts(t *testing.T, names ...string) *hosts {
	requireRoot(t)
	id := randomHex(3)
	a, _ := rand.Int(rand.Reader, big.NewInt(50))
	b, _ := rand.Int(rand.Reader, big.NewInt(250))
	h := &hosts{t: t, bridge: "cfb" + id, prefix: fmt.Sprintf("10.%d.%d.", 200+a.Int64(), 1+b.Int64()),
		netns: map[string]string{}, addr: map[string]string{}}
	t.Cleanup(h.teardown)
	h.ip("link", "add", h.bridge, "type", "bridge")
	h.ip("addr", "add", h.prefix+"1/24", "dev", h.bridge)
	h.ip("link", "set", h.bridge, "up")
	for i, name := range names {
		ns := "capyfleet-" + id + "-" + name
		veth := fmt.Sprintf("cf%s%d", id, i)
		h.ip("netns", "add", ns)
		h.netns[name] = ns
		h.addr[name] = fmt.Sprintf("%s%d", h.prefix, i+2)
		h.ip("link", "add", veth, "type", "veth", "peer", "name", veth+"p")
		h.ip("link", "set", veth+"p", "netns", ns)
		h.ip("link", "set", veth, "master", h.bridge, "up")
		h.ip("-n", ns, "addr", "add", h.addr[name]+"/24", "dev", veth+"p")
		h.ip("-n", ns, "link", "set", veth+"p", "up")
		h.ip("-n", ns, "link", "set", "lo", "up")
	}
	return h
}

func (h *hosts) ip(args ...string) {
	h.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		h.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (h *hosts) teardown() {
	for _, ns := range h.netns {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	_ = exec.Command("ip", "link", "del", h.bridge).Run()
}

// command runs name inside host's namespace.
func (h *hosts) command(host, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.netns[host], name}, args...)...)
}
