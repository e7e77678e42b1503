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

// netlifyContexts are the contexts a value "all" stands for: Netlify does
// not mix "all" with per-context values, so a variable with branch values
// holds its base value once per context.
var netlifyContexts = []string{"production", "deploy-preview", "branch-deploy", "dev"}

// getEnv reads a site variable: GET /api/v1/accounts/{account}/env/{key}?site_id=
// (nil when it does not exist).
func (n *Netlify) getEnv(ctx context.Context, site *NetlifySite, key string) (*netlifyEnv, error) {
	var e netlifyEnv
	err := call(ctx, n.e.client(), "Netlify", http.MethodGet, n.url("/accounts/"+url.PathEscape(site.AccountSlug)+"/env/"+url.PathEscape(key),
		url.Values{"site_id": {site.ID}}), n.token, nil, &e)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// putEnv replaces a variable's values (PUT …/env/{key}, updateEnvVar) or
// creates it (POST …/env, createEnvVars).
func (n *Netlify) putEnv(ctx context.Context, site *NetlifySite, key string, exists bool, values []NetlifyValue) error {
	q := url.Values{"site_id": {site.ID}}
	acct := "/accounts/" + url.PathEscape(site.AccountSlug) + "/env"
	env := netlifyEnv{Key: key, Scopes: netlifyScopes, Values: values}
	if exists {
		return call(ctx, n.e.client(), "Netlify", http.MethodPut, n.url(acct+"/"+url.PathEscape(key), q), n.token, env, nil)
	}
	return call(ctx, n.e.client(), "Netlify", http.MethodPost, n.url(acct, q), n.token, []netlifyEnv{env}, nil)
}

// splitValues separates branch values from the base ones.
func splitValues(e *netlifyEnv) (base, branches []NetlifyValue) {
	if e == nil {
		return nil, nil
	}
	for _, v := range e.Values {
		if v.Context == "branch" {
			branches = append(branches, v)
		} else {
			base = append(base, v)
		}
	}
	return base, branches
}

func baseValues(value string, perContext bool) []NetlifyValue {
	if !perContext {
		return []NetlifyValue{{Context: "all", Value: value}}
	}
	out := make([]NetlifyValue, 0, len(netlifyContexts))
	for _, c := range netlifyContexts {
		out = append(out, NetlifyValue{Context: c, Value: value})
	}
	return out
}

// SetEnv sets a site variable's value in every deploy context, keeping the
// branch values other pushes made.
func (n *Netlify) SetEnv(ctx context.Context, site *NetlifySite, key, value string) error {
	cur, err := n.getEnv(ctx, site, key)
	if err != nil {
		return err
	}
	_, branches := splitValues(cur)
	return n.putEnv(ctx, site, key, cur != nil, append(baseValues(value, len(branches) > 0), branches...))
}

// SetBranchEnv sets a variable's value for one branch (context "branch"
// with the branch as context_parameter), keeping every other value.
func (n *Netlify) SetBranchEnv(ctx context.Context, site *NetlifySite, key, branch, value string) error {
	cur, err := n.getEnv(ctx, site, key)
	if err != nil {
		return err
	}
	base, branches := splitValues(cur)
	var values []NetlifyValue
	for _, v := range base {
		if v.Context == "all" {
			values = append(values, baseValues(v.Value, true)...)
		} else {
			values = append(values, v)
		}
	}
	for _, v := range branches {
		if v.ContextParameter != branch {
			values = append(values, v)
		}
	}
	values = append(values, NetlifyValue{Context: "branch", ContextParameter: branch, Value: value})
	return n.putEnv(ctx, site, key, cur != nil, values)
}

// CreateHook registers a URL notification for deploy_building whose
// deliveries are signed (X-Webhook-Signature JWS) with secret: POST /api/v1/hooks?site_id=.
func (n *Netlify) CreateHook(ctx context.Context, siteID, target, secret string) error {
	body := map[string]any{"site_id": siteID, "type": "url", "event": "deploy_building",
		"data": map[string]string{"url": target, "signature_secret": secret}}
	return call(ctx, n.e.client(), "Netlify", http.MethodPost, n.url("/hooks", url.Values{"site_id": {siteID}}), n.token, body, nil)
}
