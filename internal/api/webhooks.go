package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/webhooks"
	"github.com/capydb/capydb/internal/wire"
)

// WebhookEndpoint is the wire form of a webhook endpoint.
type WebhookEndpoint = wire.WebhookEndpoint

func toWebhookEndpoint(e *store.WebhookEndpoint) *WebhookEndpoint {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return &WebhookEndpoint{
		ID: e.ID, OrganizationID: e.OrganizationID, URL: e.URL, Description: e.Description, EventTypes: types,
		IsActive: e.IsActive, Health: webhooks.Health(e), CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
}

// WebhookDelivery is the wire form of one delivery.
type WebhookDelivery = wire.WebhookDelivery

func toWebhookDelivery(d *store.WebhookDelivery) *WebhookDelivery {
	out := &WebhookDelivery{
		ID: d.ID, OrganizationID: d.OrganizationID, EndpointID: d.EndpointID, EventType: d.EventType,
		EventID: d.EventID, Payload: d.Payload, State: d.State, Attempts: d.Attempts, MaxAttempts: d.MaxAttempts,
		ResponseStatus: d.ResponseStatus, LastError: d.LastError, DeliveredAt: utcp(d.DeliveredAt),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
	if d.State == store.DeliveryPending {
		out.NextAttemptAt = utcp(d.NextAttemptAt)
	}
	return out
}

// WebhookOrgPath names an organization.
type WebhookOrgPath struct {
	OrgID string `path:"orgID"`
}

// WebhookEndpointPath names an endpoint of an organization.
type WebhookEndpointPath struct {
	OrgID      string `path:"orgID"`
	EndpointID string `path:"endpointID"`
}

// CreateWebhookEndpointBody is CreateWebhookEndpointRequest.
type CreateWebhookEndpointBody = wire.CreateWebhookEndpointBody

// CreateWebhookEndpointInput wraps it.
type CreateWebhookEndpointInput struct {
	OrgID string `path:"orgID"`
	Body  CreateWebhookEndpointBody
}

// UpdateWebhookEndpointBody is UpdateWebhookEndpointRequest: omitted = unchanged.
type UpdateWebhookEndpointBody struct {
	URL         *string   `json:"url,omitempty"`
	Description *string   `json:"description,omitempty" doc:"\"\" removes the description"`
	EventTypes  *[]string `json:"event_types,omitempty" doc:"[] = all events"`
	IsActive    *bool     `json:"is_active,omitempty"`
}

// UpdateWebhookEndpointInput wraps it.
type UpdateWebhookEndpointInput struct {
	OrgID      string `path:"orgID"`
	EndpointID string `path:"endpointID"`
	Body       UpdateWebhookEndpointBody
}

// WebhookEmptyBody is the optional, field-less body of action routes: none, empty
// or {} are all accepted; anything else names the unknown field.
type WebhookEmptyBody struct{}

// WebhookActionInput is an action on an endpoint (rotate, test).
type WebhookActionInput struct {
	OrgID      string            `path:"orgID"`
	EndpointID string            `path:"endpointID"`
	Body       *WebhookEmptyBody `required:"false"`
}

// RedeliverInput names a delivery to send again.
type RedeliverInput struct {
	OrgID      string            `path:"orgID"`
	EndpointID string            `path:"endpointID"`
	DeliveryID string            `path:"deliveryID"`
	Body       *WebhookEmptyBody `required:"false"`
}

// ListDeliveriesInput is GET .../deliveries.
type ListDeliveriesInput struct {
	OrgID      string `path:"orgID"`
	EndpointID string `path:"endpointID"`
	Limit      int    `query:"limit" minimum:"0" doc:"default 25, max 100"`
}

// WebhookEndpointsOutput is {webhook_endpoints}.
type WebhookEndpointsOutput struct {
	Body struct {
		WebhookEndpoints []*WebhookEndpoint `json:"webhook_endpoints"`
	}
}

// WebhookEndpointOutput is {webhook_endpoint}.
type WebhookEndpointOutput struct {
	Body struct {
		WebhookEndpoint *WebhookEndpoint `json:"webhook_endpoint"`
	}
}

// WebhookEndpointSecretOutput is {webhook_endpoint, plaintext_secret}.
type WebhookEndpointSecretOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		WebhookEndpoint *WebhookEndpoint `json:"webhook_endpoint"`
		PlaintextSecret string           `json:"plaintext_secret" doc:"whsec_… signing secret; shown only in this response"`
	}
}

// WebhookDeletedOutput is {deleted: true}.
type WebhookDeletedOutput struct {
	Body struct {
		Deleted bool `json:"deleted"`
	}
}

// WebhookDeliveriesOutput is {deliveries}.
type WebhookDeliveriesOutput struct {
	Body struct {
		Deliveries []*WebhookDelivery `json:"deliveries"`
	}
}

// WebhookDeliveryOutput is {delivery}.
type WebhookDeliveryOutput struct {
	Body struct {
		Delivery *WebhookDelivery `json:"delivery"`
	}
}

const (
	msgEndpointNotFound = "webhook endpoint not found"
	msgDeliveryNotFound = "webhook delivery not found"
)

func (s *Server) registerWebhooks() {
	tags := []string{"webhooks"}
	base := "/v1/organizations/{orgID}/webhook-endpoints"
	read := func(id, method, path string) AccessRule {
		return AccessRule{OperationID: id, Method: method, Path: path, Scope: auth.ScopeOrganizationsRead, OrgKeyOnly: true}
	}
	write := func(id, method, path string) AccessRule {
		return AccessRule{OperationID: id, Method: method, Path: path, Scope: auth.ScopeOrganizationsWrite, OrgKeyOnly: true, AdminOnly: true}
	}

	register(s, opSpec{AccessRule: read("listWebhookEndpoints", http.MethodGet, base),
		Summary: "List webhook endpoints", Tags: tags}, s.listWebhookEndpoints)

	register(s, opSpec{AccessRule: write("createWebhookEndpoint", http.MethodPost, base), Status: http.StatusCreated,
		Summary: "Create a webhook endpoint (returns its signing secret once)", Tags: tags}, s.createWebhookEndpoint)

	register(s, opSpec{AccessRule: write("updateWebhookEndpoint", http.MethodPatch, base+"/{endpointID}"),
		Summary: "Change a webhook endpoint", Tags: tags}, s.updateWebhookEndpoint)

	register(s, opSpec{AccessRule: write("deleteWebhookEndpoint", http.MethodDelete, base+"/{endpointID}"),
		Summary: "Delete a webhook endpoint (cancels its pending deliveries)", Tags: tags}, s.deleteWebhookEndpoint)

	register(s, opSpec{AccessRule: write("rotateWebhookEndpointSecret", http.MethodPost, base+"/{endpointID}/rotate-secret"),
		Summary: "Rotate a webhook endpoint's signing secret", Tags: tags}, s.rotateWebhookEndpointSecret)

	register(s, opSpec{AccessRule: read("listWebhookDeliveries", http.MethodGet, base+"/{endpointID}/deliveries"),
		Summary: "List an endpoint's deliveries, newest first", Tags: tags}, s.listWebhookDeliveries)

	register(s, opSpec{AccessRule: write("testWebhookEndpoint", http.MethodPost, base+"/{endpointID}/test"), Status: http.StatusCreated,
		Summary: "Send a webhook.test event to an endpoint (one attempt)", Tags: tags}, s.testWebhookEndpoint)

	register(s, opSpec{AccessRule: write("redeliverWebhookDelivery", http.MethodPost, base+"/{endpointID}/deliveries/{deliveryID}/redeliver"),
		Status: http.StatusCreated, Summary: "Send a delivery's event again as a new delivery", Tags: tags}, s.redeliverWebhookDelivery)
}

func (s *Server) listWebhookEndpoints(ctx context.Context, in *WebhookOrgPath) (*WebhookEndpointsOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	eps, err := store.ListWebhookEndpoints(ctx, s.deps.Store.Pool, orgID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &WebhookEndpointsOutput{}
	out.Body.WebhookEndpoints = make([]*WebhookEndpoint, 0, len(eps))
	for _, e := range eps {
		out.Body.WebhookEndpoints = append(out.Body.WebhookEndpoints, toWebhookEndpoint(e))
	}
	return out, nil
}

func (s *Server) createWebhookEndpoint(ctx context.Context, in *CreateWebhookEndpointInput) (*WebhookEndpointSecretOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	b := in.Body
	input := webhooks.EndpointInput{URL: &b.URL, IsActive: b.IsActive}
	if b.Description != "" {
		input.Description = &b.Description
	}
	if b.EventTypes != nil {
		input.EventTypes = &b.EventTypes
	}
	e, secret, err := s.deps.Webhooks.Create(ctx, orgID, input, webhookActor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	out := &WebhookEndpointSecretOutput{CacheControl: "no-store"}
	out.Body.WebhookEndpoint, out.Body.PlaintextSecret = toWebhookEndpoint(e), secret
	return out, nil
}

func (s *Server) updateWebhookEndpoint(ctx context.Context, in *UpdateWebhookEndpointInput) (*WebhookEndpointOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	b := in.Body
	input := webhooks.EndpointInput{Description: b.Description, EventTypes: b.EventTypes, IsActive: b.IsActive}
	if b.URL != nil && *b.URL != "" { // "" = not given
		input.URL = b.URL
	}
	e, err := s.deps.Webhooks.Update(ctx, orgID, in.EndpointID, input, webhookActor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	out := &WebhookEndpointOutput{}
	out.Body.WebhookEndpoint = toWebhookEndpoint(e)
	return out, nil
}

func (s *Server) deleteWebhookEndpoint(ctx context.Context, in *WebhookEndpointPath) (*WebhookDeletedOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	if err := s.deps.Webhooks.Delete(ctx, orgID, in.EndpointID, webhookActor(ctx)); err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	out := &WebhookDeletedOutput{}
	out.Body.Deleted = true
	return out, nil
}

func (s *Server) rotateWebhookEndpointSecret(ctx context.Context, in *WebhookActionInput) (*WebhookEndpointSecretOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	e, secret, err := s.deps.Webhooks.RotateSecret(ctx, orgID, in.EndpointID, webhookActor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	out := &WebhookEndpointSecretOutput{CacheControl: "no-store"}
	out.Body.WebhookEndpoint, out.Body.PlaintextSecret = toWebhookEndpoint(e), secret
	return out, nil
}

func (s *Server) listWebhookDeliveries(ctx context.Context, in *ListDeliveriesInput) (*WebhookDeliveriesOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	if _, err := store.GetWebhookEndpoint(ctx, s.deps.Store.Pool, orgID, in.EndpointID); err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	ds, err := store.ListWebhookDeliveries(ctx, s.deps.Store.Pool, in.EndpointID, pageLimit(in.Limit))
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &WebhookDeliveriesOutput{}
	out.Body.Deliveries = make([]*WebhookDelivery, 0, len(ds))
	for _, d := range ds {
		out.Body.Deliveries = append(out.Body.Deliveries, toWebhookDelivery(d))
	}
	return out, nil
}

func (s *Server) testWebhookEndpoint(ctx context.Context, in *WebhookActionInput) (*WebhookDeliveryOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	d, err := s.deps.Webhooks.Test(ctx, orgID, in.EndpointID)
	if err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	out := &WebhookDeliveryOutput{}
	out.Body.Delivery = toWebhookDelivery(d)
	return out, nil
}

func (s *Server) redeliverWebhookDelivery(ctx context.Context, in *RedeliverInput) (*WebhookDeliveryOutput, error) {
	orgID, err := s.webhookOrg(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	if _, err := store.GetWebhookEndpoint(ctx, s.deps.Store.Pool, orgID, in.EndpointID); err != nil {
		return nil, s.fail(ctx, err, msgEndpointNotFound)
	}
	d, err := s.deps.Webhooks.Redeliver(ctx, orgID, in.EndpointID, in.DeliveryID)
	if err != nil {
		return nil, s.fail(ctx, err, msgDeliveryNotFound)
	}
	out := &WebhookDeliveryOutput{}
	out.Body.Delivery = toWebhookDelivery(d)
	return out, nil
}

// webhookOrg resolves the path's organization (id or slug) to the caller's
// own organization id; any other organization is 404.
func (s *Server) webhookOrg(ctx context.Context, ref string) (string, error) {
	pr := principal(ctx)
	if pr.OrganizationID != "" && ref == pr.OrganizationID {
		return ref, nil
	}
	if pr.OrganizationID != "" {
		org, err := store.GetOrganization(ctx, s.deps.Store.Pool, pr.OrganizationID)
		if err != nil {
			return "", s.fail(ctx, err, "organization not found")
		}
		if ref == org.Slug {
			return org.ID, nil
		}
	}
	return "", errorf(http.StatusNotFound, "organization not found")
}

func webhookActor(ctx context.Context) webhooks.Actor {
	kind, id := principal(ctx).ActorKind()
	return webhooks.Actor{Kind: kind, ID: id}
}
