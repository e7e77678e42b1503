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
// the job to run twice. 6 s is well under Patroni's TTL, so such a
// connection is gone before the new primary exists, and an API request
// caught on one still ends (503) within a client's usual timeout. The cost:
// a network stall longer than that drops connections (the pool makes new
// ones; the requests on them answer 503).
const deadPeerTimeout = 6 * time.Second

// dialer sends keepalive probes on idle connections (a query waiting on a
// silent server) and, where the OS has it, sets TCP_USER_TIMEOUT, which ends
// a connection whose sent data or probes stay unacknowledged that long.
func dialer() *net.Dialer {
	return &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 3 * time.Second, Interval: time.Second, Count: 3},
		Control:         setUserTimeout,
	}
}
