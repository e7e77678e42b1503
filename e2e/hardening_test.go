package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// The findings of the security review (issue 10, part 4) that the API
// answers: one server, one project, each finding a subtest.
func TestReviewHardening(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	base := s.createProject(map[string]any{"name": "base", "slug": "base", "environment": "non_production"})
	pid := base["id"].(string)
	orgID := s.must(200, "GET", "/v1/me", nil).str("organization", "id")

	t.Run("duplicate and case-variant keys", func(t *testing.T) { testStrictJSON(t, s, pid) })
	t.Run("NUL characters", func(t *testing.T) { testNUL(t, s, pid, orgID) })
	t.Run("malformed and unclean paths", func(t *testing.T) { testMalformedPaths(t, s) })
	t.Run("secrets stay out of the log", func(t *testing.T) { testLogRedaction(t, s, pid) })
	t.Run("revoke only what you could grant", func(t *testing.T) { testRevokeSubset(t, s, orgID) })
	t.Run("invisible characters in names", func(t *testing.T) { testInvisibleNames(t, s, pid, orgID) })
	t.Run("project list pagination", func(t *testing.T) { testProjectPagination(t, s) })
}

// jsonError asserts a JSON error answer and returns its message.
func jsonError(t *testing.T, what string, r response, status int, contains string) string {
	t.Helper()
	if r.Status != status || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%s: got %d (%s) %s, want %d JSON", what, r.Status, r.Header.Get("Content-Type"), r.Raw, status)
	}
	msg := r.str("error")
	if msg == "" || !strings.Contains(msg, contains) {
		t.Fatalf("%s: error %q does not contain %q", what, msg, contains)
	}
	return msg
}

func testStrictJSON(t *testing.T, s *server, pid string) {
	rotate := "/v1/projects/" + pid + "/credentials/rotate"
	for _, c := range []struct{ body, want string }{
		// huma validated grace_hours=0, encoding/json kept 100000 (until 2038).
		{`{"grace_hours":0,"GRACE_HOURS":100000}`, `"GRACE_HOURS"`},
		{`{"GRACE_HOURS":100000,"grace_hours":0}`, `"GRACE_HOURS"`},
		{`{"Grace_Hours":5}`, `"Grace_Hours"`},
		{`{"grace_hours":1,"grace_hours":100000}`, `duplicate key "grace_hours"`},
	} {
		jsonError(t, c.body, s.call("POST", rotate, s.key, c.body), 400, c.want)
	}
	// Duplicates are refused in every body, at any depth.
	jsonError(t, "duplicate name", s.call("POST", "/v1/projects", s.key, `{"name":"a","slug":"dup-a","name":"b"}`), 400, `duplicate key "name"`)
	jsonError(t, "case-variant name", s.call("POST", "/v1/projects", s.key, `{"name":"a","NAME":"b"}`), 400, `"NAME"`)
	jsonError(t, "nested duplicate", s.call("POST", "/v1/projects", s.key, `{"name":"a","x":{"k":1,"k":2}}`), 400, `duplicate key "x.k"`)
	// None of them queued a rotation or created a project.
	jobs := s.must(200, "GET", "/v1/projects/"+pid+"/jobs", nil).get("jobs").([]any)
	for _, j := range jobs {
		if typ := j.(map[string]any)["type"]; typ != "instance.create" {
			t.Fatalf("a refused body queued a %v job: %v", typ, j)
		}
	}
	if n := len(s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)); n != 1 {
		t.Fatalf("refused bodies created projects: %d", n)
	}
	// Correct bodies still work.
	s.must(202, "POST", rotate, `{"grace_hours":0}`)
}

// testNUL sends a NUL in every path parameter of every operation, in query
// parameters, and in the body of every operation whose path it can fill.
func testNUL(t *testing.T, s *server, pid, orgID string) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(s.must(200, "GET", "/v1/openapi.json", nil).Raw, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[A-Za-z]+\}`)
	ops, bodies := 0, 0
	for path, methods := range doc.Paths {
		for method, op := range methods {
			method = strings.ToUpper(method)
			if strings.Contains(path, "{") {
				ops++
				p := param.ReplaceAllString(path, "x%00y")
				jsonError(t, op.OperationID+" "+p, s.call(method, p, s.key, nil), 400, "NUL")
			}
			if op.RequestBody == nil {
				continue
			}
			p := strings.NewReplacer("{projectID}", pid, "{orgID}", orgID).Replace(path)
			if strings.Contains(p, "{") {
				continue
			}
			field := "x"
			ref := op.RequestBody.Content["application/json"].Schema.Ref
			for name := range doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")].Properties {
				if name != "$schema" {
					field = name
					break
				}
			}
			bodies++
			body := fmt.Sprintf(`{%q:"a\u0000b"}`, field)
			jsonError(t, op.OperationID+" body "+body, s.call(method, p, s.key, body), 400, fmt.Sprintf(`invalid field %q: must not contain a NUL`, field))
		}
	}
	if ops < 30 || bodies < 10 {
		t.Fatalf("only %d operations with path parameters and %d bodies were tried", ops, bodies)
	}
	jsonError(t, "signed download", s.call("GET", "/v1/object-downloads/tok%00en", "", nil), 400, "NUL")
	jsonError(t, "query", s.call("DELETE", "/v1/projects/"+pid+"?approval_token=ap_%00", s.key, nil), 400, `query parameter "approval_token"`)
	jsonError(t, "nested body", s.call("POST", "/v1/organizations/"+orgID+"/api-keys", s.key,
		`{"name":"k","scopes":["projects:read","a\u0000"]}`), 400, `invalid field "scopes[1]"`)
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Fatalf("project state %s after the NUL requests", st)
	}
}

// rawRequest sends bytes as they are (Go's client would refuse or clean them).
func rawRequest(t *testing.T, s *server, target, key string) (*http.Response, []byte) {
	t.Helper()
	u, _ := url.Parse(s.url)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n"
	if key != "" {
		req += "Authorization: Bearer " + key + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func testMalformedPaths(t *testing.T, s *server) {
	for _, c := range []struct {
		target string
		status int
		want   string
	}{
		{"/v1/projects/%zz", 400, "malformed HTTP request"},
		{"/api/capydb/v1/projects/%zz/jobs", 400, "malformed HTTP request"},
		{"/v1/projects/../projects", 400, `".."`},
		{"/v1/projects/prj_x/..", 400, `".."`},
		{"/api/capydb/v1/./projects", 400, `"."`},
		{"/v1//projects", 400, "empty"},
		{"/v1/object-downloads/abc/../x", 400, `".."`},
		{"/v1", 404, "not found"}, // ServeMux would redirect to /v1/
	} {
		resp, body := rawRequest(t, s, c.target, s.key)
		var e struct {
			Error string `json:"error"`
		}
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
			json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Fatalf("GET %s: %d %q %s, want %d JSON containing %q", c.target, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.want)
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Fatalf("GET %s redirected to %s", c.target, loc)
		}
		if resp.Header.Get("X-CapyDB-Version") == "" {
			t.Fatalf("GET %s: no version header", c.target)
		}
	}
	// Clean requests on the same listener are unaffected.
	resp, body := rawRequest(t, s, "/v1/projects", s.key)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"projects"`) {
		t.Fatalf("clean request: %d %s", resp.StatusCode, body)
	}
}

func testLogRedaction(t *testing.T, s *server, pid string) {
	// Lines are logged after the answer is sent: wait for this test's own.
	from := len(s.logText())
	fresh := func() string { return s.logText()[from:] }
	up := s.must(201, "POST", "/v1/projects/"+pid+"/imports/uploads", nil)
	upURL := up.str("upload", "upload_url")
	token := upURL[strings.LastIndex(upURL, "/")+1:]
	req, _ := http.NewRequest("PUT", upURL, strings.NewReader("PGDMP"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	// A download token, valid or not, is a credential in the path.
	s.call("GET", "/v1/object-downloads/dltoken-secret-123", "", nil)
	s.call("GET", "/api/capydb/v1/object-downloads/dltoken-secret-456/..", "", nil)
	clustertest.Eventually(t, 5*time.Second, "the access log lines", func() bool {
		return strings.Count(fresh(), `/object-downloads/`) >= 2 && strings.Contains(fresh(), `/v1/object-uploads/`)
	})
	logs := s.logText()
	for _, p := range []string{`"/v1/object-uploads/REDACTED"`, `"/v1/object-downloads/REDACTED"`, `"/api/capydb/v1/object-downloads/REDACTED"`} {
		if !strings.Contains(fresh(), p) {
			t.Fatalf("no access log line with the path %s", p)
		}
	}
	for what, secret := range map[string]string{"upload token": token, "download token": "dltoken-secret-123",
		"download token (mounted)": "dltoken-secret-456", "bootstrap admin key": s.key} {
		if len(secret) < 10 || strings.Contains(logs, secret) {
			t.Fatalf("the server log contains the %s (%d chars)", what, len(secret))
		}
	}
	if !strings.Contains(logs, "first admin API key") {
		t.Fatalf("the bootstrap log line is missing")
	}
}

func (s *server) logText() string {
	w := s.cmd.Stderr.(*lockedWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func testRevokeSubset(t *testing.T, s *server, orgID string) {
	keys := "/v1/organizations/" + orgID + "/api-keys"
	mint := func(scopes ...string) (id, plain string) {
		r := s.must(201, "POST", keys, map[string]any{"name": "k " + strings.Join(scopes, ","), "scopes": scopes})
		return r.str("api_key", "id"), r.str("plaintext_api_key")
	}
	_, revoker := mint("api_keys:write")
	richID, rich := mint("api_keys:write", "projects:read")
	peerID, peer := mint("api_keys:write")
	var adminID string
	for _, k := range s.must(200, "GET", keys, nil).get("api_keys").([]any) {
		if m := k.(map[string]any); slices.ContainsFunc(m["scopes"].([]any), func(v any) bool { return v == "*" }) {
			adminID = m["id"].(string)
		}
	}
	if adminID == "" {
		t.Fatal("no admin key listed")
	}
	jsonError(t, "revoke the admin key", s.call("DELETE", keys+"/"+adminID, revoker, nil), 403, "cannot revoke a key holding scope *")
	jsonError(t, "revoke a wider key", s.call("DELETE", keys+"/"+richID, revoker, nil), 403, "cannot revoke a key holding scope projects:read")
	// The refused keys still work; a key within the caller's scopes is revoked.
	s.must(200, "GET", "/v1/me", nil)
	if r := s.call("GET", "/v1/projects", rich, nil); r.Status != 200 {
		t.Fatalf("the wider key stopped working: %d %s", r.Status, r.Raw)
	}
	if r := s.call("DELETE", keys+"/"+peerID, revoker, nil); r.Status != 200 || r.get("revoked") != true {
		t.Fatalf("revoke an equal key: %d %s", r.Status, r.Raw)
	}
	if r := s.call("GET", "/v1/me", peer, nil); r.Status != 401 {
		t.Fatalf("revoked key answered %d", r.Status)
	}
	// The admin may revoke the wider key.
	s.must(200, "DELETE", keys+"/"+richID, nil)
}

func testInvisibleNames(t *testing.T, s *server, pid, orgID string) {
	for _, name := range []string{"invoice\u202Egnp.exe", "a\u200Bb", "\u2066isolate", "\uFEFFbom", "soft\u00ADhyphen", "a\u0085b"} {
		jsonError(t, fmt.Sprintf("project %q", name), s.call("POST", "/v1/projects", s.key, map[string]any{"name": name}), 400, "invisible")
		jsonError(t, fmt.Sprintf("organization %q", name), s.call("PATCH", "/v1/organizations/"+orgID, s.key, map[string]any{"name": name}), 400, "invisible")
		jsonError(t, fmt.Sprintf("api key %q", name), s.call("POST", "/v1/organizations/"+orgID+"/api-keys", s.key,
			map[string]any{"name": name, "scopes": []string{"projects:read"}}), 400, "invisible")
		jsonError(t, fmt.Sprintf("preview %q", name), s.call("POST", "/v1/projects/"+pid+"/preview-databases", s.key,
			map[string]any{"name": name, "mode": "empty"}), 400, "name must be")
	}
	// Visible non-ASCII names are still fine.
	p := s.createProject(map[string]any{"name": "Café ☕ Ünïcode", "environment": "non_production"})
	if p["name"] != "Café ☕ Ünïcode" {
		t.Fatalf("name %q", p["name"])
	}
}

func testProjectPagination(t *testing.T, s *server) {
	for i := 0; len(s.must(200, "GET", "/v1/projects", nil).get("projects").([]any)) < 3; i++ {
		s.createProject(map[string]any{"name": fmt.Sprintf("page %d", i), "environment": "non_production"})
	}
	ids := func(r response) []string {
		var out []string
		for _, p := range r.get("projects").([]any) {
			out = append(out, p.(map[string]any)["id"].(string))
		}
		return out
	}
	all := s.must(200, "GET", "/v1/projects", nil)
	want := ids(all)
	if len(want) < 3 || all.get("next_cursor") != nil {
		t.Fatalf("unpaginated list: %s", all.Raw)
	}
	var got []string
	cursor, pages := "", 0
	for {
		r := s.must(200, "GET", "/v1/projects?limit=2&cursor="+url.QueryEscape(cursor), nil)
		page := ids(r)
		pages++
		if len(page) > 2 || pages > len(want) {
			t.Fatalf("page %d: %v", pages, page)
		}
		got = append(got, page...)
		cursor = r.str("next_cursor")
		if cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) || pages != (len(want)+1)/2 {
		t.Fatalf("pages gave %v in %d pages, want %v", got, pages, want)
	}
	// A full last page carries no cursor when nothing follows.
	if r := s.must(200, "GET", fmt.Sprintf("/v1/projects?limit=%d", len(want)), nil); r.get("next_cursor") != nil || len(ids(r)) != len(want) {
		t.Fatalf("exact page: %s", r.Raw)
	}
	// Above the maximum is clamped; 0 means every project.
	if r := s.must(200, "GET", "/v1/projects?limit=100000", nil); !slices.Equal(ids(r), want) {
		t.Fatalf("clamped limit: %s", r.Raw)
	}
	if r := s.must(200, "GET", "/v1/projects?limit=0", nil); !slices.Equal(ids(r), want) {
		t.Fatalf("limit 0: %s", r.Raw)
	}
	jsonError(t, "negative limit", s.call("GET", "/v1/projects?limit=-1", s.key, nil), 400, "limit")
	jsonError(t, "bad cursor", s.call("GET", "/v1/projects?cursor=not-a-cursor", s.key, nil), 400, "cursor")
}
