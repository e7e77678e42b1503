package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// loginFrom logs in with a URL we handed out, the client socket bound to
// src (a 127.0.0.x address), and runs SELECT 1; nil means it worked.
func loginFrom(src, rawURL string) error {
	conn, err := connectFrom(src, rawURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// connectFrom opens a session at rawURL from the local address src.
func connectFrom(src, rawURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	cfg.DialFunc = d.DialContext
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// projectURLs are a project's direct, pooled and session URLs.
func projectURLs(s *server, pid string) map[string]string {
	c := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	return map[string]string{"direct": c.str("connections", "direct_url"), "pooled": c.str("connections", "pooled_url"),
		"session": c.str("connections", "session_url")}
}

func expectLogins(t *testing.T, what, src string, urls map[string]string, ok bool) {
	t.Helper()
	for port, u := range urls {
		err := loginFrom(src, u)
		if ok && err != nil {
			t.Errorf("%s: %s from %s refused: %v", what, port, src, err)
		}
		if !ok && err == nil {
			t.Errorf("%s: %s from %s logged in, want a refusal", what, port, src)
		}
	}
}

func withPassword(rawURL, pw string) string {
	u, _ := url.Parse(rawURL)
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

// TestNetworkAllowList: an allow-list applies to the direct and both pooled
// ports, ends sessions from addresses it drops, leaves other projects and
// CapyDB's own connections alone, and refuses bad lists with 400.
func TestNetworkAllowList(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "net a"})
	other := s.createProject(map[string]any{"name": "net b"})
	pid := p["id"].(string)
	urls, otherURLs := projectURLs(s, pid), projectURLs(s, other["id"].(string))
	path := "/v1/projects/" + pid + "/network-restrictions"

	got := s.must(200, "GET", path, nil)
	if fmt.Sprint(got.get("network_restrictions", "db_allowed_cidrs")) != "[0.0.0.0/0]" ||
		fmt.Sprint(got.get("network_restrictions", "db_allowed_cidrs_v6")) != "[::/0]" {
		t.Fatalf("default list: %s", got.Raw)
	}
	expectLogins(t, "default", "127.0.0.3", urls, true)

	// Bad lists: 400 naming the entry, nothing stored, no job.
	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"db_allowed_cidrs": []string{"10.0.0.1/8"}, "db_allowed_cidrs_v6": []string{}}, "db_allowed_cidrs[0]: \"10.0.0.1/8\" is not a network"},
		{map[string]any{"db_allowed_cidrs": []string{"2001:db8::/32"}, "db_allowed_cidrs_v6": []string{}}, "IPv6 network"},
		{map[string]any{"db_allowed_cidrs": []string{}, "db_allowed_cidrs_v6": []string{"10.0.0.0/8"}}, "IPv4 network"},
		{map[string]any{"db_allowed_cidrs": []string{"0.0.0.0/0 trust"}, "db_allowed_cidrs_v6": []string{}}, "not a CIDR"},
		{map[string]any{"db_allowed_cidrs": []string{"10.0.0.0/8"}}, "db_allowed_cidrs_v6"},
		{map[string]any{"db_allowed_cidrs": manyCIDRs(60, "10.%d.0.0/16"), "db_allowed_cidrs_v6": manyCIDRs(41, "2001:db8:%x::/48")}, "at most 100"},
		{map[string]any{"db_allowed_cidrs": manyCIDRs(101, "10.%d.0.0/16"), "db_allowed_cidrs_v6": []string{}}, ""},
	} {
		r := s.call("PUT", path, s.key, c.body)
		if r.Status != 400 || !strings.Contains(r.str("error"), c.msg) {
			t.Fatalf("PUT %v: got %d %s, want 400 %q", c.body, r.Status, r.Raw, c.msg)
		}
	}
	if st := s.must(200, "GET", path, nil).str("network_restrictions", "status"); st != "applied" {
		t.Fatalf("a refused list changed the status to %s", st)
	}

	// Sessions from 127.0.0.3 open before the change on every port.
	var held []*pgx.Conn
	for _, u := range urls {
		conn, err := connectFrom("127.0.0.3", u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		held = append(held, conn)
	}

	put := s.must(202, "PUT", path, map[string]any{"db_allowed_cidrs": []string{"127.0.0.2/32", "192.0.2.0/24"}, "db_allowed_cidrs_v6": []string{"2001:db8::/32"}})
	if put.str("network_restrictions", "status") != "stored" || put.str("job", "type") != "project.apply_network" {
		t.Fatalf("PUT answer: %s", put.Raw)
	}
	if job := s.waitJob(put.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("apply job: %v", job)
	}
	got = s.must(200, "GET", path, nil)
	if got.str("network_restrictions", "status") != "applied" || got.str("network_restrictions", "applied_at") == "" ||
		fmt.Sprint(got.get("network_restrictions", "db_allowed_cidrs")) != "[127.0.0.2/32 192.0.2.0/24]" {
		t.Fatalf("after apply: %s", got.Raw)
	}
	expectLogins(t, "allowed", "127.0.0.2", urls, true)
	expectLogins(t, "not allowed", "127.0.0.3", urls, false)
	expectLogins(t, "another project", "127.0.0.3", otherURLs, true)
	for i, conn := range held {
		var one int
		if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err == nil {
			t.Errorf("session %d from 127.0.0.3 survived the new list", i)
		}
	}
	// A preview made now shares the project's rules from its first login.
	pr := s.must(202, "POST", "/v1/projects/"+pid+"/preview-databases", map[string]any{"mode": "empty"})
	if job := s.waitJob(pr.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("preview under an allow-list: %v", job)
	}
	pc := s.must(200, "GET", "/v1/preview-databases/"+pr.str("preview", "id")+"/connections", nil)
	previewURLs := map[string]string{"direct": pc.str("connections", "direct_url"), "pooled": pc.str("connections", "pooled_url")}
	expectLogins(t, "preview, allowed", "127.0.0.2", previewURLs, true)
	expectLogins(t, "preview, not allowed", "127.0.0.3", previewURLs, false)

	// CapyDB's own connections: a backup (maintenance agent on the direct
	// port) and a credential rotation (pgBouncer reload, server logins).
	b := s.must(202, "POST", "/v1/projects/"+pid+"/backups", nil)
	if job := s.waitJob(b.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("backup under an allow-list: %v", job)
	}
	rot := s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", nil)
	if job := s.waitJob(rot.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("rotation under an allow-list: %v", job)
	}
	urls = projectURLs(s, pid)
	expectLogins(t, "after rotation", "127.0.0.2", urls, true)

	// An empty list denies everyone but the host itself.
	put = s.must(202, "PUT", path, map[string]any{"db_allowed_cidrs": []string{}, "db_allowed_cidrs_v6": []string{}})
	s.waitJob(put.str("job", "id"))
	expectLogins(t, "empty list", "127.0.0.2", urls, false)
	expectLogins(t, "empty list, the host", "127.0.0.1", urls, true)

	// A restart keeps the rules (network.json, then the store's).
	dir, direct, pooled := s.dataDir, s.directPort, s.pooledPort
	s.stop()
	s = startServer(t, dir, direct, pooled)
	expectLogins(t, "empty list after a restart", "127.0.0.2", urls, false)
	expectLogins(t, "another project after a restart", "127.0.0.3", otherURLs, true)

	// Back to everyone.
	put = s.must(202, "PUT", path, map[string]any{"db_allowed_cidrs": []string{"0.0.0.0/0"}, "db_allowed_cidrs_v6": []string{"::/0"}})
	s.waitJob(put.str("job", "id"))
	expectLogins(t, "reset", "127.0.0.3", urls, true)
}

func manyCIDRs(n int, format string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

// TestNetworkBan: ten wrong passwords from one address ban it from the
// project on every port (the right password too), other addresses still
// log in, and unban lifts it.
func TestNetworkBan(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "net ban"})
	pid := p["id"].(string)
	urls := projectURLs(s, pid)
	bans := "/v1/projects/" + pid + "/network-bans"
	if n := len(s.must(200, "GET", bans, nil).get("bans").([]any)); n != 0 {
		t.Fatalf("%d bans at start", n)
	}
	wrong := []string{withPassword(urls["direct"], "wrong"), withPassword(urls["pooled"], "wrong")}
	for i := range 10 {
		// Postgres answers 28P01; pgBouncer answers 08P01 "SASL authentication failed".
		if err := loginFrom("127.0.0.4", wrong[i%2]); err == nil || !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	clustertest.Eventually(t, 15*time.Second, "the ban", func() bool {
		list := s.must(200, "GET", bans, nil).get("bans").([]any)
		return len(list) == 1 && list[0].(map[string]any)["address"] == "127.0.0.4"
	})
	list := s.must(200, "GET", bans, nil).get("bans").([]any)
	if b := list[0].(map[string]any); b["failures"].(float64) != 10 || b["expires_at"] == "" {
		t.Fatalf("ban: %v", b)
	}
	expectLogins(t, "banned", "127.0.0.4", urls, false)
	expectLogins(t, "the host while another address is banned", "127.0.0.1", urls, true)
	expectLogins(t, "another address", "127.0.0.5", urls, true)

	expectStatus(t, "unban an address that is not banned", s.call("DELETE", bans+"/127.0.0.9", s.key, nil), 404, "not banned")
	expectStatus(t, "unban garbage", s.call("DELETE", bans+"/not-an-ip", s.key, nil), 400, "not an IPv4 or IPv6 address")
	un := s.must(202, "DELETE", bans+"/127.0.0.4", nil)
	if job := s.waitJob(un.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("unban job: %v", job)
	}
	if n := len(s.must(200, "GET", bans, nil).get("bans").([]any)); n != 0 {
		t.Fatalf("%d bans after unban", n)
	}
	expectLogins(t, "unbanned", "127.0.0.4", urls, true)
}

// TestCLINetwork: capydb network allow|bans|unban against a real server.
func TestCLINetwork(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	p := s.createProject(map[string]any{"name": "Fenced", "environment": "non_production"})
	app := u.in(t.TempDir())
	app.expect(0, "link", "--project", "fenced")
	urls := projectURLs(s, p["id"].(string))

	n := app.json("network", "allow")["network_restrictions"].(map[string]any)
	if fmt.Sprintf("%v %v", n["db_allowed_cidrs"], n["db_allowed_cidrs_v6"]) != "[0.0.0.0/0] [::/0]" {
		t.Fatalf("default: %v", n)
	}
	if job := app.json("network", "allow", "127.0.0.2/32", "2001:db8::/32"); job["state"] != "completed" || job["type"] != "project.apply_network" {
		t.Fatalf("allow: %v", job)
	}
	n = app.json("network", "allow")["network_restrictions"].(map[string]any)
	if fmt.Sprintf("%v %v %v", n["db_allowed_cidrs"], n["db_allowed_cidrs_v6"], n["status"]) != "[127.0.0.2/32] [2001:db8::/32] applied" {
		t.Fatalf("after allow: %v", n)
	}
	expectLogins(t, "cli allow-list", "127.0.0.3", urls, false)
	expectLogins(t, "cli allow-list", "127.0.0.2", urls, true)
	if r := app.expect(2, "network", "allow", "10.0.0.1/8"); !strings.Contains(r.stderr, "not a network") {
		t.Fatalf("bad CIDR: %s", r.stderr)
	}
	app.expect(2, "network", "allow", "--all", "10.0.0.0/8")
	if bans := app.json("network", "bans")["bans"].([]any); len(bans) != 0 {
		t.Fatalf("bans: %v", bans)
	}
	if r := app.expect(4, "network", "unban", "127.0.0.9"); !strings.Contains(r.stderr, "not banned") {
		t.Fatalf("unban of an address that is not banned: %s", r.stderr)
	}
	app.expect(2, "network", "unban", "not-an-ip")
	app.expect(0, "network", "allow", "--all")
	expectLogins(t, "cli reset", "127.0.0.3", urls, true)
}

// TestNetworkBanExpires: --ban-threshold and --ban-duration take effect,
// and an expired ban is lifted without anyone unbanning.
func TestNetworkBanExpires(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--ban-threshold", "3", "--ban-duration", "3s")
	p := s.createProject(map[string]any{"name": "net expiry"})
	urls := projectURLs(s, p["id"].(string))
	bans := "/v1/projects/" + p["id"].(string) + "/network-bans"
	for range 2 {
		_ = loginFrom("127.0.0.6", withPassword(urls["direct"], "wrong"))
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(s.must(200, "GET", bans, nil).get("bans").([]any)); n != 0 {
		t.Fatalf("banned after 2 failures with --ban-threshold 3")
	}
	_ = loginFrom("127.0.0.6", withPassword(urls["pooled"], "wrong"))
	clustertest.Eventually(t, 10*time.Second, "the ban", func() bool {
		return len(s.must(200, "GET", bans, nil).get("bans").([]any)) == 1
	})
	expectLogins(t, "banned", "127.0.0.6", urls, false)
	// Postgres' HBA is swapped first, then both pgBouncers': wait for all three.
	clustertest.Eventually(t, 15*time.Second, "the ban to expire", func() bool {
		return len(s.must(200, "GET", bans, nil).get("bans").([]any)) == 0 && loginFrom("127.0.0.6", urls["direct"]) == nil &&
			loginFrom("127.0.0.6", urls["pooled"]) == nil && loginFrom("127.0.0.6", urls["session"]) == nil
	})
	expectLogins(t, "after expiry", "127.0.0.6", urls, true)
}
