package cli

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/wire"
)

func TestVerifyingVarsPerStack(t *testing.T) {
	conn := &apiclient.ConnectionInfo{ConnectionInfo: wire.ConnectionInfo{
		DirectURL: "postgres://u:pw@db.example:5432/db?sslmode=require",
		PooledURL: "postgres://u:pw@db.example:6432/db?sslmode=require&application_name=x",
	}}
	ca := "/home/me/my app/.capydb/ca+1.crt"
	esc := "/home/me/my%20app/.capydb/ca%2B1.crt"
	cases := []struct {
		name   string
		s      stack
		pgjs   bool
		want   map[string]string
		parsed string // DATABASE_URL's sslrootcert once decoded
	}{
		{"node-postgres", stack{Framework: "node", Layer: "pg"}, false, map[string]string{
			"DATABASE_URL":        "postgres://u:pw@db.example:6432/db?application_name=x&sslmode=verify-full&sslrootcert=" + esc,
			"DATABASE_DIRECT_URL": "postgres://u:pw@db.example:5432/db?sslmode=verify-full&sslrootcert=" + esc,
			"PGSSLROOTCERT":       ca,
		}, ca},
		{"pgx", stack{Framework: "go", Layer: "pgx"}, false, map[string]string{
			"DATABASE_URL": "postgres://u:pw@db.example:5432/db?sslmode=verify-full&sslrootcert=" + esc,
		}, ca},
		{"prisma", stack{Framework: "nextjs", Layer: "prisma"}, false, map[string]string{
			"DATABASE_URL":        "postgres://u:pw@db.example:6432/db?application_name=x&sslmode=require&sslaccept=strict&sslcert=" + esc + "&sslrootcert=" + esc,
			"DIRECT_URL":          "postgres://u:pw@db.example:5432/db?sslmode=require&sslaccept=strict&sslcert=" + esc + "&sslrootcert=" + esc,
			"DATABASE_DIRECT_URL": "postgres://u:pw@db.example:5432/db?sslmode=verify-full&sslrootcert=" + esc,
		}, ca},
		{"postgres.js", stack{Framework: "node", Layer: "drizzle"}, true, map[string]string{
			"DATABASE_URL":  conn.PooledURL,
			"PGSSLROOTCERT": ca,
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]string{}
			for _, v := range verifyingVars(envVarsFor(c.s, conn), c.s, ca, c.pgjs) {
				got[v.Key] = v.Value
			}
			for k, w := range c.want {
				if got[k] != w {
					t.Errorf("%s = %s\nwant  %s", k, got[k], w)
				}
			}
			u, err := url.Parse(got["DATABASE_URL"])
			if err != nil || u.Query().Get("sslrootcert") != c.parsed {
				t.Errorf("DATABASE_URL's sslrootcert decodes to %q (%v), want %q", u.Query().Get("sslrootcert"), err, c.parsed)
			}
		})
	}
}

// A URL that already verifies (a second env pull) is rewritten, not extended.
func TestWithTLSParamsReplaces(t *testing.T) {
	once := withTLSParams("postgres://u:p@h:1/d?sslmode=require", "sslmode=verify-full", "sslrootcert=/a")
	twice := withTLSParams(once, "sslmode=verify-full", "sslrootcert=/b")
	if twice != "postgres://u:p@h:1/d?sslmode=verify-full&sslrootcert=/b" {
		t.Fatalf("got %s", twice)
	}
}

func TestUsesPostgresJS(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) {
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"dependencies":{"drizzle-orm":"1","postgres":"3"}}`)
	if !usesPostgresJS(dir) {
		t.Fatal("postgres.js app not detected")
	}
	write(`{"dependencies":{"drizzle-orm":"1","postgres":"3","pg":"8"}}`)
	if usesPostgresJS(dir) {
		t.Fatal("an app with node-postgres counted as postgres.js")
	}
}
