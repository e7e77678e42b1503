package openapilint

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/capydb/capydb/internal/api"
	"github.com/capydb/capydb/internal/nodetools"
)

// The linters' exit codes are not enough (Redocly exits 0 with warnings):
// each test reads the tool's JSON report and fails on every finding that is
// not accepted below, with its reason.
var acceptedSpectral = map[string]string{
	"operation-success-response paths./v1/projects/{projectID}/kv.get.responses": "the K/V stub always answers 404 (API.md §6.17); it has no 2xx to declare",
}

var (
	setupOnce sync.Once
	setupErr  string
	root      string // repository root
	nodeDir   string // tools/node/openapi-lint
	docPath   string // the served document, as a file named openapi.json
)

// setup serves the document to a file and makes sure the npm tools are
// installed (npm ci when node_modules is missing). A missing npm fails.
func setup(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() { setupErr = doSetup() })
	if setupErr != "" {
		t.Fatal(setupErr)
	}
}

func doSetup() string {
	wd, err := os.Getwd()
	if err != nil {
		return err.Error()
	}
	root = filepath.Clean(filepath.Join(wd, "..", "..", ".."))
	nodeDir = filepath.Join(root, "tools", "node", "openapi-lint")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "cannot find the repository root from " + wd
	}
	rec := httptest.NewRecorder()
	api.New(api.Deps{Version: "openapi-lint"}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) {
		return "GET /v1/openapi.json: " + rec.Result().Status
	}
	dir, err := os.MkdirTemp("", "capydb-openapi-lint-")
	if err != nil {
		return err.Error()
	}
	docPath = filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(docPath, rec.Body.Bytes(), 0o644); err != nil {
		return err.Error()
	}
	if err := nodetools.Install(nodeDir); err != nil {
		return "the OpenAPI lint needs its npm tools: " + err.Error()
	}
	return ""
}

func TestMain(m *testing.M) {
	code := m.Run()
	if docPath != "" {
		os.RemoveAll(filepath.Dir(docPath))
	}
	os.Exit(code)
}

// tool runs a binary of tools/node/openapi-lint/node_modules/.bin.
func tool(t *testing.T, dir, name string, args ...string) (stdout []byte, err error, stderr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(nodeDir, "node_modules", ".bin", name), args...)
	var out, errOut bytes.Buffer
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, nodetools.Env(), &out, &errOut
	err = cmd.Run()
	return out.Bytes(), err, errOut.String()
}

// TestRedoclyLint: Redocly's recommended rules find no error and no warning.
func TestRedoclyLint(t *testing.T) {
	setup(t)
	out, runErr, stderr := tool(t, nodeDir, "redocly", "lint", docPath, "--config", filepath.Join(nodeDir, "redocly.yaml"), "--format=json")
	var report struct {
		Totals   *struct{ Errors, Warnings int } `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(out, &report); err != nil || report.Totals == nil {
		t.Fatalf("redocly lint: no JSON report (%v, %v): %s\n%s", err, runErr, out, stderr)
	}
	t.Logf("redocly: %d errors, %d warnings", report.Totals.Errors, report.Totals.Warnings)
	for _, p := range report.Problems {
		at := ""
		if len(p.Location) > 0 {
			at = p.Location[0].Pointer
		}
		t.Errorf("redocly %s %s at %s: %s", p.Severity, p.RuleID, at, p.Message)
	}
	if report.Totals.Errors+report.Totals.Warnings != len(report.Problems) {
		t.Errorf("redocly totals %+v disagree with %d problems listed", *report.Totals, len(report.Problems))
	}
}

// TestSpectralLint: Spectral's OpenAPI rules find nothing but the accepted.
func TestSpectralLint(t *testing.T) {
	setup(t)
	out, runErr, stderr := tool(t, nodeDir, "spectral", "lint", "-r", filepath.Join(nodeDir, ".spectral.yaml"), "-f", "json", "--quiet", docPath)
	var findings []struct {
		Code     string   `json:"code"`
		Path     []string `json:"path"`
		Message  string   `json:"message"`
		Severity int      `json:"severity"` // 0 error, 1 warning, 2 info, 3 hint
	}
	if err := json.Unmarshal(out, &findings); err != nil {
		t.Fatalf("spectral lint: no JSON report (%v, %v): %s\n%s", err, runErr, out, stderr)
	}
	counts := map[int]int{}
	seen := map[string]bool{}
	for _, f := range findings {
		counts[f.Severity]++
		key := f.Code + " " + strings.Join(f.Path, ".")
		if acceptedSpectral[key] != "" {
			seen[key] = true
			continue
		}
		t.Errorf("spectral (severity %d) %s: %s", f.Severity, key, f.Message)
	}
	t.Logf("spectral: %d errors, %d warnings, %d accepted", counts[0], counts[1], len(seen))
	for key, why := range acceptedSpectral {
		if !seen[key] {
			t.Errorf("spectral no longer reports %q (accepted because %s): drop it from acceptedSpectral", key, why)
		}
	}
}
