package mcpserver

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/capydb/capydb/pkg/capydb"
)

// targetIn names a project or a preview; tools that work on either take it.
type targetIn struct {
	ProjectID string `json:"project_id,omitempty" jsonschema:"the project's id (prj_...); give this or preview_id"`
	PreviewID string `json:"preview_id,omitempty" jsonschema:"the preview database's id (pvw_...); give this or project_id"`
}

func (in targetIn) check() error {
	if (in.ProjectID == "") == (in.PreviewID == "") {
		return errors.New("give exactly one of project_id and preview_id")
	}
	return nil
}

type previewRef struct {
	PreviewID   string `json:"preview_id" jsonschema:"the preview database's id (pvw_...), from capydb_list_previews"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the job, at most 300 (default 120)"`
}

type createPreviewIn struct {
	ProjectID   string `json:"project_id" jsonschema:"the project to branch from (prj_...)"`
	Name        string `json:"name,omitempty" jsonschema:"1-63 letters, digits, -, _ and .; generated when absent"`
	Empty       bool   `json:"empty,omitempty" jsonschema:"true for an empty database instead of a copy of the project's schema and data"`
	TTLHours    int64  `json:"ttl_hours,omitempty" jsonschema:"hours until it is deleted automatically, 1-168 (default 24)"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the build, at most 300 (default 120)"`
}

type extendPreviewIn struct {
	PreviewID string `json:"preview_id" jsonschema:"the preview database's id (pvw_...)"`
	TTLHours  int64  `json:"ttl_hours" jsonschema:"the new expiry is now plus this many hours, 1-168"`
}

type restoreIn struct {
	ProjectID      string `json:"project_id" jsonschema:"the project whose backup to restore"`
	BackupKey      string `json:"backup_key,omitempty" jsonschema:"backup_key from capydb_list_backups; or give restore_point_id"`
	RestorePointID string `json:"restore_point_id,omitempty" jsonschema:"a restore point id (rp_...)"`
	PreviewName    string `json:"preview_name,omitempty" jsonschema:"name of the new preview; generated when absent"`
	TTLHours       int64  `json:"ttl_hours,omitempty" jsonschema:"hours until the preview is deleted, 1-168 (default 24)"`
	WaitSeconds    int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the restore, at most 300 (default 120)"`
}

func (t *tools) addPreviewTools(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_list_previews", Annotations: readOnly("List previews"),
		Description: "List a project's preview databases (short-lived branches for testing a change) with state and expiry."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in projectRef) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.ListPreviewDatabasesWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_create_preview", Annotations: additive("Create a preview", false),
		Description: "Create a preview database from a project (a copy of its schema and data by default) and wait for it. " +
			"Use it to try migrations or queries without touching the project."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in createPreviewIn) (*mcp.CallToolResult, any, error) {
			body := capydb.CreatePreviewBody{Name: optional(in.Name), TTLHours: optional(in.TTLHours)}
			if in.Empty {
				body.Mode = ptr(capydb.CreatePreviewBodyModeEmpty)
			}
			r, err := t.c.CreatePreviewDatabaseWithResponse(ctx, in.ProjectID, body)
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), in.WaitSeconds)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_reset_preview", Annotations: destructive("Reset a preview"),
		Description: "DESTRUCTIVE for the preview: throw away the preview's changes and rebuild it from its project."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in previewRef) (*mcp.CallToolResult, any, error) {
			r, err := t.c.ResetPreviewDatabaseWithResponse(ctx, in.PreviewID, capydb.ResetPreviewInputBody{})
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), in.WaitSeconds)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_extend_preview", Annotations: additive("Extend a preview", true),
		Description: "Move a preview's expiry to now plus ttl_hours."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in extendPreviewIn) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.ExtendPreviewDatabaseWithResponse(ctx, in.PreviewID, capydb.ExtendPreviewBody{TTLHours: in.TTLHours}))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_delete_preview", Annotations: destructive("Delete a preview"),
		Description: "DESTRUCTIVE: delete a preview database and its data (the project is not touched)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in previewRef) (*mcp.CallToolResult, any, error) {
			r, err := t.c.DeletePreviewDatabaseWithResponse(ctx, in.PreviewID)
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), in.WaitSeconds)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_list_backups", Annotations: readOnly("List backups"),
		Description: "List a project's backups (id, backup_key, size, verification state)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in projectRef) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.ListBackupsWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_create_backup", Annotations: additive("Create a backup", false),
		Description: "Take a backup of a project now and wait for it."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in struct {
			ProjectID   string `json:"project_id" jsonschema:"the project's id"`
			Label       string `json:"label,omitempty" jsonschema:"at most 120 characters"`
			WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait, at most 300 (default 120)"`
		}) (*mcp.CallToolResult, any, error) {
			r, err := t.c.CreateBackupWithResponse(ctx, in.ProjectID, capydb.CreateBackupRequest{Label: optional(in.Label)})
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), in.WaitSeconds)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_restore_to_preview", Annotations: additive("Restore a backup into a new preview", false),
		Description: "Restore a backup or restore point into a NEW preview database, never over the project, and wait for it. " +
			"Inspect the preview, then copy what is needed."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in restoreIn) (*mcp.CallToolResult, any, error) {
			body := capydb.CreateRestoreRequest{
				TargetKind: ptr(capydb.CreateRestoreRequestTargetKindNewPreview),
				BackupKey:  optional(in.BackupKey), RestorePointID: optional(in.RestorePointID),
				PreviewName: optional(in.PreviewName), TTLHours: optional(in.TTLHours),
			}
			r, err := t.c.CreateRestoreWithResponse(ctx, in.ProjectID, body)
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), in.WaitSeconds)
		})
}
