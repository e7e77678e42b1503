package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// seen records each stubbed request's body, Authorization, Content-Type and length.
type seen struct {
	mu                sync.Mutex
	body, auth, ctype map[string]string
	length            map[string]int64
}

func (s *seen) record(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body[key], s.auth[key], s.ctype[key], s.length[key] = string(b), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength
	return string(b)
}

func (s *seen) get(m map[string]string, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m[key]
}

// backupStub serves one project (prj_1, "Shop") plus the given routes,
// recording what each of those routes received.
func backupStub(t *testing.T, routes map[string]http.HandlerFunc) (*stub, *seen) {
	t.Helper()
	isolate(t)
	sn := &seen{body: map[string]string{}, auth: map[string]string{}, ctype: map[string]string{}, length: map[string]int64{}}
	all := map[string]http.HandlerFunc{
		"GET /v1/projects":       reply(200, `{"projects":[`+projectJSON+`]}`),
		"GET /v1/projects/prj_1": reply(200, `{"project":`+projectJSON+`}`),
		// One backup, so --backup-key can name it by key, id or label.
		"GET /v1/projects/prj_1/backups": reply(200, `{"backups":[{"id":"bkp_k","project_id":"prj_1","backup_key":"k","label":"nightly","state":"completed","created_at":"2026-01-02T03:04:05Z"}]}`),
	}
	for k, h := range routes {
		h := h
		all[k] = func(w http.ResponseWriter, r *http.Request) {
			sn.record(r)
			h(w, r)
		}
	}
	s := newStub(t, all)
	t.Setenv("CAPYDB_API_URL", s.URL)
	t.Setenv("CAPYDB_API_KEY", "capy_live_test")
	return s, sn
}

const jobJSON = `{"id":"job_9","type":"project.backup","state":"queued","organization_id":"org_1","attempts":0,"max_attempts":5,"created_at":"2026-01-02T03:04:05Z","extra":1}`

func TestBackupsCreateBodyAndJSON(t *testing.T) {
	s, sn := backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/backups": reply(202, `{"job":`+jobJSON+`}`),
	})
	r := runCLI(t, "backups", "create", "--project", "shop", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// Without a label no body (and no Content-Type) is sent.
	if sn.get(sn.body, "POST /v1/projects/prj_1/backups") != "" || sn.get(sn.ctype, "POST /v1/projects/prj_1/backups") != "" {
		t.Fatalf("body %q", sn.get(sn.body, "POST /v1/projects/prj_1/backups"))
	}
	var job map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || job["id"] != "job_9" || job["extra"] != float64(1) {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	r = runCLI(t, "backups", "create", "--project", "shop", "--label", "pre-launch")
	if r.code != 0 || sn.get(sn.body, "POST /v1/projects/prj_1/backups") != `{"label":"pre-launch"}` || !strings.Contains(r.stdout, "job_9") {
		t.Fatalf("exit %d body %q stdout %q", r.code, sn.get(sn.body, "POST /v1/projects/prj_1/backups"), r.stdout)
	}
	if r := runCLI(t, "backups", "create", "--project", "shop", "--label", strings.Repeat("x", 121)); r.code != 2 {
		t.Fatalf("long label: exit %d", r.code)
	}
	_ = s
}

func TestBackupsListAndSchedule(t *testing.T) {
	_, sn := backupStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects/prj_1/backups": reply(200, `{"backups":[{"id":"bkp_1","project_id":"prj_1","backup_key":"projects/prj_1/backups/bkp_1.dump",
			"database_name":"db","label":"nightly","state":"expired","size_bytes":2048,"verification_state":"verified","created_at":"2026-01-02T03:04:05Z","new":true}]}`),
		"GET /v1/projects/prj_1/scheduled-backups": reply(200, `{"scheduled_backups":[{"id":"sbk_1","cron_hour":4,"cron_minute":30,"is_active":true,"label":"daily","retention_days":14}]}`),
		"PUT /v1/projects/prj_1/scheduled-backups/default": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"scheduled_backup":{"id":"sbk_1","cron_hour":4,"cron_minute":30,"is_active":false,"label":"daily","retention_days":14}}`))
		},
	})
	r := runCLI(t, "backups", "list", "--project", "shop")
	if r.code != 0 || !strings.Contains(r.stdout, "expired (not restorable)") || !strings.Contains(r.stdout, "2.0 KB") || !strings.Contains(r.stdout, "VERIFY") {
		t.Fatalf("list: %d %q", r.code, r.stdout)
	}
	r = runCLI(t, "backup", "list", "--project", "shop", "-o", "json")
	if !strings.Contains(r.stdout, `"new": true`) || !strings.HasPrefix(r.stdout, "{\n  \"backups\"") {
		t.Fatalf("json list: %q", r.stdout)
	}
	// disable resends the current values with is_active false.
	r = runCLI(t, "backups", "schedule", "disable", "--project", "shop", "-o", "json")
	var got map[string]any
	got = map[string]any{}
	_ = json.Unmarshal([]byte(sn.get(sn.body, "PUT /v1/projects/prj_1/scheduled-backups/default")), &got)
	if r.code != 0 || got["is_active"] != false || got["cron_hour"] != float64(4) || got["cron_minute"] != float64(30) || got["label"] != "daily" || got["retention_days"] != float64(14) {
		t.Fatalf("disable: %d %v %s", r.code, got, r.stderr)
	}
	// set keeps values that were not given.
	r = runCLI(t, "backups", "schedule", "set", "--project", "shop", "--hour", "7")
	got = map[string]any{}
	_ = json.Unmarshal([]byte(sn.get(sn.body, "PUT /v1/projects/prj_1/scheduled-backups/default")), &got)
	if r.code != 0 || got["is_active"] != true || got["cron_hour"] != float64(7) || got["cron_minute"] != float64(30) || got["retention_days"] != float64(14) {
		t.Fatalf("set: %d %v", r.code, got)
	}
	for _, args := range [][]string{{"--hour", "24"}, {"--minute", "60"}, {"--retention-days", "366"}} {
		if r := runCLI(t, append([]string{"backups", "schedule", "set", "--project", "shop"}, args...)...); r.code != 2 {
			t.Fatalf("%v: exit %d", args, r.code)
		}
	}
}

func TestRestoreValidationAndBody(t *testing.T) {
	s, sn := backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/restores": reply(202, `{"job":`+strings.Replace(jobJSON, "project.backup", "instance.pitr_restore", 1)+
			`,"pitr":{"requested_restore_time":"2030-01-01T00:00:00Z","restore_time":"2026-01-02T03:04:05Z","restore_time_clamped":true}}`),
		"GET /v1/projects/prj_1/preview-databases": reply(200, `{"preview_databases":[{"id":"pvw_1","name":"pr-1","state":"ready","mode":"clone"}]}`),
	})
	for _, args := range [][]string{
		{}, // no source
		{"--backup-key", "k", "--restore-time", "2026-01-02T03:04:05Z"}, // two sources
		{"--restore-time", "yesterday"},
		{"--backup-key", "k", "--target-kind", "branch"},
		{"--backup-key", "k", "--ttl-hours", "200"},
		{"--backup-key", "k", "--target-kind", "preview"},
		{"--backup-key", "k", "--preview", "pr-1", "--preview-name", "x"},
	} {
		if r := runCLI(t, append([]string{"restore", "--project", "shop"}, args...)...); r.code != 2 {
			t.Fatalf("%v: exit %d %s", args, r.code, r.stderr)
		}
	}
	if n := s.count("POST /v1/projects/prj_1/restores"); n != 0 {
		t.Fatalf("%d restores sent for invalid flags", n)
	}
	// Overwriting the project needs an approval token: refused locally (exit 5).
	if r := runCLI(t, "restore", "--project", "shop", "--backup-key", "k", "--target-kind", "project", "--confirm"); r.code != 5 ||
		!strings.Contains(r.stderr, "approval token") || !strings.Contains(r.stderr, "/dashboard/projects/prj_1/backups") {
		t.Fatalf("no token: %d %s", r.code, r.stderr)
	}
	// Without a terminal --confirm is required.
	t.Setenv("CAPYDB_APPROVAL_TOKEN", "ap_123")
	if r := runCLI(t, "restore", "--project", "shop", "--backup-key", "k", "--target-kind", "project"); r.code != 2 {
		t.Fatalf("no confirm: %d %s", r.code, r.stderr)
	}
	r := runCLI(t, "restore", "--project", "shop", "--restore-time", "2030-01-01T00:00:00Z", "--target-kind", "project", "--confirm", "-o", "json")
	var body map[string]any
	body = map[string]any{}
	_ = json.Unmarshal([]byte(sn.get(sn.body, "POST /v1/projects/prj_1/restores")), &body)
	if r.code != 0 || body["approval_token"] != "ap_123" || body["target_kind"] != "project" || body["restore_time"] != "2030-01-01T00:00:00Z" || len(body) != 3 {
		t.Fatalf("project restore: %d %v %s", r.code, body, r.stderr)
	}
	if !strings.Contains(r.stderr, "restoring 2026-01-02T03:04:05Z instead") || !strings.Contains(r.stdout, `"type": "instance.pitr_restore"`) {
		t.Fatalf("clamp note / job: %q %q", r.stderr, r.stdout)
	}
	// --preview infers target preview and resolves the name to the id.
	r = runCLI(t, "restore", "--project", "shop", "--backup-key", "k", "--preview", "PR-1")
	body = map[string]any{}
	_ = json.Unmarshal([]byte(sn.get(sn.body, "POST /v1/projects/prj_1/restores")), &body)
	if r.code != 0 || body["target_kind"] != "preview" || body["preview_id"] != "pvw_1" || body["approval_token"] != nil {
		t.Fatalf("preview restore: %d %v %s", r.code, body, r.stderr)
	}
	// Default target: a new preview; target_kind is always sent.
	r = runCLI(t, "restore", "--project", "shop", "--backup-key", "k", "--ttl-hours", "5", "--allow-unverified")
	body = map[string]any{}
	_ = json.Unmarshal([]byte(sn.get(sn.body, "POST /v1/projects/prj_1/restores")), &body)
	if r.code != 0 || body["target_kind"] != "new_preview" || body["ttl_hours"] != float64(5) || body["allow_unverified_backup"] != true {
		t.Fatalf("new preview restore: %d %v", r.code, body)
	}
	// --backup-key also takes the backup's id or label: the key is sent.
	for _, ref := range []string{"bkp_k", "NIGHTLY"} {
		r = runCLI(t, "restore", "--project", "shop", "--backup-key", ref)
		body = map[string]any{}
		_ = json.Unmarshal([]byte(sn.get(sn.body, "POST /v1/projects/prj_1/restores")), &body)
		if r.code != 0 || body["backup_key"] != "k" {
			t.Fatalf("--backup-key %s: %d %v %s", ref, r.code, body, r.stderr)
		}
	}
}

func TestRestorePoints(t *testing.T) {
	_, sn := backupStub(t, map[string]http.HandlerFunc{
		"GET /v1/projects/prj_1/restore-points":         reply(200, `{"restore_points":[{"id":"rp_1","label":"v1","kind":"pitr","pitr_time":"2026-01-02T03:04:05Z","state":"active","created_at":"2026-01-02T03:04:05Z"}],"pitr_window_days":30}`),
		"POST /v1/projects/prj_1/restore-points":        reply(201, `{"restore_point":{"id":"rp_2","label":"v2","kind":"backup","backup_key":"k","state":"active","created_at":"2026-01-02T03:04:05Z"}}`),
		"DELETE /v1/projects/prj_1/restore-points/rp_1": reply(200, `{"deleted":true}`),
	})
	if r := runCLI(t, "restore-points", "list", "--project", "shop"); r.code != 0 || !strings.Contains(r.stdout, "2026-01-02T03:04:05Z") || !strings.Contains(r.stdout, "ANCHOR") {
		t.Fatalf("list: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, "restore-points", "create", "--project", "shop"); r.code != 2 {
		t.Fatalf("no label: %d", r.code)
	}
	if r := runCLI(t, "restore-points", "create", "--project", "shop", "--label", "v2", "--kind", "nightly"); r.code != 2 {
		t.Fatalf("bad kind: %d", r.code)
	}
	r := runCLI(t, "restore-point", "create", "--project", "shop", "--label", "v2", "--backup-key", "k", "-o", "json")
	if r.code != 0 || sn.get(sn.body, "POST /v1/projects/prj_1/restore-points") != `{"label":"v2","backup_key":"k"}` || !strings.Contains(r.stdout, `"restore_point": {`) {
		t.Fatalf("create: %d %q %q", r.code, sn.get(sn.body, "POST /v1/projects/prj_1/restore-points"), r.stdout)
	}
	// --id takes the label too (case-insensitive); the id is what is deleted.
	r = runCLI(t, "restore-points", "delete", "--project", "shop", "--id", "V1", "-o", "json")
	var out map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out["deleted"] != true || out["restore_point_id"] != "rp_1" {
		t.Fatalf("delete: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, "restore-points", "delete", "--project", "shop", "--id", "rp_nope"); r.code != 4 {
		t.Fatalf("unknown: %d", r.code)
	}
}

func TestExportDownloadAndOutputClash(t *testing.T) {
	const dump = "PGDMP fake archive bytes"
	var dlAuth, dlUA string
	var s *stub
	s, _ = backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/exports": reply(202, `{"export_id":"exp_1","job":`+strings.Replace(jobJSON, `"queued"`, `"completed"`, 1)+`}`),
		"GET /v1/jobs/job_9":              reply(200, `{"job":`+strings.Replace(jobJSON, `"queued"`, `"completed"`, 1)+`}`),
		"GET /v1/projects/prj_1/exports":  reply(200, `{"exports":[{"id":"exp_1","project_id":"prj_1","state":"completed","size_bytes":24,"created_at":"2026-01-02T03:04:05Z","expires_at":"2026-01-09T03:04:05Z"}]}`),
		"GET /v1/projects/prj_1/exports/exp_1/download": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"download":{"download_url":"` + s.URL + `/v1/object-downloads/tok","expires_at":"2026-01-02T03:19:05Z"}}`))
		},
	})
	s.set("GET /v1/object-downloads/tok", func(w http.ResponseWriter, r *http.Request) {
		dlAuth, dlUA = r.Header.Get("Authorization"), r.Header.Get("User-Agent")
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte(dump))
	})
	// --output is the file, -o the format, on the same command line.
	r := runCLI(t, "export", "--project", "shop", "--output", "db.dump", "-o", "json")
	var out map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out["export_id"] != "exp_1" || out["file"] != "db.dump" {
		t.Fatalf("export: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile("db.dump"); err != nil || string(b) != dump {
		t.Fatalf("file: %q %v", b, err)
	}
	if dlAuth != "" || !strings.HasPrefix(dlUA, "capydb-cli/") {
		t.Fatalf("signed URL got Authorization %q, User-Agent %q", dlAuth, dlUA)
	}
	// -o before the command and the default file name.
	r = runCLI(t, "-o", "json", "export", "download", "--project", "shop", "--export", "exp_1")
	if r.code != 0 || !strings.Contains(r.stdout, `"file": "shop-exp_1.dump"`) {
		t.Fatalf("download: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "export", "--project", "shop", "-o", "yaml"); r.code != 2 {
		t.Fatalf("-o yaml: %d", r.code)
	}
	if r := runCLI(t, "export", "list", "--project", "shop", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"exports": [`) {
		t.Fatalf("list: %d %q", r.code, r.stdout)
	}
	r = runCLI(t, "export", "--project", "shop", "--no-download", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"job": {`) || s.count("GET /v1/object-downloads/") != 2 {
		t.Fatalf("--no-download: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, "export", "download", "--project", "shop"); r.code != 2 {
		t.Fatalf("download without --export: %d", r.code)
	}
	// A size mismatch leaves no file behind.
	s.set("GET /v1/object-downloads/tok", reply(200, "short"))
	if r := runCLI(t, "export", "download", "--project", "shop", "--export", "exp_1", "--output", "bad.dump"); r.code != 1 {
		t.Fatalf("short download: %d %s", r.code, r.stderr)
	}
	if m, _ := filepath.Glob("*bad.dump*"); len(m) != 0 {
		t.Fatalf("left behind: %v", m)
	}
}

func TestImportFileUpload(t *testing.T) {
	var s *stub
	var putAuth, putType string
	var putLen int64
	var putBody []byte
	s, sn := backupStub(t, map[string]http.HandlerFunc{
		"POST /v1/projects/prj_1/imports/uploads": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"upload":{"object_key":"projects/prj_1/uploads/upl_1.dump","upload_url":"` + s.URL + `/v1/object-uploads/tok","expires_at":"2026-01-02T04:04:05Z"}}`))
		},
		"POST /v1/projects/prj_1/imports":           reply(202, `{"job":`+strings.Replace(jobJSON, "project.backup", "project.import", 1)+`}`),
		"POST /v1/projects/prj_1/imports/preflight": reply(200, `{"preflight":{"ok":false,"checks":[{"name":"source_reachable","status":"fail","detail":"refused"}],"source":{"server_version":"","database_size_bytes":0,"extensions":[]},"storage_limit_bytes":1024,"target_version":"15"}}`),
	})
	s.set("PUT /v1/object-uploads/tok", func(w http.ResponseWriter, r *http.Request) {
		putAuth, putType, putLen = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength
		putBody, _ = io.ReadAll(r.Body)
		_, _ = w.Write([]byte(`{"object_key":"projects/prj_1/uploads/upl_1.dump","size_bytes":11}`))
	})
	if err := os.WriteFile("in.dump", []byte("PGDMP bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "import", "--project", "shop", "--file", "in.dump"); r.code != 2 || s.count("POST /v1/projects/prj_1/imports/uploads") != 0 {
		t.Fatalf("without --confirm off a terminal: %d", r.code)
	}
	for _, args := range [][]string{{}, {"--file", "in.dump", "--source-url", "postgres://h/db"}, {"--source-url", "mysql://h/db"}, {"--file", "missing.dump"}} {
		if r := runCLI(t, append([]string{"import", "--project", "shop", "--confirm"}, args...)...); r.code != 2 {
			t.Fatalf("%v: %d", args, r.code)
		}
	}
	r := runCLI(t, "import", "--project", "shop", "--file", "in.dump", "--recreate", "--confirm", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"type": "project.import"`) {
		t.Fatalf("import: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if putAuth != "" || putType != "application/octet-stream" || putLen != 11 || string(putBody) != "PGDMP bytes" {
		t.Fatalf("PUT: auth %q type %q len %d body %q", putAuth, putType, putLen, putBody)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(sn.get(sn.body, "POST /v1/projects/prj_1/imports")), &body)
	if body["confirm"] != true || body["recreate"] != true || body["upload_key"] != "projects/prj_1/uploads/upl_1.dump" || body["source_url"] != nil {
		t.Fatalf("import body %v", body)
	}
	// Preflight: not ok is exit 1, after printing the checks.
	r = runCLI(t, "import", "preflight", "--project", "shop", "--source-url", "postgres://u:p@db.example.com/app")
	if r.code != 1 || !strings.Contains(r.stdout, "[fail] source_reachable: refused") {
		t.Fatalf("preflight: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, "import", "preflight", "--project", "shop"); r.code != 2 {
		t.Fatalf("preflight without source: %d", r.code)
	}
}

func TestMajor(t *testing.T) {
	for in, want := range map[string]string{"16.4": "16", "15": "15", " 17.0 (Debian)": "17", "": ""} {
		if got := major(in); got != want {
			t.Fatalf("major(%q) = %q", in, got)
		}
	}
}

// set replaces a route while the stub runs.
func (s *stub) set(key string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[key] = h
}
