package localcluster

import (
	"net/netip"
	"regexp"
	"strconv"
)

// AuthFailure is one failed password login read from a server's log.
type AuthFailure struct {
	Database string
	Addr     netip.Addr
	Source   string // "postgres" (from pglogs) or the pgbouncer instance's name
}

// Postgres' own failed logins come from its jsonlog, read by
// internal/pglogs (Config.OnAuthFailure there); its stderr only carries what
// it prints before the log collector starts.

// bouncerAuthFailed matches pgbouncer's line for a failed client login:
// "… [pid] ERROR C-0x…: db/user@addr:port password authentication failed".
// The address is the last @addr:port before the message; user names cannot
// hold a newline that survives into a line start with a valid timestamp
// and pid because pgbouncer's pid is fixed per run (checked by the caller).
var bouncerAuthFailed = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] (?:ERROR|WARNING|LOG) C-0x[0-9a-f]+: ([A-Za-z0-9_.-]+)/.*@([0-9A-Fa-f.:]+):\d+ password authentication failed`)

// parseBouncerAuthFailure reads one pgbouncer stderr line; pid is the
// pgbouncer run that wrote it.
func parseBouncerAuthFailure(line string, pid int) (AuthFailure, bool) {
	m := bouncerAuthFailed.FindStringSubmatch(line)
	if m == nil {
		return AuthFailure{}, false
	}
	if strconv.Itoa(pid) != m[1] {
		return AuthFailure{}, false
	}
	a, err := netip.ParseAddr(m[3])
	if err != nil {
		return AuthFailure{}, false
	}
	return AuthFailure{Database: m[2], Addr: a.Unmap()}, true
}
