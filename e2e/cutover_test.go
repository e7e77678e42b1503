package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// adminCutover runs `capydb admin cutover ... --json` against the server's
// control database and returns its exit code and decoded output.
func adminCutover(t *testing.T, s *server, args ...string) (int, map[string]any, string) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"admin", "cutover"}, args...), "--data-dir", s.dataDir, "--operator", "ops-alice", "--json")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if code == 0 {
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("admin cutover %v: %v\n%s", args, err, out)
		}
	}
	return code, doc, stderr.String()
}

// TestCutoverRequests (#110, #111, PRODUCT §22): a tenant asks for a ready
// preview to become production; the operator tooling lists, acknowledges,
// rejects and executes requests against the control database; execution
// takes a verified pre_cutover backup and swaps the preview's contents in,
// keeping the project's credentials; every step is audited.
func TestCutoverRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	p := s.createProject(map[string]any{"name": "shop", "environment": "production"})
	pid := p["id"].(string)
	purl := projectURL(s, pid)
	seed(t, purl, `CREATE TABLE items (id int PRIMARY KEY, v text);
INSERT INTO items SELECT g, 'prod' FROM generate_series(1, 5) g`)
	pv, job := s.createPreview(pid, map[string]any{"name": "redesign"})
	if j := s.waitJob(job["id"].(string)); j["state"] != "completed" {
		t.Fatalf("preview: %v", j)
	}
	pvURL, _, _ := s.previewConns(pv["id"].(string))
	seed(t, pvURL, `INSERT INTO items SELECT g, 'new' FROM generate_series(6, 9) g;
UPDATE items SET v = 'changed' WHERE id = 1;
CREATE TABLE redesign (k text)`)
	other, oj := s.createPreview(pid, map[string]any{"name": "rejected-idea"})
	if j := s.waitJob(oj["id"].(string)); j["state"] != "completed" {
		t.Fatalf("preview: %v", j)
	}
	path := "/v1/projects/" + pid + "/cutover-requests"

	// Bad input.
	if l := s.must(200, "GET", path, nil).get("cutover_requests").([]any); len(l) != 0 {
		t.Fatalf("list before any request: %v", l)
	}
	s.must(400, "POST", path, map[string]any{})
	s.must(400, "POST", path, map[string]any{"preview_id": pv["id"], "customer_note": strings.Repeat("n", 1001)})
	s.must(400, "POST", path, map[string]any{"preview_id": pv["id"], "external_ticket_ref": strings.Repeat("t", 121)})
	s.must(400, "POST", path, map[string]any{"preview_id": pv["id"], "surprise": true})
	s.must(404, "POST", path, map[string]any{"preview_id": "pvw_nope"})
	s.must(404, "POST", "/v1/projects/prj_nope/cutover-requests", map[string]any{"preview_id": pv["id"]})
	ctl := s.admin("capydb_control")
	if _, err := ctl.Exec(context.Background(), `UPDATE preview_databases SET state = 'failed' WHERE id = $1`, other["id"]); err != nil {
		t.Fatal(err)
	}
	if r := s.must(409, "POST", path, map[string]any{"preview_id": other["id"]}); !strings.Contains(r.str("error"), "not ready") {
		t.Fatalf("not-ready preview: %s", r.Raw)
	}
	if _, err := ctl.Exec(context.Background(), `UPDATE preview_databases SET state = 'ready' WHERE id = $1`, other["id"]); err != nil {
		t.Fatal(err)
	}

	// Tenant requests.
	cr := s.must(201, "POST", path, map[string]any{"preview_id": pv["id"], "customer_note": "launch day"}).get("cutover_request").(map[string]any)
	if !strings.HasPrefix(cr["id"].(string), "cor_") || cr["status"] != "open" || cr["preview_database_id"] != pv["id"] ||
		cr["customer_note"] != "launch day" || cr["requested_by_actor_kind"] != "api_key" || cr["project_id"] != pid {
		t.Fatalf("request %v", cr)
	}
	s.must(409, "POST", path, map[string]any{"preview_id": pv["id"]}) // one open request per preview
	rej := s.must(201, "POST", path, map[string]any{"preview_id": other["id"], "external_ticket_ref": "OPS-9"}).get("cutover_request").(map[string]any)
	if l := s.must(200, "GET", path, nil).get("cutover_requests").([]any); len(l) != 2 || l[0].(map[string]any)["id"] != rej["id"] {
		t.Fatalf("list (newest first): %v", l)
	}

	// Scopes: projects:read lists, projects:write requests.
	out0, err := exec.Command(binary, "admin", "create-key", "--data-dir", s.dataDir, "--org", "default",
		"--scopes", "projects:read", "--name", "reader").Output()
	if err != nil {
		t.Fatalf("admin create-key: %v", err)
	}
	reader := strings.TrimSpace(string(out0))
	if r := s.call("GET", path, reader, nil); r.Status != 200 || len(r.get("cutover_requests").([]any)) != 2 {
		t.Fatalf("reader list: %d %s", r.Status, r.Raw)
	}
	if r := s.call("POST", path, reader, map[string]any{"preview_id": pv["id"]}); r.Status != 403 {
		t.Fatalf("reader create: %d %s", r.Status, r.Raw)
	}

	// Operator review.
	code, out, _ := adminCutover(t, s, "list", "--status", "open")
	if code != 0 || len(out["cutover_requests"].([]any)) != 2 {
		t.Fatalf("admin list: %d %v", code, out)
	}
	if code, _, msg := adminCutover(t, s, "execute", cr["id"].(string)); code != 5 || !strings.Contains(msg, "is open") {
		t.Fatalf("execute before ack: %d %s", code, msg)
	}
	if code, _, _ := adminCutover(t, s, "reject", rej["id"].(string)); code != 2 {
		t.Fatalf("reject without a reason: %d", code)
	}
	if code, out, _ = adminCutover(t, s, "reject", rej["id"].(string), "--reason", "not this quarter"); code != 0 ||
		out["cutover_request"].(map[string]any)["status"] != "rejected" {
		t.Fatalf("reject: %d %v", code, out)
	}
	if code, _, _ := adminCutover(t, s, "ack", "cor_nope"); code != 4 {
		t.Fatalf("ack of an unknown request: %d", code)
	}
	if code, out, _ = adminCutover(t, s, "ack", cr["id"].(string)); code != 0 {
		t.Fatalf("ack: %d", code)
	}
	if code, _, msg := adminCutover(t, s, "execute", cr["id"].(string)); code != 2 || !strings.Contains(msg, "external_ticket_ref") {
		t.Fatalf("execute without a ticket: %d %s", code, msg)
	}
	// Acknowledging again adds the ticket ("approve" is an alias).
	if code, out, _ = adminCutover(t, s, "approve", cr["id"].(string), "--ticket", "OPS-42"); code != 0 ||
		out["cutover_request"].(map[string]any)["external_ticket_ref"] != "OPS-42" {
		t.Fatalf("ack with the ticket: %d %v", code, out)
	}
	if code, _, _ := adminCutover(t, s, "ack", rej["id"].(string)); code != 5 {
		t.Fatalf("ack of a rejected request: %d", code)
	}
	got := s.must(200, "GET", path, nil).get("cutover_requests").([]any)
	for _, g := range got {
		m := g.(map[string]any)
		switch m["id"] {
		case rej["id"]:
			if m["status"] != "rejected" || m["rejected_reason"] != "not this quarter" {
				t.Errorf("rejected request %v", m)
			}
		case cr["id"]:
			if m["status"] != "acked" || m["ack_by_user_id"] != "ops-alice" || m["ack_at"] == nil {
				t.Errorf("acked request %v", m)
			}
		}
	}

	// Execution: verified pre_cutover backup, then the swap.
	code, out, msg := adminCutover(t, s, "execute", cr["id"].(string))
	if code != 0 {
		t.Fatalf("execute: %d %s", code, msg)
	}
	jobID := out["job_id"].(string)
	if j := s.waitJob(jobID); j["state"] != "completed" || j["type"] != "project.promote_preview" {
		t.Fatalf("promote: %v", j)
	}
	final := s.must(200, "GET", path, nil).get("cutover_requests").([]any)[1].(map[string]any)
	if final["id"] != cr["id"] || final["status"] != "completed" || final["promote_job_id"] != jobID || final["completed_at"] == nil {
		t.Fatalf("completed request %v", final)
	}
	backupID, _ := final["pre_cutover_backup_id"].(string)
	var kind, verification string
	if err := ctl.QueryRow(context.Background(), `SELECT kind, verification_state FROM backups WHERE id = $1`, backupID).Scan(&kind, &verification); err != nil ||
		kind != "pre_cutover" || verification != "verified" {
		t.Fatalf("pre-cutover backup %s: %s %s %v", backupID, kind, verification, err)
	}
	// The project holds the preview's contents, reached with its own unchanged URL.
	if n := query[int64](t, purl, `SELECT count(*) FROM items WHERE v <> 'prod'`); n != 5 {
		t.Errorf("promoted rows: %d", n)
	}
	if v := query[string](t, purl, `SELECT to_regclass('public.redesign')::text`); v != "redesign" {
		t.Errorf("promoted table: %q", v)
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Errorf("project %s after promotion", st)
	}
	events := map[string]bool{}
	for _, e := range s.must(200, "GET", "/v1/projects/"+pid+"/audit-events?limit=100", nil).get("audit_events").([]any) {
		m := e.(map[string]any)
		events[m["action"].(string)] = true
		if m["action"] == "production_overwrite_restore" {
			if md, _ := m["metadata"].(map[string]any); md == nil || md["pre_cutover_backup_id"] != backupID {
				t.Errorf("production_overwrite_restore %v", m)
			}
		}
	}
	for _, a := range []string{"cutover.requested", "cutover.acked", "cutover.rejected", "cutover.promote_started", "production_overwrite_restore"} {
		if !events[a] {
			t.Errorf("audit event %s missing (have %v)", a, events)
		}
	}
	// A completed request frees the preview for another.
	s.must(201, "POST", path, map[string]any{"preview_id": pv["id"]})
}
