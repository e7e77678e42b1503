package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sqlResultJSON = `{"result":{"columns":["id","note","doc","gone"],"rows":[
	{"id":1,"note":"two\nlines","doc":{"b":[1, 2],"a":null},"gone":null},
	{"id":"9007199254740993","note":"","doc":[],"gone":true}],"row_count":2,"duration_ms":7,"truncated":true}}`

func TestSQLCommand(t *testing.T) {
	_, sn := backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/sql":          reply(200, sqlResultJSON),
		"POST /v1/preview-databases/pvw_1/sql": reply(200, sqlResultJSON),
	})
	r := runCLI(t, "sql", "--project", "shop", "--max-rows", "2", "--read-only", "select * from notes")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "id                note        doc                   gone\n" +
		"1                 two\\nlines  {\"b\":[1,2],\"a\":null}  NULL\n" +
		"9007199254740993              []                    true\n" +
		"(2 rows, 7ms)\n"
	if r.stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "more rows exist; showing the first 2") {
		t.Errorf("truncation note: %q", r.stderr)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(sn.get(sn.body, "POST /v1/projects/prj_1/sql")), &body); err != nil ||
		body["query"] != "select * from notes" || body["max_rows"] != 2.0 || body["read_only"] != true || body["allow_unqualified_writes"] != nil {
		t.Fatalf("request body %v (%v)", body, err)
	}

	// -o json / --json print the result object itself, rows in server order.
	for _, flag := range []string{"-o=json", "--json"} {
		r = runCLI(t, "sql", "--project", "shop", flag, "select 1")
		if r.code != 0 || !strings.Contains(r.stdout, `"columns": [`) || strings.Index(r.stdout, `"b"`) > strings.Index(r.stdout, `"a"`) {
			t.Fatalf("%s: %d %s", flag, r.code, r.stdout)
		}
	}

	// --file and --preview (a plain id: no project lookup).
	f := filepath.Join(t.TempDir(), "q.sql")
	if err := os.WriteFile(f, []byte("select 2;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r = runCLI(t, "sql", "--preview", "pvw_1", "--file", f); r.code != 0 {
		t.Fatalf("--preview --file: %d %s", r.code, r.stderr)
	}
	if got := sn.get(sn.body, "POST /v1/preview-databases/pvw_1/sql"); !strings.Contains(got, `"query":"select 2;\n"`) {
		t.Errorf("preview body %s", got)
	}

	// Usage errors never reach the server.
	for _, args := range [][]string{
		{"sql"},
		{"sql", "--file", f, "select 1"},
		{"sql", "--max-rows", "-1", "select 1"},
		{"sql", "--read-only", "--allow-unqualified-writes", "select 1"},
		{"sql", "--project", "shop", "--preview", "pvw_1", "select 1"},
		{"sql", "--file", filepath.Join(t.TempDir(), "missing.sql")},
	} {
		if r := runCLI(t, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, exitUsage, r.stderr)
		}
	}
}

func TestTablesCommand(t *testing.T) {
	backupStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects/prj_1/tables": reply(200, `{"tables":[{"schema":"public","table":"notes","type":"table","estimated_rows":12},
			{"schema":"public","table":"v","type":"view"}]}`),
	})
	r := runCLI(t, "tables", "--project", "shop")
	want := "SCHEMA  TABLE  TYPE   EST_ROWS\npublic  notes  table  12\npublic  v      view   -\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
	r = runCLI(t, "tables", "--project", "shop", "-o", "json")
	var doc struct {
		Tables []map[string]any `json:"tables"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Tables) != 2 || doc.Tables[0]["estimated_rows"] != 12.0 {
		t.Fatalf("json: %s (%v)", r.stdout, err)
	}
}
