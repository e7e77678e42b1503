package tfprovider

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// capydb_project: POST /v1/projects and its instance.create job; PATCH for
// environment/always_on; DELETE (with an approval for production) and its
// project.delete job.
type projectResource struct{ c *client }

type projectModel struct {
	ID              types.String `tfsdk:"id"`
	Name            types.String `tfsdk:"name"`
	Slug            types.String `tfsdk:"slug"`
	Environment     types.String `tfsdk:"environment"`
	AlwaysOn        types.Bool   `tfsdk:"always_on"`
	Region          types.String `tfsdk:"region"`
	PostgresVersion types.String `tfsdk:"postgres_version"`
	ClusterID       types.String `tfsdk:"cluster_id"`
	OrganizationID  types.String `tfsdk:"organization_id"`
	Plan            types.String `tfsdk:"plan"`
	State           types.String `tfsdk:"state"`
	DatabaseName    types.String `tfsdk:"database_name"`
	RoleName        types.String `tfsdk:"role_name"`
	Host            types.String `tfsdk:"host"`
	DirectPort      types.Int64  `tfsdk:"direct_port"`
	PooledPort      types.Int64  `tfsdk:"pooled_port"`
	connFields
	ApproveDelete types.Bool   `tfsdk:"approve_production_delete"`
	ApprovalToken types.String `tfsdk:"delete_approval_token"`
}

func (r *projectResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project"
}

func computedStr(desc string) schema.StringAttribute {
	return schema.StringAttribute{Computed: true, Description: desc,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
}

func secretStr(desc string) schema.StringAttribute {
	a := computedStr(desc)
	a.Sensitive = true
	return a
}

func replaceStr(a schema.StringAttribute) schema.StringAttribute {
	a.PlanModifiers = append(a.PlanModifiers, stringplanmodifier.RequiresReplace())
	return a
}

func (r *projectResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A CapyDB project: one Postgres database with its own login role. Creating it waits for provisioning; deleting it waits for the deletion job.",
		Attributes: map[string]schema.Attribute{
			"id": computedStr("Project id (prj_...)."),
			"name": replaceStr(schema.StringAttribute{Required: true, Description: "Name, 1-64 characters. Changing it replaces the project.",
				Validators: []validator.String{projectName}}),
			"slug": replaceStr(schema.StringAttribute{Optional: true, Computed: true,
				Description:   "Slug; derived from the name when omitted. Changing it replaces the project.",
				Validators:    []validator.String{projectSlug},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}),
			"environment": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("production"),
				Description: "production (default) or non_production. Updated in place; deleting a production project needs an approval.",
				Validators:  []validator.String{oneOf{"production", "non_production"}}},
			"always_on": schema.BoolAttribute{Optional: true, Computed: true,
				Description: "Keep the database running; follows the environment unless set."},
			"region": replaceStr(schema.StringAttribute{Optional: true, Computed: true,
				Description:   "Region; chosen by the server when omitted. Changing it replaces the project.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}),
			"postgres_version": replaceStr(schema.StringAttribute{Optional: true, Computed: true,
				Description:   "Postgres major version (\"15\"); the server's default when omitted. Changing it replaces the project.",
				Validators:    []validator.String{pattern{re: digits, min: 1, max: 3, what: "a major version such as \"15\""}},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}),
			"cluster_id": replaceStr(schema.StringAttribute{Optional: true, Computed: true,
				Description:   "Cluster to place the project on (compatibility; region is the usual choice). Changing it replaces the project.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}),
			"organization_id": computedStr("Organization that owns the project."),
			"plan":            computedStr("The organization's plan when the project was created."),
			"state":           schema.StringAttribute{Computed: true, Description: "Lifecycle state (ready after apply)."},
			"database_name":   computedStr("Database name."),
			"role_name":       computedStr("Login role name."),
			"host":            computedStr("Public host of the database ports."),
			"direct_port":     computedInt("Direct Postgres port."),
			"pooled_port":     computedInt("pgBouncer (transaction pooling) port."),
			"username":        computedStr("Login role of the connection URLs."),
			"password":        secretStr("Password of the login role."),
			"direct_url":      secretStr("Direct connection URL (sslmode=require)."),
			"pooled_url":      secretStr("Pooled (pgBouncer) connection URL."),
			"approve_production_delete": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "When true, destroying a production project mints its project.delete approval with the provider's key (an organization admin key with organizations:write). Apply it before the destroy."},
			"delete_approval_token": schema.StringAttribute{Optional: true, Sensitive: true,
				Description: "A project.delete approval token minted by an admin (valid 10 minutes), used when destroying a production project.",
				Validators:  []validator.String{pattern{re: approvalRe, min: 35, max: 200, what: "an approval token (ap_...)"}}},
		},
	}
}

func (r *projectResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configure(req.ProviderData, &resp.Diagnostics)
}

func (r *projectResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("approve_production_delete"), false)...)
}

func (r *projectResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m projectModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	body := apiclient.CreateProjectRequest{Name: m.Name.ValueString(), Slug: m.Slug.ValueString(),
		Environment: m.Environment.ValueString(), Region: m.Region.ValueString(), PostgresVersion: m.PostgresVersion.ValueString(),
		ClusterID: m.ClusterID.ValueString()}
	if v := m.AlwaysOn; !v.IsNull() && !v.IsUnknown() {
		b := v.ValueBool()
		body.AlwaysOn = &b
	}
	p, job, err := r.c.api.CreateProject(ctx, body)
	if err != nil {
		apiErr(&resp.Diagnostics, "creating the project", err)
		return
	}
	// Record the id first: a failed provisioning leaves a tainted resource
	// that the next apply replaces, never an orphan.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), p.ID)...)
	_, werr := r.c.wait(ctx, job)
	r.refresh(ctx, &m, p.ID, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	if werr != nil {
		apiErr(&resp.Diagnostics, "provisioning the project", werr)
	}
}

// refresh reads the project and its connections into m; false when the
// project is gone.
func (r *projectResource) refresh(ctx context.Context, m *projectModel, id string, diags *diag.Diagnostics) bool {
	p, err := r.c.api.GetProject(ctx, id)
	if isNotFound(err) || (err == nil && p.State == "deleting") {
		return false
	}
	if err != nil {
		diags.AddError("CapyDB: reading the project", err.Error())
		return true
	}
	m.ID, m.Name, m.Slug = types.StringValue(p.ID), types.StringValue(p.Name), types.StringValue(p.Slug)
	m.Environment, m.AlwaysOn = types.StringValue(p.Environment), types.BoolValue(p.AlwaysOn)
	m.Region, m.PostgresVersion = types.StringValue(p.Region), strOrNull(p.PostgresVersion)
	m.ClusterID, m.OrganizationID = strOrNull(p.ClusterID), types.StringValue(p.OrganizationID)
	m.Plan, m.State = types.StringValue(p.Plan), types.StringValue(p.State)
	m.DatabaseName, m.RoleName, m.Host = types.StringValue(p.DatabaseName), types.StringValue(p.RoleName), strOrNull(p.PublicHost)
	m.DirectPort, m.PooledPort = types.Int64Value(int64(p.DirectPort)), types.Int64Value(int64(p.PooledPort))
	ci, err := r.c.api.Connections(ctx, id)
	if err != nil {
		diags.AddError("CapyDB: reading the project's connections", err.Error())
		return true
	}
	m.connFields.set(ci)
	return true
}

func (r *projectResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m projectModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !r.refresh(ctx, &m, m.ID.ValueString(), &resp.Diagnostics) {
		resp.State.RemoveResource(ctx)
		return
	}
	if m.ApproveDelete.IsNull() {
		m.ApproveDelete = types.BoolValue(false)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *projectResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state, config projectModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	body := map[string]any{}
	if !plan.Environment.Equal(state.Environment) {
		body["environment"] = plan.Environment.ValueString()
	}
	// An always_on left out of the configuration follows the environment
	// (the server sets it when the environment changes).
	if !config.AlwaysOn.IsNull() && !config.AlwaysOn.Equal(state.AlwaysOn) {
		body["always_on"] = config.AlwaysOn.ValueBool()
	}
	if len(body) > 0 {
		if _, err := r.c.api.UpdateProject(ctx, state.ID.ValueString(), body); err != nil {
			apiErr(&resp.Diagnostics, "updating the project", err)
			return
		}
	}
	plan.ID = state.ID
	if !r.refresh(ctx, &plan, state.ID.ValueString(), &resp.Diagnostics) {
		resp.Diagnostics.AddError("CapyDB: project disappeared", fmt.Sprintf("project %s is gone", state.ID.ValueString()))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *projectResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m projectModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := m.ID.ValueString()
	token := m.ApprovalToken.ValueString()
	if token == "" {
		token = os.Getenv("CAPYDB_APPROVAL_TOKEN") // as the official provider and the CLI
	}
	if m.Environment.ValueString() == "production" && token == "" && m.ApproveDelete.ValueBool() {
		a, err := r.c.api.CreateApproval(ctx, id, "project.delete")
		if isNotFound(err) {
			return
		}
		if err != nil {
			apiErr(&resp.Diagnostics, "minting the project.delete approval", err)
			return
		}
		token = a.Token
	}
	job, err := r.c.api.DeleteProject(ctx, id, token)
	if isNotFound(err) {
		return
	}
	if apiclient.StatusOf(err) == http.StatusPreconditionRequired {
		resp.Diagnostics.AddError("CapyDB: production project needs an approval to be deleted",
			fmt.Sprintf("%s is a production project: set approve_production_delete = true (with an organization admin key) "+
				"or delete_approval_token (and run terraform apply), or export CAPYDB_APPROVAL_TOKEN, then destroy again. The server said: %v", id, err))
		return
	}
	if err != nil {
		apiErr(&resp.Diagnostics, "deleting the project", err)
		return
	}
	if _, err := r.c.wait(ctx, job); err != nil {
		apiErr(&resp.Diagnostics, "waiting for the project's deletion", err)
	}
}
