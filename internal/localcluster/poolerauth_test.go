package localcluster

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func startPoolerCluster(t *testing.T) *Cluster {
	_, logger := newRecorder(t)
	ports := freePorts(t, 3)
	return mustStart(t, Config{DataDir: tempDataDir(t), Fast: true, Logger: logger,
		DirectPort: ports[0], DirectPortExplicit: true, PooledPort: ports[1], PooledPortExplicit: true,
		SessionPort: ports[2], SessionPortExplicit: true})
}

// socketDSN logs in over postgres' private unix socket, as pgBouncer does.
func socketDSN(c *Cluster, user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@/%s?host=%s&port=%d&sslmode=disable&connect_timeout=5",
		url.PathEscape(user), url.PathEscape(password), db, c.SocketDir(), c.DirectPort())
}

// TestPoolerAuthLookup: the auth_query function returns a secret for tenant
// roles only, only the auth role may call it, and the auth role itself can
// log in over the private socket only.
func TestPoolerAuthLookup(t *testing.T) {
	ctx := context.Background()
	c := startPoolerCluster(t)
	const pw = "tenant-Secret-1"
	adminExec(t, c, "postgres",
		`CREATE ROLE u_a LOGIN PASSWORD '`+pw+`' CONNECTION LIMIT 60`,
		`CREATE DATABASE dba OWNER u_a`, `REVOKE ALL ON DATABASE dba FROM PUBLIC`,
		`CREATE ROLE u_a_g1 LOGIN PASSWORD '`+pw+`' IN ROLE u_a`, // a grace login
		`CREATE ROLE stray LOGIN PASSWORD '`+pw+`'`,              // owns nothing
	)
	// Not tenants: each owns a database, so only the role rule keeps it out.
	outsiders := map[string]string{
		"su":             "SUPERUSER",
		"repl":           "REPLICATION",
		"bypass":         "BYPASSRLS",
		"creator":        "CREATEROLE",
		"dbmaker":        "CREATEDB",
		"capydb_agent_x": "IN ROLE u_a", // CapyDB's own, even as a member of a tenant
		"reader":         "IN ROLE pg_read_all_data",
		"sneaky":         "IN ROLE capydb_admin",
		"expired":        "VALID UNTIL '2000-01-01'",
	}
	for r, attr := range outsiders {
		adminExec(t, c, "postgres", `CREATE ROLE `+r+` LOGIN PASSWORD '`+pw+`' `+attr, `CREATE DATABASE db_`+r+` OWNER `+r)
	}
	admin, err := pgx.Connect(ctx, c.AdminDSNFor(poolerAuthDB))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	lookup := func(conn *pgx.Conn, role string) ([]string, error) {
		rows, err := conn.Query(ctx, `SELECT uname || ' ' || phash FROM `+poolerAuthFunc+`($1)`, role)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	for _, r := range []string{"u_a", "u_a_g1"} {
		got, err := lookup(admin, r)
		if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], r+" SCRAM-SHA-256$") {
			t.Fatalf("lookup(%s) = %q, %v; want its SCRAM secret", r, got, err)
		}
	}
	none := []string{"capydb_admin", poolerAuthRole, "stray", "no_such_role", "pg_read_all_data"}
	for r := range outsiders {
		none = append(none, r)
	}
	for _, r := range none {
		if got, err := lookup(admin, r); err != nil || len(got) != 0 {
			t.Fatalf("lookup(%s) = %q, %v; want no row", r, got, err)
		}
	}

	// A tenant can neither reach the auth database nor execute the function.
	var canConnect, canExec bool
	if err := admin.QueryRow(ctx, `SELECT has_database_privilege('u_a', $1, 'CONNECT'),
		has_function_privilege('u_a', $2, 'EXECUTE')`, poolerAuthDB, poolerAuthFunc+"(text)").Scan(&canConnect, &canExec); err != nil {
		t.Fatal(err)
	}
	if canConnect || canExec {
		t.Fatalf("tenant: CONNECT on %s %v, EXECUTE on the lookup %v", poolerAuthDB, canConnect, canExec)
	}
	for _, port := range []int{c.DirectPort(), c.PooledPort()} {
		_, err := pgx.Connect(ctx, userDSN(port, "u_a", pw, poolerAuthDB))
		if err == nil || !strings.Contains(err.Error(), "permission denied for database") {
			t.Fatalf("tenant connect to %s on port %d: %v", poolerAuthDB, port, err)
		}
	}

	// The auth role: in over the private socket (what pgBouncer uses), where
	// it can call the lookup and nothing else; refused over TCP everywhere.
	apw, err := c.poolerAuthPassword()
	if err != nil {
		t.Fatal(err)
	}
	auth, err := pgx.Connect(ctx, socketDSN(c, poolerAuthRole, apw, poolerAuthDB))
	if err != nil {
		t.Fatalf("auth role over the socket: %v", err)
	}
	defer auth.Close(ctx)
	if got, err := lookup(auth, "u_a"); err != nil || len(got) != 1 {
		t.Fatalf("auth role lookup(u_a) = %q, %v", got, err)
	}
	if got, err := lookup(auth, "su"); err != nil || len(got) != 0 {
		t.Fatalf("auth role lookup(su) = %q, %v", got, err)
	}
	if _, err := auth.Exec(ctx, `SELECT rolpassword FROM pg_authid`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("auth role read pg_authid: %v", err)
	}
	if _, err := pgx.Connect(ctx, socketDSN(c, poolerAuthRole, apw, "dba")); err == nil || !strings.Contains(err.Error(), "permission denied for database") {
		t.Fatalf("auth role connect to a tenant database: %v", err)
	}
	for _, port := range []int{c.DirectPort(), c.PooledPort(), c.SessionPort()} {
		if _, err := pgx.Connect(ctx, userDSN(port, poolerAuthRole, apw, poolerAuthDB)); err == nil {
			t.Fatalf("auth role logged in over TCP on port %d", port)
		} else {
			t.Logf("auth role over TCP on port %d: %v", port, err)
		}
	}
	// And pgBouncer refuses what the lookup does not return.
	for _, r := range []string{"su", "capydb_agent_x", "stray"} {
		if _, err := pgx.Connect(ctx, userDSN(c.PooledPort(), r, pw, "db_"+r)); err == nil {
			t.Fatalf("%s logged in through pgBouncer", r)
		}
	}
}

// serverKey identifies one pgBouncer server connection: its backend and
// when it was made.
type serverKey struct{ pid, connectTime, port string }

// showServers lists SHOW SERVERS rows of database db on the console at port.
func showServers(t *testing.T, c *Cluster, port int, db string) []serverKey {
	t.Helper()
	ctx := context.Background()
	conn, err := c.connectConsoleOn(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := ConsoleRows(ctx, conn, "SHOW SERVERS")
	if err != nil {
		t.Fatal(err)
	}
	var out []serverKey
	for _, r := range rows {
		if r["database"] == db {
			out = append(out, serverKey{r["remote_pid"], r["connect_time"], r["local_port"]})
		}
	}
	return out
}

// TestPoolerProvisionWithoutReload: a new tenant of the default plan is
// served at once through auth_query and the "*" database line; the sync
// provisioning defers finds nothing to reload, and SHOW SERVERS shows the
// other project's server connections untouched. A rotation does not
// reload either, and the old password fails on the pooled port at once.
func TestPoolerProvisionWithoutReload(t *testing.T) {
	ctx := context.Background()
	c := startPoolerCluster(t)
	const pw, pw2 = "tenant-Secret-1", "tenant-Secret-2"
	adminExec(t, c, "postgres",
		`CREATE ROLE u_a LOGIN PASSWORD '`+pw+`' CONNECTION LIMIT 60`,
		`CREATE DATABASE dba OWNER u_a`, `REVOKE ALL ON DATABASE dba FROM PUBLIC`)
	adminExec(t, c, "dba", `CREATE TABLE t (i int)`, `ALTER TABLE t OWNER TO u_a`)
	var clients []*pgx.Conn
	for _, port := range []int{c.PooledPort(), c.SessionPort()} {
		conn, err := pgx.Connect(ctx, userDSN(port, "u_a", pw, "dba"))
		if err != nil {
			t.Fatalf("A on port %d: %v", port, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `SELECT count(*) FROM t`); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, conn)
	}
	before := map[int][]serverKey{}
	for _, port := range []int{c.PooledPort(), c.SessionPort()} {
		if before[port] = showServers(t, c, port, "dba"); len(before[port]) == 0 {
			t.Fatalf("no server connection of A on port %d", port)
		}
	}
	t.Logf("A's server connections before: %v", before)
	reloads := c.poolerGate.reloads.Load()

	// Provision B as dataplane does: role, database, deferred sync.
	adminExec(t, c, "postgres",
		`CREATE ROLE u_b LOGIN PASSWORD '`+pw+`' CONNECTION LIMIT 60`,
		`CREATE DATABASE dbb OWNER u_b`, `REVOKE ALL ON DATABASE dbb FROM PUBLIC`)
	c.SyncPoolerLater()
	for _, port := range []int{c.PooledPort(), c.SessionPort()} {
		if who, err := query(ctx, userDSN(port, "u_b", pw, "dbb")); err == nil || !strings.Contains(err.Error(), `relation "t" does not exist`) {
			// B has no table t: reaching that error means the login worked.
			t.Fatalf("B on port %d right after provisioning: %q %v", port, who, err)
		}
	}
	if err := c.SyncPooler(ctx); err != nil { // what the deferred sync runs
		t.Fatal(err)
	}
	if n := c.poolerGate.reloads.Load() - reloads; n != 0 {
		t.Fatalf("provisioning B sent %d RELOADs", n)
	}
	ini, _ := os.ReadFile(filepath.Join(c.bouncerDir, "databases.ini"))
	if strings.Contains(string(ini), "dbb") || strings.Contains(string(ini), "dba") || !strings.Contains(string(ini), "* = host=") {
		t.Fatalf("databases.ini:\n%s", ini)
	}
	for _, conn := range clients {
		if _, err := conn.Exec(ctx, `SELECT count(*) FROM t`); err != nil {
			t.Fatalf("A's client after B's provisioning: %v", err)
		}
	}
	for port, b := range before {
		after := showServers(t, c, port, "dba")
		for _, k := range b {
			if !slices.Contains(after, k) {
				t.Fatalf("port %d: A's server connection %v is gone after B's provisioning (after: %v)", port, k, after)
			}
		}
	}

	// Rotation: no RELOAD needed; the old password fails at once.
	adminExec(t, c, "postgres", `ALTER ROLE u_b PASSWORD '`+pw2+`'`)
	if err := c.SyncPooler(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.ReconnectPooler(ctx, "dbb"); err != nil {
		t.Fatal(err)
	}
	if n := c.poolerGate.reloads.Load() - reloads; n != 0 {
		t.Fatalf("rotating B's password sent %d RELOADs", n)
	}
	for _, port := range []int{c.PooledPort(), c.SessionPort()} {
		if _, err := pgx.Connect(ctx, userDSN(port, "u_b", pw, "dbb")); err == nil || !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("old password on port %d: %v", port, err)
		}
		conn, err := pgx.Connect(ctx, userDSN(port, "u_b", pw2, "dbb"))
		if err != nil {
			t.Fatalf("new password on port %d: %v", port, err)
		}
		conn.Close(ctx)
	}

	// Another plan's limit needs its own line: the sync writes it and reloads
	// (deferred on provisioning); meanwhile "*" serves the database.
	adminExec(t, c, "postgres",
		`CREATE ROLE u_c LOGIN PASSWORD '`+pw+`' CONNECTION LIMIT 15`,
		`CREATE DATABASE dbc OWNER u_c`, `REVOKE ALL ON DATABASE dbc FROM PUBLIC`)
	if _, err := query(ctx, userDSN(c.PooledPort(), "u_c", pw, "dbc")); err == nil || !strings.Contains(err.Error(), `relation "t" does not exist`) {
		t.Fatalf("C before its line: %v", err)
	}
	if err := c.SyncPooler(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.poolerGate.reloads.Load() - reloads; n != 1 {
		t.Fatalf("C's line: %d RELOADs, want 1", n)
	}
	ini, _ = os.ReadFile(filepath.Join(c.bouncerDir, "databases.ini"))
	if !strings.Contains(string(ini), "dbc = host=") || !strings.Contains(string(ini), "dbname=dbc max_db_connections=5\n") {
		t.Fatalf("databases.ini:\n%s", ini)
	}
	if _, err := query(ctx, userDSN(c.PooledPort(), "u_c", pw, "dbc")); err == nil || !strings.Contains(err.Error(), `relation "t" does not exist`) {
		t.Fatalf("C after its line: %v", err)
	}
}
