// Package nodetools installs the locked npm dependencies of a directory under
// tools/node/ for the tests that drive real JavaScript clients and tools.
// Several test binaries run at once (go test -p 2), so the install is done
// once, under a file lock shared by all of them.
package nodetools

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Installed reports whether every dependency of dir/package.json is in
// dir/node_modules (a checkout that added one reinstalls).
func Installed(dir string) bool {
	var pkg struct {
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil || len(pkg.Dependencies)+len(pkg.DevDependencies) == 0 {
		return false
	}
	for _, deps := range []map[string]string{pkg.Dependencies, pkg.DevDependencies} {
		for name := range deps {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "package.json")); err != nil {
				return false
			}
		}
	}
	return true
}

// Install runs `npm ci` in dir unless its dependencies are already there.
// It fails (never skips) when node or npm is missing: the tests that call it
// need them, and scripts/ensure-deps.sh installs both.
func Install(dir string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not installed (needed for %s); scripts/ensure-deps.sh installs nodejs and npm", dir)
	}
	if Installed(dir) {
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
	if Installed(dir) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --ignore-scripts: nothing under tools/node needs an install script,
	// and some dependencies' scripts only send telemetry.
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Env = dir, Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return nil
}

// Env is the environment for npm and the tools it installed: telemetry and
// update checks off (the machine's network is closed to them anyway).
func Env() []string {
	return append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true",
		"SCARF_ANALYTICS=false", "NO_UPDATE_NOTIFIER=1", "npm_config_update_notifier=false")
}
