package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/nodetools"
)

// Node-based driver tests run the scripts of tools/node/pg with the
// node-postgres and postgres.js versions pinned by its package-lock.json. node and npm are
// required (scripts/ensure-deps.sh installs them): a missing one fails the
// test, it never skips it.

var (
	nodePGOnce sync.Once
	nodePGErr  error
)

// nodePGDir returns tools/node/pg with its node_modules installed (npm ci
// once, under a file lock shared with other test binaries).
func nodePGDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "tools", "node", "pg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed; scripts/ensure-deps.sh installs nodejs and npm")
	}
	nodePGOnce.Do(func() { nodePGErr = nodetools.Install(dir) })
	if nodePGErr != nil {
		t.Fatal(nodePGErr)
	}
	return dir
}

// nodeResult is one line of tools/node/pg/connect.js.
type nodeResult struct {
	OK      bool   `json:"ok"`
	User    string `json:"user"`
	Answer  int    `json:"answer"`
	Serial  string `json:"serial"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// nodeConnect connects node-postgres to each URL, exactly as given.
func nodeConnect(t *testing.T, urls ...string) []nodeResult {
	t.Helper()
	return nodeScript(t, "connect.js", urls, urls...)
}

// postgresJSConnect connects postgres.js to each URL with ssl: { ca } read
// from caFile ("-": the URL alone).
func postgresJSConnect(t *testing.T, caFile string, urls ...string) []nodeResult {
	t.Helper()
	return nodeScript(t, "connect-postgresjs.js", urls, append([]string{caFile}, urls...)...)
}

func nodeScript(t *testing.T, script string, urls []string, args ...string) []nodeResult {
	t.Helper()
	dir := nodePGDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var res []nodeResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r nodeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("node %s printed %q: %v", script, sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(urls) {
		t.Fatalf("node %s answered %d of %d URLs:\n%s\n%s", script, len(res), len(urls), out, stderr.String())
	}
	return res
}
