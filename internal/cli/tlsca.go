package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/capydb/capydb/internal/apiclient"
)

// caFileName is where link, create and env pull put the server's CA, in
// the .capydb directory next to project.json (git-ignored with it).
const caFileName = "ca.crt"

// writeCA fetches GET /v1/ca.pem into path (0644: a CA certificate is no
// secret). It reports false, without an error, when the server hands out
// no CA (an operator certificate from a public CA, or an older server).
func (a *app) writeCA(c *apiclient.Client, path string) (bool, error) {
	pem, err := c.CACert(a.ctx)
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, op("read the server's CA certificate", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem, 0o644); err != nil {
		return false, fmt.Errorf("while writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("while writing %s: %w", path, err)
	}
	return true, nil
}

// prismaVars are the variables Prisma's schema engine and query engine
// read (datasource url / directUrl, and the app role's runtime URL).
var prismaVars = map[string]bool{"DATABASE_URL": true, "DIRECT_URL": true, "DATABASE_APP_URL": true}

// verifyingVars rewrites the URLs of vars so that the stack's driver
// verifies the server certificate against caPath (absolute), and adds
// PGSSLROOTCERT (libpq's default CA file; code that builds its own TLS
// options, e.g. postgres.js, reads it from there):
//
//   - libpq (psql, psycopg, SQLAlchemy, Django, ActiveRecord), pgx and
//     node-postgres 8: sslmode=verify-full&sslrootcert=<ca>.
//   - Prisma's engines (quaint) know only disable/prefer/require and take
//     the CA as sslcert; sslaccept=strict turns verification on. sslrootcert
//     is added for @prisma/adapter-pg (node-postgres), which reads it.
//   - postgres.js reads no CA from a URL and treats verify-full as "verify
//     against Node's store", which refuses our CA: its URLs keep
//     sslmode=require and the app passes ssl: { ca } (docs/tls.md).
func verifyingVars(vars []envVar, s stack, caPath string, postgresJS bool) []envVar {
	out := make([]envVar, 0, len(vars)+1)
	for _, v := range vars {
		switch {
		case postgresJS:
		case s.Layer == "prisma" && prismaVars[v.Key]:
			v.Value = withTLSParams(v.Value, "sslmode=require", "sslaccept=strict", "sslcert="+queryPath(caPath), "sslrootcert="+queryPath(caPath))
		default:
			v.Value = withTLSParams(v.Value, "sslmode=verify-full", "sslrootcert="+queryPath(caPath))
		}
		out = append(out, v)
	}
	return append(out, envVar{"PGSSLROOTCERT", caPath})
}

// withTLSParams replaces the TLS parameters of a URL's query with params,
// keeping every other parameter as the server wrote it.
func withTLSParams(raw string, params ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	var keep []string
	for _, p := range strings.Split(u.RawQuery, "&") {
		k, _, _ := strings.Cut(p, "=")
		switch k {
		case "", "sslmode", "sslrootcert", "sslcert", "sslaccept":
			continue
		}
		keep = append(keep, p)
	}
	u.RawQuery = strings.Join(append(keep, params...), "&")
	return u.String()
}

// queryPath escapes a file path for a URL query value, leaving / alone so
// the path stays readable (libpq, pgx, node-postgres and Prisma all
// percent-decode query values; none turns + into a space in a path we
// write, because + is escaped too).
func queryPath(p string) string {
	var b strings.Builder
	for _, c := range []byte(p) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-._~/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// usesPostgresJS reports whether the app at dir talks to Postgres with
// postgres.js (and not node-postgres).
func usesPostgresJS(dir string) bool {
	pkg, ok := readPackageJSON(dir)
	return ok && pkg.deps["postgres"] && !pkg.deps["pg"]
}
