package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"testing"

	"github.com/capydb/capydb/internal/netnstest"
)

// hosts are network namespaces joined by a bridge (internal/netnstest): each
// is a separate host with its own address and ports, and the test process
// reaches all of them over the bridge.
type hosts struct {
	net   *netnstest.Net
	netns map[string]string
	addr  map[string]string
}

// newHosts makes one namespace per name on a fresh /24 and removes
// everything when the test ends, failed or not. Without root it fails (never
// skips) with a message saying so.
func newHosts(t *testing.T, names ...string) *hosts {
	n := netnstest.New(t, "e2e/fleet runs the control plane and the nodes as separate hosts", names...)
	h := &hosts{net: n, netns: map[string]string{}, addr: map[string]string{}}
	for _, name := range names {
		hh := n.Host(name)
		h.netns[name], h.addr[name] = hh.NS, hh.Addr
	}
	return h
}

// command runs name inside host's namespace.
func (h *hosts) command(host, name string, args ...string) *exec.Cmd {
	return h.net.Host(host).Command(name, args...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
