package tfprovider

import (
	"context"
	"time"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// capydb_api_key: keys cannot be changed, so every argument replaces the
// key; destroy revokes it. The plaintext exists only in the create answer,
// so an imported key has no `key`.
type apiKeyResource struct{ c *client }

type apiKeyModel struct {
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	Scopes    types.Set    `tfsdk:"scopes"`
	ProjectID types.String `tfsdk:"project_id"`
	ExpiresAt types.String `tfsdk:"expires_at"`
	KeyPrefix types.String `tfsdk:"key_prefix"`
	Key       types.String `tfsdk:"key"`
	Source    types.String `tfsdk:"source"`
	CreatedAt types.String `tfsdk:"created_at"`
}

func (r *apiKeyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_api_key"
}

func (r *apiKeyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	scopes := append(append([]string{}, allScopes...), "*")
	resp.Schema = schema.Schema{
		Description: "An API key of the provider's organization. Any change replaces the key; destroying revokes it.",
		Attributes: map[string]schema.Attribute{
			"id":   computedStr("Key id (key_...)."),
			"name": replaceStr(schema.StringAttribute{Required: true, Description: "Name, 1-100 characters.", Validators: []validator.String{keyName}}),
			"scopes": schema.SetAttribute{Required: true, ElementType: types.StringType,
				Description:   "Scopes (or \"*\"); every one must be held by the provider's key. A project key may hold only project scopes.",
				Validators:    []validator.Set{setOf{elem: oneOf(scopes), nonEmpty: true}},
				PlanModifiers: []planmodifier.Set{setplanmodifier.RequiresReplace()}},
			"project_id": replaceStr(schema.StringAttribute{Optional: true, Description: "Makes a project-scoped key.",
				Validators: []validator.String{projectID}}),
			"expires_at": replaceStr(schema.StringAttribute{Optional: true, Description: "Expiry (RFC 3339, in the future).",
				Validators: []validator.String{rfc3339Future{}}}),
			"key_prefix": computedStr("Display prefix of the key."),
			"key":        secretStr("The key itself (capy_live_...); known only to the state of the apply that created it."),
			"source":     computedStr("api or dashboard."),
			"created_at": computedStr("Creation time."),
		},
	}
}

func (r *apiKeyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configure(req.ProviderData, &resp.Diagnostics)
}

func (r *apiKeyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (r *apiKeyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, err := r.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	body := apiclient.CreateAPIKeyRequest{Name: m.Name.ValueString(), ProjectID: m.ProjectID.ValueString()}
	resp.Diagnostics.Append(m.Scopes.ElementsAs(ctx, &body.Scopes, false)...)
	if s, ok := known(m.ExpiresAt); ok {
		t, _ := time.Parse(time.RFC3339, s) // validated at plan time
		body.ExpiresAt = &t
	}
	if resp.Diagnostics.HasError() {
		return
	}
	k, plain, err := r.c.api.CreateAPIKey(ctx, org, body)
	if err != nil {
		apiErr(&resp.Diagnostics, "creating the API key", err)
		return
	}
	m.Key = types.StringValue(plain)
	m.fill(k)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (m *apiKeyModel) fill(k *apiclient.APIKey) {
	m.ID, m.Name, m.KeyPrefix = types.StringValue(k.ID), types.StringValue(k.Name), types.StringValue(k.KeyPrefix)
	m.Source, m.CreatedAt = types.StringValue(k.Source), timeStr(k.CreatedAt)
	m.ProjectID = ptrStr(k.ProjectID)
	if k.ExpiresAt != nil && !m.ExpiresAt.IsNull() {
		// Keep the configured spelling when it is the same instant.
		if t, err := time.Parse(time.RFC3339, m.ExpiresAt.ValueString()); err != nil || !t.Equal(*k.ExpiresAt) {
			m.ExpiresAt = timePtrStr(k.ExpiresAt)
		}
	} else {
		m.ExpiresAt = timePtrStr(k.ExpiresAt)
	}
	if m.Scopes.IsNull() || m.Scopes.IsUnknown() || !sameSet(m.Scopes, k.Scopes) {
		vals := make([]types.String, len(k.Scopes))
		for i, s := range k.Scopes {
			vals[i] = types.StringValue(s)
		}
		m.Scopes, _ = types.SetValueFrom(context.Background(), types.StringType, vals)
	}
}

func sameSet(s types.Set, want []string) bool {
	var got []string
	if d := s.ElementsAs(context.Background(), &got, false); d.HasError() || len(got) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

func (r *apiKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m apiKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, err := r.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	keys, err := r.c.api.ListAPIKeys(ctx, org)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing API keys", err)
		return
	}
	for i := range keys {
		k := &keys[i]
		if k.ID != m.ID.ValueString() {
			continue
		}
		if k.RevokedAt != nil {
			break // revoked out of band: gone
		}
		m.fill(k)
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
		return
	}
	resp.State.RemoveResource(ctx)
}

func (r *apiKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// Every argument requires replacement; nothing to do in place.
	var m apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *apiKeyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m apiKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, err := r.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	if err := r.c.api.RevokeAPIKey(ctx, org, m.ID.ValueString()); err != nil && !isNotFound(err) {
		apiErr(&resp.Diagnostics, "revoking the API key", err)
	}
}
