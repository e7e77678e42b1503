package store

import (
	"net"
	"time"
)

// deadPeerTimeout bounds how long a connection to a control database host
// that vanished from the network (a partitioned or powered-off primary: no
// RST, packets just go unanswered) is kept. Without it the kernel
// retransmits for ~15 minutes, and a request or a worker using that
// connection hangs that long — long enough for a job's lease to expire and
// the job to run twice. With it such a connection is gone well before
// Patroni's TTL names a new primary, and an API request caught on one
// (plus, at worst, a new connection's connectTimeout for the dead host)
// still ends, with 503, within 10 s. The cost: a network stall longer
// than this drops connections (the pool makes new ones; the requests on
// them answer 503).
const deadPeerTimeout = 4 * time.Second

// connectTimeout is the default per-host connect timeout (the URL's
// connect_timeout wins): what each new connection pays for a listed host
// that is down, before the next host is tried.
const connectTimeout = 3 * time.Second

// dialer sends keepalive probes on idle connections (a query waiting on a
// silent server) and, where the OS has it, sets TCP_USER_TIMEOUT, which ends
// a connection whose sent data or probes stay unacknowledged that long.
func dialer() *net.Dialer {
	return &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 2},
		Control:         setUserTimeout,
	}
}
