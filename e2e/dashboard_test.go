package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/nodetools"
)

// TestDashboardInChromium runs web/e2e/dashboard.e2e.mjs: Debian's Chromium,
// driven by playwright-core, signs in to a real server with its API key and
// goes through the dashboard (see the script's header), connecting to the
// URLs it reveals with node-postgres. It needs the built dashboard (make web,
// which make test runs first) and /usr/bin/chromium (scripts/ensure-deps.sh):
// both missing fail the test.
func TestDashboardInChromium(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is missing: scripts/ensure-deps.sh installs the chromium package")
	}
	webDir, err := filepath.Abs(filepath.Join("..", "web"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", 0, 0, "--webhooks-allow-insecure", "--imports-allow-private")
	stdout, stderr, runErr := runDashboardScript(t, s, webDir, "dashboard.e2e.mjs", "e2e")
	out := filepath.Join(webDir, "test-output", "e2e")
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var sum struct {
		OK                   bool            `json:"ok"`
		Error                string          `json:"error"`
		Problems             []string        `json:"problems"`
		ProjectID            string          `json:"project_id"`
		Steps                []string        `json:"steps"`
		Pages                map[string]axed `json:"pages"`
		XSS                  bool            `json:"xss_rendered_as_text"`
		ConnectedAfter       bool            `json:"connected_after_rotation"`
		SignedOutCookieState int             `json:"signed_out_cookie_status"`
		PreviewRowCount      int             `json:"preview_row_count"`
		OldURL               struct {
			OK      bool   `json:"ok"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"old_url_after_rotation"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("node e2e/dashboard.e2e.mjs: %v (%v)\nstdout:\n%s\nstderr:\n%s", runErr, err, stdout, stderr)
	}
	if runErr != nil || !sum.OK {
		t.Fatalf("the dashboard test failed after steps %v: %s\nproblems: %v\nstderr:\n%s\nscreenshots: %s", sum.Steps, sum.Error, sum.Problems, stderr, out)
	}
	// The script's own assertions passed; check the facts it reports.
	if sum.OldURL.OK || !strings.Contains(sum.OldURL.Message, "authentication failed") || !sum.ConnectedAfter || !sum.XSS || sum.SignedOutCookieState != 401 || sum.PreviewRowCount != 3 {
		t.Fatalf("summary: %+v", sum)
	}
	for _, name := range []string{"sign-in", "projects-empty", "new-project", "project-overview", "previews", "sql-preview", "backups", "exports", "import-preflight", "jobs", "job", "api-keys", "webhooks", "organization", "audit", "projects-xss", "delete-confirm"} {
		p, ok := sum.Pages[name]
		if !ok || p.Serious != 0 {
			t.Errorf("axe on %s: %+v (checked: %v)", name, p, ok)
		}
		if _, err := os.Stat(filepath.Join(out, name+".png")); err != nil {
			t.Errorf("no screenshot of %s: %v", name, err)
		}
	}
	// The server agrees: the project is gone, its delete job completed.
	s.must(404, "GET", "/v1/projects/"+sum.ProjectID, nil)
}

type axed struct {
	Serious int `json:"serious_or_critical"`
}

// runDashboardScript installs web/'s npm dependencies, checks the server
// embeds a dashboard build, and runs web/e2e/<script> against it with its
// screenshots in web/test-output/<outSub>.
func runDashboardScript(t *testing.T, s *server, webDir, script, outSub string) (stdout []byte, stderr string, err error) {
	t.Helper()
	if err := nodetools.Install(webDir); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.url + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte(`/dashboard/assets/`)) {
		t.Fatalf("the binary has no dashboard build (run make web before go test): GET /dashboard/ answered\n%s", page)
	}
	out := filepath.Join(webDir, "test-output", outSub)
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "e2e/"+script)
	cmd.Dir = webDir
	cmd.Env = append(nodetools.Env(), "CAPYDB_URL="+s.url, "CAPYDB_KEY="+s.key, "CAPYDB_E2E_OUT="+out)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	stdout, err = cmd.Output()
	return stdout, errBuf.String(), err
}

// TestDashboardStudioInChromium runs web/e2e/studio.e2e.mjs: the SQL editor,
// table browser, schema, database settings, extensions, metrics and logs
// pages in Chromium against a real server whose sampler runs every 2 s (so
// the charts have points), with log search on and a storage limit just above
// a new project's size (so a storage alert is open to acknowledge). The
// script checks each page's effect in Postgres itself; this test checks the
// facts it reports and reads the allow-list back from pg_hba.conf.
func TestDashboardStudioInChromium(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is missing: scripts/ensure-deps.sh installs the chromium package")
	}
	webDir, err := filepath.Abs(filepath.Join("..", "web"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", 0, 0, "--sampler-interval", "2s", "--log-search", "--unsafe-storage-limit", "8912896")
	stdout, stderr, runErr := runDashboardScript(t, s, webDir, "studio.e2e.mjs", "studio")
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var sum struct {
		OK                 bool             `json:"ok"`
		Error              string           `json:"error"`
		Problems           []string         `json:"problems"`
		Steps              []string         `json:"steps"`
		Pages              map[string]axed  `json:"pages"`
		LoadMS             map[string]int64 `json:"load_ms"`
		SQLCell            string           `json:"sql_cell"`
		SafeModeWriteError string           `json:"safe_mode_write_error"`
		StatementTimeout   string           `json:"show_statement_timeout"`
		ConnLimit          int              `json:"rolconnlimit"`
		PoolSize           int              `json:"pool_size"`
		ReadOnlyWrite      string           `json:"read_only_write"`
		AllowedCIDR        string           `json:"allowed_cidr"`
		ChartPoints        int              `json:"chart_points"`
		AlertAcknowledged  bool             `json:"alert_acknowledged"`
		TypesFile          string           `json:"types_file"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("node e2e/studio.e2e.mjs: %v (%v)\nstdout:\n%s\nstderr:\n%s", runErr, err, stdout, stderr)
	}
	if runErr != nil || !sum.OK {
		t.Fatalf("the studio pages test failed after steps %v: %s\nproblems: %v\nstderr:\n%s", sum.Steps, sum.Error, sum.Problems, stderr)
	}
	if sum.SQLCell != "<script>alert(1)</script>" || !strings.Contains(sum.SafeModeWriteError, "25006") ||
		sum.StatementTimeout != "1234ms" || sum.ConnLimit != 7 || sum.PoolSize != 1 || sum.ReadOnlyWrite != "25006" ||
		sum.ChartPoints < 3 || !sum.AlertAcknowledged || sum.TypesFile != "database.types.ts" {
		t.Fatalf("summary: %+v", sum)
	}
	out := filepath.Join(webDir, "test-output", "studio")
	for _, name := range []string{"sql", "tables", "schema", "database-settings", "extensions", "metrics", "logs"} {
		if p, ok := sum.Pages[name]; !ok || p.Serious != 0 {
			t.Errorf("axe on %s: %+v (checked: %v)", name, p, ok)
		}
		if _, err := os.Stat(filepath.Join(out, name+".png")); err != nil {
			t.Errorf("no screenshot of %s: %v", name, err)
		}
	}
	// The allow-list saved on the page reached the cluster's pg_hba.conf.
	var hba []byte
	_ = filepath.WalkDir(s.dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "pg_hba.conf" {
			hba, _ = os.ReadFile(path)
		}
		return nil
	})
	if sum.AllowedCIDR == "" || !bytes.Contains(hba, []byte(sum.AllowedCIDR)) {
		t.Errorf("pg_hba.conf does not hold the allow-list %q:\n%s", sum.AllowedCIDR, hba)
	}
	t.Logf("page load (navigation → content), ms: %v", sum.LoadMS)
}
