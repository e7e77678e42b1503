package tfprovider

import (
	"context"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// capydb_backup_schedule: the project's one daily schedule ("default").
// The API has no delete, so destroy switches it off (is_active false).
// The resource id is the project id.
type backupScheduleResource struct{ c *client }

type backupScheduleModel struct {
	ID            types.String `tfsdk:"id"`
	ProjectID     types.String `tfsdk:"project_id"`
	CronHour      types.Int64  `tfsdk:"cron_hour"`
	CronMinute    types.Int64  `tfsdk:"cron_minute"`
	IsActive      types.Bool   `tfsdk:"is_active"`
	Label         types.String `tfsdk:"label"`
	RetentionDays types.Int64  `tfsdk:"retention_days"`
}

func (r *backupScheduleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_schedule"
}

func (r *backupScheduleResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A project's daily backup schedule. Destroying it switches the schedule off.",
		Attributes: map[string]schema.Attribute{
			"id": computedStr("The project id."),
			"project_id": replaceStr(schema.StringAttribute{Required: true, Description: "Project to back up.",
				Validators: []validator.String{projectID}}),
			"cron_hour":   schema.Int64Attribute{Required: true, Description: "Hour (UTC), 0-23.", Validators: []validator.Int64{intRange{0, 23}}},
			"cron_minute": schema.Int64Attribute{Required: true, Description: "Minute, 0-59.", Validators: []validator.Int64{intRange{0, 59}}},
			"is_active": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Run the schedule (default true)."},
			"label": schema.StringAttribute{Optional: true, Computed: true, Description: "Label of the backups, at most 120 characters.",
				Validators:    []validator.String{labelText},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"retention_days": schema.Int64Attribute{Optional: true, Computed: true, Description: "Days to keep, 1-365 (server default 7).",
				Validators:    []validator.Int64{intRange{1, 365}},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()}},
		},
	}
}

func (r *backupScheduleResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configure(req.ProviderData, &resp.Diagnostics)
}

func (r *backupScheduleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("project_id"), req.ID)...)
}

func (m *backupScheduleModel) fill(s *apiclient.ScheduledBackup) {
	m.ID, m.ProjectID = types.StringValue(s.ProjectID), types.StringValue(s.ProjectID)
	m.CronHour, m.CronMinute = types.Int64Value(int64(s.CronHour)), types.Int64Value(int64(s.CronMinute))
	m.IsActive, m.Label, m.RetentionDays = types.BoolValue(s.IsActive), types.StringValue(s.Label), types.Int64Value(int64(s.RetentionDays))
}

func (r *backupScheduleResource) put(ctx context.Context, m *backupScheduleModel, active bool) error {
	s, err := r.c.api.UpsertScheduledBackup(ctx, m.ProjectID.ValueString(), apiclient.UpsertScheduledBackupRequest{
		CronHour: int(m.CronHour.ValueInt64()), CronMinute: int(m.CronMinute.ValueInt64()), IsActive: active,
		Label: m.Label.ValueString(), RetentionDays: int(m.RetentionDays.ValueInt64())})
	if err == nil {
		m.fill(s)
	}
	return err
}

func (r *backupScheduleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m backupScheduleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.put(ctx, &m, m.IsActive.ValueBool()); err != nil {
		apiErr(&resp.Diagnostics, "saving the backup schedule", err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *backupScheduleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m backupScheduleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.put(ctx, &m, m.IsActive.ValueBool()); err != nil {
		apiErr(&resp.Diagnostics, "saving the backup schedule", err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *backupScheduleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m backupScheduleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	list, err := r.c.api.ListScheduledBackups(ctx, m.ID.ValueString())
	if isNotFound(err) || (err == nil && len(list) == 0) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		apiErr(&resp.Diagnostics, "reading the backup schedule", err)
		return
	}
	m.fill(&list[0])
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *backupScheduleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m backupScheduleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.put(ctx, &m, false); err != nil && !isNotFound(err) {
		apiErr(&resp.Diagnostics, "switching the backup schedule off", err)
	}
}
