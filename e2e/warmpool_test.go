package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// warmReady waits until the warm pool holds a claimable entry (made from
// the current template) other than those in not, and returns its name and OID.
func (s *server) warmReady(t *testing.T, admin *pgx.Conn, not ...string) (string, uint32) {
	t.Helper()
	var name string
	var oid uint32
	not = append([]string{}, not...) // never NULL: <> ALL(NULL) matches nothing
	clustertest.Eventually(t, 60*time.Second, "a ready warm database", func() bool {
		err := admin.QueryRow(context.Background(), `SELECT datname::text, oid FROM pg_database
			WHERE datname LIKE 'capydb\_warm\_%' AND datname <> ALL($1)
			  AND shobj_description(oid, 'pg_database') LIKE 'capydb warm %' ORDER BY datname LIMIT 1`, not).Scan(&name, &oid)
		return err == nil
	})
	return name, oid
}

// tenantShape is what a provisioned database and role look like, with the
// role's and database's names replaced, so a claimed and a freshly
// created project can be compared.
func tenantShape(t *testing.T, admin *pgx.Conn, db, role string) []string {
	t.Helper()
	rows, err := admin.Query(context.Background(), `
		SELECT 'db ' || replace(replace(coalesce(d.datacl::text, ''), $2, 'ROLE'), $1, 'DB')
		       || ' owner=' || (pg_get_userbyid(d.datdba) = $2)::text
		       || ' comment=' || coalesce(shobj_description(d.oid, 'pg_database'), '<none>')
		       || ' allowconn=' || d.datallowconn::text || ' template=' || d.datistemplate::text
		FROM pg_database d WHERE d.datname = $1
		UNION ALL
		SELECT 'role ' || concat_ws(' ', r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
		       r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil,
		       (SELECT g.rolconfig::text FROM pg_roles g WHERE g.oid = r.oid),
		       left(r.rolpassword, 14))
		FROM pg_authid r WHERE r.rolname = $2
		UNION ALL
		SELECT 'shdepend ' || s.classid::regclass::text || ' ' || s.deptype::text || ' ' || count(*)
		FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid WHERE r.rolname = $2
		GROUP BY s.classid, s.deptype
		UNION ALL
		SELECT 'membership ' || count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid IN (m.roleid, m.member)
		WHERE r.rolname = $2
		ORDER BY 1`, db, role)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// extensionShape lists the extensions inside a tenant database and whether
// the tenant owns each, read through the tenant's own direct URL.
func extensionShape(t *testing.T, direct string) []string {
	t.Helper()
	conn, err := connect(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT extname || ' ' || (extowner = (SELECT datdba FROM pg_database
		WHERE datname = current_database()))::text || ' ' || extnamespace::regnamespace::text FROM pg_extension ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWarmPoolClaim: a project takes the warm database (same OID), the
// refill makes a new one, and a claimed project looks exactly like one
// created without the pool: owner, ACL, comment, role attributes and
// settings, dependencies, extensions owned by the tenant (who can update
// and drop them), both URLs. Warm entries are unclaimable meanwhile: no
// login role may connect to them and no pgBouncer file lists them.
func TestWarmPoolClaim(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx := context.Background()
	admin := s.admin("postgres")

	w1, oid1 := s.warmReady(t, admin)
	a := s.createProject(map[string]any{"name": "warm-a", "environment": "non_production"})
	var oidA uint32
	if err := admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, a["database_name"]).Scan(&oidA); err != nil || oidA != oid1 {
		t.Fatalf("project A's database has OID %d (%v), the warm database %s had %d: not claimed", oidA, err, w1, oid1)
	}

	// Hold the next warm entry's lock so B's claim finds none: B is made the
	// ordinary way (CREATE DATABASE), and the entry must survive.
	w2, oid2 := s.warmReady(t, admin, w1)
	lock := s.admin("postgres")
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, w2); err != nil {
		t.Fatal(err)
	}
	b := s.createProject(map[string]any{"name": "warm-b", "environment": "non_production"})
	var oidB, oidW2 uint32
	_ = admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, b["database_name"]).Scan(&oidB)
	if err := admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, w2).Scan(&oidW2); err != nil || oidW2 != oid2 || oidB == oid2 {
		t.Fatalf("project B took the locked warm database (B %d, warm %d/%d, %v)", oidB, oid2, oidW2, err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, w2); err != nil {
		t.Fatal(err)
	}

	shapeA := tenantShape(t, admin, a["database_name"].(string), a["role_name"].(string))
	shapeB := tenantShape(t, admin, b["database_name"].(string), b["role_name"].(string))
	if !slices.Equal(shapeA, shapeB) || len(shapeA) < 3 {
		t.Fatalf("claimed project differs from a fresh one:\nclaimed: %q\nfresh:   %q", shapeA, shapeB)
	}
	var urls [2]map[string]string
	for i, p := range []map[string]any{a, b} {
		c := s.must(200, "GET", "/v1/projects/"+p["id"].(string)+"/connections", nil)
		urls[i] = map[string]string{"direct": c.str("connections", "direct_url"), "pooled": c.str("connections", "pooled_url")}
		for _, kind := range []string{"direct", "pooled"} {
			if got := query[string](t, urls[i][kind], `SELECT current_database()::text`); got != p["database_name"] {
				t.Fatalf("%s URL of %s reaches %q", kind, p["name"], got)
			}
		}
	}
	extA, extB := extensionShape(t, urls[0]["direct"]), extensionShape(t, urls[1]["direct"])
	if !slices.Equal(extA, extB) || !slices.Contains(extA, "pgcrypto true public") {
		t.Fatalf("extensions differ:\nclaimed: %q\nfresh:   %q", extA, extB)
	}
	// The tenant owns them: update and drop work as on a fresh project.
	mustExec(t, urls[0]["direct"], `ALTER EXTENSION pgcrypto UPDATE; DROP EXTENSION pg_trgm; CREATE EXTENSION pg_trgm`)

	// Unclaimable: no login role may connect to a warm database, and the
	// warm roles cannot log in.
	var reach int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles r, pg_database d
		WHERE d.datname LIKE 'capydb\_warm\_%' AND (r.rolname LIKE 'capydb\_warm\_%' AND r.rolcanlogin
		   OR (r.rolcanlogin AND NOT r.rolsuper AND has_database_privilege(r.oid, d.oid, 'CONNECT')))`).Scan(&reach); err != nil || reach != 0 {
		t.Fatalf("%d login roles can reach warm databases (%v)", reach, err)
	}
	var listed []string
	_ = filepath.WalkDir(s.dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".ini") || strings.HasSuffix(path, "userlist.txt")) {
			b, _ := os.ReadFile(path)
			if strings.Contains(string(b), "capydb_warm_") {
				listed = append(listed, path)
			}
		}
		return nil
	})
	// The claimed database needs no line of its own (default plan: the "*"
	// line serves it, auth_query finds its role); both URLs work above.
	if len(listed) > 0 {
		t.Fatalf("pgBouncer files list warm databases: %v", listed)
	}
}

// TestCrashMidWarmClaim: the server dies inside the claim's transaction
// (renamed, re-passworded, not committed). After a restart the entry is
// still in the pool (same OID, nothing half-renamed), the retried job
// claims it, the project works on both URLs, and the pool is refilled to
// exactly its size with no leftovers.
func TestCrashMidWarmClaim(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--unsafe-crash-at", "warm-claim")
	admin := s.admin("postgres")
	w, oid := s.warmReady(t, admin)
	admin.Close(context.Background())
	r := s.must(202, "POST", "/v1/projects", map[string]any{"name": "crash-warm", "environment": "non_production"})
	pid, db, role := r.str("project", "id"), r.str("project", "database_name"), r.str("project", "role_name")
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not crash at warm-claim:\n%s", s.logs.String())
	}
	if !strings.Contains(s.logs.String(), "crashing on purpose") {
		t.Fatalf("the server exited, but not at the crash point:\n%s", s.logs.String())
	}

	s2 := startServer(t, s.dataDir, s.directPort, s.pooledPort)
	if job := s2.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("job after restart: %v", job)
	}
	if p := s2.must(200, "GET", "/v1/projects/"+pid, nil); p.str("project", "state") != "ready" {
		t.Fatalf("project after restart: %s", p.Raw)
	}
	ctx := context.Background()
	admin2 := s2.admin("postgres")
	var got uint32
	if err := admin2.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, db).Scan(&got); err != nil || got != oid {
		t.Fatalf("project database has OID %d (%v); the warm entry %s that the crashed claim held had %d", got, err, w, oid)
	}
	var owner string
	if err := admin2.QueryRow(ctx, `SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1`, db).Scan(&owner); err != nil || owner != role {
		t.Fatalf("owner %q (%v), want %q", owner, err, role)
	}
	c := s2.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	for _, u := range []string{c.str("connections", "direct_url"), c.str("connections", "pooled_url")} {
		if query[int](t, u, `SELECT 1`) != 1 {
			t.Fatal("project URL does not work after the crash")
		}
	}
	// The pool is back to one ready entry; no stray warm database or role.
	s2.warmReady(t, admin2, w)
	clustertest.Eventually(t, 30*time.Second, "exactly one warm database and role", func() bool {
		var dbs, roles int
		_ = admin2.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE 'capydb\_warm\_%'),
			(SELECT count(*) FROM pg_roles WHERE rolname LIKE 'capydb\_warm\_%')`).Scan(&dbs, &roles)
		return dbs == 1 && roles == 1
	})
}
