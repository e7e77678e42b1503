package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func preflight(t *testing.T, s *server, pid, src string) response {
	t.Helper()
	return s.must(200, "POST", "/v1/projects/"+pid+"/imports/preflight", map[string]any{"source_url": src})
}

func checkStatus(r response, name string) (string, string) {
	for _, c := range r.get("preflight", "checks").([]any) {
		m := c.(map[string]any)
		if m["name"] == name {
			d, _ := m["detail"].(string)
			return m["status"].(string), d
		}
	}
	return "", ""
}

func TestImports(t *testing.T) {
	t.Parallel()
	// src is an independent server (its own cluster) holding the data to import.
	src := startServer(t, "", 0, 0)
	sp := src.createProject(map[string]any{"name": "legacy", "environment": "non_production"})
	srcURL := projectURL(src, sp["id"].(string))
	seed(t, srcURL, seedSQL)
	want := fingerprint(t, srcURL)

	// SSRF: without --imports-allow-private, loopback and private hosts are refused.
	spid := sp["id"].(string)
	for _, u := range []string{srcURL, "postgres://u:p@10.0.0.5:5432/db", "postgres://u:p@169.254.169.254/db",
		"postgres://u:p@db.internal/db", "postgres://u:p@[::1]:5432/db", "postgres://u:p@100.64.1.1/db",
		"postgres://u:p@db.example.com:6543/db", "postgres://u:p@ep-x-pooler.example.com/db",
		"postgres://u:p@/db?host=/var/run/postgresql", "mysql://u:p@example.com/db"} {
		r := src.call("POST", "/v1/projects/"+spid+"/imports/preflight", src.key, map[string]any{"source_url": u})
		if r.Status != 400 {
			t.Errorf("preflight %s: %d %s", redact(u), r.Status, r.Raw)
		}
		r = src.call("POST", "/v1/projects/"+spid+"/imports", src.key, map[string]any{"source_url": u, "confirm": true})
		if r.Status != 400 {
			t.Errorf("import %s: %d %s", redact(u), r.Status, r.Raw)
		}
	}

	s := startServer(t, "", 0, 0, "--imports-allow-private")
	p := s.createProject(map[string]any{"name": "target", "environment": "non_production"})
	pid := p["id"].(string)
	url := projectURL(s, pid)
	seed(t, url, "CREATE TABLE keepme (id int);\nINSERT INTO keepme VALUES (1), (2);\n")

	// Preflight: pass, then failure cases.
	r := preflight(t, s, pid, srcURL)
	if r.get("preflight", "ok") != true || len(r.get("preflight", "checks").([]any)) != 4 || r.get("preflight", "source", "database_size_bytes").(float64) <= 0 {
		t.Fatalf("preflight %s", r.Raw)
	}
	bad := strings.Replace(srcURL, ":"+strings.Split(strings.Split(srcURL, "@")[0], ":")[2]+"@", ":wrongpassword@", 1)
	r = preflight(t, s, pid, bad)
	if st, d := checkStatus(r, "source_reachable"); st != "fail" || strings.Contains(string(r.Raw), "wrongpassword") || d == "" || r.get("preflight", "ok") != false {
		t.Fatalf("bad password preflight %s", r.Raw)
	}
	r = preflight(t, s, pid, "postgres://u:p@127.0.0.1:1/db")
	if st, _ := checkStatus(r, "source_reachable"); st != "fail" || len(r.get("preflight", "checks").([]any)) != 1 {
		t.Fatalf("unreachable preflight %s", r.Raw)
	}
	srcAdmin := src.admin(strings.TrimPrefix(strings.Split(strings.Split(srcURL, "/")[3], "?")[0], ""))
	if _, err := srcAdmin.Exec(context.Background(), `CREATE EXTENSION cube`); err != nil {
		t.Fatal(err)
	}
	r = preflight(t, s, pid, srcURL)
	if st, d := checkStatus(r, "extensions_available_on_target"); st != "fail" || !strings.Contains(d, "cube") {
		t.Fatalf("extension preflight %s", r.Raw)
	}
	// The job re-runs the preflight: it fails before touching anything.
	r = s.must(202, "POST", "/v1/projects/"+pid+"/imports", map[string]any{"source_url": srcURL, "confirm": true})
	if job := s.waitJob(r.str("job", "id")); job["state"] != "failed" || !strings.Contains(job["error"].(string), "cube") {
		t.Fatalf("import with a failing preflight %v", job)
	}
	if _, err := srcAdmin.Exec(context.Background(), `DROP EXTENSION cube`); err != nil {
		t.Fatal(err)
	}
	if n := query[int64](t, url, "SELECT count(*) FROM keepme"); n != 2 {
		t.Fatalf("keepme has %d rows", n)
	}

	// Bad input.
	for _, c := range []map[string]any{{"source_url": srcURL}, {"confirm": true}, {"confirm": true, "source_url": srcURL, "upload_key": "x"},
		{"confirm": true, "upload_key": "projects/" + pid + "/uploads/upl_nope.dump"}} {
		if r := s.call("POST", "/v1/projects/"+pid+"/imports", s.key, c); r.Status != 400 {
			t.Errorf("%v: %d %s", c, r.Status, r.Raw)
		}
	}

	// Import on top of the current contents.
	r = s.must(202, "POST", "/v1/projects/"+pid+"/imports", map[string]any{"source_url": srcURL, "confirm": true})
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "importing" && st != "ready" {
		t.Fatalf("state %s", st)
	}
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" || job["type"] != "project.import" {
		t.Fatalf("import %v", job)
	}
	got := fingerprint(t, url)
	if got["table public.keepme"] == "" {
		t.Fatalf("keepme lost without recreate")
	}
	delete(got, "table public.keepme")
	sameFingerprint(t, "import", want, got)

	// recreate: start from an empty database.
	r = s.must(202, "POST", "/v1/projects/"+pid+"/imports", map[string]any{"source_url": srcURL, "confirm": true, "recreate": true})
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("import %v", job)
	}
	sameFingerprint(t, "import recreate", want, fingerprint(t, url))
	if s.eventTypes(t)["import.completed"] != 2 {
		t.Fatalf("events %v", s.eventTypes(t))
	}

	// Upload a dump, then import it.
	dump := filepath.Join(t.TempDir(), "src.dump")
	if out, err := exec.Command(filepath.Join(binDir(t), "pg_dump"), "--format=custom", "--file="+dump, "--dbname="+srcURL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	seed(t, url, "DROP TABLE orders CASCADE;\n")
	up := s.must(201, "POST", "/v1/projects/"+pid+"/imports/uploads", nil)
	key, upURL := up.str("upload", "object_key"), up.str("upload", "upload_url")
	put := func(u string, body []byte) int {
		req, _ := http.NewRequest("PUT", u, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if r := s.call("POST", "/v1/projects/"+pid+"/imports", s.key, map[string]any{"upload_key": key, "confirm": true}); r.Status != 400 {
		t.Fatalf("import before the upload finished: %d", r.Status)
	}
	data, _ := os.ReadFile(dump)
	if code := put(upURL+"x", data); code != 404 {
		t.Fatalf("tampered upload token: %d", code)
	}
	if code := put(upURL, data); code != 200 {
		t.Fatalf("upload: %d", code)
	}
	if code := put(upURL, data); code != 409 {
		t.Fatalf("second upload: %d", code)
	}
	r = s.must(202, "POST", "/v1/projects/"+pid+"/imports", map[string]any{"upload_key": key, "confirm": true, "recreate": true})
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("upload import %v", job)
	}
	sameFingerprint(t, "upload import", want, fingerprint(t, url))

	// A broken dump fails the import and leaves the project as it was.
	up = s.must(201, "POST", "/v1/projects/"+pid+"/imports/uploads", nil)
	broken := append([]byte{}, data[:len(data)/2]...)
	if code := put(up.str("upload", "upload_url"), broken); code != 200 {
		t.Fatalf("upload: %d", code)
	}
	r = s.must(202, "POST", "/v1/projects/"+pid+"/imports", map[string]any{"upload_key": up.str("upload", "object_key"), "confirm": true, "recreate": true})
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "failed" || !strings.Contains(job["last_stderr"].(string), "pg_restore") {
		t.Fatalf("broken import %v", job)
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Fatalf("state after failed import %s", st)
	}
	sameFingerprint(t, "after failed import", want, fingerprint(t, url))
}
