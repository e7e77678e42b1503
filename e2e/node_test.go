package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
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
	nodePGOnce.Do(func() { nodePGErr = npmCI(dir) })
	if nodePGErr != nil {
		t.Fatal(nodePGErr)
	}
	return dir
}

func npmCI(dir string) error {
	// Installed when every dependency of package.json is (a checkout that
	// added one reinstalls).
	installed := func() bool {
		var pkg struct {
			Dependencies map[string]string `json:"dependencies"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil || json.Unmarshal(b, &pkg) != nil || len(pkg.Dependencies) == 0 {
			return false
		}
		for name := range pkg.Dependencies {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "package.json")); err != nil {
				return false
			}
		}
		return true
	}
	if installed() {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm is not installed (needed for %s); scripts/ensure-deps.sh installs it", dir)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if installed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return nil
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
