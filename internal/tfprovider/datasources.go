package tfprovider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Read-only views of the organization, the catalogue, a project and its
// connection URLs.

type dsBase struct{ c *client }

func (d *dsBase) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = configure(req.ProviderData, &resp.Diagnostics)
}

func str(desc string) schema.StringAttribute {
	return schema.StringAttribute{Computed: true, Description: desc}
}

// listOf is a computed list of objects with string, bool and int64 fields.
func listOf(desc string, fields map[string]attr.Type) schema.ListNestedAttribute {
	attrs := map[string]schema.Attribute{}
	for k, t := range fields {
		switch t {
		case types.BoolType:
			attrs[k] = schema.BoolAttribute{Computed: true}
		case types.Int64Type:
			attrs[k] = schema.Int64Attribute{Computed: true}
		default:
			attrs[k] = schema.StringAttribute{Computed: true}
		}
	}
	return schema.ListNestedAttribute{Computed: true, Description: desc, NestedObject: schema.NestedAttributeObject{Attributes: attrs}}
}

func objects(fields map[string]attr.Type, rows []map[string]attr.Value) (types.List, error) {
	ot := types.ObjectType{AttrTypes: fields}
	vals := make([]attr.Value, 0, len(rows))
	for _, r := range rows {
		o, d := types.ObjectValue(fields, r)
		if d.HasError() {
			return types.ListNull(ot), fmt.Errorf("%v", d)
		}
		vals = append(vals, o)
	}
	l, d := types.ListValue(ot, vals)
	if d.HasError() {
		return types.ListNull(ot), fmt.Errorf("%v", d)
	}
	return l, nil
}

// --- capydb_organization

type organizationDataSource struct{ dsBase }

type organizationModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	Slug        types.String `tfsdk:"slug"`
	BillingPlan types.String `tfsdk:"billing_plan"`
}

func (d *organizationDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_organization"
}

func (d *organizationDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "The provider key's organization.", Attributes: map[string]schema.Attribute{
		"id": str("Organization id."), "name": str("Name."), "slug": str("Slug."), "billing_plan": str("Plan (vibe, ship, business, ...)."),
	}}
}

func (d *organizationDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	org, err := d.c.org(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	o, err := d.c.api.GetOrganization(ctx, org)
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the organization", err)
		return
	}
	m := organizationModel{types.StringValue(o.ID), types.StringValue(o.Name), types.StringValue(o.Slug), types.StringValue(o.BillingPlan)}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// --- capydb_regions

type regionsDataSource struct{ dsBase }

var regionFields = map[string]attr.Type{"id": types.StringType, "display_name": types.StringType, "location": types.StringType}

func (d *regionsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_regions"
}

func (d *regionsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "Regions open for new projects.", Attributes: map[string]schema.Attribute{
		"ids":     schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Region ids."},
		"regions": listOf("Regions with their names.", regionFields),
	}}
}

func (d *regionsDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	rs, err := d.c.api.Regions(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing regions", err)
		return
	}
	ids := []string{}
	rows := []map[string]attr.Value{}
	for _, r := range rs {
		ids = append(ids, r.ID)
		rows = append(rows, map[string]attr.Value{"id": types.StringValue(r.ID), "display_name": types.StringValue(r.DisplayName), "location": types.StringValue(r.Location)})
	}
	l, err := objects(regionFields, rows)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing regions", err)
		return
	}
	idl, _ := types.ListValueFrom(ctx, types.StringType, ids)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, pathRoot("ids"), idl)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, pathRoot("regions"), l)...)
}

// --- capydb_postgres_versions

type versionsDataSource struct{ dsBase }

var versionFields = map[string]attr.Type{"version": types.StringType, "channel": types.StringType, "default": types.BoolType, "production_ready": types.BoolType}

func (d *versionsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_postgres_versions"
}

func (d *versionsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "Postgres major versions offered for new projects.", Attributes: map[string]schema.Attribute{
		"default_version": str("The version a project gets when it names none."),
		"versions":        listOf("Offered versions, oldest first.", versionFields),
	}}
}

func (d *versionsDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	vs, err := d.c.api.PostgresVersions(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing Postgres versions", err)
		return
	}
	def := ""
	rows := []map[string]attr.Value{}
	for _, v := range vs {
		if v.Default {
			def = v.Version
		}
		rows = append(rows, map[string]attr.Value{"version": types.StringValue(v.Version), "channel": types.StringValue(v.Channel),
			"default": types.BoolValue(v.Default), "production_ready": types.BoolValue(v.ProductionReady)})
	}
	l, err := objects(versionFields, rows)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing Postgres versions", err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, pathRoot("default_version"), strOrNull(def))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, pathRoot("versions"), l)...)
}

// --- capydb_clusters

type clustersDataSource struct{ dsBase }

var clusterFields = map[string]attr.Type{"id": types.StringType, "name": types.StringType, "region": types.StringType,
	"postgres_version": types.StringType, "state": types.StringType, "supports_point_in_time_recovery": types.BoolType}

func (d *clustersDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_clusters"
}

func (d *clustersDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "Registered Postgres clusters.", Attributes: map[string]schema.Attribute{
		"clusters": listOf("Clusters with their state and PITR capability.", clusterFields),
	}}
}

func (d *clustersDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	cs, err := d.c.api.ListClusters(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing clusters", err)
		return
	}
	rows := []map[string]attr.Value{}
	for _, c := range cs {
		rows = append(rows, map[string]attr.Value{"id": types.StringValue(c.ID), "name": types.StringValue(c.Name), "region": types.StringValue(c.Region),
			"postgres_version": types.StringValue(c.PostgresVersion), "state": types.StringValue(c.State),
			"supports_point_in_time_recovery": types.BoolValue(c.SupportsPointInTimeRecovery)})
	}
	l, err := objects(clusterFields, rows)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing clusters", err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, pathRoot("clusters"), l)...)
}

// --- capydb_project

type projectDataSource struct{ dsBase }

type projectDSModel struct {
	ID              types.String `tfsdk:"id"`
	Slug            types.String `tfsdk:"slug"`
	Name            types.String `tfsdk:"name"`
	Environment     types.String `tfsdk:"environment"`
	State           types.String `tfsdk:"state"`
	Region          types.String `tfsdk:"region"`
	PostgresVersion types.String `tfsdk:"postgres_version"`
	DatabaseName    types.String `tfsdk:"database_name"`
	Host            types.String `tfsdk:"host"`
	DirectPort      types.Int64  `tfsdk:"direct_port"`
	PooledPort      types.Int64  `tfsdk:"pooled_port"`
}

func (d *projectDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project"
}

func (d *projectDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "An existing project, found by id or slug (exactly one).", Attributes: map[string]schema.Attribute{
		"id":   schema.StringAttribute{Optional: true, Computed: true, Description: "Project id.", Validators: []validator.String{projectID}},
		"slug": schema.StringAttribute{Optional: true, Computed: true, Description: "Project slug.", Validators: []validator.String{projectSlug}},
		"name": str("Name."), "environment": str("production or non_production."), "state": str("Lifecycle state."),
		"region": str("Region."), "postgres_version": str("Postgres major."), "database_name": str("Database name."),
		"host":        str("Public host."),
		"direct_port": schema.Int64Attribute{Computed: true}, "pooled_port": schema.Int64Attribute{Computed: true},
	}}
}

func (d *projectDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m projectDSModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.ID.IsUnknown() || m.Slug.IsUnknown() {
		return
	}
	if m.ID.IsNull() == m.Slug.IsNull() {
		resp.Diagnostics.AddError("Invalid capydb_project lookup", "set exactly one of id and slug")
	}
}

func (d *projectDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m projectDSModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	all, err := d.c.api.ListProjects(ctx)
	if err != nil {
		apiErr(&resp.Diagnostics, "listing projects", err)
		return
	}
	for _, p := range all {
		if (m.ID.ValueString() != "" && p.ID == m.ID.ValueString()) || (m.Slug.ValueString() != "" && p.Slug == m.Slug.ValueString()) {
			out := projectDSModel{types.StringValue(p.ID), types.StringValue(p.Slug), types.StringValue(p.Name), types.StringValue(p.Environment),
				types.StringValue(p.State), types.StringValue(p.Region), strOrNull(p.PostgresVersion), types.StringValue(p.DatabaseName),
				strOrNull(p.PublicHost), types.Int64Value(int64(p.DirectPort)), types.Int64Value(int64(p.PooledPort))}
			resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
			return
		}
	}
	resp.Diagnostics.AddError("CapyDB: project not found", fmt.Sprintf("no project with id %q / slug %q is visible to this key", m.ID.ValueString(), m.Slug.ValueString()))
}

// --- capydb_project_connection

type connectionDataSource struct{ dsBase }

type connectionModel struct {
	ProjectID  types.String `tfsdk:"project_id"`
	SessionURL types.String `tfsdk:"session_url"`
	connFields
}

func (d *connectionDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project_connection"
}

func (d *connectionDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	secret := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Sensitive: true, Description: desc}
	}
	resp.Schema = schema.Schema{Description: "A project's connection URLs (needs credentials:read).", Attributes: map[string]schema.Attribute{
		"project_id":  schema.StringAttribute{Required: true, Validators: []validator.String{projectID}},
		"username":    str("Login role."),
		"password":    secret("Password."),
		"direct_url":  secret("Direct URL."),
		"pooled_url":  secret("Pooled (transaction mode) URL."),
		"session_url": secret("Session-mode pgBouncer URL, when the cluster has one."),
	}}
}

func (d *connectionDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m connectionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ci, err := d.c.api.Connections(ctx, m.ProjectID.ValueString())
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the project's connections", err)
		return
	}
	m.connFields.set(ci)
	m.SessionURL = strOrNull(ci.SessionURL)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
