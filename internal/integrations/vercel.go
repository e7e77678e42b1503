package integrations

import (
	"context"
	"net/http"
	"net/url"
)

// Vercel is the Vercel REST API (vercel.com/docs/rest-api) with one access token.
type Vercel struct {
	e      Endpoints
	token  string
	teamID string
}

// NewVercel returns a Vercel client; teamID ("" = personal account) is sent
// as ?teamId= on every call, as the API asks for team resources.
func (e Endpoints) NewVercel(token, teamID string) *Vercel {
	return &Vercel{e: e, token: token, teamID: teamID}
}

func (v *Vercel) url(path string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	if v.teamID != "" {
		q.Set("teamId", v.teamID)
	}
	return withQuery(orDefault(v.e.Vercel, DefaultVercelURL)+path, q)
}

// VercelProject is the part of a Vercel project we read.
type VercelProject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Project finds a project by id or name: GET /v9/projects/{idOrName}.
func (v *Vercel) Project(ctx context.Context, idOrName string) (*VercelProject, error) {
	var p VercelProject
	if err := call(ctx, v.e.client(), "Vercel", http.MethodGet, v.url("/v9/projects/"+url.PathEscape(idOrName), nil), v.token, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// VercelEnv is one environment variable of POST /v10/projects/{id}/env.
type VercelEnv struct {
	Key       string   `json:"key"`
	Value     string   `json:"value"`
	Type      string   `json:"type"`
	Target    []string `json:"target"`
	GitBranch string   `json:"gitBranch,omitempty"`
}

// UpsertEnv creates or replaces variables: POST /v10/projects/{id}/env?upsert=true
// with an array body. Values are typed "encrypted" (Vercel stores them encrypted).
func (v *Vercel) UpsertEnv(ctx context.Context, projectID string, envs []VercelEnv) error {
	return call(ctx, v.e.client(), "Vercel", http.MethodPost,
		v.url("/v10/projects/"+url.PathEscape(projectID)+"/env", url.Values{"upsert": {"true"}}), v.token, envs, nil)
}

// VercelWebhook is the answer of POST /v1/webhooks; Secret signs deliveries.
type VercelWebhook struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// CreateWebhook registers a webhook for deployment.created of one project.
func (v *Vercel) CreateWebhook(ctx context.Context, projectID, target string) (*VercelWebhook, error) {
	var w VercelWebhook
	body := map[string]any{"url": target, "events": []string{"deployment.created"}, "projectIds": []string{projectID}}
	if err := call(ctx, v.e.client(), "Vercel", http.MethodPost, v.url("/v1/webhooks", nil), v.token, body, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
