package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBouncer writes an executable that prints version like pgbouncer does.
func fakeBouncer(t *testing.T, dir, version string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "pgbouncer")
	script := "#!/bin/sh\necho 'PgBouncer " + version + "'\necho 'libevent 2.1.12-stable'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindBouncerVersionRule(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	old := fakeBouncer(t, filepath.Join(tmp, "old"), "1.18.0")
	tools := filepath.Join(tmp, "tools")
	newer := fakeBouncer(t, filepath.Join(tools, "bin"), "1.24.1")
	t.Setenv("CAPYDB_TOOLS_DIR", tools)

	// An old pgbouncer first on PATH loses to the tools-dir build.
	t.Setenv("PATH", filepath.Dir(old))
	if p, v, err := findBouncer(ctx, "", false); err != nil || p != newer || v != [2]int{1, 24} {
		t.Fatalf("findBouncer = %q %v %v, want %q 1.24", p, v, err, newer)
	}

	// Only an old one: refused with a message naming the flag and what breaks.
	os.Remove(newer)
	_, _, err := findBouncer(ctx, "", false)
	if !errors.Is(err, ErrOldPgBouncer) || !strings.Contains(err.Error(), "--allow-old-pgbouncer") ||
		!strings.Contains(err.Error(), "prepared statements") || !strings.Contains(err.Error(), "1.18") {
		t.Fatalf("old pgbouncer: err = %v", err)
	}
	if p, v, err := findBouncer(ctx, "", true); err != nil || p != old || v != [2]int{1, 18} {
		t.Fatalf("allowOld: findBouncer = %q %v %v, want %q 1.18", p, v, err, old)
	}

	// An explicit path is version-checked too.
	if _, _, err := findBouncer(ctx, old, false); !errors.Is(err, ErrOldPgBouncer) {
		t.Fatalf("explicit old path: err = %v", err)
	}

	// Start refuses before launching anything.
	_, err = Start(ctx, Config{DataDir: filepath.Join(tmp, "data"), PgBouncerPath: old, Fast: true})
	if !errors.Is(err, ErrOldPgBouncer) {
		t.Fatalf("Start with pgbouncer 1.18: err = %v, want ErrOldPgBouncer", err)
	}
}
