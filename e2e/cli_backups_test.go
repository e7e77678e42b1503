package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBackupsExportsImports drives backups, restores, restore points,
// schedules, exports and imports through the capydb CLI against a real
// server, and checks the data by connecting to what the CLI reports.
func TestCLIBackupsExportsImports(t *testing.T) {
	t.Parallel()
	// --imports-allow-private: the preflight source is this machine's own cluster.
	s := startServer(t, "", 0, 0, "--imports-allow-private")
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	p := s.createProject(map[string]any{"name": "Backed", "environment": "non_production"})
	pid := p["id"].(string)
	url := projectURL(s, pid)
	mustExec(t, url, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g")
	app := u.in(t.TempDir())
	app.expect(0, "link", "--project", "backed")

	// backups create --wait prints the finished job; the list shows the verified backup.
	job := app.json("backups", "create", "--label", "cli backup", "--wait")
	if job["state"] != "completed" || job["type"] != "project.backup" {
		t.Fatalf("backups create: %v", job)
	}
	list := app.json("backups", "list")["backups"].([]any)
	cliSameJSON(t, "backups list", list, s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups"))
	var bk map[string]any
	for _, b := range list {
		if m := b.(map[string]any); m["job_id"] == job["id"] {
			bk = m
		}
	}
	if bk == nil || bk["state"] != "completed" || bk["verification_state"] != "verified" || bk["label"] != "cli backup" {
		t.Fatalf("backup record %v", bk)
	}
	key := bk["backup_key"].(string)
	if txt := app.expect(0, "backups", "list").stdout; !strings.Contains(txt, key) || !strings.Contains(txt, "verified") {
		t.Fatalf("backups list text:\n%s", txt)
	}

	// Changes after the backup must not be restored.
	mustExec(t, url, "DELETE FROM items WHERE id > 10")

	// restore into a new preview --wait: the preview holds the backup's data.
	rj := app.json("restore", "--backup-key", key, "--preview-name", "from-cli", "--wait")
	if rj["state"] != "completed" || rj["type"] != "project.restore" {
		t.Fatalf("restore: %v", rj)
	}
	pvID := rj["preview_database_id"].(string)
	pvURL := strings.TrimSpace(app.expect(0, "connection-string", "--preview", pvID, "--show-secrets").stdout)
	if n := query[int](t, pvURL, "SELECT count(*)::int FROM items"); n != 50 {
		t.Fatalf("restored preview has %d rows, want 50", n)
	}
	if n := query[int](t, url, "SELECT count(*)::int FROM items"); n != 10 {
		t.Fatalf("the project changed: %d rows", n)
	}
	// Local validation and the approval-token rule (no server call needed).
	app.expect(2, "restore")
	app.expect(2, "restore", "--backup-key", key, "--target-kind", "branch")
	if r := app.expect(5, "restore", "--backup-key", key, "--target-kind", "project", "--confirm"); !strings.Contains(r.stderr, "approval token") {
		t.Fatalf("overwrite without a token: %s", r.stderr)
	}
	app.expect(4, "restore", "--backup-key", "projects/"+pid+"/backups/bkp_nope.dump")

	// Restore points: create from the backup, list, delete.
	rp := app.json("restore-points", "create", "--label", "before cleanup", "--backup-key", key)["restore_point"].(map[string]any)
	if rp["kind"] != "backup" || rp["backup_key"] != key || rp["state"] != "active" {
		t.Fatalf("restore point %v", rp)
	}
	cliSameJSON(t, "restore-points list", app.json("restore-points", "list")["restore_points"],
		s.must(200, "GET", "/v1/projects/"+pid+"/restore-points", nil).get("restore_points"))
	if d := app.json("restore-points", "delete", "--id", rp["id"].(string)); d["deleted"] != true || d["restore_point_id"] != rp["id"] {
		t.Fatalf("restore point delete %v", d)
	}

	// Schedule: set, get, disable.
	sb := app.json("backups", "schedule", "set", "--hour", "3", "--minute", "15", "--retention-days", "10")["scheduled_backup"].(map[string]any)
	if sb["cron_hour"] != float64(3) || sb["cron_minute"] != float64(15) || sb["retention_days"] != float64(10) || sb["is_active"] != true {
		t.Fatalf("schedule set %v", sb)
	}
	if l := app.json("backups", "schedule", "get")["scheduled_backups"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != sb["id"] {
		t.Fatalf("schedule get %v", l)
	}
	sb = app.json("backups", "schedule", "disable")["scheduled_backup"].(map[string]any)
	if sb["is_active"] != false || sb["cron_hour"] != float64(3) || sb["retention_days"] != float64(10) {
		t.Fatalf("schedule disable %v", sb)
	}

	// export: queue, wait, download to --output (-o json stays the format).
	file := filepath.Join(app.dir, "backed.dump")
	ex := app.json("export", "--output", file)
	if ex["file"] != file || !strings.HasPrefix(ex["export_id"].(string), "exp_") {
		t.Fatalf("export %v", ex)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	exports := app.json("export", "list")["exports"].([]any)
	rec := exports[0].(map[string]any)
	if rec["id"] != ex["export_id"] || rec["state"] != "completed" || int64(len(data)) != int64(rec["size_bytes"].(float64)) || !bytes.HasPrefix(data, []byte("PGDMP")) {
		t.Fatalf("export file: %d bytes, record %v", len(data), rec)
	}
	// export download of the same export into another file.
	again := app.json("export", "download", "--export", rec["id"].(string), "--output", "copy.dump")
	if copyData, err := os.ReadFile(filepath.Join(app.dir, "copy.dump")); err != nil || !bytes.Equal(copyData, data) || again["file"] != "copy.dump" {
		t.Fatalf("export download: %v %v", again, err)
	}
	app.expect(4, "export", "download", "--export", "exp_nope", "--output", "nope.dump")

	// import --file: upload the export (10 rows) and import it over the changed project.
	mustExec(t, url, "INSERT INTO items VALUES (1000, 'late')")
	app.expect(2, "import", "--file", file) // no terminal, no --confirm
	ij := app.json("import", "--file", file, "--recreate", "--confirm", "--wait")
	if ij["state"] != "completed" || ij["type"] != "project.import" {
		t.Fatalf("import: %v", ij)
	}
	if n := query[int](t, url, "SELECT count(*)::int FROM items"); n != 10 {
		t.Fatalf("after the import the project has %d rows, want the export's 10", n)
	}

	// import preflight against a reachable source.
	pf := app.json("import", "preflight", "--source-url", pvURL)["preflight"].(map[string]any)
	checks := pf["checks"].([]any)
	if len(checks) == 0 || checks[0].(map[string]any)["name"] != "source_reachable" || checks[0].(map[string]any)["status"] != "pass" || pf["target_version"] == "" {
		t.Fatalf("preflight %v", pf)
	}
}
