package e2e

import (
	"net/url"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// sslmode returns rawURL with its sslmode replaced.
func sslmode(rawURL, mode string) string {
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set("sslmode", mode)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestSSLEnforcementOff: with the operator's --allow-plaintext, a project
// that turns SSL enforcement off accepts clients without TLS on the direct
// and both pooled ports; another project still refuses them; turning it
// back on refuses them again. (Without the flag the route refuses:
// TestExtensionsSSLAppRoleMinor.)
func TestSSLEnforcementOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--allow-plaintext")
	p := s.createProject(map[string]any{"name": "plain a"})
	other := s.createProject(map[string]any{"name": "plain b"})
	pid := p["id"].(string)
	base := "/v1/projects/" + pid + "/ssl-enforcement"
	plain := func(urls map[string]string) map[string]string {
		out := map[string]string{}
		for k, u := range urls {
			out[k] = sslmode(u, "disable")
		}
		return out
	}
	urls, otherURLs := plain(projectURLs(s, pid)), plain(projectURLs(s, other["id"].(string)))

	if r := s.must(200, "GET", base, nil); r.get("ssl_enforcement", "database") != true {
		t.Fatalf("default: %s", r.Raw)
	}
	expectLogins(t, "enforced", "127.0.0.1", urls, false)

	r := s.must(200, "PUT", base, map[string]any{"database": false})
	if r.get("ssl_enforcement", "database") != false {
		t.Fatalf("PUT false: %s", r.Raw)
	}
	clustertest.Eventually(t, 30*time.Second, "the plaintext rule applied", func() bool {
		return s.must(200, "GET", base, nil).get("ssl_enforcement", "applied_successfully") == true
	})
	expectLogins(t, "plaintext allowed", "127.0.0.1", urls, true)
	expectLogins(t, "another project", "127.0.0.1", otherURLs, false)

	s.must(200, "PUT", base, map[string]any{"database": true})
	clustertest.Eventually(t, 30*time.Second, "TLS enforced again", func() bool {
		g := s.must(200, "GET", base, nil)
		return g.get("ssl_enforcement", "database") == true && g.get("ssl_enforcement", "applied_successfully") == true
	})
	expectLogins(t, "enforced again", "127.0.0.1", urls, false)
}
