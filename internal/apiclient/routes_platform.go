package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/wire"
)

// Routes the Terraform provider needs beyond the CLI's: single-object reads
// (so a 404 can drop a resource from state), approvals, webhook updates and
// the catalogue.

// GetPreview is GET /v1/preview-databases/{id}.
func (c *Client) GetPreview(ctx context.Context, previewID string) (*PreviewDatabase, error) {
	var out struct {
		Preview *PreviewDatabase `json:"preview"`
	}
	if err := c.get(ctx, "/v1/preview-databases/"+seg(previewID), nil, &out); err != nil {
		return nil, err
	}
	return out.Preview, nil
}

// GetOrganization is GET /v1/organizations/{org}.
func (c *Client) GetOrganization(ctx context.Context, orgID string) (*Organization, error) {
	var out struct {
		Organization *Organization `json:"organization"`
	}
	if err := c.get(ctx, orgPath(orgID), nil, &out); err != nil {
		return nil, err
	}
	return out.Organization, nil
}

// Cluster is a Postgres cluster projects are placed on.
type Cluster = wire.Cluster

// ListClusters is GET /v1/clusters.
func (c *Client) ListClusters(ctx context.Context) ([]Cluster, error) {
	var out struct {
		Clusters []Cluster `json:"clusters"`
	}
	err := c.get(ctx, "/v1/clusters", nil, &out)
	return nonNil(out.Clusters), err
}

// Approval is a minted single-use approval token (API.md §1.8).
type Approval struct {
	ID        string `json:"id"`
	Action    string `json:"action"`
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
	ProjectID string `json:"project_id"`
}

// CreateApproval is POST /v1/projects/{id}/approvals.
func (c *Client) CreateApproval(ctx context.Context, projectID, action string) (*Approval, error) {
	var out struct {
		Approval *Approval `json:"approval"`
	}
	if err := c.send(ctx, http.MethodPost, projectPath(projectID, "/approvals"), map[string]string{"action": action}, &out); err != nil {
		return nil, err
	}
	return out.Approval, nil
}

// UpdateWebhookRequest is the body of PATCH .../webhook-endpoints/{id};
// nil fields are left unchanged.
type UpdateWebhookRequest struct {
	URL         *string   `json:"url,omitempty"`
	Description *string   `json:"description,omitempty"`
	EventTypes  *[]string `json:"event_types,omitempty"`
	IsActive    *bool     `json:"is_active,omitempty"`
}

// UpdateWebhook is PATCH .../webhook-endpoints/{id}.
func (c *Client) UpdateWebhook(ctx context.Context, orgID, endpointID string, req UpdateWebhookRequest) (*WebhookEndpoint, error) {
	var out struct {
		Endpoint *WebhookEndpoint `json:"webhook_endpoint"`
	}
	err := c.send(ctx, http.MethodPatch, orgPath(orgID)+"/webhook-endpoints/"+seg(endpointID), req, &out)
	return out.Endpoint, err
}

// WaitJob polls GET /v1/jobs/{id} until the job is completed or failed
// (API.md §1.7) or ctx ends, first after poll, then doubling up to maxPoll
// (quick jobs finish fast; long ones don't spend the rate limit). A failed
// job is returned with an error carrying its message.
func (c *Client) WaitJob(ctx context.Context, jobID string, poll, maxPoll time.Duration) (*Job, error) {
	if jobID == "" {
		return nil, nil
	}
	var last *Job
	for {
		j, err := c.GetJob(ctx, jobID)
		if err != nil && ctx.Err() != nil && last != nil {
			// The deadline ran out during a poll: the job is as last seen.
			return last, fmt.Errorf("job %s (%s) is still %s: %w", last.ID, last.Type, last.State, ctx.Err())
		}
		if err != nil {
			return nil, err
		}
		last = j
		if j.Terminal() {
			if j.State == "failed" {
				msg := "no error message"
				if j.Error != nil {
					msg = *j.Error
				}
				return j, fmt.Errorf("job %s (%s) failed: %s", j.ID, j.Type, msg)
			}
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, fmt.Errorf("job %s (%s) is still %s: %w", j.ID, j.Type, j.State, ctx.Err())
		case <-time.After(poll):
		}
		poll = min(2*poll, max(maxPoll, poll))
	}
}
