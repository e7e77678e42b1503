package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/capydb/capydb/internal/api"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// ---------------------------------------------------------------------------
// Helpers: a local OIDC issuer, requests with headers, fresh client addresses.

// testIssuer is an OIDC issuer run by the test: the server under test
// fetches its JWKS over loopback; the test signs session tokens with it.
type testIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	iss string
	aud string
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: key, iss: "https://clerk.capydb.test", aud: "capydb-e2e"}
	jwks := map[string]any{"keys": []map[string]any{{"kty": "RSA", "kid": "e2e-1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jwks)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// sign makes a token: iss, aud, iat and exp are filled in unless claims set them
// (a nil value removes a claim).
func (is *testIssuer) sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	c := jwt.MapClaims{"iss": is.iss, "aud": is.aud, "iat": time.Now().Unix(), "exp": time.Now().Add(10 * time.Minute).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// session is a Clerk-style (flat claims) session token.
func (is *testIssuer) session(t *testing.T, sub, clerkOrg, role string) string {
	return is.sign(t, is.key, "e2e-1", map[string]any{"sub": sub, "org_id": clerkOrg, "org_role": role, "org_slug": "matrix-org"})
}

var addrCounter atomic.Uint32

// freshAddr is a new client address (IPv6 documentation range) for
// X-Forwarded-For, so that requests land in their own rate-limit buckets.
// It is only a header value; nothing is ever sent to it.
func freshAddr() string {
	n := addrCounter.Add(1)
	return fmt.Sprintf("2001:db8:%x:%x::1", n>>16, n&0xffff) // its own /64: buckets are per /64
}

// hdr builds headers from name/value pairs; every request also gets a fresh
// client address unless X-Forwarded-For is given.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Set(kv[i], kv[i+1])
		}
	}
	if h.Get("X-Forwarded-For") == "" {
		h.Set("X-Forwarded-For", freshAddr())
	}
	return h
}

func bearer(token string) http.Header { return hdr("Authorization", "Bearer "+token) }

// req sends a request with the given headers (and a JSON body unless body is nil).
func (s *server) req(method, path string, h http.Header, body any) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		if str, ok := body.(string); ok {
			rd = strings.NewReader(str)
		} else {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
	}
	r, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range h {
		r.Header[k] = v
	}
	if body != nil && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			s.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	return out
}

// expectStatus fails unless r has the status (and, when given, an error containing msg).
func expectStatus(t *testing.T, what string, r response, status int, msg string) {
	t.Helper()
	if r.Status != status || (msg != "" && !strings.Contains(r.str("error"), msg)) {
		t.Fatalf("%s: got %d %s, want %d %q", what, r.Status, r.Raw, status, msg)
	}
}

// accessFixture is one organization with two projects, keys of every kind
// and session tokens, on a server with OIDC sessions and trusted proxies.
type accessFixture struct {
	s        *server
	is       *testIssuer
	orgID    string
	this     map[string]any // production project the matrix probes
	sibling  map[string]any // another project of the organization
	thisJob  string
	clerkOrg string
	preview  string // a ready preview of this project, when the server has previews
}

const clerkMatrixOrg = "org_2matrixclerk"

func startAccessServer(t *testing.T, extra ...string) (*server, *testIssuer) {
	t.Helper()
	is := newTestIssuer(t)
	args := append([]string{"--oidc-issuer", is.iss, "--oidc-jwks-url", is.srv.URL, "--oidc-audience", is.aud,
		"--trusted-proxies", "127.0.0.1/32,::1/128",
		// Optional routes are on, so the matrix probes them for real.
		"--log-search"}, extra...)
	return startServer(t, "", 0, 0, args...), is
}

func newAccessFixture(t *testing.T) *accessFixture {
	t.Helper()
	s, is := startAccessServer(t)
	f := &accessFixture{s: s, is: is, clerkOrg: clerkMatrixOrg}
	f.orgID = s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	// Sessions of this Clerk organization act on the bootstrap organization.
	if _, err := s.admin("capydb_control").Exec(context.Background(),
		`UPDATE organizations SET clerk_organization_id = $1, clerk_organization_slug = 'matrix-org' WHERE id = $2`,
		clerkMatrixOrg, f.orgID); err != nil {
		t.Fatal(err)
	}
	f.this = s.createProject(map[string]any{"name": "matrix this", "environment": "production"})
	f.sibling = s.createProject(map[string]any{"name": "matrix sibling", "environment": "non_production"})
	f.thisJob = f.this["latest_job_id"].(string)
	return f
}

// withPreview gives the fixture a ready preview of the probed project when
// the server offers previews, so that preview routes are probed for real.
func (f *accessFixture) withPreview(t *testing.T, routes []route) {
	t.Helper()
	if !slices.ContainsFunc(routes, func(r route) bool { return r.OperationID == "createPreviewDatabase" }) {
		return
	}
	r := f.s.must(202, "POST", "/v1/projects/"+f.this["id"].(string)+"/preview-databases", map[string]any{"mode": "empty"})
	if job := f.s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("preview for the matrix failed: %v", job)
	}
	f.preview = r.str("preview", "id")
}

// key mints an API key with the bootstrap admin key.
func (f *accessFixture) key(t *testing.T, body map[string]any) (plaintext string, apiKey map[string]any) {
	t.Helper()
	if body["name"] == nil {
		body["name"] = "e2e key"
	}
	r := f.s.req("POST", "/v1/organizations/"+f.orgID+"/api-keys", bearer(f.s.key), body)
	expectStatus(t, fmt.Sprintf("create key %v", body), r, 201, "")
	return r.str("plaintext_api_key"), r.get("api_key").(map[string]any)
}

// ---------------------------------------------------------------------------
// The authorization matrix.

// wireRule is an operation's x-capydb-access extension in the OpenAPI document.
type wireRule struct {
	Anonymous  bool   `json:"anonymous"`
	Scope      string `json:"scope"`
	OrScope    string `json:"or_scope"` // accepted instead of Scope
	OrgKeyOnly bool   `json:"org_key_only"`
	AdminOnly  bool   `json:"admin_only"`
}

type route struct {
	OperationID, Method, Path string
	Rule                      wireRule
}

// routeTable reads the server's route table from its OpenAPI document. Every
// operation must carry an access rule: one registered around register()
// (and so around the auth middleware) fails here.
func routeTable(t *testing.T, s *server) []route {
	t.Helper()
	r := s.req("GET", "/v1/openapi.json", hdr(), nil)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []route
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if !slices.Contains([]string{"get", "put", "post", "patch", "delete"}, method) {
				continue
			}
			var op struct {
				OperationID string    `json:"operationId"`
				Access      *wireRule `json:"x-capydb-access"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			if op.Access == nil {
				t.Errorf("%s %s (%s) has no access rule: operations must be added with register()", strings.ToUpper(method), path, op.OperationID)
				continue
			}
			out = append(out, route{OperationID: op.OperationID, Method: strings.ToUpper(method), Path: path, Rule: *op.Access})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	return out
}

var projectKeyScopes = []string{"projects:read", "projects:write", "credentials:read", "backups:read", "backups:write", "jobs:read", "schema:read"}
var allScopes = []string{"projects:read", "projects:write", "credentials:read", "backups:read", "backups:write", "jobs:read",
	"organizations:read", "organizations:write", "api_keys:read", "api_keys:write", "schema:read"}

// The credentials of the matrix.
const (
	credNone           = "no credentials"
	credMalformed      = "malformed key"
	credRevoked        = "revoked key"
	credExpired        = "expired key"
	credWithoutScope   = "org key without the scope"
	credWithScope      = "org key with the scope"
	credWithOrScope    = "org key with only the alternative scope"
	credProjectThis    = "project key for this project"
	credProjectSibling = "project key for a sibling project"
	credSessionMember  = "session member"
	credSessionAdmin   = "session admin"
	credOtherOrg       = "key of another organization"
)

var matrixCreds = []string{credNone, credMalformed, credRevoked, credExpired, credWithoutScope, credWithScope, credWithOrScope,
	credProjectThis, credProjectSibling, credSessionMember, credSessionAdmin, credOtherOrg}

// owned lists the path ids the matrix fills with the probed project's real
// resources (everything else gets an id that does not exist). A real preview
// is used only by GET probes: the others might change or delete it.
// An id counts only in its resource's own tree (where the middleware checks
// it, see api.ResolvedPrefixes).
func (f *accessFixture) owned(r route) []string {
	var out []string
	for _, name := range []string{"orgID", "projectID", "jobID", "previewID"} {
		if !strings.HasPrefix(r.Path, api.ResolvedPrefixes[name]) || name == "previewID" && (f.preview == "" || r.Method != "GET") {
			continue
		}
		out = append(out, name)
	}
	return out
}

var paramRe = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// expectation derives the status a credential must get on a route from the
// route's access rule and the shape of its path, in the order the middleware
// checks: credential, scope, organization key, admin role, tenancy. "ref"
// means "authorized": exactly what the bootstrap admin key gets.
func expectation(r route, cred string, owned []string) (int, bool) {
	if r.Rule.Anonymous {
		return 0, true // anonymous routes ignore whatever credential comes along
	}
	params := paramRe.FindAllStringSubmatch(r.Path, -1)
	has := func(names ...string) bool {
		for _, m := range params {
			if slices.Contains(names, m[1]) {
				return true
			}
		}
		return false
	}
	scope := r.Rule.Scope
	switch cred {
	case credNone, credMalformed, credRevoked, credExpired:
		return 401, false
	case credWithoutScope:
		if scope != "" {
			return 403, false
		}
	case credProjectThis, credProjectSibling:
		projectKeyMay := slices.Contains(projectKeyScopes, scope) || r.Rule.OrScope != "" && slices.Contains(projectKeyScopes, r.Rule.OrScope)
		if scope != "" && !projectKeyMay || r.Rule.OrgKeyOnly {
			return 403, false
		}
		if cred == credProjectSibling && has(slices.DeleteFunc(slices.Clone(owned), func(p string) bool { return p == "orgID" })...) {
			return 404, false
		}
	case credSessionMember:
		if r.Rule.AdminOnly {
			return 403, false
		}
	case credOtherOrg:
		if has(owned...) {
			return 404, false
		}
	}
	return 0, true
}

// probe is the request the matrix sends to a route: owned ids filled in,
// other ids made up, and for methods with a body one that has an unknown
// field, so that an authorized caller gets a 400 from input validation
// rather than changing anything.
func (f *accessFixture) probe(r route) (path string, body any) {
	owned := f.owned(r)
	path = paramRe.ReplaceAllStringFunc(r.Path, func(m string) string {
		name := m[1 : len(m)-1]
		if !slices.Contains(owned, name) {
			return "matrix_missing_id"
		}
		switch name {
		case "orgID":
			return f.orgID
		case "projectID":
			return f.this["id"].(string)
		case "jobID":
			return f.thisJob
		case "previewID":
			return f.preview
		default:
			return "matrix_missing_id"
		}
	})
	if r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
		body = map[string]any{"matrix_probe_unknown_field": true}
	}
	return path, body
}

// TestAuthorizationMatrix: every route of the server's route table × every
// kind of credential gets exactly the status its access rule implies.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	s := f.s
	routes := routeTable(t, s)
	if len(routes) < 20 {
		t.Fatalf("only %d routes in the OpenAPI document", len(routes))
	}
	f.withPreview(t, routes)
	t.Logf("probing %d routes; preview for GET probes: %q", len(routes), f.preview)
	// Route-table invariants that keep new routes honest.
	var anonymous []string
	for _, r := range routes {
		if r.Rule.Anonymous {
			anonymous = append(anonymous, r.OperationID)
		}
	}
	// The public routes, on purpose: the CA certificate is needed before a
	// client holds any credential (env pull, psql, CI images).
	slices.Sort(anonymous)
	// Ephemeral databases: no account to create; the claim token is the
	// credential of read and destroy (off here: all 404, see below).
	// Integration receivers: the provider's signature is the credential.
	if want := []string{"createEphemeralDatabase", "destroyEphemeralDatabase", "getCACertificate", "getEphemeralDatabase", "getStatus",
		"pollCliLoginSession", "receiveAuth0Webhook", "receiveBetterAuthWebhook", "receiveClerkWebhook",
		"receiveNetlifyWebhook", "receiveVercelWebhook", "startCliLoginSession"}; !slices.Equal(anonymous, want) {
		t.Errorf("anonymous routes %v, want exactly %v (a new public route must be added here on purpose)", anonymous, want)
	}
	for _, r := range routes {
		if strings.HasPrefix(r.Path, "/v1/organizations/") && !r.Rule.OrgKeyOnly {
			t.Errorf("%s %s: organization routes must be OrgKeyOnly", r.Method, r.Path)
		}
		if !r.Rule.Anonymous && r.Rule.Scope == "" && !slices.Contains([]string{"getViewer", "listKvStores", "getProjectKvStore"}, r.OperationID) {
			t.Errorf("%s %s (%s) needs no scope: give it one, or add it to the list of any-credential routes here", r.Method, r.Path, r.OperationID)
		}
		if r.Rule.Scope != "" && !slices.Contains(allScopes, r.Rule.Scope) {
			t.Errorf("%s %s: unknown scope %q", r.Method, r.Path, r.Rule.Scope)
		}
		if r.Rule.OrScope != "" && (!slices.Contains(allScopes, r.Rule.OrScope) || r.Rule.Scope == "" || r.Rule.OrScope == r.Rule.Scope) {
			t.Errorf("%s %s: bad alternative scope %q", r.Method, r.Path, r.Rule.OrScope)
		}
		if r.Method != "GET" && !r.Rule.Anonymous && r.Rule.Scope != "" && strings.HasSuffix(r.Rule.Scope, ":read") {
			t.Errorf("%s %s: a mutation guarded by a read scope (%s)", r.Method, r.Path, r.Rule.Scope)
		}
	}

	// Ephemeral databases are off by default (API.md §3.26).
	expectStatus(t, "ephemeral create while off", s.req("POST", "/v1/ephemeral-databases", hdr(), map[string]any{}), 404,
		"ephemeral databases are not enabled on this deployment")
	expectStatus(t, "ephemeral read while off", s.req("GET", "/v1/ephemeral-databases/prj_x", hdr("X-CapyDB-Claim-Token", "eph_x"), nil), 404, "")

	// Credentials.
	with, without := map[string]string{}, map[string]string{}
	for _, sc := range allScopes {
		with[sc], _ = f.key(t, map[string]any{"name": "only " + sc, "scopes": []string{sc}})
		var rest []string
		for _, o := range allScopes {
			if o != sc {
				rest = append(rest, o)
			}
		}
		without[sc], _ = f.key(t, map[string]any{"name": "all but " + sc, "scopes": rest})
	}
	// Keys lacking both scopes of an either-scope route.
	withoutEither := func(a, b string) string {
		if k, ok := without[a+"|"+b]; ok {
			return k
		}
		var rest []string
		for _, o := range allScopes {
			if o != a && o != b {
				rest = append(rest, o)
			}
		}
		without[a+"|"+b], _ = f.key(t, map[string]any{"name": "neither " + a + " nor " + b, "scopes": rest})
		return without[a+"|"+b]
	}
	with[""], _ = f.key(t, map[string]any{"name": "any credential", "scopes": []string{"jobs:read"}})
	without[""] = with[""]
	projectThis, _ := f.key(t, map[string]any{"scopes": projectKeyScopes, "project_id": f.this["id"]})
	projectSibling, _ := f.key(t, map[string]any{"scopes": projectKeyScopes, "project_id": f.sibling["id"]})
	revoked, rk := f.key(t, map[string]any{"scopes": []string{"*"}})
	expectStatus(t, "revoke", s.req("DELETE", "/v1/organizations/"+f.orgID+"/api-keys/"+rk["id"].(string), bearer(s.key), nil), 200, "")
	expired, ek := f.key(t, map[string]any{"scopes": []string{"*"}, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if _, err := s.admin("capydb_control").Exec(context.Background(), `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, ek["id"]); err != nil {
		t.Fatal(err)
	}
	other := s.otherOrgKey(t)
	member := f.is.session(t, "user_member", clerkMatrixOrg, "org:member")
	admin := f.is.session(t, "user_admin", clerkMatrixOrg, "org:admin")

	headers := func(r route, cred string) http.Header {
		switch cred {
		case credNone:
			return hdr()
		case credMalformed:
			return bearer("capy_live_short")
		case credRevoked:
			return bearer(revoked)
		case credExpired:
			return bearer(expired)
		case credWithoutScope:
			if r.Rule.OrScope != "" {
				return bearer(withoutEither(r.Rule.Scope, r.Rule.OrScope))
			}
			return bearer(without[r.Rule.Scope])
		case credWithScope:
			return bearer(with[r.Rule.Scope])
		case credWithOrScope:
			if r.Rule.OrScope != "" {
				return bearer(with[r.Rule.OrScope])
			}
			return bearer(with[r.Rule.Scope])
		case credProjectThis:
			return bearer(projectThis)
		case credProjectSibling:
			return bearer(projectSibling)
		case credSessionMember:
			return bearer(member)
		case credSessionAdmin:
			return bearer(admin)
		case credOtherOrg:
			return bearer(other)
		}
		t.Fatalf("unknown credential %q", cred)
		return nil
	}

	// The dashboard's session cookie (with its CSRF token) of a key must get
	// exactly the answers the key gets (websession_test.go).
	jar := newCookieJar(s)
	cookieOf := map[string]func(r route) string{
		credWithoutScope: func(r route) string {
			if r.Rule.OrScope != "" {
				return withoutEither(r.Rule.Scope, r.Rule.OrScope)
			}
			return without[r.Rule.Scope]
		},
		credWithScope:      func(r route) string { return with[r.Rule.Scope] },
		credProjectThis:    func(route) string { return projectThis },
		credProjectSibling: func(route) string { return projectSibling },
		credOtherOrg:       func(route) string { return other },
	}

	var mismatches []string
	cells := 0
	for _, r := range routes {
		path, body := f.probe(r)
		ref := s.req(r.Method, path, bearer(s.key), body)
		if ref.Status == 401 || ref.Status == 403 || ref.Status == 429 || ref.Status >= 500 {
			mismatches = append(mismatches, fmt.Sprintf("%-7s %-60s reference (admin key) got %d: %s", r.Method, r.Path, ref.Status, ref.Raw))
		}
		for _, cred := range matrixCreds {
			want, isRef := expectation(r, cred, f.owned(r))
			if isRef {
				want = ref.Status
			}
			got := s.req(r.Method, path, headers(r, cred), body)
			cells++
			if got.Status != want {
				mismatches = append(mismatches, fmt.Sprintf("%-7s %-60s %-34s got %d, want %d: %.200s", r.Method, r.Path, cred, got.Status, want, got.Raw))
			}
			if got.Status >= 400 && got.str("error") == "" {
				mismatches = append(mismatches, fmt.Sprintf("%-7s %-60s %-34s error without {\"error\"}: %.200s", r.Method, r.Path, cred, got.Raw))
			}
			if keyOf, ok := cookieOf[cred]; ok {
				viaCookie := s.req(r.Method, path, merge(jar.headers(t, keyOf(r)), "Origin", s.url), body)
				cells++
				if viaCookie.Status != got.Status {
					mismatches = append(mismatches, fmt.Sprintf("%-7s %-60s %-34s dashboard cookie got %d, the key %d: %.200s", r.Method, r.Path, cred, viaCookie.Status, got.Status, viaCookie.Raw))
				}
			}
		}
		if alt := r.Rule.OrScope; alt != "" {
			// The other scope of an "either" route suffices on its own.
			if got := s.req(r.Method, path, bearer(with[alt]), body); got.Status != ref.Status {
				mismatches = append(mismatches, fmt.Sprintf("%-7s %-60s %-34s got %d, want %d: %.200s", r.Method, r.Path, "org key with only "+alt, got.Status, ref.Status, got.Raw))
			}
		}
		if again := s.req(r.Method, path, bearer(s.key), body); again.Status != ref.Status {
			mismatches = append(mismatches, fmt.Sprintf("%-7s %-60s probe is not stable (%d then %d): give the route a side-effect-free probe", r.Method, r.Path, ref.Status, again.Status))
		}
	}
	t.Logf("authorization matrix: %d routes x %d credentials = %d cells, %d mismatches", len(routes), len(matrixCreds), cells, len(mismatches))
	if len(mismatches) > 0 {
		t.Fatalf("authorization matrix mismatches:\n%s", strings.Join(mismatches, "\n"))
	}

	// The probes changed nothing: both projects are still there and ready.
	for _, p := range []map[string]any{f.this, f.sibling} {
		if st := s.must(200, "GET", "/v1/projects/"+p["id"].(string), nil).str("project", "state"); st != "ready" {
			t.Fatalf("project %s is %s after the matrix", p["id"], st)
		}
	}
	// Tenancy of list routes: the other organization and the sibling key see
	// none of this project's data.
	if n := len(s.req("GET", "/v1/projects", bearer(other), nil).get("projects").([]any)); n != 0 {
		t.Fatalf("another organization lists %d projects", n)
	}
	list := s.req("GET", "/v1/projects", bearer(projectSibling), nil).get("projects").([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != f.sibling["id"] {
		t.Fatalf("a project key lists %v", list)
	}
}

// TestMatrixExpectationCoversEveryRule: the derivation gives an answer for
// every rule shape and never lets a bad credential through.
func TestMatrixExpectationCoversEveryRule(t *testing.T) {
	t.Parallel()
	for _, rule := range []wireRule{{}, {Scope: "projects:read"}, {Scope: "schema:read", OrScope: "projects:read"},
		{Scope: "organizations:write", OrgKeyOnly: true, AdminOnly: true}, {Anonymous: true}} {
		for _, path := range []string{"/v1/x", "/v1/projects/{projectID}", "/v1/organizations/{orgID}/y/{other}"} {
			r := route{Method: "GET", Path: path, Rule: rule}
			for _, cred := range matrixCreds {
				code, ref := expectation(r, cred, (&accessFixture{}).owned(r))
				if !ref && code == 0 {
					t.Fatalf("%v %s %s: no expectation", rule, path, cred)
				}
				if !rule.Anonymous && ref && slices.Contains([]string{credNone, credMalformed, credRevoked, credExpired}, cred) {
					t.Fatalf("%v %s: %s would be let through", rule, path, cred)
				}
			}
		}
	}
	// Sanity of the probe's path filling.
	f := &accessFixture{orgID: "org_x", this: map[string]any{"id": "prj_x"}, thisJob: "job_x"}
	p, body := f.probe(route{Method: "POST", Path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/test"})
	if p != "/v1/organizations/org_x/webhook-endpoints/matrix_missing_id/test" || body == nil {
		t.Fatalf("probe %s %v", p, body)
	}
	// An id outside its own tree is not filled in (and not expected to be resolved).
	eph := route{Method: "POST", Path: "/v1/ephemeral-databases/{projectID}/claim", Rule: wireRule{Scope: "projects:write", OrgKeyOnly: true}}
	if p, _ := f.probe(eph); p != "/v1/ephemeral-databases/matrix_missing_id/claim" {
		t.Fatalf("probe %s", p)
	}
	if _, ref := expectation(eph, credOtherOrg, f.owned(eph)); !ref {
		t.Fatal("an id outside its tree must not make the route 404 for another organization")
	}
	if code, _ := expectation(route{Method: "GET", Path: "/v1/jobs/{jobID}", Rule: wireRule{Scope: "jobs:read"}}, credProjectSibling, []string{"jobID"}); code != 404 {
		t.Fatalf("a sibling's job: %d", code)
	}
	if u, err := url.Parse(p); err != nil || u.Path != p {
		t.Fatalf("probe path must need no escaping: %v", err)
	}
}

// ---------------------------------------------------------------------------
// API keys, organizations, sessions, approvals, audit.

func TestAPIKeysAndOrganizations(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	s := f.s
	keys := "/v1/organizations/" + f.orgID + "/api-keys"
	admin := bearer(s.key)

	// Create: plaintext once, shapes, prefix.
	r := s.req("POST", keys, admin, map[string]any{"name": "ci", "scopes": []string{"projects:read", "jobs:read", "projects:read"}, "device_name": "runner-1"})
	expectStatus(t, "create key", r, 201, "")
	plain := r.str("plaintext_api_key")
	k := r.get("api_key").(map[string]any)
	if !strings.HasPrefix(plain, "capy_live_") || len(plain) < 42 || k["key_prefix"] != plain[:14] || !strings.HasPrefix(k["id"].(string), "key_") ||
		k["source"] != "api" || k["is_active"] != true || fmt.Sprint(k["scopes"]) != "[projects:read jobs:read]" || k["device_name"] != "runner-1" ||
		k["organization_id"] != f.orgID || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created key: %s", r.Raw)
	}
	if strings.Contains(string(s.req("GET", keys, admin, nil).Raw), plain[14:]) {
		t.Fatal("the listing carries the plaintext")
	}
	// The key works, and its use is recorded (at most once a minute).
	expectStatus(t, "new key", s.req("GET", "/v1/projects", bearer(plain), nil), 200, "")
	clustertest.Eventually(t, 5*time.Second, "last_used_at", func() bool {
		for _, item := range s.req("GET", keys, admin, nil).get("api_keys").([]any) {
			if m := item.(map[string]any); m["id"] == k["id"] && m["last_used_at"] != nil {
				return true
			}
		}
		return false
	})

	// Validation.
	for _, c := range []struct {
		body   map[string]any
		status int
		msg    string
	}{
		{map[string]any{"name": "", "scopes": []string{"*"}}, 400, "name must be 1-100 characters"},
		{map[string]any{"name": strings.Repeat("n", 101), "scopes": []string{"*"}}, 400, "name must be 1-100 characters"},
		{map[string]any{"name": "x"}, 400, "scopes"},
		{map[string]any{"name": "x", "scopes": []string{}}, 400, "at least one"},
		{map[string]any{"name": "x", "scopes": []string{"projects:admin"}}, 400, `unknown scope "projects:admin"`},
		{map[string]any{"name": "x", "scopes": []string{"*"}, "project_id": f.this["id"]}, 400, "not allowed on a project-scoped key"},
		{map[string]any{"name": "x", "scopes": []string{"organizations:read"}, "project_id": f.this["id"]}, 400, "organizations:read is not allowed"},
		{map[string]any{"name": "x", "scopes": []string{"projects:read"}, "project_id": "prj_nope"}, 400, "project_id"},
		{map[string]any{"name": "x", "scopes": []string{"*"}, "expires_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, 400, "expires_at must be in the future"},
		{map[string]any{"name": "x", "scopes": []string{"*"}, "expires_at": "tomorrow"}, 400, "expires_at"},
		{map[string]any{"name": "x", "scopes": []string{"*"}, "device_name": strings.Repeat("d", 101)}, 400, "device_name"},
		{map[string]any{"name": "x", "scopes": []string{"*"}, "owner": "me"}, 400, `unknown field "owner"`},
	} {
		expectStatus(t, fmt.Sprintf("create %v", c.body), s.req("POST", keys, admin, c.body), c.status, c.msg)
	}

	// Subset rule: a key can only grant what it holds.
	minter, _ := f.key(t, map[string]any{"name": "minter", "scopes": []string{"api_keys:write", "projects:read"}})
	expectStatus(t, "grant unheld scope", s.req("POST", keys, bearer(minter), map[string]any{"name": "x", "scopes": []string{"projects:read", "projects:write"}}), 403, "cannot grant scope projects:write")
	expectStatus(t, "grant *", s.req("POST", keys, bearer(minter), map[string]any{"name": "x", "scopes": []string{"*"}}), 403, "cannot grant scope *")
	expectStatus(t, "grant held scope", s.req("POST", keys, bearer(minter), map[string]any{"name": "x", "scopes": []string{"projects:read"}}), 201, "")

	// A project key is audited on its project and confined to it.
	projKey, pk := f.key(t, map[string]any{"name": "deploy", "scopes": []string{"projects:read", "credentials:read"}, "project_id": f.sibling["id"]})
	if pk["project_id"] != f.sibling["id"] {
		t.Fatalf("project key: %v", pk)
	}
	conn := s.req("GET", "/v1/projects/"+f.sibling["id"].(string)+"/connections", bearer(projKey), nil)
	expectStatus(t, "project key reads its connections", conn, 200, "")
	if v := query[int](t, conn.str("connections", "direct_url"), "SELECT 1"); v != 1 {
		t.Fatal("connection URL from a project key does not work")
	}
	expectStatus(t, "project key on sibling", s.req("GET", "/v1/projects/"+f.this["id"].(string), bearer(projKey), nil), 404, "project not found")
	expectStatus(t, "project key on org route", s.req("GET", keys, bearer(projKey), nil), 403, "project-scoped")

	// Revoke: immediate 401, idempotent, still listed.
	expectStatus(t, "revoke", s.req("DELETE", keys+"/"+k["id"].(string), admin, nil), 200, "")
	if r := s.req("DELETE", keys+"/"+k["id"].(string), admin, nil); r.Status != 200 || r.get("revoked") != true {
		t.Fatalf("revoking twice: %d %s", r.Status, r.Raw)
	}
	expectStatus(t, "revoked key", s.req("GET", "/v1/projects", bearer(plain), nil), 401, "")
	expectStatus(t, "revoke unknown", s.req("DELETE", keys+"/key_nope", admin, nil), 404, "api key not found")
	otherKey := s.otherOrgKey(t)
	expectStatus(t, "revoke another org's key", s.req("DELETE", "/v1/organizations/"+f.orgID+"/api-keys/"+pk["id"].(string), bearer(otherKey), nil), 404, "organization not found")
	list := s.req("GET", keys, admin, nil).get("api_keys").([]any)
	var found map[string]any
	for i, item := range list {
		m := item.(map[string]any)
		if i > 0 && m["created_at"].(string) > list[i-1].(map[string]any)["created_at"].(string) {
			t.Fatal("api keys are not newest first")
		}
		if m["id"] == k["id"] {
			found = m
		}
	}
	if found == nil || found["is_active"] != false || found["revoked_at"] == nil {
		t.Fatalf("revoked key in the list: %v", found)
	}
	// Project-key audit events; organization-key events stay out of project listings.
	expectStatus(t, "revoke project key", s.req("DELETE", keys+"/"+pk["id"].(string), admin, nil), 200, "")
	actions := auditActions(t, s, f.sibling["id"].(string))
	if !slices.Contains(actions, "api_key.created") || !slices.Contains(actions, "api_key.revoked") {
		t.Fatalf("sibling audit: %v", actions)
	}
	if slices.Contains(auditActions(t, s, f.this["id"].(string)), "api_key.created") {
		t.Fatal("an organization key's creation is listed on a project")
	}

	// Organization routes.
	org := "/v1/organizations/" + f.orgID
	o := s.req("GET", org, admin, nil)
	if o.Status != 200 || o.str("organization", "id") != f.orgID || o.str("organization", "billing_status") != "active" ||
		o.str("organization", "billing_provider") != "self_hosted" || o.str("organization", "billing_plan") == "" {
		t.Fatalf("organization: %d %s", o.Status, o.Raw)
	}
	expectStatus(t, "org by slug", s.req("GET", "/v1/organizations/"+o.str("organization", "slug"), admin, nil), 200, "")
	expectStatus(t, "another org id", s.req("GET", "/v1/organizations/org_someoneelse", admin, nil), 404, "organization not found")
	p := s.req("PATCH", org, admin, map[string]any{"name": "  Acme Inc  ", "billing_email": "ops@acme.example"})
	if p.Status != 200 || p.str("organization", "name") != "Acme Inc" || p.str("organization", "billing_email") != "ops@acme.example" {
		t.Fatalf("patch org: %d %s", p.Status, p.Raw)
	}
	for _, c := range []struct {
		body any
		msg  string
	}{
		{map[string]any{}, "at least one"},
		{map[string]any{"name": ""}, "name must be 1-100"},
		{map[string]any{"billing_email": "not-an-address"}, "billing_email"},
		{map[string]any{"billing_email": "Ops <ops@acme.example>"}, "billing_email"},
		{map[string]any{"slug": "new"}, "slug cannot be changed"},
		{map[string]any{"billing_plan": "vibe"}, "billing_plan cannot be changed"},
		{map[string]any{"name": 7}, "name"},
	} {
		expectStatus(t, fmt.Sprintf("patch org %v", c.body), s.req("PATCH", org, admin, c.body), 400, c.msg)
	}
	if p := s.req("PATCH", org, admin, map[string]any{"billing_email": ""}); p.Status != 200 || p.get("organization", "billing_email") != nil {
		t.Fatalf("clearing billing_email: %s", p.Raw)
	}
	if me := s.req("GET", "/v1/me", admin, nil); me.str("organization", "name") != "Acme Inc" {
		t.Fatalf("/v1/me after PATCH: %s", me.Raw)
	}
}

func auditActions(t *testing.T, s *server, projectID string) []string {
	t.Helper()
	r := s.req("GET", "/v1/projects/"+projectID+"/audit-events?limit=100", bearer(s.key), nil)
	expectStatus(t, "audit events", r, 200, "")
	var out []string
	for _, e := range r.get("audit_events").([]any) {
		out = append(out, e.(map[string]any)["action"].(string))
	}
	return out
}

// TestSessions: OIDC session tokens against a locally served JWKS.
func TestSessions(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	s, is := f.s, f.is
	admin := is.session(t, "user_admin", clerkMatrixOrg, "org:admin")
	me := s.req("GET", "/v1/me", bearer(admin), nil)
	pr := me.get("principal").(map[string]any)
	if me.Status != 200 || pr["auth_source"] != "clerk_session" || pr["role"] != "admin" || pr["is_admin"] != false ||
		fmt.Sprint(pr["scopes"]) != "[*]" || pr["user_id"] != "user_admin" || pr["clerk_organization_id"] != clerkMatrixOrg ||
		pr["clerk_organization_role"] != "org:admin" || pr["clerk_organization_slug"] != "matrix-org" ||
		me.str("organization", "id") != f.orgID || pr["organization_id"] != f.orgID {
		t.Fatalf("/v1/me with a session: %d %s", me.Status, me.Raw)
	}

	// First sight of a Clerk organization creates it (once), compact claims too.
	compact := is.sign(t, is.key, "e2e-1", map[string]any{"sub": "user_new", "o": map[string]any{"id": "org_2brandnew", "rol": "admin", "slg": "brand-new"}})
	first := s.req("GET", "/v1/me", bearer(compact), nil)
	newOrg := first.str("organization", "id")
	if first.Status != 200 || newOrg == "" || newOrg == f.orgID || first.str("organization", "clerk_organization_id") != "org_2brandnew" ||
		first.str("organization", "slug") != "brand-new" || first.str("principal", "role") != "admin" || first.str("organization", "billing_status") != "active" {
		t.Fatalf("first sight: %d %s", first.Status, first.Raw)
	}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ids[i] = s.req("GET", "/v1/me", bearer(compact), nil).str("organization", "id")
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != newOrg {
			t.Fatalf("the same Clerk organization mapped to %v", ids)
		}
	}
	// The new organization sees none of the other's projects; its admin creates keys.
	if n := len(s.req("GET", "/v1/projects", bearer(compact), nil).get("projects").([]any)); n != 0 {
		t.Fatalf("new organization lists %d projects", n)
	}
	nk := s.req("POST", "/v1/organizations/"+newOrg+"/api-keys", bearer(compact), map[string]any{"name": "from dashboard", "scopes": []string{"*"}})
	if nk.Status != 201 || nk.str("api_key", "source") != "dashboard" || nk.str("api_key", "created_by_user_id") != "user_new" {
		t.Fatalf("session-created key: %d %s", nk.Status, nk.Raw)
	}

	// Rejected tokens.
	wrongKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	valid := map[string]any{"sub": "u", "org_id": clerkMatrixOrg, "org_role": "org:admin"}
	set := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	for name, c := range map[string]struct {
		token  string
		status int
		msg    string
	}{
		"wrong issuer":    {is.sign(t, is.key, "e2e-1", set("iss", "https://evil.test")), 401, "wrong issuer"},
		"wrong audience":  {is.sign(t, is.key, "e2e-1", set("aud", "other-app")), 401, "wrong audience"},
		"expired":         {is.sign(t, is.key, "e2e-1", set("exp", time.Now().Add(-5*time.Minute).Unix())), 401, "expired"},
		"bad signature":   {is.sign(t, wrongKey, "e2e-1", valid), 401, "signature is invalid"},
		"unknown kid":     {is.sign(t, is.key, "e2e-unknown", valid), 401, "unknown key"},
		"no organization": {is.sign(t, is.key, "e2e-1", map[string]any{"sub": "u"}), 403, "no active organization in the session"},
		"not a token":     {"a.b.c", 401, "malformed"},
	} {
		t.Run(name, func(t *testing.T) {
			expectStatus(t, name, s.req("GET", "/v1/me", bearer(c.token), nil), c.status, c.msg)
		})
	}
	// A JWT in X-API-Key is not a session.
	expectStatus(t, "jwt in X-API-Key", s.req("GET", "/v1/me", hdr("X-API-Key", admin), nil), 401, "")

	// Admin-gated actions need the admin role.
	member := is.session(t, "user_member", clerkMatrixOrg, "org:member")
	pid := f.sibling["id"].(string)
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/projects"}, {"DELETE", "/v1/projects/" + pid}, {"POST", "/v1/projects/" + pid + "/approvals"},
		{"POST", "/v1/organizations/" + f.orgID + "/api-keys"}, {"DELETE", "/v1/organizations/" + f.orgID + "/api-keys/key_x"},
		{"PATCH", "/v1/organizations/" + f.orgID}, {"POST", "/v1/cli/login/sessions/cls_x/approve"},
	} {
		expectStatus(t, "member "+c.method+" "+c.path, s.req(c.method, c.path, bearer(member), map[string]any{}), 403, "")
	}
	expectStatus(t, "member reads", s.req("GET", "/v1/projects/"+pid, bearer(member), nil), 200, "")
	expectStatus(t, "member rotates", s.req("POST", "/v1/projects/"+pid+"/credentials/rotate", bearer(member), nil), 202, "")

	// An admin session mints approvals and deletes production; the audit log names the user.
	prod := f.this["id"].(string)
	ap := s.req("POST", "/v1/projects/"+prod+"/approvals", bearer(admin), map[string]any{"action": "project.delete"})
	expectStatus(t, "admin session approval", ap, 201, "")
	del := s.req("DELETE", "/v1/projects/"+prod+"?approval_token="+ap.str("approval", "token"), bearer(admin), nil)
	expectStatus(t, "admin session delete", del, 202, "")
	s.waitJob(del.str("job", "id"))
	events := s.admin("capydb_control")
	var kind, actorID string
	if err := events.QueryRow(context.Background(), `SELECT actor_kind, actor_id FROM audit_events WHERE project_id = $1 AND action = 'approval.used'`, prod).Scan(&kind, &actorID); err != nil || kind != "user" || actorID != "user_admin" {
		t.Fatalf("approval.used actor: %s %s %v", kind, actorID, err)
	}
}

// TestApprovalsAndProjectSettings: who may mint approvals, expiry, PATCH
// /v1/projects/{id}, and the audit log.
func TestApprovalsAndProjectSettings(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	s := f.s
	prod, sib := f.this["id"].(string), f.sibling["id"].(string)
	ci, _ := f.key(t, map[string]any{"name": "ci", "scopes": []string{"projects:read", "projects:write"}})
	approver, _ := f.key(t, map[string]any{"name": "approver", "scopes": []string{"organizations:write"}})
	projKey, _ := f.key(t, map[string]any{"name": "p", "scopes": projectKeyScopes, "project_id": prod})
	body := map[string]any{"action": "project.delete"}
	expectStatus(t, "CI key approves", s.req("POST", "/v1/projects/"+prod+"/approvals", bearer(ci), body), 403, "an approval must come from an organization admin")
	expectStatus(t, "project key approves", s.req("POST", "/v1/projects/"+prod+"/approvals", bearer(projKey), body), 403, "an approval must come from an organization admin")
	expectStatus(t, "CI key deletes production", s.req("DELETE", "/v1/projects/"+prod, bearer(ci), nil), 428, "this action requires an approval token")
	expectStatus(t, "restore_overwrite on production", s.req("POST", "/v1/projects/"+prod+"/approvals", bearer(approver), map[string]any{"action": "project.restore_overwrite"}), 409, "non_production")
	expectStatus(t, "upgrade approval", s.req("POST", "/v1/projects/"+prod+"/approvals", bearer(approver), map[string]any{"action": "project.upgrade_major"}), 403, "not enabled")
	ap := s.req("POST", "/v1/projects/"+prod+"/approvals", bearer(approver), body)
	expectStatus(t, "organizations:write key approves", ap, 201, "")
	a := ap.get("approval").(map[string]any)
	exp, _ := time.Parse(time.RFC3339, a["expires_at"].(string))
	if !strings.HasPrefix(a["token"].(string), "ap_") || a["project_id"] != prod || a["action"] != "project.delete" ||
		exp.Sub(time.Now()) < 9*time.Minute || exp.Sub(time.Now()) > 11*time.Minute {
		t.Fatalf("approval: %s", ap.Raw)
	}
	// An expired token is 403; the project stays.
	if _, err := s.admin("capydb_control").Exec(context.Background(), `UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, a["id"]); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, "expired approval", s.req("DELETE", "/v1/projects/"+prod+"?approval_token="+a["token"].(string), bearer(ci), nil), 403, "approval token is invalid or expired")
	// A token for one action does not authorise another.
	ro := s.req("POST", "/v1/projects/"+sib+"/approvals", bearer(approver), map[string]any{"action": "project.restore_overwrite"})
	expectStatus(t, "restore_overwrite approval", ro, 201, "")

	// PATCH /v1/projects/{id}.
	patch := func(b any) response { return s.req("PATCH", "/v1/projects/"+sib, bearer(ci), b) }
	r := patch(map[string]any{"environment": "production"})
	if r.Status != 200 || r.str("project", "environment") != "production" || r.get("project", "always_on") != true {
		t.Fatalf("to production: %d %s", r.Status, r.Raw)
	}
	r = patch(map[string]any{"environment": "non_production"})
	if r.Status != 200 || r.str("project", "environment") != "non_production" || r.get("project", "always_on") != false {
		t.Fatalf("to non_production: %d %s", r.Status, r.Raw)
	}
	r = patch(map[string]any{"environment": "production", "always_on": false})
	if r.Status != 200 || r.str("project", "environment") != "production" || r.get("project", "always_on") != false {
		t.Fatalf("explicit always_on: %d %s", r.Status, r.Raw)
	}
	if r = patch(map[string]any{"always_on": true}); r.get("project", "always_on") != true || r.str("project", "environment") != "production" {
		t.Fatalf("always_on only: %s", r.Raw)
	}
	for _, c := range []struct {
		body any
		msg  string
	}{
		{map[string]any{}, "at least one"},
		{map[string]any{"environment": "nonproduction"}, "environment must be one of production or non_production"},
		{map[string]any{"name": "x"}, "name cannot be changed"},
		{map[string]any{"slug": "x"}, "slug cannot be changed"},
		{map[string]any{"region": "x"}, "region cannot be changed"},
		{map[string]any{"postgres_version": "16"}, "postgres_version cannot be changed"},
		{map[string]any{"always_on": "yes"}, "always_on"},
		{map[string]any{"plan": "vibe"}, `unknown field "plan"`},
	} {
		expectStatus(t, fmt.Sprintf("patch %v", c.body), patch(c.body), 400, c.msg)
	}
	readOnly, _ := f.key(t, map[string]any{"name": "ro", "scopes": []string{"projects:read"}})
	expectStatus(t, "patch with projects:read", s.req("PATCH", "/v1/projects/"+sib, bearer(readOnly), map[string]any{"always_on": true}), 403, "missing scope projects:write")

	// The audit log: newest first, limit, actors, no secrets.
	rot := s.req("POST", "/v1/projects/"+sib+"/credentials/rotate", bearer(ci), nil)
	expectStatus(t, "rotate", rot, 202, "")
	s.waitJob(rot.str("job", "id"))
	all := s.req("GET", "/v1/projects/"+sib+"/audit-events", bearer(readOnly), nil)
	expectStatus(t, "audit list", all, 200, "")
	events := all.get("audit_events").([]any)
	var actions []string
	for i, e := range events {
		m := e.(map[string]any)
		actions = append(actions, m["action"].(string))
		if !strings.HasPrefix(m["id"].(string), "aud_") || m["organization_id"] != f.orgID || m["project_id"] != sib || m["metadata"] == nil {
			t.Fatalf("audit event: %v", m)
		}
		if i > 0 && m["created_at"].(string) > events[i-1].(map[string]any)["created_at"].(string) {
			t.Fatal("audit events are not newest first")
		}
	}
	want := []string{"project.credentials_rotated", "project.updated", "project.updated", "project.updated", "project.updated", "approval.created", "project.created"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	first := events[0].(map[string]any)
	if first["actor_kind"] != "api_key" || !strings.HasPrefix(fmt.Sprint(first["actor_id"]), "key_") {
		t.Fatalf("actor: %v", first)
	}
	if strings.Contains(string(all.Raw), "capy_live_") || strings.Contains(string(all.Raw), ro.str("approval", "token")) {
		t.Fatal("audit events carry a secret")
	}
	if n := len(s.req("GET", "/v1/projects/"+sib+"/audit-events?limit=2", bearer(readOnly), nil).get("audit_events").([]any)); n != 2 {
		t.Fatalf("limit=2 gave %d", n)
	}
	expectStatus(t, "limit=-1", s.req("GET", "/v1/projects/"+sib+"/audit-events?limit=-1", bearer(readOnly), nil), 400, "limit")
	expectStatus(t, "limit=x", s.req("GET", "/v1/projects/"+sib+"/audit-events?limit=x", bearer(readOnly), nil), 400, "limit")
	expectStatus(t, "limit=1000", s.req("GET", "/v1/projects/"+sib+"/audit-events?limit=1000", bearer(readOnly), nil), 200, "")
}

// ---------------------------------------------------------------------------
// Device login.

func TestDeviceLogin(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t)
	s := f.s
	admin := bearer(s.key)
	start := func(body any) response { return s.req("POST", "/v1/cli/login/sessions", hdr(), body) }
	poll := func(id, token string) response {
		return s.req("GET", "/v1/cli/login/sessions/"+id, hdr("X-CapyDB-Poll-Token", token), nil)
	}

	st := start(nil)
	expectStatus(t, "start without body", st, 201, "")
	id, token := st.str("session_id"), st.str("poll_token")
	exp, _ := time.Parse(time.RFC3339, st.str("expires_at"))
	if !strings.HasPrefix(id, "cls_") || !strings.HasPrefix(token, "clp_") || st.str("state") != "pending" ||
		exp.Sub(time.Now()) < 9*time.Minute || exp.Sub(time.Now()) > 11*time.Minute {
		t.Fatalf("start: %s", st.Raw)
	}
	for _, b := range []any{"", "{}", map[string]any{"device_name": "laptop", "source": "cli"}} {
		expectStatus(t, fmt.Sprintf("start %v", b), start(b), 201, "")
	}
	for _, c := range []struct {
		body any
		msg  string
	}{
		{map[string]any{"source": "bot"}, "source must be cli or agent"},
		{map[string]any{"scopes": []string{"root"}}, `unknown scope "root"`},
		{map[string]any{"expires_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "expires_at"},
		{map[string]any{"expires_at": time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)}, "365 days"},
		{map[string]any{"name": strings.Repeat("n", 101)}, "name"},
		{map[string]any{"colour": "blue"}, `unknown field "colour"`},
	} {
		expectStatus(t, fmt.Sprintf("start %v", c.body), start(c.body), 400, c.msg)
	}
	// A bearer token does not get in the way of the anonymous routes.
	expectStatus(t, "start with a bearer", s.req("POST", "/v1/cli/login/sessions", bearer("capy_live_garbage"), nil), 201, "")

	// Poll: header or query; wrong or missing token is indistinguishable from no session.
	if r := poll(id, token); r.Status != 200 || r.str("state") != "pending" || r.get("plaintext_api_key") != nil || r.str("session_id") != id {
		t.Fatalf("pending poll: %d %s", r.Status, r.Raw)
	}
	expectStatus(t, "poll by query", s.req("GET", "/v1/cli/login/sessions/"+id+"?poll_token="+token, hdr(), nil), 200, "")
	expectStatus(t, "wrong token", poll(id, "clp_wrong"), 404, "login session not found")
	expectStatus(t, "no token", poll(id, ""), 404, "login session not found")
	expectStatus(t, "unknown session", poll("cls_nope", token), 404, "login session not found")

	// The approval page.
	page := s.req("GET", "/dashboard/cli/login?session="+id, hdr(), nil)
	if page.Status != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page.Raw), "CapyDB CLI") || !strings.Contains(string(page.Raw), `name="api_key"`) ||
		!strings.Contains(string(page.Raw), id) {
		t.Fatalf("page: %d %s", page.Status, page.Raw)
	}
	for h, v := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"} {
		if page.Header.Get(h) != v {
			t.Errorf("page header %s = %q, want %q", h, page.Header.Get(h), v)
		}
	}
	if r := s.req("GET", "/dashboard/cli/login?session=cls_nope", hdr(), nil); r.Status != 404 || !strings.Contains(string(r.Raw), "does not exist") {
		t.Fatalf("unknown session page: %d", r.Status)
	}
	if r := s.req("GET", "/api/capydb/dashboard/cli/login?session="+id, hdr(), nil); r.Status != 404 {
		t.Fatalf("the page must live at the root only: %d", r.Status)
	}

	// Details + approve through the API.
	d := s.req("GET", "/v1/cli/login/sessions/"+id+"/details", admin, nil)
	if d.Status != 200 || d.str("key_name") != "CapyDB CLI" || d.str("source") != "cli" || d.str("state") != "pending" || fmt.Sprint(d.get("scopes")) != "[]" {
		t.Fatalf("details: %d %s", d.Status, d.Raw)
	}
	ap := s.req("POST", "/v1/cli/login/sessions/"+id+"/approve", admin, nil)
	if ap.Status != 200 || ap.str("state") != "completed" {
		t.Fatalf("approve: %d %s", ap.Status, ap.Raw)
	}
	expectStatus(t, "approve twice", s.req("POST", "/v1/cli/login/sessions/"+id+"/approve", admin, "{}"), 409, "already approved")

	// Exactly one poll delivers the key, even when polls race.
	var wg sync.WaitGroup
	results := make([]response, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) { defer wg.Done(); results[i] = poll(id, token) }(i)
	}
	wg.Wait()
	var plain string
	for _, r := range results {
		if r.Status != 200 || r.str("state") != "completed" || r.str("organization_id") != f.orgID || r.str("organization_slug") == "" ||
			r.str("organization_name") == "" || r.str("authorized_at") == "" {
			t.Fatalf("completed poll: %d %s", r.Status, r.Raw)
		}
		if k := r.str("plaintext_api_key"); k != "" {
			if plain != "" {
				t.Fatal("the key was delivered twice")
			}
			plain = k
		}
	}
	if plain == "" {
		t.Fatal("no poll delivered the key")
	}
	if r := poll(id, token); r.get("plaintext_api_key") != nil {
		t.Fatal("a later poll delivered the key again")
	}
	me := s.req("GET", "/v1/me", bearer(plain), nil)
	if me.Status != 200 || me.str("principal", "auth_source") != "api_key" || fmt.Sprint(me.get("principal", "scopes")) != "[*]" {
		t.Fatalf("delivered key: %d %s", me.Status, me.Raw)
	}
	var minted map[string]any
	for _, k := range s.req("GET", "/v1/organizations/"+f.orgID+"/api-keys", admin, nil).get("api_keys").([]any) {
		if m := k.(map[string]any); m["id"] == me.str("principal", "api_key_id") {
			minted = m
		}
	}
	kexp, _ := time.Parse(time.RFC3339, fmt.Sprint(minted["expires_at"]))
	if minted == nil || minted["source"] != "cli" || minted["name"] != "CapyDB CLI" || kexp.Sub(time.Now()) < 89*24*time.Hour || kexp.Sub(time.Now()) > 91*24*time.Hour {
		t.Fatalf("minted key: %v", minted)
	}

	// Requested scopes must be held by the approver; the page approves with a typed key.
	st2 := start(map[string]any{"source": "agent", "device_name": "build-bot", "scopes": []string{"projects:read", "jobs:read"}})
	id2, token2 := st2.str("session_id"), st2.str("poll_token")
	narrow, _ := f.key(t, map[string]any{"name": "narrow", "scopes": []string{"api_keys:write", "projects:read"}})
	expectStatus(t, "approve ungrantable", s.req("POST", "/v1/cli/login/sessions/"+id2+"/approve", bearer(narrow), nil), 403, "cannot grant scope jobs:read")
	projKey, _ := f.key(t, map[string]any{"name": "p", "scopes": []string{"projects:read"}, "project_id": f.this["id"]})
	form := func(session, key string) response {
		return s.req("POST", "/dashboard/cli/login", hdr("Content-Type", "application/x-www-form-urlencoded"),
			url.Values{"session": {session}, "api_key": {key}}.Encode())
	}
	for _, c := range []struct {
		key    string
		status int
		text   string
	}{
		{"capy_live_" + strings.Repeat("x", 40), 401, "invalid, revoked or expired"},
		{"", 401, "Enter an organization API key"},
		{projKey, 403, "project-scoped"},
		{scopeKey(t, f, "projects:read"), 403, "api_keys:write"},
		{narrow, 403, "jobs:read"},
	} {
		r := form(id2, c.key)
		if r.Status != c.status || !strings.Contains(string(r.Raw), c.text) {
			t.Fatalf("form with key %q: %d %s", c.key, r.Status, r.Raw)
		}
	}
	ok := form(id2, s.key)
	if ok.Status != 200 || !strings.Contains(string(ok.Raw), "Approved — you can return to your terminal") || ok.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("form approve: %d %s", ok.Status, ok.Raw)
	}
	if r := form(id2, s.key); r.Status != 409 {
		t.Fatalf("form approve twice: %d", r.Status)
	}
	if strings.Contains(s.logs.String(), narrow) || strings.Contains(s.logs.String(), token2) {
		t.Fatal("a key or poll token reached the server log")
	}
	agent := poll(id2, token2)
	agentKey := agent.str("plaintext_api_key")
	ak := s.req("GET", "/v1/me", bearer(agentKey), nil)
	if fmt.Sprint(ak.get("principal", "scopes")) != "[projects:read jobs:read]" {
		t.Fatalf("agent key: %s", ak.Raw)
	}
	for _, k := range s.req("GET", "/v1/organizations/"+f.orgID+"/api-keys", admin, nil).get("api_keys").([]any) {
		if m := k.(map[string]any); m["id"] == ak.str("principal", "api_key_id") && (m["source"] != "agent" || m["name"] != "CapyDB Agent" || m["device_name"] != "build-bot") {
			t.Fatalf("agent key fields: %v", m)
		}
	}

	// A session approves with the admin role and is recorded as the creator.
	st3 := start(nil)
	sess := f.is.session(t, "user_approver", clerkMatrixOrg, "admin")
	expectStatus(t, "session approve", s.req("POST", "/v1/cli/login/sessions/"+st3.str("session_id")+"/approve", bearer(sess), nil), 200, "")
	k3 := poll(st3.str("session_id"), st3.str("poll_token")).str("plaintext_api_key")
	var createdBy string
	if err := s.admin("capydb_control").QueryRow(context.Background(), `SELECT created_by_user_id FROM api_keys WHERE key_prefix = $1`, k3[:14]).Scan(&createdBy); err != nil || createdBy != "user_approver" {
		t.Fatalf("created_by_user_id %q %v", createdBy, err)
	}

	// Expiry: 410 everywhere.
	st4 := start(nil)
	if _, err := s.admin("capydb_control").Exec(context.Background(), `UPDATE cli_login_sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, st4.str("session_id")); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, "expired poll", poll(st4.str("session_id"), st4.str("poll_token")), 410, "login session expired")
	expectStatus(t, "expired approve", s.req("POST", "/v1/cli/login/sessions/"+st4.str("session_id")+"/approve", admin, nil), 410, "login session expired")
	expectStatus(t, "expired details", s.req("GET", "/v1/cli/login/sessions/"+st4.str("session_id")+"/details", admin, nil), 410, "")
	if r := s.req("GET", "/dashboard/cli/login?session="+st4.str("session_id"), hdr(), nil); r.Status != 410 {
		t.Fatalf("expired page: %d", r.Status)
	}
	// Nothing secret is stored: only hashes and ids.
	var stored string
	if err := s.admin("capydb_control").QueryRow(context.Background(), `SELECT row_to_json(c)::text FROM cli_login_sessions c WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, token) || strings.Contains(stored, plain) || strings.Contains(stored, plain[14:]) {
		t.Fatal("the login session row stores a secret")
	}
}

// scopeKey mints a key holding exactly one scope.
func scopeKey(t *testing.T, f *accessFixture, scope string) string {
	k, _ := f.key(t, map[string]any{"name": "only " + scope, "scopes": []string{scope}})
	return k
}

// ---------------------------------------------------------------------------
// Rate limits.

func TestRateLimits(t *testing.T) {
	t.Parallel()
	s, _ := startAccessServer(t, "--rate-limit-api", "20/s:100")
	// The authenticated API bucket: 100 at once, then 429 with Retry-After.
	client := freshAddr()
	var limited response
	passed := 0
	for i := 0; i < 150; i++ {
		r := s.req("GET", "/v1/me", hdr("Authorization", "Bearer "+s.key, "X-Forwarded-For", client), nil)
		if r.Status == 429 {
			limited = r
			break
		}
		expectStatus(t, "within the API burst", r, 200, "")
		passed++
	}
	if limited.Status != 429 || passed < 100 || passed > 120 || limited.str("error") != "rate limit exceeded" || limited.Header.Get("Retry-After") != "1" {
		t.Fatalf("API bucket: %d passed, then %d %s (Retry-After %q)", passed, limited.Status, limited.Raw, limited.Header.Get("Retry-After"))
	}
	expectStatus(t, "another client", s.req("GET", "/v1/me", bearer(s.key), nil), 200, "")
	expectStatus(t, "anonymous status route", s.req("GET", "/status", hdr("X-Forwarded-For", client), nil), 200, "")

	// Device-login start: burst 5, then 429 for about 6 seconds.
	client = freshAddr()
	for i := 0; i < 5; i++ {
		expectStatus(t, "login start within burst", s.req("POST", "/v1/cli/login/sessions", hdr("X-Forwarded-For", client), nil), 201, "")
	}
	r := s.req("POST", "/v1/cli/login/sessions", hdr("X-Forwarded-For", client), nil)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.str("error") != "rate limit exceeded" {
		t.Fatalf("6th login start: %d %s", r.Status, r.Raw)
	}
	if ra := r.Header.Get("Retry-After"); ra < "1" || len(ra) > 1 || ra > "6" {
		t.Fatalf("Retry-After %q, want 1-6 seconds", ra)
	}

	// Polls: burst 20.
	client = freshAddr()
	codes := map[int]int{}
	for i := 0; i < 25; i++ {
		codes[s.req("GET", "/v1/cli/login/sessions/cls_nope", hdr("X-Forwarded-For", client, "X-CapyDB-Poll-Token", "clp_x"), nil).Status]++
	}
	if codes[404] < 20 || codes[404] > 21 || codes[429] < 4 {
		t.Fatalf("polls: %v", codes)
	}

	// Failed authentication: 10 bad credentials, then 429 for bad ones only.
	client = freshAddr()
	for i := 0; i < 10; i++ {
		expectStatus(t, "bad key", s.req("GET", "/v1/me", hdr("Authorization", "Bearer capy_live_"+strings.Repeat("z", 40), "X-Forwarded-For", client), nil), 401, "")
	}
	expectStatus(t, "11th bad key", s.req("GET", "/v1/me", hdr("Authorization", "Bearer capy_live_"+strings.Repeat("z", 40), "X-Forwarded-For", client), nil), 429, "rate limit exceeded")
	expectStatus(t, "bad JWT after the limit", s.req("GET", "/v1/me", hdr("Authorization", "Bearer a.b.c", "X-Forwarded-For", client), nil), 429, "")
	expectStatus(t, "valid key unaffected", s.req("GET", "/v1/me", hdr("Authorization", "Bearer "+s.key, "X-Forwarded-For", client), nil), 200, "")
	expectStatus(t, "missing credentials are not failures", s.req("GET", "/v1/me", hdr("X-Forwarded-For", client), nil), 401, "invalid or missing credentials")
}
