package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/integrations/integrationstest"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// vercelVar returns the value of key as pushed for every environment.
func vercelVar(v *integrationstest.Vercel, key string) (integrationstest.VercelEnv, bool) {
	for _, e := range v.Env() {
		if e.Key == key && e.GitBranch == "" {
			return e, true
		}
	}
	return integrationstest.VercelEnv{}, false
}

// TestIntegrationPlatformEnvSync: connecting Vercel and Netlify checks the
// token at the provider, registers the deployment hooks and pushes
// DATABASE_URL (pooled) and DATABASE_URL_UNPOOLED (direct), observed at the
// stand-ins; a credential rotation pushes the new URLs; tokens never show.
func TestIntegrationPlatformEnvSync(t *testing.T) {
	t.Parallel()
	const vercelToken, netlifyToken = "vercel_standin_token_0123456789", "nfp_standin_netlify_token_0123456789"
	vercel := integrationstest.NewVercel(t, vercelToken, "prj_vercel1", "web-app", "team_capy")
	netlify := integrationstest.NewNetlify(t, netlifyToken, "5a6b7c8d-site", "capy-team")
	s := startServer(t, "", 0, 0, "--vercel-api-url", vercel.URL(), "--netlify-api-url", netlify.URL())
	p := s.createProject(map[string]any{"name": "platforms"})
	pid := p["id"].(string)
	base := "/v1/projects/" + pid + "/integrations"
	conns := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	pooled, direct := conns.str("connections", "pooled_url"), conns.str("connections", "direct_url")
	var answers [][]byte

	// A token or project the provider refuses: 400 naming the provider; nothing stored, nothing pushed.
	expectStatus(t, "vercel bad token", s.req("POST", base+"/vercel/connect", bearer(s.key), map[string]any{
		"token": "wrong", "vercel_project_id": "web-app", "team_id": "team_capy"}), 400, "Vercel rejected")
	expectStatus(t, "vercel unknown project", s.req("POST", base+"/vercel/connect", bearer(s.key), map[string]any{
		"token": vercelToken, "vercel_project_id": "nope", "team_id": "team_capy"}), 400, "Project not found")
	expectStatus(t, "vercel missing token", s.req("POST", base+"/vercel/connect", bearer(s.key), map[string]any{
		"vercel_project_id": "web-app"}), 400, "token")
	expectStatus(t, "netlify bad token", s.req("POST", base+"/netlify/connect", bearer(s.key), map[string]any{
		"token": "wrong", "site_id": "5a6b7c8d-site"}), 400, "Netlify rejected")
	expectStatus(t, "sync before connect", s.req("POST", base+"/vercel/sync", bearer(s.key), nil), 404, "no vercel integration")
	expectStatus(t, "cloudflare sync", s.req("POST", base+"/cloudflare/sync", bearer(s.key), nil), 404, "cloudflare")
	expectStatus(t, "unknown sync", s.req("POST", base+"/heroku/sync", bearer(s.key), nil), 400, "")
	if l := s.must(200, "GET", base, nil); len(l.get("integrations").([]any)) != 0 || len(vercel.Env()) != 0 {
		t.Fatalf("refused connects left state: %s", l.Raw)
	}

	// Vercel, by project name within a team, with preview branches.
	r := s.must(202, "POST", base+"/vercel/connect", map[string]any{"token": vercelToken, "vercel_project_id": "web-app",
		"team_id": "team_capy", "preview_branches": true})
	answers = append(answers, r.Raw)
	if r.str("integration", "provider") != "vercel" || r.str("integration", "external_id") != "prj_vercel1" ||
		r.str("integration", "config", "vercel_project_id") != "prj_vercel1" || r.str("integration", "config", "team_id") != "team_capy" ||
		r.get("integration", "config", "preview_branches") != true || r.get("integration", "config", "webhook_error") != nil ||
		r.get("integration", "has_credentials") != true || r.str("job", "type") != "integration.sync_env" {
		t.Fatalf("vercel connect: %s", r.Raw)
	}
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("vercel sync: %v", job)
	}
	all := []string{"production", "preview", "development"}
	if e, ok := vercelVar(vercel, "DATABASE_URL"); !ok || e.Value != pooled || e.Type != "encrypted" || !slices.Equal(e.Target, all) {
		t.Fatalf("DATABASE_URL at Vercel: %+v", e)
	}
	if e, ok := vercelVar(vercel, "DATABASE_URL_UNPOOLED"); !ok || e.Value != direct {
		t.Fatalf("DATABASE_URL_UNPOOLED at Vercel: %+v", e)
	}
	if hooks := vercel.Hooks(); len(hooks) != 1 || hooks[0].URL != s.url+"/v1/integrations/vercel/webhook/"+pid ||
		!slices.Equal(hooks[0].Events, []string{"deployment.created"}) {
		t.Fatalf("Vercel webhooks: %+v", hooks)
	}
	l := s.must(200, "GET", base, nil)
	answers = append(answers, l.Raw)
	vi := l.get("integrations").([]any)[0].(map[string]any)
	if ts, _ := vi["config"].(map[string]any)["last_synced_at"].(string); ts == "" || vi["state"] != "active" {
		t.Fatalf("after the first push: %v", vi)
	}

	// Netlify, with preview branches: the deploy_building hook carries our signing secret.
	r = s.must(202, "POST", base+"/netlify/connect", map[string]any{"token": netlifyToken, "site_id": "5a6b7c8d-site", "preview_branches": true})
	answers = append(answers, r.Raw)
	if r.str("integration", "external_id") != "5a6b7c8d-site" || r.str("integration", "config", "site_id") != "5a6b7c8d-site" ||
		r.get("integration", "config", "hook_error") != nil {
		t.Fatalf("netlify connect: %s", r.Raw)
	}
	if job := s.waitJob(r.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("netlify sync: %v", job)
	}
	for key, want := range map[string]string{"DATABASE_URL": pooled, "DATABASE_URL_UNPOOLED": direct} {
		if e, ok := netlify.Env(key); !ok || len(e.Values) != 1 || e.Values[0].Value != want || e.Values[0].Context != "all" {
			t.Fatalf("%s at Netlify: %+v", key, e)
		}
	}
	hooks := netlify.Hooks()
	if len(hooks) != 1 || hooks[0].Event != "deploy_building" || hooks[0].Data["url"] != s.url+"/v1/integrations/netlify/webhook/"+pid ||
		len(hooks[0].Data["signature_secret"]) < 32 {
		t.Fatalf("Netlify hooks: %+v", hooks)
	}

	// On-demand re-push: same values again (the stand-in saw the update route).
	before := len(netlify.Calls())
	if job := s.waitJob(s.must(202, "POST", base+"/NETLIFY/sync", nil).str("job", "id")); job["state"] != "completed" {
		t.Fatalf("netlify re-sync: %v", job)
	}
	if calls := netlify.Calls()[before:]; len(calls) != 5 || !strings.HasPrefix(calls[1], "GET /api/v1/accounts/capy-team/env/DATABASE_URL?site_id=") ||
		!strings.HasPrefix(calls[2], "PUT /api/v1/accounts/capy-team/env/DATABASE_URL?site_id=") {
		t.Fatalf("re-sync calls %v", calls)
	}

	// A credential rotation pushes the new URLs to both platforms.
	rot := s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", nil)
	if job := s.waitJob(rot.str("job", "id")); job["state"] != "completed" {
		t.Fatalf("rotate: %v", job)
	}
	newPooled := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "pooled_url")
	if newPooled == pooled {
		t.Fatal("rotation did not change the URL")
	}
	clustertest.Eventually(t, 60*time.Second, "the rotated URLs at Vercel and Netlify", func() bool {
		e, _ := vercelVar(vercel, "DATABASE_URL")
		n, _ := netlify.Env("DATABASE_URL")
		return e.Value == newPooled && len(n.Values) == 1 && n.Values[0].Value == newPooled
	})

	// Deployment hooks (†): a non-production deployment of a branch gets the
	// branch-<slug> clone preview and its URLs scoped to the branch.
	vercelPath, netlifyPath := "/v1/integrations/vercel/webhook/"+pid, "/v1/integrations/netlify/webhook/"+pid
	const branch = "Feature/Login_Page"
	vdep := func(target string) []byte {
		return []byte(`{"type":"deployment.created","id":"evt_1","createdAt":1700000000000,"payload":{"target":` + target +
			`,"project":{"id":"prj_vercel1"},"deployment":{"id":"dpl_1","url":"web-app-git-x.vercel.app","meta":{"githubCommitRef":"` + branch + `"}}}}`)
	}
	dep := vdep("null")
	vsig := func(b []byte) []string {
		return []string{"x-vercel-signature", integrations.HexHMAC(true, vercel.HookSecret, b)}
	}
	expectStatus(t, "vercel hook wrong secret", s.req("POST", vercelPath, hdr("x-vercel-signature", integrations.HexHMAC(true, "x", dep)), string(dep)), 401, "")
	expectStatus(t, "vercel hook altered", s.req("POST", vercelPath, hdr(vsig(dep)...), string(dep)+" "), 401, "")
	expectStatus(t, "vercel hook unsigned", s.req("POST", vercelPath, hdr(), string(dep)), 401, "")
	prod := vdep(`"production"`)
	if r := s.req("POST", vercelPath, hdr(vsig(prod)...), string(prod)); r.Status != 200 {
		t.Fatalf("production deployment: %d %s", r.Status, r.Raw)
	}
	if pv := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any); len(pv) != 0 {
		t.Fatalf("a production deployment or a bad signature made a preview: %v", pv)
	}
	if r := s.req("POST", vercelPath, hdr(vsig(dep)...), string(dep)); r.Status != 200 || r.get("ok") != true {
		t.Fatalf("preview deployment: %d %s", r.Status, r.Raw)
	}
	pvs := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any)
	if len(pvs) != 1 || pvs[0].(map[string]any)["name"] != "branch-feature-login-page" || pvs[0].(map[string]any)["mode"] != "clone" {
		t.Fatalf("previews after the deployment: %v", pvs)
	}
	pvID := pvs[0].(map[string]any)["id"].(string)
	var pvPooled string
	clustertest.Eventually(t, 60*time.Second, "the branch preview's URLs at Vercel", func() bool {
		pv := s.must(200, "GET", "/v1/preview-databases/"+pvID, nil)
		if pv.str("preview", "state") != "ready" {
			return false
		}
		pvPooled = s.must(200, "GET", "/v1/preview-databases/"+pvID+"/connections", nil).str("connections", "pooled_url")
		for _, e := range vercel.Env() {
			if e.Key == "DATABASE_URL" && e.GitBranch == branch && slices.Equal(e.Target, []string{"preview"}) && e.Value == pvPooled {
				return true
			}
		}
		return false
	})
	if e, _ := vercelVar(vercel, "DATABASE_URL"); e.Value != newPooled {
		t.Fatalf("the branch push changed the project-wide variable: %+v", e)
	}
	// The same branch on Netlify reuses the preview; its URLs become branch-context values.
	ndep := []byte(`{"id":"d1","site_id":"5a6b7c8d-site","branch":"` + branch + `","context":"deploy-preview","state":"building"}`)
	secret := hooks[0].Data["signature_secret"]
	expectStatus(t, "netlify hook wrong secret", s.req("POST", netlifyPath, hdr("X-Webhook-Signature", integrations.SignNetlify("x", ndep)), string(ndep)), 401, "")
	if r := s.req("POST", netlifyPath, hdr("X-Webhook-Signature", integrations.SignNetlify(secret, ndep)), string(ndep)); r.Status != 200 {
		t.Fatalf("netlify deploy: %d %s", r.Status, r.Raw)
	}
	clustertest.Eventually(t, 60*time.Second, "the branch preview's URLs at Netlify", func() bool {
		e, _ := netlify.Env("DATABASE_URL")
		branchOK, baseOK := false, 0
		for _, v := range e.Values {
			branchOK = branchOK || v.Context == "branch" && v.ContextParameter == branch && v.Value == pvPooled
			if v.Context != "branch" && v.Value == newPooled {
				baseOK++
			}
		}
		return branchOK && baseOK == 4
	})
	if pv := s.must(200, "GET", "/v1/projects/"+pid+"/preview-databases", nil).get("preview_databases").([]any); len(pv) != 1 {
		t.Fatalf("the second deployment of the branch made another preview: %v", pv)
	}

	// Secrets: neither token nor the hook secrets appear in answers, logs or jobs.
	checkNoSecret(t, s, answers, vercelToken, netlifyToken, vercel.HookSecret, hooks[0].Data["signature_secret"])

	// A token revoked at Vercel: the push fails for good, the integration is
	// in state error, and the job's error quotes Vercel, not the token.
	vercel.RevokeToken()
	failed := s.waitJob(s.must(202, "POST", base+"/vercel/sync", nil).str("job", "id"))
	if failed["state"] != "failed" || failed["retry_classification"] != "permanent" || !strings.Contains(failed["error"].(string), "Vercel answered 403") ||
		strings.Contains(failed["error"].(string), vercelToken) {
		t.Fatalf("sync with a revoked token: %v", failed)
	}
	for _, it := range s.must(200, "GET", base, nil).get("integrations").([]any) {
		if m := it.(map[string]any); m["provider"] == "vercel" && (m["state"] != "error" || m["config"].(map[string]any)["last_error"] == nil) {
			t.Fatalf("vercel after a refused push: %v", m)
		}
	}

	// Disconnect: gone from the list; syncing it is 404.
	s.must(200, "DELETE", base+"/vercel", nil)
	expectStatus(t, "sync after disconnect", s.req("POST", base+"/vercel/sync", bearer(s.key), nil), 404, "")
	if l := s.must(200, "GET", base, nil); len(l.get("integrations").([]any)) != 1 {
		t.Fatalf("after disconnect: %s", l.Raw)
	}
}
