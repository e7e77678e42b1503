package tfprovider

import (
	"context"
	"math"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// capydb_preview_database: a preview of a project (branch.create job);
// ttl_hours updates in place through the extend route; expiry by the
// server's reaper shows up as a 404, which drops it from state.
type previewResource struct{ c *client }

type previewModel struct {
	ID            types.String `tfsdk:"id"`
	ProjectID     types.String `tfsdk:"project_id"`
	Name          types.String `tfsdk:"name"`
	Mode          types.String `tfsdk:"mode"`
	TTLHours      types.Int64  `tfsdk:"ttl_hours"`
	TTLExpiresAt  types.String `tfsdk:"ttl_expires_at"`
	State         types.String `tfsdk:"state"`
	DatabaseName  types.String `tfsdk:"database_name"`
	RoleName      types.String `tfsdk:"role_name"`
	Host          types.String `tfsdk:"host"`
	DirectPort    types.Int64  `tfsdk:"direct_port"`
	PooledPort    types.Int64  `tfsdk:"pooled_port"`
	CloneStrategy types.String `tfsdk:"clone_strategy"`
	connFields
}

func (r *previewResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_preview_database"
}

func (r *previewResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A preview database of a project: an empty database or a clone of the project, with its own credentials and an expiry.",
		Attributes: map[string]schema.Attribute{
			"id": computedStr("Preview id (pvw_...)."),
			"project_id": replaceStr(schema.StringAttribute{Required: true, Description: "Project the preview belongs to.",
				Validators: []validator.String{projectID}}),
			"name": replaceStr(schema.StringAttribute{Optional: true, Computed: true,
				Description:   "Name, unique within the project; generated when omitted. Changing it replaces the preview.",
				Validators:    []validator.String{previewName},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}),
			"mode": replaceStr(schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("clone"),
				Description: "clone (default: a copy of the project) or empty. Changing it replaces the preview.",
				Validators:  []validator.String{oneOf{"clone", "empty"}}}),
			"ttl_hours": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(24),
				Description: "Hours to live, 1-168 (default 24). A change extends the preview in place: the new expiry is now plus ttl_hours and may not be earlier than the current one.",
				Validators:  []validator.Int64{intRange{1, 168}}},
			"ttl_expires_at": schema.StringAttribute{Computed: true, Description: "When the server deletes the preview (RFC 3339)."},
			"state":          schema.StringAttribute{Computed: true, Description: "Lifecycle state (ready after apply)."},
			"database_name":  computedStr("Database name."),
			"role_name":      computedStr("Login role name."),
			"host":           computedStr("Public host of the database ports."),
			"direct_port":    computedInt("Direct Postgres port."),
			"pooled_port":    computedInt("pgBouncer port."),
			"clone_strategy": computedStr("How the contents were built."),
			"username":       computedStr("Login role of the connection URLs."),
			"password":       secretStr("Password of the login role."),
			"direct_url":     secretStr("Direct connection URL."),
			"pooled_url":     secretStr("Pooled connection URL."),
		},
	}
}

func (r *previewResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configure(req.ProviderData, &resp.Diagnostics)
}

func (r *previewResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (r *previewResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m previewModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pv, job, err := r.c.api.CreatePreview(ctx, m.ProjectID.ValueString(), apiclient.CreatePreviewRequest{
		Name: m.Name.ValueString(), Mode: m.Mode.ValueString(), TTLHours: int(m.TTLHours.ValueInt64())})
	if err != nil {
		apiErr(&resp.Diagnostics, "creating the preview database", err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), pv.ID)...)
	_, werr := r.c.wait(ctx, job)
	if !r.refresh(ctx, &m, pv.ID, &resp.Diagnostics) {
		resp.Diagnostics.AddError("CapyDB: preview database disappeared", pv.ID+" is gone after its creation")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	if werr != nil {
		apiErr(&resp.Diagnostics, "building the preview database", werr)
	}
}

func (r *previewResource) refresh(ctx context.Context, m *previewModel, id string, diags *diag.Diagnostics) bool {
	pv, err := r.c.api.GetPreview(ctx, id)
	if isNotFound(err) || (err == nil && pv.State == "deleting") {
		return false
	}
	if err != nil {
		diags.AddError("CapyDB: reading the preview database", err.Error())
		return true
	}
	m.ID, m.ProjectID, m.Name, m.Mode = types.StringValue(pv.ID), types.StringValue(pv.ProjectID), types.StringValue(pv.Name), types.StringValue(pv.Mode)
	m.TTLExpiresAt, m.State = timeStr(pv.TTLExpiresAt), types.StringValue(pv.State)
	m.DatabaseName, m.RoleName, m.Host = types.StringValue(pv.DatabaseName), types.StringValue(pv.RoleName), strOrNull(pv.PublicHost)
	m.DirectPort, m.PooledPort = types.Int64Value(int64(pv.DirectPort)), types.Int64Value(int64(pv.PooledPort))
	m.CloneStrategy = ptrStr(pv.CloneStrategy)
	if m.TTLHours.IsNull() || m.TTLHours.IsUnknown() {
		// Imported: the server keeps only the expiry; take the hours it spans.
		h := int64(math.Round(pv.TTLExpiresAt.Sub(pv.CreatedAt).Hours()))
		m.TTLHours = types.Int64Value(min(max(h, 1), 168))
	}
	ci, err := r.c.api.PreviewConnections(ctx, id)
	if err != nil {
		diags.AddError("CapyDB: reading the preview's connections", err.Error())
		return true
	}
	m.connFields.set(ci)
	return true
}

func (r *previewResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m previewModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !r.refresh(ctx, &m, m.ID.ValueString(), &resp.Diagnostics) {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *previewResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state previewModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.TTLHours.Equal(state.TTLHours) {
		if _, err := r.c.api.ExtendPreview(ctx, state.ID.ValueString(), int(plan.TTLHours.ValueInt64())); err != nil {
			apiErr(&resp.Diagnostics, "extending the preview database", err)
			return
		}
	}
	if !r.refresh(ctx, &plan, state.ID.ValueString(), &resp.Diagnostics) {
		resp.Diagnostics.AddError("CapyDB: preview database disappeared", state.ID.ValueString()+" is gone")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *previewResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m previewModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	job, err := r.c.api.DeletePreview(ctx, m.ID.ValueString())
	if isNotFound(err) {
		return
	}
	if err != nil {
		apiErr(&resp.Diagnostics, "deleting the preview database", err)
		return
	}
	if _, err := r.c.wait(ctx, job); err != nil {
		apiErr(&resp.Diagnostics, "waiting for the preview's deletion", err)
	}
}
