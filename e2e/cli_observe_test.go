package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestCLIObservability: metrics, logs (tail and search) and alerts through
// the real CLI against a real server.
func TestCLIObservability(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	p := s.createProject(map[string]any{"name": "Watched"})
	direct := s.must(200, "GET", "/v1/projects/"+p["id"].(string)+"/connections", nil).str("connections", "direct_url")
	if c, err := connect(direct); err != nil {
		t.Fatal(err)
	} else {
		_, _ = c.Exec(t.Context(), `SELECT 1/0 AS "cli_obs_marker"`)
		c.Close(t.Context())
	}

	m := u.json("metrics", "--project", "watched")
	if m["connection_limit"] != float64(60) || m["storage_limit_bytes"] != float64(100<<30) {
		t.Fatalf("metrics: %v", m)
	}
	if r := u.expect(0, "metrics", "--project", "watched"); !strings.Contains(r.stdout, "connections:") || !strings.Contains(r.stdout, "Active queries:") {
		t.Fatalf("metrics text:\n%s", r.stdout)
	}
	clustertest.Eventually(t, 30*time.Second, "the error line through capydb logs", func() bool {
		doc := u.json("logs", "--project", "watched", "--severity", "error")
		return strings.Contains(mustJSON(doc), "cli_obs_marker")
	})
	if r := u.expect(0, "logs", "--project", "watched", "--severity", "error"); !strings.Contains(r.stdout, "ERROR [22012]") {
		t.Fatalf("logs text:\n%s", r.stdout)
	}
	r := u.expect(1, "logs", "--project", "watched", "--search", "division")
	if !strings.Contains(r.stderr, "--log-search") {
		t.Fatalf("a 503 search is not explained:\n%s", r.stderr)
	}
	u.expect(2, "logs", "--project", "watched", "--search", "x", "--follow")
	u.expect(2, "logs", "--project", "watched", "--since", "yesterday", "--search", "x")
	if a := u.json("alerts", "list", "--project", "watched"); len(a["alerts"].([]any)) != 0 {
		t.Fatalf("alerts: %v", a)
	}
	u.expect(4, "alerts", "ack", "alr_missing", "--project", "watched")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
