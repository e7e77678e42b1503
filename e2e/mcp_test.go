package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// mcpSession starts `capydb mcp` over stdio with key and connects the
// go-sdk's own client to it.
func mcpSession(t *testing.T, ctx context.Context, s *server, key string) *mcp.ClientSession {
	t.Helper()
	return mcpSessionAs(t, ctx, newCLIUser(t), "CAPYDB_API_URL="+s.url, "CAPYDB_API_KEY="+key)
}

// mcpSessionAs starts `capydb mcp` as the CLI user u with extra env.
func mcpSessionAs(t *testing.T, ctx context.Context, u *cliUser, env ...string) *mcp.ClientSession {
	t.Helper()
	cmd := exec.Command(binary, "mcp")
	cmd.Dir, cmd.Env = u.dir, append(u.env, env...)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to capydb mcp: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// callTool calls a tool; wantErr says whether a tool error is expected.
// It returns the structured result (nil for errors) and the text content.
func callTool(t *testing.T, ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any, wantErr bool) (map[string]any, string) {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error (tool errors must be results): %v", name, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if res.IsError != wantErr {
		t.Fatalf("%s %v: IsError=%v, want %v: %s", name, args, res.IsError, wantErr, text.String())
	}
	if wantErr {
		return nil, text.String()
	}
	var out map[string]any
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: structured content is not an object: %s", name, b)
	}
	return out, text.String()
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, _ := cur.(map[string]any)
		cur = mm[p]
	}
	return cur
}

// TestMCPServer drives `capydb mcp` with the go-sdk's client over stdio
// against a real server: the tool list and annotations, a whole
// project → SQL → preview → delete session, API errors as tool errors, and
// a key without the scope.
func TestMCPServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs := mcpSession(t, ctx, s, s.key)

	if cs.InitializeResult().ServerInfo.Name != "capydb" {
		t.Fatalf("server info: %+v", cs.InitializeResult().ServerInfo)
	}
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]*mcp.Tool{}
	for _, tool := range list.Tools {
		tools[tool.Name] = tool
		if !strings.HasPrefix(tool.Name, "capydb_") || tool.Description == "" || tool.InputSchema == nil || tool.Annotations == nil {
			t.Errorf("tool %s lacks a prefix, description, schema or annotations", tool.Name)
		}
	}
	for _, name := range []string{"capydb_list_projects", "capydb_get_project", "capydb_create_project", "capydb_delete_project",
		"capydb_get_connection_strings", "capydb_list_previews", "capydb_create_preview", "capydb_reset_preview", "capydb_extend_preview",
		"capydb_delete_preview", "capydb_run_sql", "capydb_execute_sql", "capydb_get_schema", "capydb_generate_types", "capydb_lint",
		"capydb_list_backups", "capydb_create_backup", "capydb_restore_to_preview", "capydb_get_job", "capydb_wait_job",
		"capydb_get_observability", "capydb_list_alerts", "capydb_get_logs", "capydb_create_ephemeral_database"} {
		if tools[name] == nil {
			t.Errorf("tool %s is missing", name)
		}
	}
	for _, name := range []string{"capydb_delete_project", "capydb_delete_preview", "capydb_reset_preview", "capydb_execute_sql"} {
		if a := tools[name].Annotations; a.ReadOnlyHint || a.DestructiveHint == nil || !*a.DestructiveHint {
			t.Errorf("%s must be annotated destructive: %+v", name, a)
		}
	}
	if a := tools["capydb_run_sql"].Annotations; !a.ReadOnlyHint {
		t.Errorf("capydb_run_sql must be read-only: %+v", a)
	}
	if req, _ := json.Marshal(tools["capydb_create_project"].InputSchema); !strings.Contains(string(req), `"required":["name"]`) {
		t.Errorf("create_project schema: %s", req)
	}

	// Create → SQL → preview → delete.
	created, _ := callTool(t, ctx, cs, "capydb_create_project", map[string]any{"name": "mcp demo", "non_production": true}, false)
	pid, _ := dig(created, "project", "id").(string)
	if pid == "" || dig(created, "job", "state") != "completed" {
		t.Fatalf("create_project: %v", created)
	}
	got, _ := callTool(t, ctx, cs, "capydb_get_project", map[string]any{"project_id": pid}, false)
	if dig(got, "project", "state") != "ready" {
		t.Fatalf("get_project: %v", got)
	}
	callTool(t, ctx, cs, "capydb_execute_sql", map[string]any{"project_id": pid,
		"query": "create table notes (id int primary key, body text); insert into notes values (1, 'hello from mcp')"}, false)
	rows, _ := callTool(t, ctx, cs, "capydb_run_sql", map[string]any{"project_id": pid, "query": "select body from notes"}, false)
	if r, _ := dig(rows, "result", "rows").([]any); len(r) != 1 || r[0].(map[string]any)["body"] != "hello from mcp" {
		t.Fatalf("run_sql: %v", rows)
	}
	// capydb_run_sql is read-only whatever the statement says.
	_, msg := callTool(t, ctx, cs, "capydb_run_sql", map[string]any{"project_id": pid, "query": "insert into notes values (2, 'x')"}, true)
	if !strings.Contains(msg, "400") || !strings.Contains(strings.ToLower(msg), "read-only") {
		t.Fatalf("write through run_sql: %s", msg)
	}
	schema, _ := callTool(t, ctx, cs, "capydb_get_schema", map[string]any{"project_id": pid}, false)
	if !strings.Contains(mustJSON(schema), `"notes"`) {
		t.Fatalf("schema lacks the table: %.500s", mustJSON(schema))
	}
	preview, _ := callTool(t, ctx, cs, "capydb_create_preview", map[string]any{"project_id": pid, "name": "try-it"}, false)
	pvw, _ := dig(preview, "preview", "id").(string)
	if pvw == "" || dig(preview, "job", "state") != "completed" {
		t.Fatalf("create_preview: %v", preview)
	}
	prow, _ := callTool(t, ctx, cs, "capydb_run_sql", map[string]any{"preview_id": pvw, "query": "select count(*) as n from notes"}, false)
	if r, _ := dig(prow, "result", "rows").([]any); len(r) != 1 || r[0].(map[string]any)["n"] != 1.0 {
		t.Fatalf("preview is not a clone: %v", prow)
	}
	conns, _ := callTool(t, ctx, cs, "capydb_get_connection_strings", map[string]any{"preview_id": pvw}, false)
	if u, _ := dig(conns, "connections", "direct_url").(string); query[int64](t, u, "select count(*) from notes") != 1 {
		t.Fatalf("preview URL: %v", conns)
	}
	if d, _ := callTool(t, ctx, cs, "capydb_delete_preview", map[string]any{"preview_id": pvw}, false); dig(d, "job", "state") != "completed" {
		t.Fatalf("delete_preview: %v", d)
	}
	// A backup, restored into a new preview (the tool cannot target the project).
	if sch := mustJSON(tools["capydb_restore_to_preview"].InputSchema); strings.Contains(sch, "target_kind") {
		t.Fatalf("restore_to_preview lets the caller choose the target: %s", sch)
	}
	bk, _ := callTool(t, ctx, cs, "capydb_create_backup", map[string]any{"project_id": pid, "label": "before-change"}, false)
	backupKey, _ := dig(bk, "job", "result", "backup_key").(string)
	if dig(bk, "job", "state") != "completed" || backupKey == "" {
		t.Fatalf("create_backup: %v", bk)
	}
	if w, _ := callTool(t, ctx, cs, "capydb_wait_job", map[string]any{"job_id": dig(bk, "job", "id")}, false); dig(w, "job", "state") != "completed" {
		t.Fatalf("wait_job: %v", w)
	}
	rs, _ := callTool(t, ctx, cs, "capydb_restore_to_preview", map[string]any{"project_id": pid, "backup_key": backupKey, "preview_name": "restored"}, false)
	restored, _ := dig(rs, "job", "result", "preview_id").(string)
	if dig(rs, "job", "state") != "completed" || restored == "" || restored == pvw {
		t.Fatalf("restore_to_preview: %v", rs)
	}
	rrow, _ := callTool(t, ctx, cs, "capydb_run_sql", map[string]any{"preview_id": restored, "query": "select body from notes"}, false)
	if r, _ := dig(rrow, "result", "rows").([]any); len(r) != 1 || r[0].(map[string]any)["body"] != "hello from mcp" {
		t.Fatalf("restored preview: %v", rrow)
	}
	if ty, text := callTool(t, ctx, cs, "capydb_generate_types", map[string]any{"project_id": pid}, false); !strings.Contains(text, "notes") {
		t.Fatalf("generate_types: %v", ty)
	}
	callTool(t, ctx, cs, "capydb_lint", map[string]any{"preview_id": restored}, false)
	if d, _ := callTool(t, ctx, cs, "capydb_delete_project", map[string]any{"project_id": pid}, false); dig(d, "job", "state") != "completed" {
		t.Fatalf("delete_project: %v", d)
	}

	// Errors are tool errors that say what to do, and the session lives on.
	if _, msg := callTool(t, ctx, cs, "capydb_get_project", map[string]any{"project_id": pid}, true); !strings.Contains(msg, "not found") {
		t.Fatalf("deleted project: %s", msg)
	}
	if _, msg := callTool(t, ctx, cs, "capydb_get_schema", map[string]any{}, true); !strings.Contains(msg, "project_id") {
		t.Fatalf("no target: %s", msg)
	}
	if _, msg := callTool(t, ctx, cs, "capydb_create_project", map[string]any{}, true); !strings.Contains(msg, "name") {
		t.Fatalf("missing argument: %s", msg)
	}

	// A key without projects:write reads but may not create.
	orgID := s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	rk := s.must(201, "POST", "/v1/organizations/"+orgID+"/api-keys", map[string]any{"name": "mcp read-only", "scopes": []string{"projects:read"}})
	ro := mcpSession(t, ctx, s, rk.str("plaintext_api_key"))
	if l, _ := callTool(t, ctx, ro, "capydb_list_projects", nil, false); l["projects"] == nil {
		t.Fatalf("list_projects with a read key: %v", l)
	}
	_, msg = callTool(t, ctx, ro, "capydb_create_project", map[string]any{"name": "nope"}, true)
	if !strings.Contains(msg, "403") || !strings.Contains(msg, "scope") {
		t.Fatalf("create with a read-only key: %s", msg)
	}

	// No key anywhere: the server starts a device login in the background
	// and tools answer with the URL to approve; once approved they work and
	// the key is saved like capydb login saves it.
	lu := newCLIUser(t)
	lcs := mcpSessionAs(t, ctx, lu, "CAPYDB_API_URL="+s.url)
	var session string
	clustertest.Eventually(t, 30*time.Second, "a tool error naming the approval URL", func() bool {
		_, msg := callTool(t, ctx, lcs, "capydb_list_projects", nil, true)
		_, after, ok := strings.Cut(msg, "/dashboard/cli/login?session=")
		session, _, _ = strings.Cut(after, " ")
		return ok && strings.HasPrefix(session, "cls_")
	})
	s.must(200, "POST", "/v1/cli/login/sessions/"+session+"/approve", nil)
	clustertest.Eventually(t, 30*time.Second, "tools working after the approval", func() bool {
		res, err := lcs.CallTool(ctx, &mcp.CallToolParams{Name: "capydb_list_projects"})
		return err == nil && !res.IsError
	})
	keys := s.must(200, "GET", "/v1/organizations/"+orgID+"/api-keys", nil).get("api_keys").([]any)
	var agentKey bool
	for _, k := range keys {
		km := k.(map[string]any)
		agentKey = agentKey || (km["name"] == "MCP session" && km["source"] == "agent")
	}
	if cfg, _ := os.ReadFile(lu.configPath()); !agentKey || !strings.Contains(string(cfg), `"api_key": "capy_live_`) {
		t.Fatalf("device login: agent key %v, saved config %s", agentKey, cfg)
	}

	// --http: Streamable HTTP on loopback only.
	u := newCLIUser(t)
	if r := u.run("mcp", "--http", "--listen", "0.0.0.0:8765", "--api-key", s.key, "--api-url", s.url); r.code != 2 || !strings.Contains(r.stderr, "loopback") {
		t.Fatalf("mcp --http on 0.0.0.0: %d %s", r.code, r.stderr)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hcmd := exec.Command(binary, "mcp", "--http", "--listen", addr)
	hcmd.Dir, hcmd.Env = u.dir, append(u.env, "CAPYDB_API_URL="+s.url, "CAPYDB_API_KEY="+s.key)
	if err := hcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hcmd.Process.Kill(); _ = hcmd.Wait() })
	clustertest.Eventually(t, 20*time.Second, "mcp --http listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	hc, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-http", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect over Streamable HTTP: %v", err)
	}
	defer hc.Close()
	if l, _ := callTool(t, ctx, hc, "capydb_list_projects", nil, false); l["projects"] == nil {
		t.Fatalf("list_projects over HTTP: %v", l)
	}
}
