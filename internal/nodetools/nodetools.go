// Package nodetools installs the locked npm dependencies of a directory under
// tools/node/ for the tests that drive real JavaScript clients and tools.
// Several test binaries run at once (go test -p 2), so the install is done
// once, under a file lock shared by all of them.
package nodetools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Installed reports whether dir/node_modules holds exactly dir's
// package-lock.json: Install writes a marker with the lock file's hash after
// npm ci has finished, so a package half-extracted by a concurrent npm ci
// (its package.json there, its .bin link not yet) never counts.
func Installed(dir string) bool {
	want, err := lockHash(dir)
	if err != nil {
		return false
	}
	got, err := os.ReadFile(filepath.Join(dir, "node_modules", marker))
	return err == nil && string(got) == want
}

const marker = ".capydb-npm-ci"

func lockHash(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
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
	h, err := lockHash(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "node_modules", marker), []byte(h), 0o644)
}

// Env is the environment for npm and the tools it installed: telemetry and
// update checks off (the machine's network is closed to them anyway).
func Env() []string {
	return append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true",
		"SCARF_ANALYTICS=false", "NO_UPDATE_NOTIFIER=1", "npm_config_update_notifier=false")
}
