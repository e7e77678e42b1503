package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTenantAttack plays a tenant holding nothing but its own projects'
// direct_urls and an API key of its own organization (issue 10). It plants
// code that escalates to SUPERUSER whenever a privileged session runs it —
// CHECK, DEFAULT, trigger, index and generated expressions, domain check,
// materialized view, exact-type shadows of the catalog functions and
// operators CapyDB's SQL calls, and a database search_path putting public
// first — then runs every job type and checks after each one that no tenant
// role gained anything and that no planted code ran as a non-tenant role.
func TestTenantAttack(t *testing.T) {
	t.Parallel()
	started := time.Now()
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := os.Stat(filepath.Join(binDir(t), tool)); err != nil {
			t.Fatalf("the attack suite needs %s: %v", tool, err)
		}
	}
	// Imports from another project of this server need loopback sources.
	// --pitr: the point-in-time restore is one of the jobs.
	s := startServer(t, "", 0, 0, "--imports-allow-private", "--pitr")
	a := newAttackRun(t, s)
	ctx := context.Background()

	// Provision: A is attacked through every job, B is the import source and is deleted last.
	pa := s.createProject(map[string]any{"name": "attacker", "environment": "non_production"})
	pb := s.createProject(map[string]any{"name": "accomplice", "environment": "non_production"})
	pid, bid := pa["id"].(string), pb["id"].(string)
	dbA := pa["database_name"].(string)
	urlA, urlB := a.learnProject(pid), a.learnProject(bid)
	a.check("provision")
	a.plant(urlA, "a")
	a.plant(urlB, "b")
	a.check("planting")

	// Studio: SQL (through the planted trigger, defaults, checks and the
	// shadowing search_path), tables and rows run as the tenant's own login.
	for _, q := range []string{"INSERT INTO s_a.victim (a, c) VALUES (100, 100)", "RESET ROLE; REFRESH MATERIALIZED VIEW s_a.mv",
		"SELECT count(*) FROM s_a.mv"} {
		s.must(200, "POST", "/v1/projects/"+pid+"/sql", map[string]any{"query": q})
	}
	s.must(200, "GET", "/v1/projects/"+pid+"/tables", nil)
	s.must(200, "GET", "/v1/projects/"+pid+"/tables/s_a/victim/rows", nil)
	a.check("studio SQL, tables and rows")

	// Credential rotation: with a grace window (a member login appears), then
	// without (the previous login is retired inside the tenant database).
	a.job("rotation with grace", s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", map[string]any{"grace_hours": 1}))
	urlA = a.learnProject(pid)
	a.check("rotation with grace")
	a.job("rotation ending the grace window", s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", map[string]any{}))
	urlA = a.learnProject(pid)
	a.check("rotation ending the grace window")

	// Previews: a template copy (source idle), then a snapshot copy forced by
	// a tenant session held open on the source, then a reset under the same session.
	a.waitIdle(dbA)
	pv, job := s.createPreview(pid, map[string]any{"name": "tmpl"})
	pv1 := pv["id"].(string)
	j := a.job("preview by template copy", response{Body: map[string]any{"job": job}})
	if d := attackDesc(j); !strings.Contains(d, "strategy=template") {
		t.Errorf("preview by template copy: %s, want the template strategy", d)
	}
	a.learnPreview(pv1)
	a.check("preview by template copy")
	hold, err := connect(urlA)
	if err != nil {
		t.Fatal(err)
	}
	pv, job = s.createPreview(pid, map[string]any{"name": "snap"})
	pv2 := pv["id"].(string)
	j = a.job("preview by snapshot copy", response{Body: map[string]any{"job": job}})
	if d := attackDesc(j); !strings.Contains(d, "strategy=snapshot_copy") {
		t.Errorf("preview with a session on the source: %s, want a snapshot copy", d)
	}
	a.learnPreview(pv2)
	a.check("preview by snapshot copy")
	j = a.job("preview reset", s.must(202, "POST", "/v1/preview-databases/"+pv1+"/reset", nil))
	t.Logf("preview reset: %s", attackDesc(j))
	a.learnPreview(pv1)
	a.check("preview reset (snapshot copy)")
	hold.Close(ctx)

	// Backup: a dump of the project, then its verification (a restore into a scratch database).
	j = a.job("backup", s.must(202, "POST", "/v1/projects/"+pid+"/backups", map[string]any{"label": "attack"}))
	a.check("backup (dump and verification)")
	var key string
	for _, b := range s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any) {
		if bm := b.(map[string]any); bm["job_id"] == j["id"] && bm["state"] == "completed" {
			key, _ = bm["backup_key"].(string)
		}
	}

	// Restores into every target: a new preview, an existing preview, the project itself.
	if key == "" {
		t.Errorf("no completed backup to restore: the restores were not run")
	} else {
		j = a.job("restore into a new preview", s.must(202, "POST", "/v1/projects/"+pid+"/restores",
			map[string]any{"backup_key": key, "preview_name": "restored"}))
		if id, _ := j["preview_database_id"].(string); id != "" {
			a.learnPreview(id)
		}
		a.check("restore into a new preview")
		a.job("restore into an existing preview", s.must(202, "POST", "/v1/projects/"+pid+"/restores",
			map[string]any{"backup_key": key, "target_kind": "preview", "preview_id": pv1}))
		a.learnPreview(pv1)
		a.check("restore into an existing preview")
		tok := s.must(201, "POST", "/v1/projects/"+pid+"/approvals", map[string]any{"action": "project.restore_overwrite"}).str("approval", "token")
		a.job("restore over the project", s.must(202, "POST", "/v1/projects/"+pid+"/restores",
			map[string]any{"backup_key": key, "target_kind": "project", "approval_token": tok}))
		urlA = a.learnProject(pid)
		a.check("restore over the project (with its safety backup and verification)")
		mustExec(t, urlA, attackSearchPath) // a swapped-in database starts without it
	}

	// Point in time: the planted project, dumped by the private recovery
	// instance's superuser and loaded as the owner's agent into a new preview.
	for deadline := time.Now().Add(90 * time.Second); ; {
		if st := s.must(200, "GET", "/v1/projects/"+pid+"/pitr", nil); st.get("earliest_restore_time") != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no base backup: the point-in-time restore was not run")
		}
		time.Sleep(200 * time.Millisecond)
	}
	j = a.job("point-in-time restore into a new preview", s.must(202, "POST", "/v1/projects/"+pid+"/restores",
		map[string]any{"restore_time": time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "preview_name": "pitr"}))
	if id, _ := j["preview_database_id"].(string); id != "" {
		a.learnPreview(id)
	}
	a.check("point-in-time restore into a new preview")

	// Imports: an uploaded dump of B's attack schema merged into a copy of A,
	// then B itself from its URL, replacing A.
	dump := filepath.Join(t.TempDir(), "b.dump")
	if out, err := exec.Command(filepath.Join(binDir(t), "pg_dump"), "--format=custom", "--schema=s_b", "--file="+dump,
		"--dbname="+urlB).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump of the accomplice: %v %s", err, out)
	}
	up := s.must(201, "POST", "/v1/projects/"+pid+"/imports/uploads", nil)
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", up.str("upload", "upload_url"), strings.NewReader(string(data)))
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	a.waitIdle(dbA)
	a.job("import of an upload", s.must(202, "POST", "/v1/projects/"+pid+"/imports",
		map[string]any{"upload_key": up.str("upload", "object_key"), "confirm": true}))
	urlA = a.learnProject(pid)
	a.check("import of an uploaded dump (into a copy of the project)")
	mustExec(t, urlA, attackSearchPath)
	a.job("import from a URL", s.must(202, "POST", "/v1/projects/"+pid+"/imports",
		map[string]any{"source_url": urlB, "confirm": true, "recreate": true}))
	urlA = a.learnProject(pid)
	a.check("import from another project's URL")
	mustExec(t, urlA, attackSearchPath)

	// Database settings, pooler settings, read-only mode, extensions and the
	// minor upgrade (docs/database-settings.md).
	base := "/v1/projects/" + pid
	a.job("settings", s.must(202, "PATCH", base+"/database-settings", map[string]any{"settings": map[string]any{
		"work_mem": "8MB", "session_replication_role": "replica", "temp_file_limit": "1GB"}, "connection_limit": 30}))
	a.check("settings")
	a.job("settings reset", s.must(202, "PATCH", base+"/database-settings", map[string]any{"reset": []string{"session_replication_role"}}))
	a.job("pooler settings", s.must(202, "PATCH", base+"/pooler-settings", map[string]any{"pool_mode": "session", "pool_size": 5}))
	a.check("pooler settings")
	a.job("read-only on", s.must(202, "PUT", base+"/read-only", map[string]any{"enabled": true}))
	a.job("read-only off", s.must(202, "PUT", base+"/read-only", map[string]any{"enabled": false}))
	a.check("read-only mode")
	s.must(200, "GET", base+"/extensions", nil)
	a.job("extension enable", s.must(202, "POST", base+"/extensions", map[string]any{"name": "citext"}))
	a.job("extension update", s.must(202, "POST", base+"/extensions/citext/update", nil))
	a.job("extension disable", s.must(202, "DELETE", base+"/extensions/citext", nil))
	a.job("minor upgrade", s.must(202, "POST", base+"/upgrade/minor", nil))
	a.check("extensions and minor upgrade")

	// Export, preview delete, and deleting the accomplice project last.
	a.job("export", s.must(202, "POST", "/v1/projects/"+pid+"/exports", nil))
	a.check("export")
	a.job("preview delete", s.must(202, "DELETE", "/v1/preview-databases/"+pv2, nil))
	delete(a.urls, pv2)
	a.check("preview delete")
	a.job("project delete", s.must(202, "DELETE", "/v1/projects/"+bid, nil))
	delete(a.urls, bid)
	a.check("project delete")
	a.check("the end")
	t.Logf("tenant attack suite: %d findings, %s", len(a.reported), time.Since(started).Round(time.Second))
}
