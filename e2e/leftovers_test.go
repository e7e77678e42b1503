package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCrashLeftoversAreSwept: what a SIGKILLed server leaves behind — dump
// files of tenant data in its private temp directory, a maintenance login
// of an interrupted job — is gone after the restart, and the temp directory
// is readable by the server's user only.
func TestCrashLeftoversAreSwept(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	tmp := filepath.Join(s.dataDir, "tmp")
	leftover := filepath.Join(tmp, "capydb-import-123.dump")
	if err := os.WriteFile(leftover, []byte("tenant data"), 0o600); err != nil {
		t.Fatalf("the server has no private temp directory: %v", err)
	}
	// An agent whose validity ran out: a worker was killed mid-operation long ago.
	if _, err := s.admin("postgres").Exec(ctx, `CREATE ROLE capydb_agent_deadbeef00000000 LOGIN VALID UNTIL '2026-01-01'`); err != nil {
		t.Fatal(err)
	}
	s.kill()

	s2 := startServer(t, s.dataDir, s.directPort, s.pooledPort)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover dump after restart: %v", err)
	}
	fi, err := os.Stat(tmp)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("temp directory: %v, mode %v", err, fi.Mode().Perm())
	}
	var n int
	if err := s2.admin("postgres").QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = 'capydb_agent_deadbeef00000000'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("expired agent after restart: %d (%v)", n, err)
	}
}
