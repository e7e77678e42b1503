package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/nodetools"
)

// TestTypeScriptSDKPackage packs sdk/typescript with `npm pack` (its prepack
// builds dist/ with esbuild and tsc), installs the tarball into a scratch
// project, type-checks a consumer with moduleResolution nodenext, and runs
// the package's own tests (sdk/typescript/test, Node's test runner) against
// a real server.
func TestTypeScriptSDKPackage(t *testing.T) {
	t.Parallel()
	sdkDir, err := filepath.Abs("../sdk/typescript")
	if err != nil {
		t.Fatal(err)
	}
	if err := nodetools.Install(sdkDir); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = dir, append(nodetools.Env(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}

	packDir := t.TempDir()
	out := run(sdkDir, nil, "npm", "pack", "--json", "--pack-destination", packDir)
	var packed []struct {
		Filename string `json:"filename"`
		Name     string `json:"name"`
		Files    []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json: %v\n%s", err, out)
	}
	files := map[string]bool{}
	for _, f := range packed[0].Files {
		files[f.Path] = true
	}
	if packed[0].Name != "@capydb/sdk" || !files["dist/index.js"] || !files["dist/index.d.ts"] || !files["package.json"] || files["src/index.ts"] {
		t.Fatalf("the package holds %v", files)
	}

	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name":"sdk-consumer","private":true,"type":"module"}`), 0o644)
	run(app, nil, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", filepath.Join(packDir, packed[0].Filename))
	for _, f := range []string{"sdk.test.mjs", "check.ts"} {
		b, err := os.ReadFile(filepath.Join(sdkDir, "test", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(app, f), b, 0o644)
	}
	run(app, nil, "node", filepath.Join(sdkDir, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "--strict",
		"--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022,dom", "check.ts")

	out = run(app, []string{"CAPYDB_API_URL=" + s.url, "CAPYDB_API_KEY=" + s.key}, "node", "--test", "sdk.test.mjs")
	if !strings.Contains(out, "# pass 3") || !strings.Contains(out, "# fail 0") {
		t.Fatalf("node --test:\n%s", out)
	}
}
