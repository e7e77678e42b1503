package integrationstest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// NetlifyValue is one value of a Netlify variable.
type NetlifyValue struct {
	Context          string `json:"context"`
	Value            string `json:"value"`
	ContextParameter string `json:"context_parameter,omitempty"`
}

// NetlifyEnv is one variable of the Netlify stand-in.
type NetlifyEnv struct {
	Key    string         `json:"key"`
	Scopes []string       `json:"scopes"`
	Values []NetlifyValue `json:"values"`
}

// NetlifyHook is a registered notification hook.
type NetlifyHook struct {
	SiteID string            `json:"site_id"`
	Type   string            `json:"type"`
	Event  string            `json:"event"`
	Data   map[string]string `json:"data"`
}

// Netlify stands in for the Netlify API routes CapyDB calls:
// GET /api/v1/sites/{site_id}; GET and PUT /api/v1/accounts/{account}/env/{key}?site_id=
// (404 for a new key), POST /api/v1/accounts/{account}/env?site_id= (array);
// POST /api/v1/hooks?site_id=; every call with "Authorization: Bearer <token>".
type Netlify struct {
	base
	SiteID, AccountSlug string
	env                 map[string]NetlifyEnv
	hooks               []NetlifyHook
}

// NewNetlify starts a Netlify stand-in with one site of one account.
func NewNetlify(t testing.TB, token, siteID, accountSlug string) *Netlify {
	n := &Netlify{SiteID: siteID, AccountSlug: accountSlug, env: map[string]NetlifyEnv{}}
	n.token = token
	n.start(t, n.serve)
	return n
}

// Env returns the stored variable key ("" when missing).
func (n *Netlify) Env(key string) (NetlifyEnv, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.env[key]
	return e, ok
}

// Hooks returns the registered hooks.
func (n *Netlify) Hooks() []NetlifyHook {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.hooks)
}

var netlifyContexts = []string{"all", "dev", "branch-deploy", "deploy-preview", "production", "branch"}
var netlifyScopes = []string{"builds", "functions", "runtime", "post-processing"}

func (n *Netlify) checkEnv(w http.ResponseWriter, r *http.Request, e NetlifyEnv) bool {
	if e.Key == "" || len(e.Values) == 0 {
		n.reject(w, r, "a variable needs key and values")
		return false
	}
	for _, s := range e.Scopes {
		if !slices.Contains(netlifyScopes, s) {
			n.reject(w, r, "unknown scope "+s)
			return false
		}
	}
	seen := map[string]bool{}
	for _, v := range e.Values {
		if !slices.Contains(netlifyContexts, v.Context) || (v.Context == "branch") != (v.ContextParameter != "") {
			n.reject(w, r, "bad context "+v.Context)
			return false
		}
		if seen[v.Context+"/"+v.ContextParameter] || v.Context == "all" && len(e.Values) > 1 {
			// Netlify: one value per context; "all" stands alone.
			n.reject(w, r, "context "+v.Context+" given twice, or all mixed with other contexts")
			return false
		}
		seen[v.Context+"/"+v.ContextParameter] = true
	}
	return true
}

func (n *Netlify) serve(w http.ResponseWriter, r *http.Request) {
	if !n.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Access Denied"})
		return
	}
	path, q := r.URL.Path, r.URL.Query()
	acct := "/api/v1/accounts/" + n.AccountSlug + "/env"
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/sites/"):
		if strings.TrimPrefix(path, "/api/v1/sites/") != n.SiteID {
			writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "message": "Not Found"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": n.SiteID, "site_id": n.SiteID, "name": "site", "account_slug": n.AccountSlug})
	case strings.HasPrefix(path, acct):
		if q.Get("site_id") != n.SiteID {
			n.reject(w, r, "site-level variables need ?site_id= of the site")
			return
		}
		key := strings.TrimPrefix(strings.TrimPrefix(path, acct), "/")
		switch {
		case r.Method == http.MethodGet && key != "":
			n.mu.Lock()
			e, ok := n.env[key]
			n.mu.Unlock()
			if !ok {
				writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "message": "Environment variable not found"})
				return
			}
			writeJSON(w, http.StatusOK, e)
		case r.Method == http.MethodPut && key != "":
			var e NetlifyEnv
			if !n.readJSON(w, r, &e) || !n.checkEnv(w, r, e) {
				return
			}
			n.mu.Lock()
			_, ok := n.env[key]
			if ok && e.Key == key {
				n.env[key] = e
			}
			n.mu.Unlock()
			if !ok {
				writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "message": "Environment variable not found"})
				return
			}
			writeJSON(w, http.StatusOK, e)
		case r.Method == http.MethodPost && key == "":
			var envs []NetlifyEnv
			if !n.readJSON(w, r, &envs) {
				return
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, e := range envs {
				if !n.checkEnv(w, r, e) {
					return
				}
				if _, ok := n.env[e.Key]; ok {
					writeJSON(w, http.StatusBadRequest, map[string]any{"code": 400, "message": "Environment variable " + e.Key + " already exists"})
					return
				}
			}
			for _, e := range envs {
				n.env[e.Key] = e
			}
			writeJSON(w, http.StatusCreated, envs)
		default:
			n.reject(w, r, "not an env route this server uses")
		}
	case r.Method == http.MethodPost && path == "/api/v1/hooks":
		var h NetlifyHook
		if !n.readJSON(w, r, &h) {
			return
		}
		if h.SiteID != n.SiteID || q.Get("site_id") != n.SiteID || h.Type != "url" || h.Event == "" || h.Data["url"] == "" {
			n.reject(w, r, "a url hook needs site_id, type url, event and data.url")
			return
		}
		n.mu.Lock()
		n.hooks = append(n.hooks, h)
		n.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"id": "hook_1", "site_id": h.SiteID, "type": h.Type, "event": h.Event, "data": h.Data})
	default:
		n.reject(w, r, "not a route of the Netlify API this server uses")
	}
}
