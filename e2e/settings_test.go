package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// settingsProject creates a project and returns its id and URLs.
func settingsProject(t *testing.T, s *server, name string) (id, direct, pooled, session, role string) {
	t.Helper()
	p := s.createProject(map[string]any{"name": name})
	id = p["id"].(string)
	c := s.must(200, "GET", "/v1/projects/"+id+"/connections", nil)
	return id, c.str("connections", "direct_url"), c.str("connections", "pooled_url"), c.str("connections", "session_url"),
		c.str("connections", "username")
}

// completed waits for a 202's job and fails unless it completed.
func (s *server) completed(r response) map[string]any {
	s.t.Helper()
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" {
		s.t.Fatalf("job %s: %v", job["type"], job)
	}
	return job
}

func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(url), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, conn *pgx.Conn, name string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), "SHOW "+name).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", name, err)
	}
	return v
}

// TestDatabaseSettings: allowlisted settings are written per (role,
// database), read back as written, seen by a pooled session within one
// transaction after the job, and bad input is refused with a 400 naming
// the field, changing nothing.
func TestDatabaseSettings(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	id, direct, pooled, _, _ := settingsProject(t, s, "settings-a")
	_, otherDirect, _, _, _ := settingsProject(t, s, "settings-b")
	base := "/v1/projects/" + id + "/database-settings"

	pooledConn := mustConnect(t, pooled)
	if v := show(t, pooledConn, "work_mem"); v != "4MB" {
		t.Fatalf("default work_mem %q", v)
	}
	got := s.must(200, "GET", base, nil)
	if m := got.get("database_settings", "settings").(map[string]any); len(m) != 0 {
		t.Fatalf("fresh project has settings %v", m)
	}
	if got.get("database_settings", "read_only") != false || got.get("database_settings", "connection_limit") != float64(60) {
		t.Fatalf("settings %s", got.Raw)
	}

	s.completed(s.must(202, "PATCH", base, map[string]any{"settings": map[string]any{
		"work_mem": "64MB", "statement_timeout": "60s", "timezone": "America/New_York", "lock_timeout": "5s"}}))
	// The pooled session's next transaction runs on a fresh server connection.
	if v := show(t, pooledConn, "work_mem"); v != "64MB" {
		t.Errorf("pooled session sees work_mem %q after the job, want 64MB", v)
	}
	directConn := mustConnect(t, direct)
	if v := show(t, directConn, "statement_timeout"); v != "1min" {
		t.Errorf("direct statement_timeout %q, want 1min", v)
	}
	if v := show(t, directConn, "TimeZone"); v != "America/New_York" {
		t.Errorf("direct TimeZone %q", v)
	}
	if v := show(t, mustConnect(t, otherDirect), "work_mem"); v != "4MB" {
		t.Errorf("another project sees work_mem %q", v)
	}
	got = s.must(200, "GET", base, nil)
	want := map[string]any{"work_mem": "64MB", "statement_timeout": "60s", "timezone": "America/New_York", "lock_timeout": "5s"}
	if fmt.Sprint(got.get("database_settings", "settings")) != fmt.Sprint(want) {
		t.Errorf("settings read back %v, want %v (as written)", got.get("database_settings", "settings"), want)
	}

	for _, c := range []struct {
		body any
		want []string
	}{
		{map[string]any{"settings": map[string]any{"work_mem": "1 lightyear"}}, []string{"work_mem", "invalid value", "Valid units"}},
		{map[string]any{"settings": map[string]any{"work_mem": "-5"}}, []string{"work_mem", "outside the valid range"}},
		{map[string]any{"settings": map[string]any{"session_replication_role": "sometimes"}}, []string{"session_replication_role", "Available values"}},
		{map[string]any{"settings": map[string]any{"shared_buffers": "1GB"}}, []string{"shared_buffers is a cluster-level setting, not settable per project"}},
		{map[string]any{"settings": map[string]any{"max_connections": "1000"}}, []string{"max_connections is a cluster-level setting"}},
		{map[string]any{"settings": map[string]any{"work_mem = '1GB'; DROP TABLE x; --": "1"}}, []string{"invalid setting name"}},
		{map[string]any{"settings": map[string]any{"no_such_setting": "1"}}, []string{"unknown setting no_such_setting"}},
		{map[string]any{"settings": map[string]any{"default_transaction_read_only": "on"}}, []string{"read-only mode"}},
		{map[string]any{"settings": map[string]any{"work_mem": "1MB'; DROP ROLE x; --"}}, []string{"work_mem", "invalid value"}},
		{map[string]any{"reset": []string{"shared_buffers"}}, []string{"cluster-level"}},
		{map[string]any{"connection_limit": 1000}, []string{"connection_limit", "60"}},
		{map[string]any{}, []string{"send at least one"}},
	} {
		r := s.call("PATCH", base, s.key, c.body)
		for _, w := range c.want {
			if r.Status != 400 || !strings.Contains(r.str("error"), w) {
				t.Errorf("PATCH %v: %d %s, want 400 containing %q", c.body, r.Status, r.Raw, w)
			}
		}
	}
	after := s.must(200, "GET", base, nil)
	if fmt.Sprint(after.get("database_settings")) != fmt.Sprint(got.get("database_settings")) {
		t.Errorf("refused changes changed the settings: %v -> %v", got.get("database_settings"), after.get("database_settings"))
	}

	// Reset, and a connection limit within the plan.
	s.completed(s.must(202, "PATCH", base, map[string]any{"reset": []string{"work_mem"}, "connection_limit": 20}))
	if v := show(t, mustConnect(t, direct), "work_mem"); v != "4MB" {
		t.Errorf("work_mem after reset %q", v)
	}
	got = s.must(200, "GET", base, nil)
	if got.get("database_settings", "connection_limit") != float64(20) || got.get("database_settings", "settings", "work_mem") != nil {
		t.Errorf("after reset: %s", got.Raw)
	}
	if ps := s.must(200, "GET", "/v1/projects/"+id+"/pooler-settings", nil); ps.get("pooler_settings", "max_db_connections") != float64(15) {
		t.Errorf("max_db_connections does not follow the connection limit: %s", ps.Raw)
	}

	// A rotated login takes the settings over.
	s.completed(s.must(202, "POST", "/v1/projects/"+id+"/credentials/rotate", map[string]any{"grace_hours": 1}))
	c := s.must(200, "GET", "/v1/projects/"+id+"/connections", nil)
	rotated := mustConnect(t, c.str("connections", "direct_url"))
	if v := show(t, rotated, "lock_timeout"); v != "5s" {
		t.Errorf("rotated login (%s) has lock_timeout %q, want 5s", c.str("connections", "username"), v)
	}
	got = s.must(200, "GET", base, nil)
	if got.get("database_settings", "connection_limit") != float64(20) || got.get("database_settings", "settings", "lock_timeout") != "5s" {
		t.Errorf("settings of the rotated login: %s", got.Raw)
	}
}

// TestSettingsQueuedBehindLock: a change made while another job holds the
// project's lock waits in the queue and runs once the lock is free.
func TestSettingsQueuedBehindLock(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	id, direct, _, _, _ := settingsProject(t, s, "settings-lock")
	ctl := s.admin("capydb_control")
	ctx := context.Background()
	var org string
	if err := ctl.QueryRow(ctx, `SELECT organization_id FROM projects WHERE id = $1`, id).Scan(&org); err != nil {
		t.Fatal(err)
	}
	// A job of a type no worker runs holds the lock as if it were running.
	if _, err := ctl.Exec(ctx, `INSERT INTO jobs (id, type, state, organization_id, project_id, locked_resource,
		claimed_by, claimed_at, lease_expires_at, started_at) VALUES ('job_lockholder', 'test.hold', 'running', $1, $2,
		'project:'||$2, 'test', now(), now() + interval '1 hour', now())`, org, id); err != nil {
		t.Fatal(err)
	}
	r := s.must(202, "PATCH", "/v1/projects/"+id+"/database-settings", map[string]any{"settings": map[string]any{"work_mem": "32MB"}})
	jobID := r.str("job", "id")
	time.Sleep(2 * time.Second)
	if st := s.must(200, "GET", "/v1/jobs/"+jobID, nil).str("job", "state"); st != "pending" {
		t.Fatalf("settings job is %s while the lock is held, want pending", st)
	}
	if _, err := ctl.Exec(ctx, `UPDATE jobs SET state = 'completed', completed_at = now() WHERE id = 'job_lockholder'`); err != nil {
		t.Fatal(err)
	}
	if job := s.waitJob(jobID); job["state"] != "completed" {
		t.Fatalf("settings job after the lock was freed: %v", job)
	}
	if v := show(t, mustConnect(t, direct), "work_mem"); v != "32MB" {
		t.Errorf("work_mem %q after the queued job", v)
	}
}

// writeFails asserts that an INSERT on url fails with 25006 (read-only).
func writeFails(t *testing.T, url, label string) {
	t.Helper()
	conn := mustConnect(t, url)
	_, err := conn.Exec(context.Background(), "INSERT INTO ro_t VALUES (1)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("%s: write while read-only: %v, want SQLSTATE 25006", label, err)
	}
}

func writeWorks(t *testing.T, url, label string) {
	t.Helper()
	conn := mustConnect(t, url)
	if _, err := conn.Exec(context.Background(), "INSERT INTO ro_t VALUES (2)"); err != nil {
		t.Errorf("%s: write after read-only ended: %v", label, err)
	}
}

// TestReadOnlyMode: read-only ends sessions and makes writes fail with
// 25006 on every URL; the write window allows writes and schedules the
// return of read-only 15 minutes later; an explicit change replaces it.
func TestReadOnlyMode(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	id, direct, pooled, session, _ := settingsProject(t, s, "readonly")
	ctx := context.Background()
	if _, err := mustConnect(t, direct).Exec(ctx, "CREATE TABLE ro_t (x int)"); err != nil {
		t.Fatal(err)
	}
	before := mustConnect(t, direct) // a session from before the switch is ended
	base := "/v1/projects/" + id + "/read-only"
	s.completed(s.must(202, "PUT", base, map[string]any{"enabled": true}))
	if err := before.Ping(ctx); err == nil {
		t.Errorf("a session from before read-only mode survived it")
	}
	if r := s.must(200, "GET", base, nil); r.get("read_only", "enabled") != true || r.get("read_only", "override_active_until") != nil {
		t.Errorf("read-only status %s", r.Raw)
	}
	writeFails(t, direct, "direct")
	writeFails(t, pooled, "pooled")
	writeFails(t, session, "session")

	t0 := time.Now()
	s.completed(s.must(202, "POST", base+"/write-window", nil))
	r := s.must(200, "GET", base, nil)
	until, err := time.Parse(time.RFC3339, r.str("read_only", "override_active_until"))
	if r.get("read_only", "enabled") != false || err != nil || until.Before(t0.Add(14*time.Minute)) || until.After(t0.Add(16*time.Minute)) {
		t.Errorf("write window status %s", r.Raw)
	}
	writeWorks(t, direct, "direct")
	writeWorks(t, pooled, "pooled")

	// An explicit change replaces the window's end.
	s.completed(s.must(202, "PUT", base, map[string]any{"enabled": false}))
	if r := s.must(200, "GET", base, nil); r.get("read_only", "override_active_until") != nil || r.get("read_only", "enabled") != false {
		t.Errorf("after an explicit change: %s", r.Raw)
	}
	if r := s.call("POST", base+"/write-window", s.key, nil); r.Status != 409 || !strings.Contains(r.str("error"), "read-only mode is off") {
		t.Errorf("write window on a read-write project: %d %s", r.Status, r.Raw)
	}
	if r := s.call("PUT", base, s.key, map[string]any{}); r.Status != 400 || !strings.Contains(r.str("error"), "enabled") {
		t.Errorf("PUT without enabled: %d %s", r.Status, r.Raw)
	}
}

// TestPoolerSettings: a session-mode project keeps a session's SET across
// transactions on its pooled URL; a transaction-mode one does not.
func TestPoolerSettings(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	txID, txDirect, txPooled, _, _ := settingsProject(t, s, "pool-tx")
	sessID, _, sessPooled, _, _ := settingsProject(t, s, "pool-session")
	s.completed(s.must(202, "PATCH", "/v1/projects/"+sessID+"/pooler-settings", map[string]any{"pool_mode": "session", "pool_size": 10}))
	s.completed(s.must(202, "PATCH", "/v1/projects/"+txID+"/pooler-settings", map[string]any{"pool_size": 7}))
	ps := s.must(200, "GET", "/v1/projects/"+sessID+"/pooler-settings", nil)
	if ps.get("pooler_settings", "pool_mode") != "session" || ps.get("pooler_settings", "pool_size") != float64(10) ||
		ps.get("pooler_settings", "max_db_connections") != float64(55) {
		t.Errorf("pooler settings %s", ps.Raw)
	}
	ps = s.must(200, "GET", "/v1/projects/"+txID+"/pooler-settings", nil)
	if ps.get("pooler_settings", "pool_mode") != "transaction" || ps.get("pooler_settings", "pool_size") != float64(7) {
		t.Errorf("pooler settings %s", ps.Raw)
	}
	// keeps: client A sets work_mem; client B then holds a server connection
	// in an open transaction; A's next transaction shows whether its SET
	// stayed with it.
	keeps := func(url string) bool {
		ctx := context.Background()
		a, b := mustConnect(t, url), mustConnect(t, url)
		if _, err := a.Exec(ctx, "SET work_mem = '77MB'"); err != nil {
			t.Fatal(err)
		}
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		return show(t, a, "work_mem") == "77MB"
	}
	if !keeps(sessPooled) {
		t.Errorf("session-mode project lost a session's SET between transactions on its pooled URL")
	}
	if keeps(txPooled) {
		t.Errorf("transaction-mode project kept a session's SET on a held server connection")
	}
	// pgBouncer's own view of the entries.
	console, err := connect(fmt.Sprintf("postgres://capydb_admin:%s@127.0.0.1:%d/pgbouncer?sslmode=require", adminPassword(t, s), s.pooledPort))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close(context.Background())
	rows, err := console.Query(context.Background(), "SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for rows.Next() {
		vals, _ := rows.Values()
		row := map[string]any{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = vals[i]
		}
		seen[fmt.Sprint(row["name"])] = fmt.Sprintf("%v/%v", row["pool_size"], row["pool_mode"])
	}
	var sessDB, txDB string
	ctl := s.admin("capydb_control")
	_ = ctl.QueryRow(context.Background(), `SELECT database_name FROM projects WHERE id = $1`, sessID).Scan(&sessDB)
	_ = ctl.QueryRow(context.Background(), `SELECT database_name FROM projects WHERE id = $1`, txID).Scan(&txDB)
	if seen[sessDB] != "10/session" || !strings.HasPrefix(seen[txDB], "7/") {
		t.Errorf("pgBouncer entries: %s=%q %s=%q", sessDB, seen[sessDB], txDB, seen[txDB])
	}
	// The tenant cannot write its own pooler settings.
	_, err = mustConnect(t, txDirect).Exec(context.Background(), `ALTER ROLE capydb_pool_config IN DATABASE `+
		pgx.Identifier{txDB}.Sanitize()+` SET capydb.pool_size = '5000'`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("tenant changing the pool settings role: %v, want 42501", err)
	}
	for _, body := range []map[string]any{{"pool_size": 0}, {"pool_size": 56}, {"pool_mode": "statement"}, {}} {
		if r := s.call("PATCH", "/v1/projects/"+txID+"/pooler-settings", s.key, body); r.Status != 400 {
			t.Errorf("PATCH pooler %v: %d %s, want 400", body, r.Status, r.Raw)
		}
	}
}

func adminPassword(t *testing.T, s *server) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestExtensionsSSLAppRoleMinor: the managed extension path, the SSL
// report, the app role on Postgres 15 and the minor upgrade.
func TestExtensionsSSLAppRoleMinor(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	id, direct, _, _, role := settingsProject(t, s, "extensions")
	base := "/v1/projects/" + id
	ctx := context.Background()

	list := s.must(200, "GET", base+"/extensions", nil).get("extensions").([]any)
	byName := map[string]map[string]any{}
	var names []string
	for _, e := range list {
		m := e.(map[string]any)
		byName[m["name"].(string)] = m
		names = append(names, m["name"].(string))
	}
	if byName["pgcrypto"]["enabled"] != true || byName["citext"]["enabled"] != false || byName["citext"]["trusted"] != true ||
		byName["pg_stat_statements"]["trusted"] != false || byName["pgcrypto"]["category"] != "security" {
		t.Errorf("extensions %v", list)
	}
	if strings.Join(names, ",") != strings.Join(slices.Sorted(slices.Values(names)), ",") {
		t.Errorf("extensions not sorted: %v", names)
	}

	job := s.completed(s.must(202, "POST", base+"/extensions", map[string]any{"name": "citext"}))
	if res := job["result"].(map[string]any); res["changed"] != true || res["name"] != "citext" {
		t.Errorf("enable result %v", res)
	}
	tenant := mustConnect(t, direct)
	var owner string
	if err := tenant.QueryRow(ctx, `SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'citext'`).Scan(&owner); err != nil || owner != role {
		t.Errorf("citext owned by %q (%v), want the project's owner %q", owner, err, role)
	}
	if job := s.completed(s.must(202, "POST", base+"/extensions", map[string]any{"name": "citext"})); job["result"].(map[string]any)["changed"] != false {
		t.Errorf("enabling twice changed something: %v", job["result"])
	}
	if job := s.completed(s.must(202, "POST", base+"/extensions/citext/update", nil)); job["result"].(map[string]any)["changed"] != false {
		t.Errorf("update of a current extension changed something: %v", job["result"])
	}

	// vector has no Debian package for Postgres 15 here.
	var vectorAvailable bool
	if err := s.admin("postgres").QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')`).Scan(&vectorAvailable); err != nil {
		t.Fatal(err)
	}
	r := s.call("POST", base+"/extensions", s.key, map[string]any{"name": "vector"})
	if vectorAvailable {
		if r.Status != 202 {
			t.Errorf("vector is available but enabling it answered %d %s", r.Status, r.Raw)
		}
	} else if r.Status != 400 || !strings.Contains(r.str("error"), "extension vector is not installed on this server") {
		t.Errorf("unavailable vector: %d %s", r.Status, r.Raw)
	}
	for _, bad := range []string{"plpython3u", "citext; DROP TABLE x", ""} {
		if r := s.call("POST", base+"/extensions", s.key, map[string]any{"name": bad}); r.Status != 400 || !strings.Contains(r.str("error"), "allowlist") {
			t.Errorf("enable %q: %d %s", bad, r.Status, r.Raw)
		}
	}
	if r := s.call("DELETE", base+"/extensions/adminpack", s.key, nil); r.Status != 400 {
		t.Errorf("disable of a non-allowlisted extension: %d %s", r.Status, r.Raw)
	}

	// Disable with dependents fails permanently with Postgres's message.
	if _, err := tenant.Exec(ctx, "CREATE TABLE emails (e citext)"); err != nil {
		t.Fatal(err)
	}
	job = s.waitJob(s.must(202, "DELETE", base+"/extensions/citext", nil).str("job", "id"))
	if job["state"] != "failed" || job["retry_classification"] != "permanent" || job["attempts"] != float64(1) ||
		!strings.Contains(fmt.Sprint(job["error"]), "cannot drop extension citext because other objects depend on it") {
		t.Errorf("disable with dependents: %v", job)
	}
	if _, err := tenant.Exec(ctx, "DROP TABLE emails"); err != nil {
		t.Fatal(err)
	}
	s.completed(s.must(202, "DELETE", base+"/extensions/citext", nil))
	if l := s.must(200, "GET", base+"/extensions", nil).get("extensions").([]any); !hasExt(l, "citext", false) {
		t.Errorf("citext still enabled after disable: %v", l)
	}

	// The defaults a new project starts with belong to its owner like any
	// extension it enabled: the owner can update and disable them.
	rows, err := tenant.Query(ctx, `SELECT extname || ' ' || extowner::regrole::text FROM pg_extension WHERE extname IN ('pg_trgm', 'pgcrypto') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || fmt.Sprint(owners) != fmt.Sprintf("[pg_trgm %s pgcrypto %s]", role, role) {
		t.Fatalf("default extension owners %v (%v), want %s", owners, err, role)
	}
	s.completed(s.must(202, "POST", base+"/extensions/pgcrypto/update", nil))
	s.completed(s.must(202, "DELETE", base+"/extensions/pg_trgm", nil))
	var trgm bool
	if err := tenant.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')`).Scan(&trgm); err != nil || trgm {
		t.Errorf("pg_trgm still installed after disable (%v)", err)
	}
	s.completed(s.must(202, "POST", base+"/extensions", map[string]any{"name": "pg_trgm"}))

	// SSL enforcement.
	ssl := s.must(200, "GET", base+"/ssl-enforcement", nil)
	if ssl.get("ssl_enforcement", "database") != true || ssl.get("ssl_enforcement", "applied_successfully") != true {
		t.Errorf("ssl %s", ssl.Raw)
	}
	s.must(200, "PUT", base+"/ssl-enforcement", map[string]any{"database": true})
	if r := s.call("PUT", base+"/ssl-enforcement", s.key, map[string]any{"database": false}); r.Status != 400 ||
		!strings.Contains(r.str("error"), "not allowed to configure SSL enforcements") {
		t.Errorf("turning SSL off: %d %s", r.Status, r.Raw)
	}

	// App role on Postgres 15.
	app := s.must(200, "GET", base+"/roles/app", nil)
	if app.get("app_role", "available") != false || app.get("app_role", "enabled") != false {
		t.Errorf("app role %s", app.Raw)
	}
	if r := s.call("POST", base+"/roles/app", s.key, nil); r.Status != 404 || r.str("error") != "the app role is not offered for this project" {
		t.Errorf("enable app role: %d %s", r.Status, r.Raw)
	}
	if r := s.call("POST", base+"/roles/app/rotate", s.key, nil); r.Status != 404 {
		t.Errorf("rotate app role: %d %s", r.Status, r.Raw)
	}

	// Minor upgrade: already on the newest installed minor.
	job = s.completed(s.must(202, "POST", base+"/upgrade/minor", nil))
	var running string
	if err := tenant.QueryRow(ctx, `SELECT split_part(current_setting('server_version'), ' ', 1)`).Scan(&running); err != nil {
		t.Fatal(err)
	}
	res := job["result"].(map[string]any)
	if res["current_version"] != running || res["newest_installed_version"] != running || res["upgraded"] != false {
		t.Errorf("minor upgrade result %v, running %s", res, running)
	}
}

func hasExt(list []any, name string, enabled bool) bool {
	for _, e := range list {
		m := e.(map[string]any)
		if m["name"] == name {
			return m["enabled"] == enabled
		}
	}
	return false
}

// TestCLISettings: the settings commands against a real server, checked
// through the database they change.
func TestCLISettings(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	id, direct, _, _, _ := settingsProject(t, s, "cli-settings")
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	p := []string{"--project", id}

	job := u.json(append([]string{"db", "settings", "set", "work_mem=48MB", "lock_timeout=3s"}, p...)...)
	if job["state"] != "completed" || job["type"] != "project.settings_update" {
		t.Fatalf("db settings set: %v", job)
	}
	if v := show(t, mustConnect(t, direct), "work_mem"); v != "48MB" {
		t.Errorf("work_mem %q after the CLI change", v)
	}
	got := u.json(append([]string{"db", "settings", "get"}, p...)...)
	if fmt.Sprint(got["database_settings"].(map[string]any)["settings"]) != "map[lock_timeout:3s work_mem:48MB]" {
		t.Errorf("db settings get: %v", got)
	}
	bad := u.expect(2, append([]string{"db", "settings", "set", "work_mem=1 lightyear"}, p...)...)
	if !strings.Contains(bad.stderr, `invalid value for parameter "work_mem": "1 lightyear"`) {
		t.Errorf("bad value: %s", bad.stderr)
	}
	if r := u.run(append([]string{"db", "settings", "set", "work_mem"}, p...)...); r.code == 0 || !strings.Contains(r.stderr, "name=value") {
		t.Errorf("argument without '=': %d %s", r.code, r.stderr)
	}

	if job := u.json(append([]string{"pooler", "set", "--pool-mode", "session", "--pool-size", "9"}, p...)...); job["state"] != "completed" {
		t.Fatalf("pooler set: %v", job)
	}
	if ps := u.json(append([]string{"pooler", "get"}, p...)...)["pooler_settings"].(map[string]any); ps["pool_mode"] != "session" || ps["pool_size"] != float64(9) {
		t.Errorf("pooler get: %v", ps)
	}

	if _, err := mustConnect(t, direct).Exec(context.Background(), "CREATE TABLE ro_t (x int)"); err != nil {
		t.Fatal(err)
	}
	if job := u.json(append([]string{"readonly", "on"}, p...)...); job["state"] != "completed" || job["type"] != "instance.set_readonly" {
		t.Fatalf("readonly on: %v", job)
	}
	writeFails(t, direct, "direct after capydb readonly on")
	if st := u.json(append([]string{"readonly", "status"}, p...)...)["read_only"].(map[string]any); st["enabled"] != true {
		t.Errorf("readonly status: %v", st)
	}
	u.expect(0, append([]string{"readonly", "off"}, p...)...)
	writeWorks(t, direct, "direct after capydb readonly off")

	list := u.json(append([]string{"extensions", "list"}, p...)...)["extensions"].([]any)
	if !hasExt(list, "hstore", false) {
		t.Fatalf("extensions list: %v", list)
	}
	if job := u.json(append([]string{"ext", "enable", "hstore"}, p...)...); job["state"] != "completed" {
		t.Fatalf("ext enable: %v", job)
	}
	out := u.expect(0, append([]string{"extensions", "list"}, p...)...).stdout
	if !strings.Contains(out, "NAME") || !regexpLine(out, `^hstore\s+core\s+true\s+true\s+false\s+\S+`) {
		t.Errorf("extensions list table:\n%s", out)
	}
	u.expect(0, append([]string{"extensions", "disable", "hstore"}, p...)...)
	if list := u.json(append([]string{"extensions", "list"}, p...)...)["extensions"].([]any); !hasExt(list, "hstore", false) {
		t.Errorf("hstore still enabled: %v", list)
	}
}

func regexpLine(text, pattern string) bool {
	return regexp.MustCompile(`(?m)` + pattern).MatchString(text)
}
