package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/jackc/pgx/v5"
)

// fingerprint describes a database's user data: per-table row counts and
// content checksums, sequence positions, extensions and large objects.
func fingerprint(t *testing.T, url string) map[string]string {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(url), err)
	}
	defer conn.Close(context.Background())
	ctx := context.Background()
	out := map[string]string{}
	rows, err := conn.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var n int64
		var sum string
		if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM `+tb+` x`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		out["table "+tb] = fmt.Sprintf("%d %s", n, sum)
	}
	rows, err = conn.Query(ctx, `SELECT schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'null') FROM pg_sequences ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	seqs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	out["sequences"] = strings.Join(seqs, ",")
	rows, err = conn.Query(ctx, `SELECT extname FROM pg_extension ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	exts, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	out["extensions"] = strings.Join(exts, ",")
	var lo string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid), '')
		FROM pg_largeobject_metadata`).Scan(&lo); err != nil {
		t.Fatal(err)
	}
	out["large_objects"] = lo
	return out
}

func sameFingerprint(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if want[k] != got[k] {
			t.Errorf("%s: %s differs: want %q, got %q", what, k, want[k], got[k])
		}
	}
}

const seedSQL = `
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA app;
CREATE TABLE app.customers (id bigserial PRIMARY KEY, name text NOT NULL, token text DEFAULT encode(gen_random_bytes(8), 'hex'));
CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint REFERENCES app.customers, total numeric(10,2), doc bytea);
INSERT INTO app.customers (name) SELECT 'c' || g FROM generate_series(1, 500) g;
INSERT INTO orders (customer_id, total, doc) SELECT 1 + g % 500, g * 1.25, decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;
CREATE SEQUENCE invoice_no START 1000;
SELECT nextval('invoice_no') FROM generate_series(1, 7);
SELECT lo_from_bytea(0, 'large object payload');
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
`

func projectURL(s *server, pid string) string {
	return s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
}

func seed(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, stmt := range strings.Split(sql, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := conn.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// backup takes a backup and returns the completed record.
func backup(t *testing.T, s *server, pid, label string) map[string]any {
	t.Helper()
	r := s.must(202, "POST", "/v1/projects/"+pid+"/backups", map[string]any{"label": label})
	if r.str("job", "type") != "project.backup" {
		t.Fatalf("job type %q", r.str("job", "type"))
	}
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("backup failed: %v", job)
	}
	for _, b := range s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any) {
		bm := b.(map[string]any)
		if bm["job_id"] == job["id"] {
			return bm
		}
	}
	t.Fatalf("no backup record for job %v", job["id"])
	return nil
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "bk", "environment": "non_production"})
	pid := p["id"].(string)
	url := projectURL(s, pid)
	seed(t, url, seedSQL)
	want := fingerprint(t, url)

	b := backup(t, s, pid, "before launch")
	if b["state"] != "completed" || b["verification_state"] != "verified" || b["verified_at"] == nil {
		t.Fatalf("backup record %v", b)
	}
	key := b["backup_key"].(string)
	if !strings.HasPrefix(key, "projects/"+pid+"/backups/bkp_") || b["size_bytes"].(float64) <= 0 || len(b["checksum_sha256"].(string)) != 64 {
		t.Fatalf("backup record %v", b)
	}
	if b["label"] != "before launch" || b["kind"] != "manual" {
		t.Fatalf("backup record %v", b)
	}
	// The file is in the default file:// store under the data dir, with the recorded checksum.
	data, err := os.ReadFile(filepath.Join(s.dataDir, "backups", key))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != b["checksum_sha256"] || !bytes.HasPrefix(data, []byte("PGDMP")) {
		t.Fatalf("stored file does not match its record")
	}
	// The verification database is gone.
	var scratch int
	if err := s.admin("postgres").QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname LIKE 'capyv\_%'`).Scan(&scratch); err != nil || scratch != 0 {
		t.Fatalf("scratch databases left: %d %v", scratch, err)
	}

	// Changes after the backup must not appear in restores.
	seed(t, url, "DELETE FROM orders WHERE id > 100;\nINSERT INTO app.customers (name) VALUES ('late');\nSELECT nextval('invoice_no');\n")
	changed := fingerprint(t, url)

	// 1. new preview
	r := s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"backup_key": key, "preview_name": "from-backup"})
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" || job["type"] != "project.restore" {
		t.Fatalf("restore job %v", job)
	}
	pvid := job["preview_database_id"].(string)
	pv := s.must(200, "GET", "/v1/preview-databases/"+pvid, nil)
	if pv.str("preview", "state") != "ready" || pv.str("preview", "source_kind") != "backup" || pv.str("preview", "source_backup_key") != key || pv.str("preview", "name") != "from-backup" {
		t.Fatalf("preview %s", pv.Raw)
	}
	pvURL := s.must(200, "GET", "/v1/preview-databases/"+pvid+"/connections", nil).str("connections", "direct_url")
	sameFingerprint(t, "new preview", want, fingerprint(t, pvURL))
	// The preview's login owns what was restored and can write.
	seed(t, pvURL, "INSERT INTO orders (customer_id, total) VALUES (1, 1);\n")

	// 2. existing preview (credentials kept)
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"backup_key": key, "target_kind": "preview", "preview_id": pvid})
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("restore job %v", job)
	}
	sameFingerprint(t, "existing preview", want, fingerprint(t, pvURL))

	// 3. project overwrite: needs an approval token.
	r = s.call("POST", "/v1/projects/"+pid+"/restores", s.key, map[string]any{"backup_key": key, "target_kind": "project"})
	if r.Status != 428 {
		t.Fatalf("overwrite without approval: %d %s", r.Status, r.Raw)
	}
	r = s.call("POST", "/v1/projects/"+pid+"/restores", s.key, map[string]any{"backup_key": key, "target_kind": "project", "approval_token": "ap_wrong"})
	if r.Status != 403 {
		t.Fatalf("overwrite with a bad token: %d %s", r.Status, r.Raw)
	}
	tok := s.must(201, "POST", "/v1/projects/"+pid+"/approvals", map[string]any{"action": "project.restore_overwrite"}).str("approval", "token")
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"backup_key": key, "target_kind": "project", "approval_token": tok})
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "restoring" && st != "ready" {
		t.Fatalf("project state during overwrite %q", st)
	}
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("restore job %v", job)
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Fatalf("project state after overwrite %q", st)
	}
	sameFingerprint(t, "project overwrite", want, fingerprint(t, url))
	// The safety backup holds the contents from just before the overwrite.
	var safety map[string]any
	for _, x := range s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any) {
		if m := x.(map[string]any); m["kind"] == "pre_restore" {
			safety = m
		}
	}
	if safety == nil || safety["state"] != "completed" || safety["verification_state"] != "verified" {
		t.Fatalf("safety backup %v", safety)
	}
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"backup_key": safety["backup_key"]})
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("restore job %v", job)
	}
	safeURL := s.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string)+"/connections", nil).str("connections", "direct_url")
	sameFingerprint(t, "safety backup", changed, fingerprint(t, safeURL))

	types := s.eventTypes(t)
	if types["backup.completed"] < 1 || types["restore.completed"] != 4 {
		t.Fatalf("events %v", types)
	}
}

func TestBackupCorruptionAndBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "corrupt", "environment": "production"})
	pid := p["id"].(string)
	url := projectURL(s, pid)
	seed(t, url, "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 100);\n")
	b := backup(t, s, pid, "")
	key := b["backup_key"].(string)

	// Bad input.
	for _, c := range []struct {
		body   map[string]any
		status int
		msg    string
	}{
		{map[string]any{}, 400, "exactly one of"},
		{map[string]any{"backup_key": key, "restore_point_id": "rp_x"}, 400, "exactly one of"},
		{map[string]any{"backup_key": "../../etc/passwd"}, 404, "backup not found"},
		{map[string]any{"backup_key": "projects/" + pid + "/backups/bkp_doesnotexist.dump"}, 404, "backup not found"},
		{map[string]any{"backup_key": key, "target_kind": "bogus"}, 400, "target_kind"},
		{map[string]any{"backup_key": key, "ttl_hours": 500}, 400, "ttl_hours"},
		{map[string]any{"backup_key": key, "preview_id": "pvw_x"}, 400, "preview_id"},
		{map[string]any{"backup_key": key, "target_kind": "preview"}, 400, "preview_id is required"},
		{map[string]any{"backup_key": key, "target_kind": "preview", "preview_id": "pvw_nope"}, 404, "preview not found"},
		{map[string]any{"backup_key": key, "target_kind": "project", "approval_token": "x"}, 409, "non_production"},
		{map[string]any{"restore_time": "2020-01-01T00:00:00Z"}, 400, "point-in-time"},
	} {
		r := s.call("POST", "/v1/projects/"+pid+"/restores", s.key, c.body)
		if r.Status != c.status || !strings.Contains(r.str("error"), c.msg) {
			t.Errorf("%v: %d %s, want %d %q", c.body, r.Status, r.Raw, c.status, c.msg)
		}
	}
	if r := s.call("POST", "/v1/projects/"+pid+"/backups", s.key, map[string]any{"label": strings.Repeat("x", 121)}); r.Status != 400 {
		t.Errorf("long label: %d", r.Status)
	}
	// Another organization sees nothing.
	other := s.otherOrgKey(t)
	if r := s.call("GET", "/v1/projects/"+pid+"/backups", other, nil); r.Status != 404 {
		t.Errorf("other org list: %d", r.Status)
	}
	if r := s.call("POST", "/v1/projects/"+pid+"/restores", other, map[string]any{"backup_key": key}); r.Status != 404 {
		t.Errorf("other org restore: %d", r.Status)
	}

	// Flip bytes in storage: the restore fails permanently, nothing is created.
	path := filepath.Join(s.dataDir, "backups", key)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"backup_key": key})
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "failed" || !strings.Contains(fmt.Sprint(job["error"]), "checksum") {
		t.Fatalf("restore of a corrupted backup: %v", job)
	}
	pv := s.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string), nil)
	if pv.str("preview", "state") != "failed" {
		t.Fatalf("preview after failed restore %s", pv.Raw)
	}
	var n int
	if err := s.admin("postgres").QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1 OR datname = $1 || '_n'`,
		pv.str("preview", "database_name")).Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed restore left %d databases (%v)", n, err)
	}
}

func TestBackupScheduleAndRetention(t *testing.T) {
	t.Parallel()
	clock := filepath.Join(t.TempDir(), "clock")
	setClock := func(ts string) {
		if err := os.WriteFile(clock, []byte(ts), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setClock("2030-03-01T09:00:00Z")
	s := startServer(t, "", 0, 0, "--unsafe-clock-file", clock, "--backup-scheduler-interval", "200ms")
	p := s.createProject(map[string]any{"name": "sched", "environment": "non_production"})
	pid := p["id"].(string)
	seed(t, projectURL(s, pid), "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n")

	for _, bad := range []map[string]any{
		{"cron_hour": 24, "cron_minute": 0, "is_active": true},
		{"cron_hour": 1, "cron_minute": 60, "is_active": true},
		{"cron_hour": 1, "cron_minute": 0},
		{"cron_hour": 1, "cron_minute": 0, "is_active": true, "retention_days": 366},
	} {
		if r := s.call("PUT", "/v1/projects/"+pid+"/scheduled-backups/default", s.key, bad); r.Status != 400 {
			t.Errorf("%v: %d %s", bad, r.Status, r.Raw)
		}
	}
	sc := s.must(200, "PUT", "/v1/projects/"+pid+"/scheduled-backups/default", map[string]any{
		"cron_hour": 10, "cron_minute": 30, "is_active": true, "label": "daily", "retention_days": 2})
	if sc.get("scheduled_backup", "retention_days").(float64) != 2 || !strings.HasPrefix(sc.str("scheduled_backup", "id"), "sbk_") {
		t.Fatalf("schedule %s", sc.Raw)
	}
	list := func() []map[string]any {
		var out []map[string]any
		for _, x := range s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any) {
			out = append(out, x.(map[string]any))
		}
		return out
	}
	time.Sleep(600 * time.Millisecond)
	if n := len(list()); n != 0 {
		t.Fatalf("%d backups before the scheduled time", n)
	}
	setClock("2030-03-01T10:31:00Z")
	clustertest.Eventually(t, 30*time.Second, "scheduled backup", func() bool {
		l := list()
		return len(l) == 1 && l[0]["state"] == "completed"
	})
	b := list()[0]
	if b["kind"] != "scheduled" || b["label"] != "daily" || !strings.HasPrefix(fmt.Sprint(b["expires_at"]), "2030-03-03T10:31:00") {
		t.Fatalf("scheduled backup %v", b)
	}
	// Once a day only.
	time.Sleep(600 * time.Millisecond)
	if n := len(list()); n != 1 {
		t.Fatalf("%d backups after one scheduled time", n)
	}
	sched := s.must(200, "GET", "/v1/projects/"+pid+"/scheduled-backups", nil).get("scheduled_backups").([]any)[0].(map[string]any)
	if sched["last_job_id"] != b["job_id"] || sched["last_run_at"] == nil {
		t.Fatalf("schedule after run %v", sched)
	}
	// Turn it off, then move past retention: the file goes, the record stays expired.
	s.must(200, "PUT", "/v1/projects/"+pid+"/scheduled-backups/default", map[string]any{"cron_hour": 10, "cron_minute": 30, "is_active": false})
	rp := s.must(201, "POST", "/v1/projects/"+pid+"/restore-points", map[string]any{"label": "pinned", "backup_key": b["backup_key"]})
	rpID := rp.str("restore_point", "id")
	setClock("2030-03-04T11:00:00Z")
	clustertest.Eventually(t, 30*time.Second, "backup expiry", func() bool { return list()[0]["state"] == "expired" })
	if n := len(list()); n != 1 {
		t.Fatalf("%d backups after expiry (schedule was off)", n)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "backups", b["backup_key"].(string))); !os.IsNotExist(err) {
		t.Fatalf("expired backup file still there: %v", err)
	}
	if r := s.call("POST", "/v1/projects/"+pid+"/restores", s.key, map[string]any{"backup_key": b["backup_key"]}); r.Status != 410 {
		t.Fatalf("restore of an expired backup: %d %s", r.Status, r.Raw)
	}
	if r := s.call("POST", "/v1/projects/"+pid+"/restores", s.key, map[string]any{"restore_point_id": rpID}); r.Status != 410 {
		t.Fatalf("restore from an expired restore point: %d %s", r.Status, r.Raw)
	}
	pts := s.must(200, "GET", "/v1/projects/"+pid+"/restore-points", nil)
	if pts.get("restore_points").([]any)[0].(map[string]any)["state"] != "expired" || pts.get("pitr_window_days").(float64) != 0 {
		t.Fatalf("restore points %s", pts.Raw)
	}
	// Exports expire after 7 days: on this clock (2030) that is at once.
	ex := s.must(202, "POST", "/v1/projects/"+pid+"/exports", nil)
	if job := s.waitJob(ex.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("export %v", job)
	}
	clustertest.Eventually(t, 30*time.Second, "export expiry", func() bool {
		l := s.must(200, "GET", "/v1/projects/"+pid+"/exports", nil).get("exports").([]any)
		return l[0].(map[string]any)["state"] == "expired"
	})
	if r := s.call("GET", "/v1/projects/"+pid+"/exports/"+ex.str("export_id")+"/download", s.key, nil); r.Status != 410 {
		t.Fatalf("download of an expired export: %d %s", r.Status, r.Raw)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "backups", "projects", pid, "exports", ex.str("export_id")+".dump")); !os.IsNotExist(err) {
		t.Fatalf("expired export file: %v", err)
	}
	s.must(200, "DELETE", "/v1/projects/"+pid+"/restore-points/"+rpID, nil)
	if r := s.call("DELETE", "/v1/projects/"+pid+"/restore-points/"+rpID, s.key, nil); r.Status != 404 {
		t.Fatalf("second delete: %d", r.Status)
	}
}

func TestRestorePointRestores(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "rp", "environment": "non_production"})
	pid := p["id"].(string)
	url := projectURL(s, pid)
	seed(t, url, "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 42);\n")
	b := backup(t, s, pid, "")
	for _, bad := range []map[string]any{{}, {"label": "x"}, {"label": "x", "kind": "weird", "backup_key": b["backup_key"]}, {"label": "x", "backup_key": "nope"}} {
		if r := s.call("POST", "/v1/projects/"+pid+"/restore-points", s.key, bad); r.Status != 400 && r.Status != 404 {
			t.Errorf("%v: %d %s", bad, r.Status, r.Raw)
		}
	}
	rp := s.must(201, "POST", "/v1/projects/"+pid+"/restore-points", map[string]any{"label": "v1", "backup_key": b["backup_key"], "note": "n"})
	if rp.str("restore_point", "kind") != "backup" || rp.str("restore_point", "backup_id") != b["id"] || rp.str("restore_point", "state") != "active" {
		t.Fatalf("restore point %s", rp.Raw)
	}
	seed(t, url, "DELETE FROM t;\n")
	r := s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_point_id": rp.str("restore_point", "id")})
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("restore %v", job)
	}
	pvURL := s.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string)+"/connections", nil).str("connections", "direct_url")
	if n := query[int64](t, pvURL, "SELECT count(*) FROM t"); n != 42 {
		t.Fatalf("restored %d rows", n)
	}

	// Deleting the project deletes its backup files too.
	file := filepath.Join(s.dataDir, "backups", b["backup_key"].(string))
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	r = s.must(202, "DELETE", "/v1/projects/"+pid, nil)
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("delete %v", job)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("backup file of a deleted project: %v", err)
	}
}

func TestExportDownload(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "exp", "environment": "non_production"})
	pid := p["id"].(string)
	url := projectURL(s, pid)
	seed(t, url, seedSQL)
	r := s.must(202, "POST", "/v1/projects/"+pid+"/exports", nil)
	eid := r.str("export_id")
	if !strings.HasPrefix(eid, "exp_") || r.str("job", "type") != "project.export" {
		t.Fatalf("export %s", r.Raw)
	}
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("export job %v", job)
	}
	ex := s.must(200, "GET", "/v1/projects/"+pid+"/exports", nil).get("exports").([]any)[0].(map[string]any)
	if ex["state"] != "completed" || ex["id"] != eid || ex["size_bytes"].(float64) <= 0 {
		t.Fatalf("export %v", ex)
	}
	d := s.must(200, "GET", "/v1/projects/"+pid+"/exports/"+eid+"/download", nil)
	dl := d.str("download", "download_url")
	if !strings.Contains(dl, "/v1/object-downloads/") {
		t.Fatalf("download %s", d.Raw)
	}
	resp, err := http.Get(dl) // no Authorization
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || int64(len(body)) != int64(ex["size_bytes"].(float64)) ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), ".dump") {
		t.Fatalf("download: %d, %d bytes, %v", resp.StatusCode, len(body), resp.Header)
	}
	// Same contents as a fresh pg_dump: compare the archives' table of contents and data.
	bin := binDir(t)
	file := filepath.Join(t.TempDir(), "export.dump")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file="+fresh, "--dbname="+url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	sqlOf := func(f string) string {
		out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--file=-", f).Output()
		if err != nil {
			t.Fatalf("pg_restore %s: %v", f, err)
		}
		// \restrict lines carry a random key per run.
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "\\restrict ") && !strings.HasPrefix(l, "\\unrestrict ") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if a, b := sqlOf(file), sqlOf(fresh); a != b {
		al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
		for i := range min(len(al), len(bl)) {
			if al[i] != bl[i] {
				t.Fatalf("export differs from a fresh pg_dump at line %d: %q vs %q", i+1, al[i], bl[i])
			}
		}
		t.Fatalf("export differs from a fresh pg_dump (%d vs %d bytes of SQL)", len(a), len(b))
	}
	// Tampered and unknown tokens.
	if resp, err := http.Get(dl + "x"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("tampered token: %v %v", resp.StatusCode, err)
	}
	if r := s.call("GET", "/v1/projects/"+pid+"/exports/exp_nope/download", s.key, nil); r.Status != 404 {
		t.Fatalf("unknown export: %d", r.Status)
	}
}

// binDir finds the PostgreSQL client tools the embedded cluster uses.
func binDir(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(matches) == 0 {
		t.Fatal("pg_dump not found")
	}
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1])
}

// TestBackupVerificationCatchesCorruption flips bytes of the stored archive
// between the dump and its verification: the backup must end failed.
func TestBackupVerificationCatchesCorruption(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--unsafe-backup-verify-delay", "3s")
	p := s.createProject(map[string]any{"name": "flip", "environment": "non_production"})
	pid := p["id"].(string)
	seed(t, projectURL(s, pid), "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 1000);\n")
	r := s.must(202, "POST", "/v1/projects/"+pid+"/backups", nil)
	var b map[string]any
	clustertest.Eventually(t, 20*time.Second, "dump", func() bool {
		b = s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any)[0].(map[string]any)
		return b["size_bytes"].(float64) > 0
	})
	if b["state"] != "running" || b["verification_state"] != "pending" {
		t.Fatalf("backup while verifying %v", b)
	}
	path := filepath.Join(s.dataDir, "backups", b["backup_key"].(string))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 3; i < len(data)/3+16; i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "failed" {
		t.Fatalf("backup job %v", job)
	}
	b = s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any)[0].(map[string]any)
	if b["state"] != "failed" || b["verification_state"] != "failed" || !strings.Contains(fmt.Sprint(b["verification_error"]), "checksum") {
		t.Fatalf("corrupted backup %v", b)
	}
	if s.eventTypes(t)["backup.completed"] != 0 {
		t.Fatalf("backup.completed for a failed backup")
	}
	if r := s.call("POST", "/v1/projects/"+pid+"/restores", s.key, map[string]any{"backup_key": b["backup_key"], "allow_unverified_backup": true}); r.Status != 409 {
		t.Fatalf("restore of a failed backup: %d %s", r.Status, r.Raw)
	}
}
