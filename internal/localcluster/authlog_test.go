package localcluster

import "testing"

func TestParseAuthFailures(t *testing.T) {
	line := `2026-12-06 05:11:47.637 UTC [22736] ERROR C-0x556c1ac84b80: netb/netb@127.0.0.5:52871 password authentication failed`
	if f, ok := parseBouncerAuthFailure(line, 22736); !ok || f.Database != "netb" || f.Addr.String() != "127.0.0.5" {
		t.Errorf("pgbouncer line: %+v %v", f, ok)
	}
	if _, ok := parseBouncerAuthFailure(line, 1234); ok {
		t.Error("a line with another pid counted")
	}
	v6 := `2026-12-06 05:11:47.637 UTC [7] ERROR C-0x1: db_x/u@x@2001:db8::7:52871 password authentication failed`
	if f, ok := parseBouncerAuthFailure(v6, 7); !ok || f.Database != "db_x" || f.Addr.String() != "2001:db8::7" {
		t.Errorf("pgbouncer IPv6 line: %+v %v", f, ok)
	}
	if _, ok := parseBouncerAuthFailure(`2026-12-06 05:11:47.637 UTC [7] WARNING C-0x1: netb/netb@127.0.0.5:1 pooler error: SASL authentication failed`, 7); ok {
		t.Error("the pooler-error line of the same failure counted")
	}
}
