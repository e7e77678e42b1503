package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/nodetools"
)

// supabaseCLI runs Supabase's own CLI (from its npm package, pinned in
// tools/node/supabase) against the facade with an sbp_ access token.
type supabaseCLI struct {
	t     *testing.T
	bin   string
	env   []string
	tmp   string
	token string
}

func newSupabaseCLI(t *testing.T, s *server, key string) *supabaseCLI {
	t.Helper()
	dir, err := filepath.Abs("../tools/node/supabase")
	if err != nil {
		t.Fatal(err)
	}
	if err := nodetools.Install(dir); err != nil {
		t.Fatal(err)
	}
	r := sb(t, s, key, "POST", "/v1/capydb/access-tokens", nil)
	tok, _ := r.obj()["access_token"].(string)
	if r.Status != 201 || !strings.HasPrefix(tok, "sbp_") || len(tok) != 44 {
		t.Fatalf("access token: %d %s", r.Status, r.Raw)
	}
	home := t.TempDir()
	// A CLI profile names the API endpoint (SUPABASE_API_URL is not read by
	// every command of this CLI version).
	profile := filepath.Join(home, "capydb-profile.yaml")
	if err := os.WriteFile(profile, []byte("name: capydb\napi_url: "+s.url+"/api/supabase\n"+
		"dashboard_url: "+s.url+"/dashboard\nproject_host: localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(nodetools.Env(), "HOME="+home, "SUPABASE_PROFILE="+profile, "SUPABASE_API_URL="+s.url+"/api/supabase", "SUPABASE_ACCESS_TOKEN="+tok,
		"SUPABASE_TELEMETRY_DISABLED=1", "DO_NOT_TRACK=1", "SUPABASE_NO_KEYRING=1", "NO_COLOR=1")
	return &supabaseCLI{t: t, bin: filepath.Join(dir, "node_modules", ".bin", "supabase"), env: env, tmp: home, token: tok}
}

// run runs one command in an empty working directory; it returns stdout,
// stderr and the exit error.
func (c *supabaseCLI) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env, cmd.Dir = c.env, c.tmp
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (c *supabaseCLI) must(args ...string) string {
	c.t.Helper()
	out, errs, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("supabase %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// TestSupabaseCLI drives the facade with Supabase's own CLI (a client
// nobody here wrote; it parses answers strictly) and checks each write's
// effect in Postgres.
func TestSupabaseCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	ref := sbProject(t, s, "cli-main")
	cp := capyID(t, s, "cli-main")
	pid := cp["id"].(string)
	cli := newSupabaseCLI(t, s, s.key)
	contains := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}

	slug := s.must(200, "GET", "/v1/me", nil).str("organization", "slug")
	contains(cli.must("orgs", "list"), slug)
	var projects []map[string]any
	if err := json.Unmarshal([]byte(cli.must("projects", "list", "-o", "json")), &projects); err != nil || len(projects) != 1 ||
		projects[0]["id"] != ref || projects[0]["status"] != "ACTIVE_HEALTHY" {
		t.Fatalf("projects list: %v %v", projects, err)
	}

	// Types reflect the schema.
	sbMust(t, s, 201, "POST", "/v1/projects/"+ref+"/database/query", map[string]any{"query": "create table cli_things (id int primary key, label text not null)"})
	contains(cli.must("gen", "types", "typescript", "--project-id", ref), "export type Database", "cli_things: {", "label: string")

	// Branches: create (a clone), update, the persistent guard, delete.
	out := cli.must("branches", "create", "feat-1", "--project-ref", ref, "--with-data", "-o", "json")
	contains(out, `"name": "feat-1"`, `"with_data": true`, `"status": "MIGRATIONS_PASSED"`)
	pvs := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)
	if len(pvs) != 1 || pvs[0].(map[string]any)["mode"] != "clone" || pvs[0].(map[string]any)["state"] != "ready" || pvs[0].(map[string]any)["protected"] != true {
		t.Fatalf("previews after branches create: %v", pvs)
	}
	list := cli.must("branches", "list", "--project-ref", ref, "-o", "json")
	contains(list, `"name": "main"`, `"is_default": true`, `"name": "feat-1"`)
	cli.must("branches", "update", "feat-1", "--project-ref", ref, "--persistent")
	if _, errs, err := cli.run("branches", "delete", "feat-1", "--project-ref", ref, "--yes"); err == nil || !strings.Contains(errs, "persistent") {
		t.Fatalf("deleting a persistent branch: %v %s", err, errs)
	}
	cli.must("branches", "update", "feat-1", "--project-ref", ref, "--persistent=false")
	contains(cli.must("branches", "delete", "feat-1", "--project-ref", ref, "--yes")+"", "")
	clustertest.Eventually(t, 60*time.Second, "the branch's preview is gone", func() bool {
		return len(s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)) == 0
	})

	// Postgres config: the setting lands in pg_db_role_setting.
	contains(cli.must("postgres-config", "update", "--project-ref", ref, "--config", "statement_timeout=10s", "--experimental"), "statement_timeout", "10s")
	contains(cli.must("postgres-config", "get", "--project-ref", ref, "--experimental"), "statement_timeout", "10s", "max_connections")
	var cfg []string
	if err := s.admin("postgres").QueryRow(ctx, `select s.setconfig from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
		join pg_roles r on r.oid = s.setrole where d.datname = $1 and r.rolname = $2`, cp["database_name"], cp["role_name"]).Scan(&cfg); err != nil ||
		!strings.Contains(strings.Join(cfg, ","), "statement_timeout=10s") {
		t.Fatalf("pg_db_role_setting: %v %v", cfg, err)
	}
	if _, errs, err := cli.run("postgres-config", "update", "--project-ref", ref, "--config", "max_wal_size=2GB", "--experimental"); err == nil ||
		!strings.Contains(errs, "max_wal_size is a cluster-level setting") {
		t.Fatalf("a cluster-level setting: %v %s", err, errs)
	}

	// Network restrictions: the allow-list refuses other addresses.
	urls := projectURLs(s, pid)
	contains(cli.must("network-restrictions", "get", "--project-ref", ref, "--experimental"), "0.0.0.0/0", "::/0")
	contains(cli.must("network-restrictions", "update", "--project-ref", ref, "--db-allow-cidr", "127.0.0.2/32", "--experimental"), "127.0.0.2/32", "applied successfully: true")
	expectLogins(t, "allowed by the CLI's list", "127.0.0.2", urls, true)
	expectLogins(t, "not on the CLI's list", "127.0.0.3", urls, false)
	contains(cli.must("network-bans", "get", "--project-ref", ref, "--experimental"), "[]")
	contains(cli.must("ssl-enforcement", "get", "--project-ref", ref, "--experimental"), "SSL is being enforced")
	contains(cli.must("backups", "list", "--project-ref", ref), "local", "false")

	// Not offered, and the production delete guard, reach the user as such.
	if _, errs, err := cli.run("projects", "api-keys", "--project-ref", ref); err == nil || !strings.Contains(errs, "is not offered by CapyDB") {
		t.Fatalf("api-keys: %v %s", err, errs)
	}
	if _, errs, err := cli.run("projects", "delete", ref, "--yes"); err == nil || !strings.Contains(errs, "non_production") {
		t.Fatalf("delete a production project: %v %s", err, errs)
	}
	s.must(200, "PATCH", "/v1/projects/"+pid, map[string]any{"environment": "non_production"})
	cli.must("projects", "delete", ref, "--yes")
	if st := s.call("GET", "/v1/projects/"+pid, s.key, nil); st.Status == 200 && st.str("project", "state") != "deleting" {
		t.Fatalf("after projects delete: %s", st.Raw)
	}

	// The sbp_ token is the key's alias: revoking the key ends it.
	kr := s.must(201, "POST", "/v1/organizations/"+s.must(200, "GET", "/v1/me", nil).str("organization", "id")+"/api-keys",
		map[string]any{"name": "cli", "scopes": []string{"projects:read"}})
	cli2 := newSupabaseCLI(t, s, kr.str("plaintext_api_key"))
	cli2.must("orgs", "list")
	s.must(200, "DELETE", "/v1/organizations/"+kr.str("api_key", "organization_id")+"/api-keys/"+kr.str("api_key", "id"), nil)
	if _, errs, err := cli2.run("projects", "list"); err == nil || !strings.Contains(errs, "401") && !strings.Contains(errs, "Unauthorized") {
		t.Fatalf("a revoked key's token still works: %v %s", err, errs)
	}
}
