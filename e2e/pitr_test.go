package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// phases counts a project's rows of table t by phase, and whether row 1 is there.
func phases(t *testing.T, url string) map[string]int {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT phase, count(*) FROM t GROUP BY 1`)
	if err != nil {
		t.Fatalf("%s: %v", redact(url), err)
	}
	out := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		out[p] = n
	}
	return out
}

func samePhases(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: rows by phase %v, want %v", what, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: rows by phase %v, want %v", what, got, want)
		}
	}
}

// A project restored to a second between two writes, into a new preview,
// an existing preview (by a pitr restore point, after a DROP TABLE) and
// over the project; a future time is clamped, one before the window refused.
func TestPointInTimeRestore(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		t.Fatal("pgbackrest is not installed (scripts/ensure-deps.sh installs it)")
	}
	began := time.Now()
	s := startServer(t, "", 0, 0, "--pitr")
	// The first base backup opens the window.
	deadline := time.Now().Add(90 * time.Second)
	p := s.createProject(map[string]any{"name": "pitr", "environment": "non_production"})
	pid := p["id"].(string)
	for {
		st := s.must(200, "GET", "/v1/projects/"+pid+"/pitr", nil)
		if st.get("base_backups").(float64) >= 1 && st.get("earliest_restore_time") != nil {
			if st.get("enabled") != true || st.get("window_days").(float64) != 30 || st.get("last_base_backup", "type") != "full" {
				t.Fatalf("pitr status %s", st.Raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no base backup in time: %s", st.Raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// capydb pitr status † shows the same window.
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	app := u.in(t.TempDir())
	app.expect(0, "link", "--project", "pitr")
	cst := app.json("pitr", "status")
	if cst["enabled"] != true || cst["earliest_restore_time"] == nil || cst["window_days"].(float64) != 30 {
		t.Fatalf("capydb pitr status: %v", cst)
	}
	url := projectURL(s, pid)
	seed(t, url, "CREATE TABLE t (id int PRIMARY KEY, phase text NOT NULL);\n"+
		"INSERT INTO t SELECT g, 'one' FROM generate_series(1, 50) g;\n")
	seed(t, url, "INSERT INTO t SELECT g, 'two' FROM generate_series(51, 80) g;\n")
	time.Sleep(1100 * time.Millisecond)
	target := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	seed(t, url, "INSERT INTO t SELECT g, 'three' FROM generate_series(81, 100) g;\nDELETE FROM t WHERE id <= 5;\n")
	atTarget := map[string]int{"one": 50, "two": 30}
	now := map[string]int{"one": 45, "two": 30, "three": 20}

	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "// 1. into a new preview")
	// 1. into a new preview (the default)
	r := s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_time": target.Format(time.RFC3339Nano),
		"preview_name": "at-t"})
	if r.get("pitr", "restore_time_clamped") != false || r.str("pitr", "restore_time") != target.Format(time.RFC3339Nano) ||
		r.str("job", "type") != "instance.pitr_restore" {
		t.Fatalf("restore answer %s", r.Raw)
	}
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("pitr restore job %v", job)
	}
	res := job["result"].(map[string]any)
	if res["target_kind"] != "new_preview" || res["restore_time_clamped"] != false || res["restore_time"] != target.Format(time.RFC3339Nano) {
		t.Fatalf("job result %v", res)
	}
	pvid := job["preview_database_id"].(string)
	pv := s.must(200, "GET", "/v1/preview-databases/"+pvid, nil)
	if pv.str("preview", "state") != "ready" || pv.str("preview", "source_kind") != "pitr" || pv.get("preview", "source_restore_time") == nil {
		t.Fatalf("preview %s", pv.Raw)
	}
	pvURL := s.must(200, "GET", "/v1/preview-databases/"+pvid+"/connections", nil).str("connections", "direct_url")
	samePhases(t, "new preview at T", phases(t, pvURL), atTarget)
	samePhases(t, "the project itself", phases(t, url), now)
	// The preview's login owns what was restored and can write.
	seed(t, pvURL, "INSERT INTO t VALUES (1000, 'preview');\n")

	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "// 2. a time in the future")
	// 2. a time in the future is clamped to the latest restorable point.
	future := time.Now().Add(time.Hour).UTC()
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_time": future.Format(time.RFC3339)})
	eff, err := time.Parse(time.RFC3339Nano, r.str("pitr", "restore_time"))
	if err != nil || r.get("pitr", "restore_time_clamped") != true || !eff.Before(time.Now()) ||
		r.str("pitr", "requested_restore_time") != future.Format(time.RFC3339) {
		t.Fatalf("clamped answer %s", r.Raw)
	}
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" || job["result"].(map[string]any)["restore_time_clamped"] != true {
		t.Fatalf("clamped restore job %v", job)
	}
	latestURL := s.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string)+"/connections", nil).str("connections", "direct_url")
	samePhases(t, "clamped restore", phases(t, latestURL), now)

	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "// 3. before the window")
	// 3. before the window: 400 naming the earliest point.
	r = s.call("POST", "/v1/projects/"+pid+"/restores", s.key, map[string]any{"restore_time": "2001-01-01T00:00:00Z"})
	if r.Status != 400 || !strings.Contains(r.str("error"), "before the earliest restorable point") {
		t.Fatalf("restore before the window: %d %s", r.Status, r.Raw)
	}
	r = s.call("POST", "/v1/projects/"+pid+"/restore-points", s.key, map[string]any{"label": "x", "kind": "pitr", "pitr_time": future.Format(time.RFC3339)})
	if r.Status != 400 {
		t.Fatalf("pitr restore point in the future: %d %s", r.Status, r.Raw)
	}

	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "// 4. a pitr restore point")
	// 4. a pitr restore point, then a dropped table: restoring the point into
	// the existing preview brings the table back (credentials kept).
	rp := s.must(201, "POST", "/v1/projects/"+pid+"/restore-points", map[string]any{"label": "before drop", "kind": "pitr"})
	if rp.str("restore_point", "kind") != "pitr" || rp.get("restore_point", "pitr_time") == nil || rp.str("restore_point", "state") != "active" {
		t.Fatalf("restore point %s", rp.Raw)
	}
	seed(t, url, "DROP TABLE t;\n")
	pts := s.must(200, "GET", "/v1/projects/"+pid+"/restore-points", nil)
	if pts.get("pitr_window_days").(float64) != 30 {
		t.Fatalf("restore points %s", pts.Raw)
	}
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_point_id": rp.str("restore_point", "id"),
		"target_kind": "preview", "preview_id": pvid})
	if r.get("pitr") == nil {
		t.Fatalf("restore point answer %s", r.Raw)
	}
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("restore point job %v", job)
	}
	samePhases(t, "existing preview from the restore point", phases(t, pvURL), now)

	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "// 5. over the project")
	// 5. over the project, with an approval; the safety backup comes first.
	tok := s.must(201, "POST", "/v1/projects/"+pid+"/approvals", map[string]any{"action": "project.restore_overwrite"}).str("approval", "token")
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_time": target.Format(time.RFC3339Nano),
		"target_kind": "project", "approval_token": tok})
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("overwrite job %v", job)
	}
	samePhases(t, "project overwritten to T", phases(t, url), atTarget)
	var safety int
	for _, x := range s.must(200, "GET", "/v1/projects/"+pid+"/backups", nil).get("backups").([]any) {
		if m := x.(map[string]any); m["kind"] == "pre_restore" && m["state"] == "completed" {
			safety++
		}
	}
	if safety != 1 {
		t.Fatalf("%d safety backups, want 1", safety)
	}
	if types := s.eventTypes(t); types["restore.completed"] != 4 {
		t.Fatalf("events %v", types)
	}
	st := s.must(200, "GET", "/v1/projects/"+pid+"/pitr", nil)
	if st.get("archiver_healthy") != true || st.get("archived_count").(float64) < 1 {
		t.Fatalf("pitr status %s", st.Raw)
	}

	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "// 6. The repository turns")
	// 6. The repository turns unwritable: the failure shows on …/pitr and
	// /status; once fixed, archiving resumes without a gap (a restore to
	// "now" sees the row written during the outage).
	repo := filepath.Join(s.dataDir, "pitr", "repo")
	if err := os.Chmod(repo, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(repo, 0o700)
	seed(t, url, "INSERT INTO t VALUES (2000, 'outage');\n")
	if _, err := s.admin("postgres").Exec(context.Background(), `SELECT pg_switch_wal()`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		st = s.must(200, "GET", "/v1/projects/"+pid+"/pitr", nil)
		if st.get("archiver_healthy") == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archiver failure does not show: %s", st.Raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.get("failed_count").(float64) < 1 || st.str("last_failed_wal") == "" {
		t.Fatalf("pitr status during the outage %s", st.Raw)
	}
	status := s.must(200, "GET", "/status", nil)
	found := false
	for _, c := range status.get("components").([]any) {
		if m := c.(map[string]any); m["name"] == "wal_archiving" {
			found = m["status"] == "degraded" && strings.Contains(m["message"].(string), st.str("last_failed_wal"))
		}
	}
	if !found {
		t.Fatalf("/status does not report the archiving failure: %s", status.Raw)
	}
	t.Logf("%s: %s", time.Since(began).Round(time.Millisecond), "if err := os.Chmod(repo, 0o700")
	if err := os.Chmod(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_time": time.Now().Add(time.Minute).UTC().Format(time.RFC3339)})
	if job = s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("restore after the outage %v", job)
	}
	afterURL := s.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string)+"/connections", nil).str("connections", "direct_url")
	samePhases(t, "restore after the outage", phases(t, afterURL), map[string]int{"one": 50, "two": 30, "outage": 1})
	if st = s.must(200, "GET", "/v1/projects/"+pid+"/pitr", nil); st.get("archiver_healthy") != true {
		t.Fatalf("archiving did not recover: %s", st.Raw)
	}

	// 7. SIGKILL during a restore's pgBackRest restore or replay (here the
	// project is newer than the first base backup: a whole-cluster restore): after a
	// restart the job finishes or fails cleanly and no recovery instance or
	// scratch directory is left.
	t.Logf("%s: crash", time.Since(began).Round(time.Millisecond))
	// (To now: the project's database is a new incarnation since step 5,
	// and a time before that fails with "did not exist at the target time".)
	r = s.must(202, "POST", "/v1/projects/"+pid+"/restores", map[string]any{"restore_time": time.Now().Add(time.Minute).UTC().Format(time.RFC3339)})
	crashJob := r.str("job", "id")
	for deadline := time.Now().Add(60 * time.Second); ; {
		j := s.must(200, "GET", "/v1/jobs/"+crashJob, nil)
		if ph, _ := j.get("job", "progress", "phase").(string); ph == "restoring_base_backup" || ph == "restoring_whole_cluster" || ph == "replaying_wal" {
			break
		}
		if st := j.str("job", "state"); st == "completed" || st == "failed" || time.Now().After(deadline) {
			t.Fatalf("the restore was not caught mid-way: %s", j.Raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.kill()
	scratch := filepath.Join(s.dataDir, "tmp", "pitr")
	s2 := startServer(t, s.dataDir, s.directPort, s.pooledPort, "--pitr")
	job = s2.waitJob(crashJob)
	switch job["state"] {
	case "completed":
		crashURL := s2.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string)+"/connections", nil).str("connections", "direct_url")
		samePhases(t, "restore after a crash", phases(t, crashURL), map[string]int{"one": 50, "two": 30, "outage": 1})
	default:
		t.Logf("the restore failed after the crash: %v", job)
		pv := s2.must(200, "GET", "/v1/preview-databases/"+job["preview_database_id"].(string), nil)
		if pv.str("preview", "state") != "failed" {
			t.Fatalf("failed restore left preview %s", pv.Raw)
		}
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Fatalf("scratch left after the restart: %v", ents)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), scratch) {
			t.Fatalf("a process still runs in %s: %q", scratch, b)
		}
	}
	t.Logf("%s: done (crash job %s)", time.Since(began).Round(time.Millisecond), job["state"])
}
