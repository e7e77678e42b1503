package store

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDeadPeerTimeout: every control-database connection carries the
// TCP_USER_TIMEOUT that ends it when its server drops off the network
// (e2e TestHAControlDatabase's partition case shows why).
func TestDeadPeerTimeout(t *testing.T) {
	st := testStore(t)
	c, err := st.Pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	nc := c.Conn().PgConn().Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		t.Fatalf("the test cluster's connection is a %T, want TCP", nc)
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if want := int(deadPeerTimeout.Milliseconds()); got != want {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms, want %d", got, want)
	}
}
