package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGenerateWatch: --watch rewrites the file only when the generated
// content changes and stops cleanly on Ctrl-C (context cancel).
func TestGenerateWatch(t *testing.T) {
	dir := isolate(t)
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects":       reply(200, `{"projects":[`+projectJSON+`]}`),
		"GET /v1/projects/prj_1": reply(200, `{"project":`+projectJSON+`}`),
		"GET /v1/projects/prj_1/schema/types": func(w http.ResponseWriter, r *http.Request) {
			n := calls.Add(1)
			if r.URL.Query().Get("language") != "typescript" || r.URL.Query().Get("style") != "supabase" {
				w.WriteHeader(400)
				fmt.Fprint(w, `{"error":"bad query"}`)
				return
			}
			version := min(n, 3) // changes twice, then stays
			if n == 6 {
				cancel()
			}
			fmt.Fprintf(w, `{"types":{"language":"typescript","style":"supabase","filename":"database.types.ts","content":"// v%d\n"}}`, version)
		},
	})
	r := runCtx(t, ctx, "generate", "types", "--style", "supabase", "--watch", "--watch-interval", "5ms", "--out", "src/db.ts",
		"--project", "prj_1", "--api-url", s.URL, "--api-key", "capy_live_x")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.Count(r.stdout, "wrote src/db.ts (typescript)"); got != 3 {
		t.Fatalf("%d writes, want 3 (v1, v2, v3):\n%s", got, r.stdout)
	}
	b, err := os.ReadFile(filepath.Join(dir, "src", "db.ts"))
	if err != nil || string(b) != "// v3\n" {
		t.Fatalf("file %q %v", b, err)
	}
	if calls.Load() < 6 {
		t.Fatalf("%d calls", calls.Load())
	}
}

// TestSchemaFlagsCheckedLocally: enumerated values and flag combinations
// are exit 2 before any request.
func TestSchemaFlagsCheckedLocally(t *testing.T) {
	isolate(t)
	s := newStub(t, map[string]http.HandlerFunc{})
	for _, args := range [][]string{
		{"generate", "types", "--style", "pydantic"},
		{"generate", "python", "--style", "supabase"},
		{"generate", "go", "--package", "Not-A-Package"},
		{"generate", "zod", "--style", "capydb"},
		{"generate", "types", "--watch", "--print"},
		{"generate", "types", "--watch-interval", "0s"},
		{"schema", "diff"},
		{"schema", "diff", "--against", "a.json", "--against-preview", "pvw_1"},
		{"advisor", "indexes", "--min-selectivity", "101"},
		{"advisor", "indexes", "--min-filter", "-1"},
	} {
		r := runCLI(t, append(args, "--api-url", s.URL, "--api-key", "capy_live_x")...)
		if r.code != 2 {
			t.Errorf("%v: exit %d (%s)", args, r.code, r.stderr)
		}
	}
	if n := s.count(""); n != 0 {
		t.Fatalf("%d requests for invalid flags", n)
	}
}
