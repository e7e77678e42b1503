package apiclient

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// One method per API route the CLI uses (API.md §2). Lists are never nil.

// Me is GET /v1/me.
func (c *Client) Me(ctx context.Context) (*Viewer, error) {
	var v Viewer
	return &v, c.get(ctx, "/v1/me", nil, &v)
}

// MeWithHeader is GET /v1/me with the response header (X-CapyDB-Version).
func (c *Client) MeWithHeader(ctx context.Context) (*Viewer, http.Header, error) {
	var v Viewer
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/me"}, &v)
	if err != nil {
		return nil, nil, err
	}
	return &v, resp.Header, nil
}

// Status is GET /status (anonymous); the response header carries X-CapyDB-Version.
func (c *Client) Status(ctx context.Context) (*Status, http.Header, error) {
	var s Status
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/status", NoAuth: true}, &s)
	if err != nil {
		return nil, nil, err
	}
	return &s, resp.Header, nil
}

// Regions is GET /v1/regions.
func (c *Client) Regions(ctx context.Context) ([]RegionDetail, error) {
	var out struct {
		Regions       []string       `json:"regions"`
		RegionDetails []RegionDetail `json:"region_details"`
	}
	if err := c.get(ctx, "/v1/regions", nil, &out); err != nil {
		return nil, err
	}
	if len(out.RegionDetails) == 0 {
		for _, r := range out.Regions {
			out.RegionDetails = append(out.RegionDetails, RegionDetail{ID: r, DisplayName: r})
		}
	}
	return nonNil(out.RegionDetails), nil
}

// PostgresVersions is GET /v1/postgres-versions.
func (c *Client) PostgresVersions(ctx context.Context) ([]PostgresVersion, error) {
	var out struct {
		Versions []PostgresVersion `json:"versions"`
	}
	err := c.get(ctx, "/v1/postgres-versions", nil, &out)
	return nonNil(out.Versions), err
}

// ListProjects is GET /v1/projects.
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	var out struct {
		Projects []Project `json:"projects"`
	}
	err := c.get(ctx, "/v1/projects", nil, &out)
	return nonNil(out.Projects), err
}

// GetProject is GET /v1/projects/{id}.
func (c *Client) GetProject(ctx context.Context, id string) (*Project, error) {
	var out struct {
		Project *Project `json:"project"`
	}
	if err := c.get(ctx, "/v1/projects/"+seg(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Project, nil
}

// CreateProject is POST /v1/projects.
func (c *Client) CreateProject(ctx context.Context, req CreateProjectRequest) (*Project, *Job, error) {
	var out struct {
		Project *Project `json:"project"`
		Job     *Job     `json:"job"`
	}
	if err := c.send(ctx, http.MethodPost, "/v1/projects", req, &out); err != nil {
		return nil, nil, err
	}
	return out.Project, out.Job, nil
}

// UpdateProject is PATCH /v1/projects/{id} with {environment?, always_on?}.
func (c *Client) UpdateProject(ctx context.Context, id string, body map[string]any) (*Project, error) {
	var out struct {
		Project *Project `json:"project"`
	}
	if err := c.send(ctx, http.MethodPatch, "/v1/projects/"+seg(id), body, &out); err != nil {
		return nil, err
	}
	return out.Project, nil
}

// DeleteProject is DELETE /v1/projects/{id}?approval_token=.
func (c *Client) DeleteProject(ctx context.Context, id, approvalToken string) (*Job, error) {
	var q url.Values
	if approvalToken != "" {
		q = url.Values{"approval_token": {approvalToken}}
	}
	var out jobEnvelope
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: "/v1/projects/" + seg(id), Query: q}, &out)
	return out.Job, err
}

// RetryProvisioning is POST /v1/projects/{id}/retry-provisioning.
func (c *Client) RetryProvisioning(ctx context.Context, id string) (*Job, error) {
	var out jobEnvelope
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/projects/" + seg(id) + "/retry-provisioning"}, &out)
	return out.Job, err
}

// Connections is GET /v1/projects/{id}/connections.
func (c *Client) Connections(ctx context.Context, projectID string) (*ConnectionInfo, error) {
	return c.connections(ctx, "/v1/projects/"+seg(projectID)+"/connections")
}

// PreviewConnections is GET /v1/preview-databases/{id}/connections.
func (c *Client) PreviewConnections(ctx context.Context, previewID string) (*ConnectionInfo, error) {
	return c.connections(ctx, "/v1/preview-databases/"+seg(previewID)+"/connections")
}

func (c *Client) connections(ctx context.Context, path string) (*ConnectionInfo, error) {
	var out struct {
		Connections *ConnectionInfo `json:"connections"`
	}
	if err := c.get(ctx, path, nil, &out); err != nil {
		return nil, err
	}
	if out.Connections == nil {
		out.Connections = &ConnectionInfo{}
	}
	return out.Connections, nil
}

// RotateCredentials is POST .../credentials/rotate; the body is sent only
// when graceHours > 0.
func (c *Client) RotateCredentials(ctx context.Context, projectID string, graceHours int) (*Job, error) {
	var body any
	if graceHours > 0 {
		body = map[string]int{"grace_hours": graceHours}
	}
	return c.postJob(ctx, "/v1/projects/"+seg(projectID)+"/credentials/rotate", body)
}

type jobEnvelope struct {
	Job *Job `json:"job"`
}

func (c *Client) postJob(ctx context.Context, path string, body any) (*Job, error) {
	var out jobEnvelope
	err := c.send(ctx, http.MethodPost, path, body, &out)
	return out.Job, err
}

// GetJob is GET /v1/jobs/{id}.
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	var out jobEnvelope
	if err := c.get(ctx, "/v1/jobs/"+seg(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Job, nil
}

// ListJobs is GET /v1/projects/{id}/jobs (limit 0 = the server's default).
func (c *Client) ListJobs(ctx context.Context, projectID string, limit int) ([]Job, error) {
	var out struct {
		Jobs []Job `json:"jobs"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/jobs", limitQuery(limit), &out)
	return nonNil(out.Jobs), err
}

// ListPreviews is GET /v1/projects/{id}/preview-databases.
func (c *Client) ListPreviews(ctx context.Context, projectID string) ([]PreviewDatabase, error) {
	var out struct {
		Previews []PreviewDatabase `json:"preview_databases"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/preview-databases", nil, &out)
	return nonNil(out.Previews), err
}

// CreatePreview is POST /v1/projects/{id}/preview-databases.
func (c *Client) CreatePreview(ctx context.Context, projectID string, req CreatePreviewRequest) (*PreviewDatabase, *Job, error) {
	var out struct {
		Preview *PreviewDatabase `json:"preview"`
		Job     *Job             `json:"job"`
	}
	if err := c.send(ctx, http.MethodPost, "/v1/projects/"+seg(projectID)+"/preview-databases", req, &out); err != nil {
		return nil, nil, err
	}
	return out.Preview, out.Job, nil
}

// ExtendPreview is POST /v1/preview-databases/{id}/extend.
func (c *Client) ExtendPreview(ctx context.Context, previewID string, ttlHours int) (*PreviewDatabase, error) {
	var out struct {
		Preview *PreviewDatabase `json:"preview"`
	}
	err := c.send(ctx, http.MethodPost, "/v1/preview-databases/"+seg(previewID)+"/extend", map[string]int{"ttl_hours": ttlHours}, &out)
	return out.Preview, err
}

// ResetPreview is POST /v1/preview-databases/{id}/reset (no body).
func (c *Client) ResetPreview(ctx context.Context, previewID string) (*Job, error) {
	return c.postJob(ctx, "/v1/preview-databases/"+seg(previewID)+"/reset", nil)
}

// DeletePreview is DELETE /v1/preview-databases/{id}.
func (c *Client) DeletePreview(ctx context.Context, previewID string) (*Job, error) {
	var out jobEnvelope
	err := c.send(ctx, http.MethodDelete, "/v1/preview-databases/"+seg(previewID), nil, &out)
	return out.Job, err
}

func orgPath(orgID string) string { return "/v1/organizations/" + seg(orgID) }

// ListAPIKeys is GET /v1/organizations/{org}/api-keys.
func (c *Client) ListAPIKeys(ctx context.Context, orgID string) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"api_keys"`
	}
	err := c.get(ctx, orgPath(orgID)+"/api-keys", nil, &out)
	return nonNil(out.Keys), err
}

// CreateAPIKey is POST /v1/organizations/{org}/api-keys; it returns the key
// and its plaintext (shown only here).
func (c *Client) CreateAPIKey(ctx context.Context, orgID string, req CreateAPIKeyRequest) (*APIKey, string, error) {
	var out struct {
		Key       *APIKey `json:"api_key"`
		Plaintext string  `json:"plaintext_api_key"`
	}
	if err := c.send(ctx, http.MethodPost, orgPath(orgID)+"/api-keys", req, &out); err != nil {
		return nil, "", err
	}
	return out.Key, out.Plaintext, nil
}

// RevokeAPIKey is DELETE /v1/organizations/{org}/api-keys/{id}.
func (c *Client) RevokeAPIKey(ctx context.Context, orgID, keyID string) error {
	return c.send(ctx, http.MethodDelete, orgPath(orgID)+"/api-keys/"+seg(keyID), nil, nil)
}

// ListWebhooks is GET .../webhook-endpoints.
func (c *Client) ListWebhooks(ctx context.Context, orgID string) ([]WebhookEndpoint, error) {
	var out struct {
		Endpoints []WebhookEndpoint `json:"webhook_endpoints"`
	}
	err := c.get(ctx, orgPath(orgID)+"/webhook-endpoints", nil, &out)
	return nonNil(out.Endpoints), err
}

type endpointSecret struct {
	Endpoint  *WebhookEndpoint `json:"webhook_endpoint"`
	Plaintext string           `json:"plaintext_secret"`
}

// CreateWebhook is POST .../webhook-endpoints; it returns the endpoint and
// its signing secret (shown only here and on rotation).
func (c *Client) CreateWebhook(ctx context.Context, orgID string, req CreateWebhookRequest) (*WebhookEndpoint, string, error) {
	var out endpointSecret
	if err := c.send(ctx, http.MethodPost, orgPath(orgID)+"/webhook-endpoints", req, &out); err != nil {
		return nil, "", err
	}
	return out.Endpoint, out.Plaintext, nil
}

// DeleteWebhook is DELETE .../webhook-endpoints/{id}.
func (c *Client) DeleteWebhook(ctx context.Context, orgID, endpointID string) error {
	return c.send(ctx, http.MethodDelete, orgPath(orgID)+"/webhook-endpoints/"+seg(endpointID), nil, nil)
}

// RotateWebhookSecret is POST .../webhook-endpoints/{id}/rotate-secret.
func (c *Client) RotateWebhookSecret(ctx context.Context, orgID, endpointID string) (*WebhookEndpoint, string, error) {
	var out endpointSecret
	if err := c.send(ctx, http.MethodPost, orgPath(orgID)+"/webhook-endpoints/"+seg(endpointID)+"/rotate-secret", nil, &out); err != nil {
		return nil, "", err
	}
	return out.Endpoint, out.Plaintext, nil
}

// ListDeliveries is GET .../webhook-endpoints/{id}/deliveries.
func (c *Client) ListDeliveries(ctx context.Context, orgID, endpointID string, limit int) ([]WebhookDelivery, error) {
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	err := c.get(ctx, orgPath(orgID)+"/webhook-endpoints/"+seg(endpointID)+"/deliveries", limitQuery(limit), &out)
	return nonNil(out.Deliveries), err
}

// TestWebhook is POST .../webhook-endpoints/{id}/test.
func (c *Client) TestWebhook(ctx context.Context, orgID, endpointID string) (*WebhookDelivery, error) {
	var out struct {
		Delivery *WebhookDelivery `json:"delivery"`
	}
	err := c.send(ctx, http.MethodPost, orgPath(orgID)+"/webhook-endpoints/"+seg(endpointID)+"/test", nil, &out)
	return out.Delivery, err
}

// RedeliverWebhook is POST .../deliveries/{id}/redeliver.
func (c *Client) RedeliverWebhook(ctx context.Context, orgID, endpointID, deliveryID string) (*WebhookDelivery, error) {
	var out struct {
		Delivery *WebhookDelivery `json:"delivery"`
	}
	err := c.send(ctx, http.MethodPost, orgPath(orgID)+"/webhook-endpoints/"+seg(endpointID)+"/deliveries/"+seg(deliveryID)+"/redeliver", nil, &out)
	return out.Delivery, err
}

// StartLogin is POST /v1/cli/login/sessions, sent without credentials.
func (c *Client) StartLogin(ctx context.Context, req LoginStartRequest) (*LoginSession, error) {
	var out LoginSession
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/cli/login/sessions", Body: req, NoAuth: true}, &out)
	return &out, err
}

// PollLogin is GET /v1/cli/login/sessions/{id} with the poll token in a header.
func (c *Client) PollLogin(ctx context.Context, sessionID, pollToken string) (*LoginSession, error) {
	var out LoginSession
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/cli/login/sessions/" + seg(sessionID),
		Header: map[string]string{"X-CapyDB-Poll-Token": pollToken}, NoAuth: true}, &out)
	return &out, err
}

func limitQuery(limit int) url.Values {
	if limit <= 0 {
		return nil
	}
	return url.Values{"limit": {strconv.Itoa(limit)}}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CACert is GET /v1/ca.pem (anonymous): the PEM CA certificate of the
// database ports. A 404 *Error means the server hands out none.
func (c *Client) CACert(ctx context.Context) ([]byte, error) {
	resp, body, err := c.once(ctx, Request{Method: http.MethodGet, Path: "/v1/ca.pem", NoAuth: true}, nil)
	if err != nil {
		return nil, &NetworkError{Base: c.BaseURL, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp.StatusCode, body)
	}
	if !bytes.Contains(body, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("unexpected answer from GET /v1/ca.pem: no PEM certificate")
	}
	return body, nil
}
