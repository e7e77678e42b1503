package sdkcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/api"
)

// TestGoClientIsCurrent fails when pkg/capydb/capydb.gen.go differs from
// what oapi-codegen (pinned in the tools/oapi-codegen module, the one the
// OpenAPI lint uses) makes of the document the server serves: run `make sdk`.
func TestGoClientIsCurrent(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(root, "pkg", "capydb")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH")
	}
	rec := httptest.NewRecorder()
	api.New(api.Deps{Version: "sdk"}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("GET /v1/openapi.json: %d", rec.Code)
	}
	scratch := t.TempDir()
	doc := filepath.Join(scratch, "openapi.json")
	if err := os.WriteFile(doc, rec.Body.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(pkgDir, "capydb.gen.go")
	out := filepath.Join(scratch, "capydb.gen.go")
	update := os.Getenv("CAPYDB_UPDATE_SDK") == "1"
	if update {
		out = target
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "tool", "oapi-codegen",
		"-config", filepath.Join(pkgDir, "oapi-codegen.yaml"), "-o", out, doc)
	cmd.Dir = filepath.Join(root, "tools", "oapi-codegen")
	// The tools module resolves its own dependencies.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"package capydb", "func (c *ClientWithResponses) CreateProjectWithResponse(", "type Job struct"} {
		if !bytes.Contains(want, []byte(s)) {
			t.Fatalf("the generated Go client lacks %q", s)
		}
	}
	if update {
		t.Logf("wrote %s (%d bytes)", out, len(want))
		return
	}
	have, err := os.ReadFile(target)
	if err != nil {
		t.Fatalf("%v: run `make sdk`", err)
	}
	if !bytes.Equal(have, want) {
		t.Errorf("pkg/capydb/capydb.gen.go is not current with the served OpenAPI document: run `make sdk`")
	}
}
