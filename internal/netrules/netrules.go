// Package netrules validates per-project network allow-lists and renders
// the cluster's two host-based-access files from them: pg_hba.conf for the
// direct port and pgBouncer's auth_hba_file for the pooled ports. It is
// pure: the files it returns hold only validated, canonical CIDRs and
// database names that match a strict pattern, never raw tenant input.
package netrules

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// MaxCIDRs bounds the two lists of one project together.
const MaxCIDRs = 100

// Lists is one project's allow-list: the union of both lists may connect.
type Lists struct {
	V4 []string `json:"v4"`
	V6 []string `json:"v6"`
}

// AllowAll is the default: every address may try to log in.
func AllowAll() Lists { return Lists{V4: []string{"0.0.0.0/0"}, V6: []string{"::/0"}} }

// Loopback addresses are the host itself: the control plane, its
// maintenance agents and pgBouncer's server logins (which Postgres sees as
// 127.0.0.1). They are matched before any project line, so no list or ban
// can lock them out.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// IsHost reports whether a is one of the Loopback addresses.
func IsHost(a netip.Addr) bool {
	for _, l := range Loopback {
		if l.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// FieldError names the list and entry that is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks both lists and returns their parsed prefixes.
func Validate(l Lists) ([]netip.Prefix, error) {
	if n := len(l.V4) + len(l.V6); n > MaxCIDRs {
		return nil, &FieldError{"db_allowed_cidrs", fmt.Sprintf("at most %d CIDRs in both lists together (got %d)", MaxCIDRs, n)}
	}
	var out []netip.Prefix
	for _, list := range []struct {
		field string
		items []string
		v4    bool
	}{{"db_allowed_cidrs", l.V4, true}, {"db_allowed_cidrs_v6", l.V6, false}} {
		for i, s := range list.items {
			field := fmt.Sprintf("%s[%d]", list.field, i)
			p, err := ParseCIDR(s)
			if err != nil {
				return nil, &FieldError{field, err.Error()}
			}
			if is4 := p.Addr().Is4(); is4 != list.v4 {
				if list.v4 {
					return nil, &FieldError{field, fmt.Sprintf("%q is an IPv6 network; put it in db_allowed_cidrs_v6", s)}
				}
				return nil, &FieldError{field, fmt.Sprintf("%q is an IPv4 network; put it in db_allowed_cidrs", s)}
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// ParseCIDR accepts a network in CIDR notation whose host bits are zero.
// IPv4-mapped IPv6 networks are refused: Postgres would never match them
// against an IPv4 client the way a reader expects.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || strings.TrimSpace(s) != s {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (want e.g. 203.0.113.0/24 or 2001:db8::/32)", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 network; write the IPv4 network instead", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q is not a network: its host bits are set (did you mean %s?)", s, m)
	}
	return p, nil
}

// Project is one tenant database's rules.
type Project struct {
	Database string `json:"database"`
	// Allow is nil when the project allows every address.
	Allow []netip.Prefix `json:"allow,omitempty"`
	// Restricted is true when Allow applies (an empty Allow denies all).
	Restricted bool `json:"restricted,omitempty"`
	// Bans are single addresses refused before any allow line.
	Bans []netip.Addr `json:"bans,omitempty"`
	// Plaintext lets this project's clients connect without TLS; it only
	// takes effect when Policy.AllowPlaintext (the operator's flag) is set.
	Plaintext bool `json:"plaintext,omitempty"`
}

// Policy is everything both HBA files are rendered from.
type Policy struct {
	Projects []Project `json:"projects,omitempty"`
	// AllowPlaintext is the operator's switch (capydb server
	// --allow-plaintext): without it no project gets non-TLS lines.
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
	// Replica lists the databases the embedded read replica (capydb server
	// --read-replica) serves: the projects attached to it. Render(p,
	// Replica) refuses every other database there, from every address.
	Replica []string `json:"replica,omitempty"`
}

// safeDB is what a database name must look like to appear in an HBA file
// unquoted (pgBouncer's parser has no quoting to rely on).
var safeDB = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

// hbaKeywords would change meaning as an unquoted database name.
var hbaKeywords = []string{"all", "sameuser", "samerole", "samegroup", "replication", "pgbouncer"}

// SafeDatabase reports whether name can be written into an HBA file.
func SafeDatabase(name string) bool {
	return safeDB.MatchString(name) && !slices.Contains(hbaKeywords, strings.ToLower(name))
}

// Target selects which server's file Render writes.
type Target int

const (
	Postgres Target = iota
	PgBouncer
	// Replica is the embedded read replica's pg_hba.conf: Postgres' lines
	// for the databases in Policy.Replica only.
	Replica
)

// Render writes the whole HBA file for t. Lines, first match wins:
// loopback (control plane, pgBouncer's server logins), then per project its
// bans, its allow lines and a final reject, then the default TLS lines for
// every project without restrictions. Projects whose database name is not
// safe are left out (they keep the default).
func Render(p Policy, t Target) []byte {
	var b strings.Builder
	b.WriteString("# Generated by capydb from the projects' network rules; edits are lost.\n")
	if t == PgBouncer {
		b.WriteString("# pgBouncer auth_hba_file (auth_type = hba): the pooled and session ports.\n")
	}
	b.WriteString("# TYPE   DATABASE USER ADDRESS METHOD\n")
	b.WriteString("# The host itself: control plane, maintenance agents, pgBouncer's server logins.\n")
	// dbs is the DATABASE field of the lines that do not name a project.
	dbs := "all"
	if t == Replica {
		var served []string
		for _, db := range p.Replica {
			if SafeDatabase(db) {
				served = append(served, db)
			}
		}
		slices.Sort(served)
		dbs = strings.Join(served, ",")
		b.WriteString("# The read replica serves attached projects only: other databases match no line.\n")
	}
	if dbs != "" { // a replica serving nothing has no default lines at all
		for _, l := range Loopback {
			fmt.Fprintf(&b, "hostssl %s all %s scram-sha-256\n", dbs, l)
		}
	}
	projects := slices.Clone(p.Projects)
	slices.SortFunc(projects, func(a, b Project) int { return strings.Compare(a.Database, b.Database) })
	for _, pr := range projects {
		if !SafeDatabase(pr.Database) || (t == Replica && !slices.Contains(p.Replica, pr.Database)) {
			continue
		}
		plain := pr.Plaintext && p.AllowPlaintext
		if len(pr.Bans) == 0 && !pr.Restricted && !plain {
			continue
		}
		fmt.Fprintf(&b, "# database %s\n", pr.Database)
		for _, a := range pr.Bans {
			if IsHost(a) {
				continue // never: it would lock out the control plane
			}
			fmt.Fprintf(&b, "host %s all %s reject\n", pr.Database, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
		kind := "hostssl"
		if plain {
			kind = "host"
		}
		allow := pr.Allow
		if !pr.Restricted {
			allow = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}
		if !pr.Restricted && !plain {
			continue // bans only: the default lines below allow the rest
		}
		for _, a := range allow {
			fmt.Fprintf(&b, "%s %s all %s scram-sha-256\n", kind, pr.Database, a.Masked())
		}
		fmt.Fprintf(&b, "host %s all 0.0.0.0/0 reject\nhost %s all ::/0 reject\n", pr.Database, pr.Database)
	}
	if dbs == "" {
		return []byte(b.String())
	}
	b.WriteString("# Every other database: TLS and SCRAM from anywhere.\n")
	fmt.Fprintf(&b, "hostssl %s all 0.0.0.0/0 scram-sha-256\n", dbs)
	fmt.Fprintf(&b, "hostssl %s all ::/0 scram-sha-256\n", dbs)
	return []byte(b.String())
}

// Allowed mirrors Render's first-match logic for a TLS client at addr
// connecting to db: sessions for which it is false are ended after a change.
func Allowed(p Policy, db string, addr netip.Addr) bool {
	addr = addr.Unmap()
	if IsHost(addr) {
		return true
	}
	for _, pr := range p.Projects {
		if pr.Database != db || !SafeDatabase(db) {
			continue
		}
		if slices.Contains(pr.Bans, addr) {
			return false
		}
		if !pr.Restricted {
			return true
		}
		for _, a := range pr.Allow {
			if a.Contains(addr) {
				return true
			}
		}
		return false
	}
	return true
}

// ErrRejected wraps a server's refusal of a generated file: the previous
// file stays in force and retrying cannot help.
var ErrRejected = errors.New("the server refused the generated access rules")
