package integrationstest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// VercelEnv is one stored variable of the Vercel stand-in.
type VercelEnv struct {
	Key       string   `json:"key"`
	Value     string   `json:"value"`
	Type      string   `json:"type"`
	Target    []string `json:"target"`
	GitBranch string   `json:"gitBranch,omitempty"`
}

// VercelHook is a webhook registered at the stand-in.
type VercelHook struct {
	URL        string   `json:"url"`
	Events     []string `json:"events"`
	ProjectIDs []string `json:"projectIds"`
	Secret     string   `json:"-"`
}

// Vercel stands in for the Vercel REST API routes CapyDB calls:
// GET /v9/projects/{idOrName}, POST /v10/projects/{idOrName}/env?upsert=true
// (array body), POST /v1/webhooks; every call with "Authorization: Bearer
// <token>" and, for a team, ?teamId=.
type Vercel struct {
	base
	ProjectID, ProjectName, TeamID string
	env                            []VercelEnv
	hooks                          []VercelHook
	// HookSecret is what POST /v1/webhooks answers as the signing secret.
	HookSecret string
}

// NewVercel starts a Vercel stand-in with one project in team teamID ("" =
// personal account).
func NewVercel(t testing.TB, token, projectID, projectName, teamID string) *Vercel {
	v := &Vercel{ProjectID: projectID, ProjectName: projectName, TeamID: teamID, HookSecret: "vercelhooksecret0123456789"}
	v.token = token
	v.start(t, v.serve)
	return v
}

// Env returns the stored variables.
func (v *Vercel) Env() []VercelEnv {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.env)
}

// Hooks returns the registered webhooks.
func (v *Vercel) Hooks() []VercelHook {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.hooks)
}

var vercelTargets = []string{"production", "preview", "development"}
var vercelTypes = []string{"system", "secret", "encrypted", "plain", "sensitive"}

func (v *Vercel) serve(w http.ResponseWriter, r *http.Request) {
	if !v.authorized(r) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]string{"code": "forbidden",
			"message": "Not authorized", "invalidToken": "true"}})
		return
	}
	if r.URL.Query().Get("teamId") != v.TeamID {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]string{"code": "forbidden",
			"message": "You don't have permission to access this team's resources"}})
		return
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v9/projects/") && strings.Count(path, "/") == 3:
		if !v.isProject(strings.TrimPrefix(path, "/v9/projects/")) {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "not_found", "message": "Project not found"}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": v.ProjectID, "name": v.ProjectName, "accountId": "team_or_user"})
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/v10/projects/") && strings.HasSuffix(path, "/env"):
		if !v.isProject(strings.TrimSuffix(strings.TrimPrefix(path, "/v10/projects/"), "/env")) {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "not_found", "message": "Project not found"}})
			return
		}
		if r.URL.Query().Get("upsert") != "true" {
			v.reject(w, r, "env writes of an existing key need ?upsert=true")
			return
		}
		var envs []VercelEnv
		if !v.readJSON(w, r, &envs) {
			return
		}
		for _, e := range envs {
			if e.Key == "" || e.Value == "" || !slices.Contains(vercelTypes, e.Type) || len(e.Target) == 0 {
				v.reject(w, r, "each variable needs key, value, a known type and at least one target")
				return
			}
			for _, tg := range e.Target {
				if !slices.Contains(vercelTargets, tg) {
					v.reject(w, r, "unknown target "+tg)
					return
				}
			}
			if e.GitBranch != "" && !slices.Equal(e.Target, []string{"preview"}) {
				v.reject(w, r, "gitBranch is only allowed with the preview target alone")
				return
			}
		}
		v.mu.Lock()
		for _, e := range envs {
			v.env = slices.DeleteFunc(v.env, func(o VercelEnv) bool {
				return o.Key == e.Key && o.GitBranch == e.GitBranch && slices.Equal(o.Target, e.Target)
			})
			v.env = append(v.env, e)
		}
		v.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"created": envs, "failed": []any{}})
	case r.Method == http.MethodPost && path == "/v1/webhooks":
		var h VercelHook
		if !v.readJSON(w, r, &h) {
			return
		}
		if !strings.HasPrefix(h.URL, "http") || len(h.Events) == 0 || !slices.Equal(h.ProjectIDs, []string{v.ProjectID}) {
			v.reject(w, r, "webhook needs url, events and this project's id in projectIds")
			return
		}
		h.Secret = v.HookSecret
		v.mu.Lock()
		v.hooks = append(v.hooks, h)
		v.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"id": "hook_1", "url": h.URL, "events": h.Events, "secret": h.Secret})
	default:
		v.reject(w, r, "not a route of the Vercel API this server uses")
	}
}

func (v *Vercel) isProject(idOrName string) bool {
	return idOrName == v.ProjectID || idOrName == v.ProjectName
}
