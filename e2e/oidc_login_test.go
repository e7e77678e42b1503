package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// orgUser is a mockoidc user whose ID token carries the organization claims
// CapyDB reads (Clerk's flat org_id/org_role/org_slug).
type orgUser struct{ sub, org, role string }

type orgClaims struct {
	*mockoidc.IDTokenClaims
	OrgID   string `json:"org_id,omitempty"`
	OrgRole string `json:"org_role,omitempty"`
	OrgSlug string `json:"org_slug,omitempty"`
}

func (u orgUser) ID() string { return u.sub }
func (u orgUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.sub})
}
func (u orgUser) Claims(_ []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &orgClaims{IDTokenClaims: c, OrgID: u.org, OrgRole: u.role, OrgSlug: strings.TrimPrefix(u.org, "org_")}, nil
}

// TestDashboardOIDCSignIn: the dashboard's authorization-code sign-in with
// PKCE against a real OIDC provider (mockoidc) on loopback.
func TestDashboardOIDCSignIn(t *testing.T) {
	t.Parallel()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var authorize, token []url.Values
	_ = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			switch r.URL.Path {
			case "/oidc/authorize":
				authorize = append(authorize, r.Form)
			case "/oidc/token":
				token = append(token, r.PostForm)
			}
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	s := startServer(t, "", 0, 0, "--oidc-issuer", m.Issuer(), "--oidc-audience", m.ClientID,
		"--oidc-client-id", m.ClientID, "--oidc-client-secret", m.ClientSecret)
	if r := s.req("GET", "/dashboard/config", hdr(), nil); r.Status != 200 || r.get("oidc") != true {
		t.Fatalf("config: %d %s", r.Status, r.Raw)
	}
	s.createProject(map[string]any{"name": "bootstrap org project"})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	m.QueueUser(orgUser{sub: "user_sso", org: "org_ssoteam", role: "org:admin"})
	resp, err := browser.Get(s.url + "/dashboard/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/dashboard/" {
		t.Fatalf("sign-in ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	}
	mu.Lock()
	if len(authorize) != 1 || authorize[0].Get("code_challenge_method") != "S256" || len(authorize[0].Get("code_challenge")) != 43 ||
		authorize[0].Get("client_id") != m.ClientID || authorize[0].Get("redirect_uri") != s.url+"/dashboard/oidc/callback" || authorize[0].Get("state") == "" {
		t.Fatalf("authorize request: %v", authorize)
	}
	if len(token) != 1 || len(token[0].Get("code_verifier")) != 43 || token[0].Get("grant_type") != "authorization_code" {
		t.Fatalf("token request: %v", token)
	}
	state := authorize[0].Get("state")
	mu.Unlock()

	call := func(method, path string, h http.Header) (int, map[string]any) {
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(`{"name":"sso project"}`))
		for k, v := range h {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	st, sess := call("GET", "/dashboard/session", nil)
	if st != 200 || sess["organization_id"] == "" || sess["csrf_token"] == "" {
		t.Fatalf("session after OIDC sign-in: %d %v", st, sess)
	}
	bootstrapOrg := s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	if sess["organization_id"] == bootstrapOrg {
		t.Fatal("the SSO organization must be its own, not the bootstrap one")
	}
	// Its own tenant: the bootstrap organization's project is invisible.
	if st, l := call("GET", "/v1/projects", nil); st != 200 || len(l["projects"].([]any)) != 0 {
		t.Fatalf("SSO session lists %d %v", st, l)
	}
	if st, e := call("POST", "/v1/projects", nil); st != 403 || !strings.Contains(e["error"].(string), "CSRF") {
		t.Fatalf("mutation without CSRF: %d %v", st, e)
	}

	// A replayed callback and a foreign state are refused.
	for _, q := range []string{"?state=" + state + "&code=replayed", "?state=forged&code=x"} {
		if st, e := call("GET", "/dashboard/oidc/callback"+q, nil); st != 400 || !strings.Contains(e["error"].(string), "start again") {
			t.Fatalf("callback %s: %d %v", q, st, e)
		}
	}
	// An account without an organization gets no session.
	jar2, _ := cookiejar.New(nil)
	m.QueueUser(orgUser{sub: "user_loner"})
	resp, err = (&http.Client{Jar: jar2}).Get(s.url + "/dashboard/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "no active organization") {
		t.Fatalf("no-organization sign-in: %d %s", resp.StatusCode, b)
	}
	u, _ := url.Parse(s.url)
	for _, c := range jar2.Cookies(u) {
		if c.Name == "capydb_session" {
			t.Fatal("a refused sign-in set a session cookie")
		}
	}
}
