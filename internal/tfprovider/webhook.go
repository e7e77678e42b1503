package tfprovider

import (
	"context"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// capydb_webhook_endpoint: created with its signing secret (kept in state,
// sensitive), updated in place through PATCH.
type webhookResource struct{ c *client }

type webhookModel struct {
	ID            types.String `tfsdk:"id"`
	URL           types.String `tfsdk:"url"`
	Description   types.String `tfsdk:"description"`
	EventTypes    types.Set    `tfsdk:"event_types"`
	IsActive      types.Bool   `tfsdk:"is_active"`
	Secret        types.String `tfsdk:"secret"`
	SecretVersion types.Int64  `tfsdk:"secret_version"`
	Health        types.String `tfsdk:"health"`
}

func (r *webhookResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_webhook_endpoint"
}

func (r *webhookResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A webhook endpoint of the provider's organization.",
		Attributes: map[string]schema.Attribute{
			"id": computedStr("Endpoint id (whe_...)."),
			"url": schema.StringAttribute{Required: true, Description: "Receiver URL (https://; http:// only where the operator allows it).",
				Validators: []validator.String{httpURL{}}},
			"description": schema.StringAttribute{Optional: true, Description: "At most 500 characters.",
				Validators: []validator.String{describe}},
			"event_types": schema.SetAttribute{Optional: true, Computed: true, ElementType: types.StringType,
				Default:     setdefault.StaticValue(types.SetValueMust(types.StringType, nil)),
				Description: "Subscribed events; empty = all events.",
				Validators:  []validator.Set{setOf{elem: oneOf(webhookEvents)}}},
			"is_active": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Deliver events (default true)."},
			"secret_version": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(1),
				Description: "Bump it to rotate the signing secret in place (the old secret stops working at once).",
				Validators:  []validator.Int64{intRange{1, 1 << 31}}},
			"secret": schema.StringAttribute{Computed: true, Sensitive: true,
				Description:   "Signing secret (whsec_...); set at creation and at each rotation.",
				PlanModifiers: []planmodifier.String{rotatedBy{"secret_version"}}},
			"health": schema.StringAttribute{Computed: true, Description: "healthy, failing or disabled."},
		},
	}
}

func (r *webhookResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configure(req.ProviderData, &resp.Diagnostics)
}

func (r *webhookResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
	// The secret is not readable; version 1 keeps the first plan from rotating it.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("secret_version"), int64(1))...)
}

// rotatedBy keeps a secret's state value unless the named version
// attribute changes, when the secret is known only after apply.
type rotatedBy struct{ version string }

func (r rotatedBy) Description(context.Context) string {
	return "changes only when " + r.version + " changes"
}
func (r rotatedBy) MarkdownDescription(ctx context.Context) string { return r.Description(ctx) }
func (r rotatedBy) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.State.Raw.IsNull() || !req.PlanValue.IsUnknown() {
		return
	}
	var before, after types.Int64
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root(r.version), &before)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root(r.version), &after)...)
	if before.Equal(after) {
		resp.PlanValue = req.StateValue
	}
}

func (m *webhookModel) fill(e *apiclient.WebhookEndpoint) {
	m.ID, m.URL, m.Description = types.StringValue(e.ID), types.StringValue(e.URL), ptrStr(e.Description)
	m.IsActive, m.Health = types.BoolValue(e.IsActive), types.StringValue(e.Health)
	vals := make([]types.String, len(e.EventTypes))
	for i, s := range e.EventTypes {
		vals[i] = types.StringValue(s)
	}
	m.EventTypes, _ = types.SetValueFrom(context.Background(), types.StringType, vals)
}

func (r *webhookResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m webhookModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, err := r.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	active := m.IsActive.ValueBool()
	body := apiclient.CreateWebhookRequest{URL: m.URL.ValueString(), Description: m.Description.ValueString(), IsActive: &active,
		EventTypes: []string{}}
	resp.Diagnostics.Append(m.EventTypes.ElementsAs(ctx, &body.EventTypes, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	e, secret, err := r.c.api.CreateWebhook(ctx, org, body)
	if err != nil {
		apiErr(&resp.Diagnostics, "creating the webhook endpoint", err)
		return
	}
	if !active && e.IsActive {
		// Some servers take is_active only on update.
		if e, err = r.c.api.UpdateWebhook(ctx, org, e.ID, apiclient.UpdateWebhookRequest{IsActive: &active}); err != nil {
			apiErr(&resp.Diagnostics, "deactivating the webhook endpoint", err)
			return
		}
	}
	m.fill(e)
	m.Secret = types.StringValue(secret)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *webhookResource) find(ctx context.Context, id string) (*apiclient.WebhookEndpoint, error) {
	org, err := r.c.org(ctx)
	if err != nil {
		return nil, err
	}
	all, err := r.c.api.ListWebhooks(ctx, org)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, nil
}

func (r *webhookResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m webhookModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	e, err := r.find(ctx, m.ID.ValueString())
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the webhook endpoint", err)
		return
	}
	if e == nil {
		resp.State.RemoveResource(ctx)
		return
	}
	m.fill(e)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *webhookResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state webhookModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, err := r.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	url, desc, active := plan.URL.ValueString(), plan.Description.ValueString(), plan.IsActive.ValueBool()
	events := []string{}
	resp.Diagnostics.Append(plan.EventTypes.ElementsAs(ctx, &events, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	e, err := r.c.api.UpdateWebhook(ctx, org, state.ID.ValueString(), apiclient.UpdateWebhookRequest{
		URL: &url, Description: &desc, EventTypes: &events, IsActive: &active})
	if err != nil {
		apiErr(&resp.Diagnostics, "updating the webhook endpoint", err)
		return
	}
	plan.fill(e)
	plan.Secret = state.Secret
	if !plan.SecretVersion.Equal(state.SecretVersion) {
		e, secret, err := r.c.api.RotateWebhookSecret(ctx, org, state.ID.ValueString())
		if err != nil {
			apiErr(&resp.Diagnostics, "rotating the webhook secret", err)
			return
		}
		plan.fill(e)
		plan.Secret = types.StringValue(secret)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *webhookResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m webhookModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, err := r.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	if err := r.c.api.DeleteWebhook(ctx, org, m.ID.ValueString()); err != nil && !isNotFound(err) {
		apiErr(&resp.Diagnostics, "deleting the webhook endpoint", err)
	}
}
