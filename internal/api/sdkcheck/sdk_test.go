package sdkcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/api"
	"github.com/capydb/capydb/internal/nodetools"
)

// TestTypeScriptSDKIsCurrent fails when sdk/typescript/src/gen differs from
// what the generator makes of the served document: run `make sdk`.
func TestTypeScriptSDKIsCurrent(t *testing.T) {
	sdkDir, err := filepath.Abs(filepath.Join("..", "..", "..", "sdk", "typescript"))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	// A fixed version: the document's info.version must not churn the SDK.
	api.New(api.Deps{Version: "sdk"}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("GET /v1/openapi.json: %d", rec.Code)
	}
	scratch := t.TempDir()
	doc := filepath.Join(scratch, "openapi.json")
	if err := os.WriteFile(doc, rec.Body.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := nodetools.Install(sdkDir); err != nil {
		t.Fatal(err)
	}
	update := os.Getenv("CAPYDB_UPDATE_SDK") == "1"
	out := filepath.Join(scratch, "gen")
	if update {
		out = filepath.Join(sdkDir, "src", "gen")
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(sdkDir, "node_modules", ".bin", "openapi-ts"))
	cmd.Dir = sdkDir
	cmd.Env = append(nodetools.Env(), "OPENAPI_DOC="+doc, "OPENAPI_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openapi-ts: %v\n%s", err, b)
	}
	want := readTree(t, out)
	if len(want) < 3 || want["sdk.gen.ts"] == nil || !bytes.Contains(want["sdk.gen.ts"], []byte("createProject")) {
		t.Fatalf("the generated SDK looks wrong: files %v", keys(want))
	}
	if update {
		t.Logf("wrote %s (%d files)", out, len(want))
		return
	}
	have := readTree(t, filepath.Join(sdkDir, "src", "gen"))
	for name, b := range want {
		if !bytes.Equal(have[name], b) {
			t.Errorf("sdk/typescript/src/gen/%s is not current with the served OpenAPI document: run `make sdk`", name)
		}
	}
	for name := range have {
		if want[name] == nil {
			t.Errorf("sdk/typescript/src/gen/%s is no longer generated: run `make sdk`", name)
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
