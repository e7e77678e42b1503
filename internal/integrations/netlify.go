package integrations

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Netlify is the Netlify API (open-api.netlify.com) with a personal access token.
type Netlify struct {
	e     Endpoints
	token string
}

// NewNetlify returns a Netlify client.
func (e Endpoints) NewNetlify(token string) *Netlify { return &Netlify{e: e, token: token} }

func (n *Netlify) url(path string, q url.Values) string {
	return withQuery(orDefault(n.e.Netlify, DefaultNetlifyURL)+"/api/v1"+path, q)
}

// NetlifySite is the part of a site we read. The environment-variable
// routes are under the account, named by its slug (as netlify-cli does).
type NetlifySite struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	AccountSlug string `json:"account_slug"`
}

// Site reads a site: GET /api/v1/sites/{site_id}.
func (n *Netlify) Site(ctx context.Context, siteID string) (*NetlifySite, error) {
	var s NetlifySite
	if err := call(ctx, n.e.client(), "Netlify", http.MethodGet, n.url("/sites/"+url.PathEscape(siteID), nil), n.token, nil, &s); err != nil {
		return nil, err
	}
	if s.AccountSlug == "" {
		return nil, &APIError{Provider: "Netlify", Status: http.StatusBadGateway, Message: "the site has no account_slug"}
	}
	return &s, nil
}

// NetlifyValue is one value of a variable in one deploy context.
type NetlifyValue struct {
	Context          string `json:"context"`
	Value            string `json:"value"`
	ContextParameter string `json:"context_parameter,omitempty"`
}

type netlifyEnv struct {
	Key    string         `json:"key"`
	Scopes []string       `json:"scopes"`
	Values []NetlifyValue `json:"values"`
}

var netlifyScopes = []string{"builds", "functions", "runtime", "post-processing"}

// SetEnv sets a site variable to one value in every context: PUT
// /api/v1/accounts/{account}/env/{key}?site_id= (updateEnvVar), and when the
// variable does not exist yet, POST /api/v1/accounts/{account}/env?site_id=
// (createEnvVars).
func (n *Netlify) SetEnv(ctx context.Context, site *NetlifySite, key, value string) error {
	q := url.Values{"site_id": {site.ID}}
	acct := "/accounts/" + url.PathEscape(site.AccountSlug) + "/env"
	env := netlifyEnv{Key: key, Scopes: netlifyScopes, Values: []NetlifyValue{{Context: "all", Value: value}}}
	err := call(ctx, n.e.client(), "Netlify", http.MethodPut, n.url(acct+"/"+url.PathEscape(key), q), n.token, env, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return call(ctx, n.e.client(), "Netlify", http.MethodPost, n.url(acct, q), n.token, []netlifyEnv{env}, nil)
	}
	return err
}

// CreateHook registers a URL notification for deploy_building whose
// deliveries are signed (X-Webhook-Signature JWS) with secret: POST /api/v1/hooks?site_id=.
func (n *Netlify) CreateHook(ctx context.Context, siteID, target, secret string) error {
	body := map[string]any{"site_id": siteID, "type": "url", "event": "deploy_building",
		"data": map[string]string{"url": target, "signature_secret": secret}}
	return call(ctx, n.e.client(), "Netlify", http.MethodPost, n.url("/hooks", url.Values{"site_id": {siteID}}), n.token, body, nil)
}
