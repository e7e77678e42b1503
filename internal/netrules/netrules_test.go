package netrules

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = "10.0.0.0/8"
	}
	cases := []struct {
		in    Lists
		field string
		msg   string
	}{
		{Lists{V4: []string{"10.0.0.1/8"}}, "db_allowed_cidrs[0]", "did you mean 10.0.0.0/8"},
		{Lists{V4: []string{"2001:db8::/32"}}, "db_allowed_cidrs[0]", "IPv6 network"},
		{Lists{V6: []string{"1.2.3.0/24"}}, "db_allowed_cidrs_v6[0]", "IPv4 network"},
		{Lists{V4: []string{"0.0.0.0/0", "10.0.0.0/33"}}, "db_allowed_cidrs[1]", "not a CIDR"},
		{Lists{V4: []string{"10.0.0.0/8 reject"}}, "db_allowed_cidrs[0]", "not a CIDR"},
		{Lists{V4: []string{"10.0.0.0/8\nhost all all 0.0.0.0/0 trust"}}, "db_allowed_cidrs[0]", "not a CIDR"},
		{Lists{V4: []string{" 10.0.0.0/8"}}, "db_allowed_cidrs[0]", "not a CIDR"},
		{Lists{V4: []string{"10.0.0.1"}}, "db_allowed_cidrs[0]", "not a CIDR"},
		{Lists{V6: []string{"::ffff:10.0.0.0/104"}}, "db_allowed_cidrs_v6[0]", "IPv4-mapped"},
		{Lists{V6: []string{"fe80::/10%eth0"}}, "db_allowed_cidrs_v6[0]", "not a CIDR"},
		{Lists{V4: many}, "db_allowed_cidrs", "at most 100"},
	}
	for _, c := range cases {
		_, err := Validate(c.in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("Validate(%q): want %s containing %q, got %v", c.in, c.field, c.msg, err)
		}
	}
	got, err := Validate(Lists{V4: []string{"203.0.113.0/24", "0.0.0.0/0"}, V6: []string{"2001:db8::/32"}})
	if err != nil || len(got) != 3 || got[2] != netip.MustParsePrefix("2001:db8::/32") {
		t.Fatalf("valid lists: %v %v", got, err)
	}
	if _, err := Validate(Lists{V4: many[:100]}); err != nil {
		t.Fatalf("100 CIDRs are allowed: %v", err)
	}
}

func TestRender(t *testing.T) {
	p := Policy{Projects: []Project{
		{Database: "b_db", Bans: []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("127.0.0.1")}},
		{Database: "a_db", Restricted: true, Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, Plaintext: true},
		{Database: "all", Restricted: true},              // a keyword: never written
		{Database: "bad name", Restricted: true},         // unsafe: never written
		{Database: "c_db", Restricted: true, Allow: nil}, // empty list: deny all
	}}
	got := string(Render(p, Postgres))
	want := []string{
		"hostssl all all 127.0.0.1/32 scram-sha-256",
		"hostssl all all ::1/128 scram-sha-256",
		"# database a_db",
		"hostssl a_db all 203.0.113.0/24 scram-sha-256", // plaintext needs the operator flag
		"host a_db all 0.0.0.0/0 reject",
		"host a_db all ::/0 reject",
		"# database b_db",
		"host b_db all 198.51.100.7/32 reject",
		"# database c_db",
		"host c_db all 0.0.0.0/0 reject",
		"host c_db all ::/0 reject",
		"hostssl all all 0.0.0.0/0 scram-sha-256",
		"hostssl all all ::/0 scram-sha-256",
	}
	var lines []string
	for _, l := range strings.Split(got, "\n") {
		if l != "" && (!strings.HasPrefix(l, "#") || strings.HasPrefix(l, "# database")) {
			lines = append(lines, l)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Render:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	p.AllowPlaintext = true
	if got := string(Render(p, PgBouncer)); !strings.Contains(got, "\nhost a_db all 203.0.113.0/24 scram-sha-256\n") ||
		strings.Contains(got, "hostssl a_db") {
		t.Fatalf("plaintext with the operator flag:\n%s", got)
	}

	checks := []struct {
		db, addr string
		want     bool
	}{
		{"a_db", "203.0.113.9", true}, {"a_db", "203.0.114.9", false}, {"a_db", "127.0.0.1", true},
		{"b_db", "198.51.100.7", false}, {"b_db", "198.51.100.8", true},
		{"c_db", "10.1.1.1", false}, {"other", "10.1.1.1", true}, {"c_db", "::1", true},
	}
	for _, c := range checks {
		if got := Allowed(p, c.db, netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Allowed(%s, %s) = %v, want %v", c.db, c.addr, got, c.want)
		}
	}
}

// TestRenderReplica: the read replica's file has lines for the attached
// databases only (their own rules included), so every other database,
// loopback included, matches no line and is refused.
func TestRenderReplica(t *testing.T) {
	p := Policy{Replica: []string{"b_db", "a_db", "bad name"}, Projects: []Project{
		{Database: "a_db", Restricted: true, Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
		{Database: "c_db", Restricted: true, Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	}}
	var lines []string
	for _, l := range strings.Split(string(Render(p, Replica)), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"hostssl a_db,b_db all 127.0.0.1/32 scram-sha-256",
		"hostssl a_db,b_db all ::1/128 scram-sha-256",
		"hostssl a_db all 203.0.113.0/24 scram-sha-256",
		"host a_db all 0.0.0.0/0 reject",
		"host a_db all ::/0 reject",
		"hostssl a_db,b_db all 0.0.0.0/0 scram-sha-256",
		"hostssl a_db,b_db all ::/0 scram-sha-256",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Render(Replica):\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	p.Replica = nil
	for _, l := range strings.Split(string(Render(p, Replica)), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			t.Fatalf("with nothing attached the replica's file has the line %q", l)
		}
	}
}
