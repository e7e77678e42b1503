package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/wire"
)

// The env-file, stack-detection, .gitignore and link tests.

func TestStackDetectionAndEnvVars(t *testing.T) {
	conn := &apiclient.ConnectionInfo{ConnectionInfo: wire.ConnectionInfo{DirectURL: "postgres://u:p@h:5432/d?sslmode=require", PooledURL: "postgres://u:p@h:6432/d?sslmode=require"}}
	cases := []struct {
		name      string
		files     map[string]string
		framework string
		layer     string
		pooled    bool
		envFile   string
	}{
		{"next+prisma", map[string]string{"package.json": `{"dependencies":{"next":"14","@prisma/client":"5"}}`}, "nextjs", "prisma", true, ".env.local"},
		{"prisma schema wins", map[string]string{"package.json": `{"dependencies":{"pg":"8"}}`, "prisma/schema.prisma": ""}, "node", "prisma", true, ".env"},
		{"drizzle config", map[string]string{"package.json": `{"dependencies":{"@sveltejs/kit":"2"}}`, "drizzle.config.ts": ""}, "sveltekit", "drizzle", true, ".env.local"},
		{"node pg", map[string]string{"package.json": `{"dependencies":{"pg":"8"}}`}, "node", "pg", true, ".env"},
		{"remix only", map[string]string{"package.json": `{"devDependencies":{"@remix-run/dev":"2"}}`}, "remix", "generic", true, ".env"},
		{"go pgx", map[string]string{"go.mod": "module x\nrequire github.com/jackc/pgx/v5 v5.0.0\n"}, "go", "pgx", false, ".env"},
		{"go plain", map[string]string{"go.mod": "module x\n"}, "go", "generic", false, ".env"},
		{"django sqlalchemy", map[string]string{"manage.py": "", "requirements.txt": "Django\nSQLAlchemy\n"}, "django", "sqlalchemy", false, ".env"},
		{"rails", map[string]string{"Gemfile": "gem 'rails'\n"}, "rails", "active_record", false, ".env"},
		{"python", map[string]string{"pyproject.toml": "[project]\nname='x'\n"}, "python", "generic", false, ".env"},
		{"nothing", map[string]string{"README.md": "hi"}, "generic", "generic", false, ".env"},
		{"next with only .env", map[string]string{"package.json": `{"dependencies":{"next":"14"}}`, ".env": "A=1\n"}, "nextjs", "generic", true, ".env"},
		{"go with only .env.local", map[string]string{"go.mod": "module x\n", ".env.local": ""}, "go", "generic", false, ".env.local"},
	}
	a := &app{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for f, body := range c.files {
				p := filepath.Join(dir, f)
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			st, err := a.detectStack(dir)
			if err != nil || st.Framework != c.framework || st.Layer != c.layer || st.AppPath != "" {
				t.Fatalf("detected %+v %v", st, err)
			}
			vars := map[string]string{}
			for _, v := range envVarsFor(st, conn) {
				vars[v.Key] = v.Value
			}
			wantMain := conn.DirectURL
			if c.pooled {
				wantMain = conn.PooledURL
			}
			if vars["DATABASE_URL"] != wantMain || vars["DATABASE_DIRECT_URL"] != conn.DirectURL || vars["DIRECT_URL"] != conn.DirectURL ||
				vars["DATABASE_POOL_URL"] != conn.PooledURL || vars["DATABASE_URL_UNPOOLED"] != conn.DirectURL || len(vars) != 5 {
				t.Fatalf("vars %v", vars)
			}
			if f := defaultEnvFile(dir, st); f != c.envFile {
				t.Fatalf("env file %q, want %q", f, c.envFile)
			}
		})
	}
	// An app one level down is found from the repository root; two are ambiguous.
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "apps", "web"), 0o755)
	_ = os.MkdirAll(filepath.Join(root, "node_modules", "pg"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "package.json"), []byte(`{"workspaces":["apps/*"],"devDependencies":{"turbo":"1"}}`), 0o644)
	_ = os.WriteFile(filepath.Join(root, "apps", "web", "package.json"), []byte(`{"dependencies":{"next":"14","drizzle-orm":"1"}}`), 0o644)
	_ = os.WriteFile(filepath.Join(root, "node_modules", "pg", "package.json"), []byte(`{"dependencies":{}}`), 0o644)
	st, err := a.detectStack(root)
	if err != nil || st.AppPath != "apps/web" || st.Profile() != "nextjs+drizzle" {
		t.Fatalf("monorepo: %+v %v", st, err)
	}
	_ = os.MkdirAll(filepath.Join(root, "apps", "api"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "apps", "api", "go.mod"), []byte("module api\n"), 0o644)
	if _, err := a.detectStack(root); exitCode(err) != 2 || !strings.Contains(err.Error(), "apps/api, apps/web") {
		t.Fatalf("two apps without a terminal: %v", err)
	}
	// With the app role, its URLs are written too.
	withApp := *conn
	withApp.App = &apiclient.AppRoleConnectionInfo{DirectURL: "postgres://app@h:5432/d", PooledURL: "postgres://app@h:6432/d"}
	names := envNames(envVarsFor(stack{Framework: "go", Layer: "generic"}, &withApp))
	if strings.Join(names, ",") != "DATABASE_URL,DATABASE_DIRECT_URL,DATABASE_POOL_URL,DIRECT_URL,DATABASE_URL_UNPOOLED,DATABASE_APP_URL,DATABASE_APP_POOL_URL" {
		t.Fatalf("names %v", names)
	}
	// A server with a session-mode pgBouncer adds DATABASE_SESSION_URL.
	withSession := *conn
	withSession.SessionURL = "postgres://u:p@h:6433/d?sslmode=require"
	got := envVarsFor(stack{Framework: "go", Layer: "generic"}, &withSession)
	if last := got[len(got)-1]; len(got) != 6 || last.Key != "DATABASE_SESSION_URL" || last.Value != withSession.SessionURL {
		t.Fatalf("with a session URL: %v", got)
	}
	// An attached read replica adds DATABASE_READ_URL (its first URL).
	withReplica := *conn
	withReplica.ReadReplicaURLs = []string{"postgres://u:p@h:18432/d?sslmode=require", "postgres://u:p@h:18433/d?sslmode=require"}
	got = envVarsFor(stack{Framework: "go", Layer: "generic"}, &withReplica)
	if last := got[len(got)-1]; len(got) != 6 || last.Key != "DATABASE_READ_URL" || last.Value != withReplica.ReadReplicaURLs[0] {
		t.Fatalf("with a read replica: %v", got)
	}
}

func TestWriteEnvFile(t *testing.T) {
	dir := t.TempDir()
	var errb bytes.Buffer
	a := &app{err: &errb}
	path := filepath.Join(dir, ".env")
	vars := []envVar{{"DATABASE_URL", "postgres://u:p@h:6432/d"}, {"DIRECT_URL", `postgres://u:p"q@h:5432/d`}}
	if _, err := a.writeEnvFile(path, vars, envAsk, false); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if fi.Mode().Perm() != 0o600 || string(b) != "DATABASE_URL=\"postgres://u:p@h:6432/d\"\nDIRECT_URL=\"postgres://u:p\\\"q@h:5432/d\"\n" {
		t.Fatalf("new file %v:\n%s", fi.Mode(), b)
	}
	got, _ := readEnvFile(path)
	if got["DIRECT_URL"] != `postgres://u:p"q@h:5432/d` {
		t.Fatalf("round trip: %q", got["DIRECT_URL"])
	}
	// Other lines are kept; our keys are replaced in place; a different value
	// is overwritten with a warning when there is no terminal.
	existing := "# app settings\nSECRET=abc\nexport DATABASE_URL='postgres://other@elsewhere:5432/x'\nDIRECT_URL=\"postgres://u:old@h:5432/d\"\n\nTAIL=1"
	_ = os.Remove(path)
	_ = os.WriteFile(path, []byte(existing), 0o640)
	if _, err := a.writeEnvFile(path, []envVar{{"DATABASE_URL", "postgres://u:p@h:6432/d"}, {"DIRECT_URL", "postgres://u:new@h:5432/d"}, {"DATABASE_POOL_URL", "postgres://u:p@h:6432/d"}}, envRefresh, false); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want := "# app settings\nSECRET=abc\nexport DATABASE_URL=\"postgres://u:p@h:6432/d\"\nDIRECT_URL=\"postgres://u:new@h:5432/d\"\n\nTAIL=1\nDATABASE_POOL_URL=\"postgres://u:p@h:6432/d\"\n"
	if string(b) != want {
		t.Fatalf("updated file:\n%s\nwant:\n%s", b, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("an existing file keeps its mode: %v", fi.Mode())
	}
	// env pull refreshes our own value (same server) silently, but warns when
	// replacing a value that pointed at another host.
	if w := errb.String(); !strings.Contains(w, "overwriting DATABASE_URL") || strings.Contains(w, "DIRECT_URL") {
		t.Fatalf("warnings: %q", w)
	}
	// Add-only never overwrites.
	errb.Reset()
	_ = os.WriteFile(path, []byte("DATABASE_URL=\"mine\"\n"), 0o600)
	if _, err := a.writeEnvFile(path, vars, envAddOnly, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "DATABASE_URL=\"mine\"\nDIRECT_URL=") {
		t.Fatalf("add-only: %s", b)
	}
}

func TestGitignore(t *testing.T) {
	root := t.TempDir()
	_ = os.Mkdir(filepath.Join(root, ".git"), 0o755)
	app := filepath.Join(root, "apps", "web")
	_ = os.MkdirAll(app, 0o755)
	_ = os.WriteFile(filepath.Join(root, ".gitignore"), []byte("node_modules"), 0o644)
	for i := 0; i < 2; i++ { // idempotent
		if err := ensureGitignore(app, ".capydb/", filepath.Join(app, ".env.local")); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(root, ".gitignore"))
	if string(b) != "node_modules\napps/web/.capydb/\napps/web/.env.local\n" {
		t.Fatalf(".gitignore:\n%s", b)
	}
	// No repository: the directory's own .gitignore is created.
	dir := t.TempDir()
	if err := ensureGitignore(dir, ".capydb/", ".env"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".gitignore")); string(b) != ".capydb/\n.env\n" {
		t.Fatalf("new .gitignore: %q", b)
	}
}

func TestLinkAndEnvPullAgainstStub(t *testing.T) {
	dir := isolate(t)
	_ = os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"dependencies":{"@prisma/client":"5"}}`), 0o644)
	s := newStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects":                   reply(200, `{"projects":[`+projectJSON+`]}`),
		"GET /v1/projects/prj_1":             reply(200, `{"project":`+projectJSON+`}`),
		"GET /v1/projects/prj_1/connections": reply(200, connectionsJSON),
	})
	t.Setenv("CAPYDB_API_URL", s.URL)
	t.Setenv("CAPYDB_API_KEY", "capy_live_x")
	r := runCLI(t, "link", "--project", "Shop", "-o", "json")
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res["project_id"] != "prj_1" || res["env_file"] != ".env" {
		t.Fatalf("link: %d %q %s", r.code, r.stdout, r.stderr)
	}
	var l projectLink
	b, _ := os.ReadFile(filepath.Join(dir, ".capydb", "project.json"))
	if err := json.Unmarshal(b, &l); err != nil || l.ProjectID != "prj_1" || l.Profile != "node+prisma" || l.DirectURLVar != "DIRECT_URL" ||
		l.APIURL != s.URL || l.EnvFile != ".env" || l.OrganizationID != "org_1" {
		t.Fatalf("link file: %s", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, ".capydb", "project.json")); fi.Mode().Perm() != 0o644 || strings.Contains(string(b), "pw@") {
		t.Fatalf("link file mode %v or it holds a secret", fi.Mode())
	}
	env, _ := readEnvFile(filepath.Join(dir, ".env"))
	if env["DATABASE_URL"] != "postgres://u_shop:pw@db.example:6432/db_shop?sslmode=require" ||
		env["DIRECT_URL"] != "postgres://u_shop:pw@db.example:5432/db_shop?sslmode=require" {
		t.Fatalf("env: %v", env)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".gitignore")); string(b) != ".capydb/\n.env\n" {
		t.Fatalf(".gitignore: %q", b)
	}
	// env pull uses the link (GET /v1/projects/prj_1, no listing).
	before := s.count("GET /v1/projects/prj_1")
	r = runCLI(t, "env", "pull")
	if r.code != 0 || s.count("GET /v1/projects/prj_1") != before+2 || !strings.Contains(r.stdout, "to .env") {
		t.Fatalf("env pull: %d %s %s %v", r.code, r.stdout, r.stderr, s.calls)
	}
	// connection-string prints only the URL, its password masked unless
	// --show-secrets; JSON carries it (the command exists to hand it out).
	r = runCLI(t, "connection-string", "--pooled")
	if r.stdout != "postgres://u_shop:****@db.example:6432/db_shop?sslmode=require\n" || !strings.Contains(r.stderr, "--show-secrets") {
		t.Fatalf("connection-string: %q %q", r.stdout, r.stderr)
	}
	r = runCLI(t, "connection-string", "--pooled", "--show-secrets")
	if r.stdout != "postgres://u_shop:pw@db.example:6432/db_shop?sslmode=require\n" || r.stderr != "" {
		t.Fatalf("connection-string --show-secrets: %q %q", r.stdout, r.stderr)
	}
	r = runCLI(t, "connection-string", "-o", "json")
	if !strings.Contains(r.stdout, `"connection_string": "postgres://u_shop:pw@db.example:5432/db_shop?sslmode=require"`) {
		t.Fatalf("connection-string -o json: %q", r.stdout)
	}
	if r := runCLI(t, "unlink"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".capydb", "project.json")); !os.IsNotExist(err) {
		t.Fatal("unlink must remove the link file")
	}
}
