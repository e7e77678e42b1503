package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestSupabaseFacadeAccess walks every operation of the facade's own
// OpenAPI document (its x-capydb-access rules): no credential is 401, a key
// without the rule's scope is 403, a project-scoped key is confined to its
// project (another project's ref or branch is 404, org-only routes 403);
// every refusal is Supabase's {"message": …}.
func TestSupabaseFacadeAccess(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	refA := sbProject(t, s, "acc-a")
	refB := sbProject(t, s, "acc-b")
	pidB := capyID(t, s, "acc-b")["id"].(string)
	orgID := s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	slug := s.must(200, "GET", "/v1/me", nil).str("organization", "slug")
	branchA := sbMust(t, s, 200, "GET", "/v1/projects/"+refA+"/branches", nil).arr()[0].(map[string]any)["id"].(string)

	mint := func(body map[string]any) string {
		body["name"] = "facade access"
		r := s.must(201, "POST", "/v1/organizations/"+orgID+"/api-keys", body)
		return r.str("plaintext_api_key")
	}
	jobsOnly := mint(map[string]any{"scopes": []string{"jobs:read"}})
	projectB := mint(map[string]any{"scopes": []string{"projects:read", "projects:write", "credentials:read", "backups:read", "backups:write", "schema:read"},
		"project_id": pidB})

	// The document is served and names every rule.
	resp, err := http.Get(s.url + "/api/supabase/v1/openapi.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %v %v", err, resp)
	}
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Access      *struct {
				Scope      string `json:"scope"`
				OrScope    string `json:"or_scope"`
				OrgKeyOnly bool   `json:"org_key_only"`
				NotOffered bool   `json:"not_offered"`
			} `json:"x-capydb-access"`
		} `json:"paths"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || len(doc.Servers) != 1 || doc.Servers[0].URL != "/api/supabase" {
		t.Fatalf("document: %v %v", err, doc.Servers)
	}
	params := regexp.MustCompile(`\{[a-z_]+\}`)
	fill := func(path, ref string) string {
		return params.ReplaceAllStringFunc(path, func(p string) string {
			switch p {
			case "{ref}":
				return ref
			case "{slug}":
				return slug
			case "{branch_id_or_ref}":
				return branchA
			case "{name}":
				return "main"
			}
			return "x"
		})
	}
	n := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			method = strings.ToUpper(method)
			if op.Access == nil {
				t.Errorf("%s %s (%s) has no x-capydb-access", method, path, op.OperationID)
				continue
			}
			n++
			a := op.Access
			var body any
			if method != "GET" && method != "DELETE" {
				body = map[string]any{}
			}
			what := method + " " + path
			if r := sb(t, s, "", method, fill(path, refA), body); r.Status != 401 {
				t.Errorf("%s without a credential: %d %s", what, r.Status, r.Raw)
			}
			// (Failed authentications are rate-limited per client, as on /v1: a few suffice.)
			if n <= 3 {
				if r := sb(t, s, "capy_live_"+strings.Repeat("0", 40), method, fill(path, refA), body); r.Status != 401 {
					t.Errorf("%s with an unknown key: %d %s", what, r.Status, r.Raw)
				}
			}
			if a.Scope != "" && a.Scope != "jobs:read" && a.OrScope != "jobs:read" {
				if r := sb(t, s, jobsOnly, method, fill(path, refA), body); r.Status != 403 || !strings.Contains(string(r.Raw), "missing scope "+a.Scope) {
					t.Errorf("%s without scope %s: %d %s", what, a.Scope, r.Status, r.Raw)
				}
			}
			switch {
			case a.OrgKeyOnly:
				if r := sb(t, s, projectB, method, fill(path, refB), body); r.Status != 403 {
					t.Errorf("%s with a project-scoped key: %d %s", what, r.Status, r.Raw)
				}
			case strings.Contains(path, "{ref}") || strings.Contains(path, "{branch_id_or_ref}"):
				if a.Scope != "" && !slices.Contains([]string{"projects:read", "projects:write", "backups:read", "schema:read"}, a.Scope) {
					continue
				}
				if r := sb(t, s, projectB, method, fill(path, refA), body); r.Status != 404 {
					t.Errorf("%s with project B's key on project A: %d %s", what, r.Status, r.Raw)
				}
			}
		}
	}
	if n < 60 {
		t.Fatalf("only %d operations in the document", n)
	}
	// The failed-authentication bucket of /v1 applies to the facade.
	limited := false
	for i := 0; i < 50 && !limited; i++ {
		limited = sb(t, s, "capy_live_"+strings.Repeat("1", 40), "GET", "/v1/projects", nil).Status == 429
	}
	if !limited {
		t.Fatal("failed authentications are not rate-limited on the facade")
	}
	// A project-scoped key lists only its project; other organizations' refs are 404 for everyone.
	if l := sb(t, s, projectB, "GET", "/v1/projects", nil).arr(); len(l) != 1 || l[0].(map[string]any)["id"] != refB {
		t.Fatalf("project B's key lists %v", l)
	}
	if r := sb(t, s, projectB, "GET", "/v1/projects/"+refB, nil); r.Status != 200 {
		t.Fatalf("project B's key on its project: %d %s", r.Status, r.Raw)
	}
}
