package localcluster

import "testing"

func TestParseAuthFailures(t *testing.T) {
	pg := []struct {
		line string
		db   string
		addr string
	}{
		{`2026-12-06 05:11:47.634 UTC [22767] 127.0.0.5 28P01 netb netb FATAL:  password authentication failed for user "netb"`, "netb", "127.0.0.5"},
		{`2026-12-06 05:11:47.634 UTC [22767] 2001:db8::7 28P01 db_x u_x FATAL:  password authentication failed for user "u_x"`, "db_x", "2001:db8::7"},
		// The DETAIL line of the same failure is not counted again.
		{`2026-12-06 05:11:47.634 UTC [22767] 127.0.0.5 28P01 netb netb DETAIL:  Connection matched pg_hba.conf line 5`, "", ""},
		// A tenant's multi-line RAISE: continuation lines start with a tab.
		{"\t2026-12-06 05:11:47.634 UTC [1] 10.0.0.9 28P01 victim u FATAL:  password authentication failed for user \"u\"", "", ""},
		// A message from a session cannot claim another SQLSTATE position.
		{`2026-12-06 05:11:47.634 UTC [22767] 127.0.0.5 P0001 netb netb LOG:  x 10.0.0.9 28P01 victim u FATAL:  password authentication failed for user "u"`, "", ""},
		{`2026-12-06 05:11:47.634 UTC [22767] 127.0.0.5 28000 netb netb FATAL:  no pg_hba.conf entry for host "127.0.0.5"`, "", ""},
	}
	for _, c := range pg {
		f, ok := parsePostgresAuthFailure(c.line)
		if ok != (c.db != "") || ok && (f.Database != c.db || f.Addr.String() != c.addr) {
			t.Errorf("postgres %q: got %+v %v", c.line, f, ok)
		}
	}
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
