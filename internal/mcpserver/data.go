package mcpserver

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/capydb/capydb/pkg/capydb"
)

type sqlIn struct {
	ProjectID string `json:"project_id,omitempty" jsonschema:"run on this project's database; give this or preview_id"`
	PreviewID string `json:"preview_id,omitempty" jsonschema:"run on this preview database; give this or project_id"`
	Query     string `json:"query" jsonschema:"SQL, up to 20000 characters; several statements separated by ; run in one transaction and the last one's rows are returned"`
	MaxRows   int64  `json:"max_rows,omitempty" jsonschema:"rows to return, default 200, at most 1000"`
}

type writeSQLIn struct {
	sqlIn
	AllowUnqualifiedWrites bool `json:"allow_unqualified_writes,omitempty" jsonschema:"allow UPDATE/DELETE without WHERE and TRUNCATE"`
}

type logsIn struct {
	ProjectID string `json:"project_id" jsonschema:"the project's id"`
	Hours     int64  `json:"hours,omitempty" jsonschema:"how far back, 1-720 hours (default 1)"`
	Severity  string `json:"severity,omitempty" jsonschema:"comma-separated: debug, log, info, notice, warning, error, fatal, panic"`
	Limit     int64  `json:"limit,omitempty" jsonschema:"entries, default 200, at most 500"`
}

// runSQL goes through the Studio SQL route (one transaction as the
// project's own role, 15 s statement timeout).
func (t *tools) runSQL(ctx context.Context, in sqlIn, body capydb.SQLQueryRequest) (*mcp.CallToolResult, any, error) {
	if err := (targetIn{ProjectID: in.ProjectID, PreviewID: in.PreviewID}).check(); err != nil {
		return nil, nil, err
	}
	body.Query, body.MaxRows = in.Query, optional(in.MaxRows)
	if in.PreviewID != "" {
		return t.reply(t.c.RunPreviewSQLWithResponse(ctx, in.PreviewID, body))
	}
	return t.reply(t.c.RunProjectSQLWithResponse(ctx, in.ProjectID, body))
}

func (t *tools) addDataTools(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_run_sql", Annotations: readOnly("Run read-only SQL"),
		Description: "Run SQL in a READ ONLY transaction on a project or preview and return columns and rows. " +
			"Any write fails (SQLSTATE 25006). Use capydb_execute_sql to change data or schema."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in sqlIn) (*mcp.CallToolResult, any, error) {
			return t.runSQL(ctx, in, capydb.SQLQueryRequest{ReadOnly: yes})
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_execute_sql", Annotations: destructive("Execute SQL that writes"),
		Description: "DESTRUCTIVE: run SQL that may write (INSERT, UPDATE, DELETE, CREATE, ALTER, DROP) on a project or preview, in one transaction. " +
			"Prefer a preview for trying changes. UPDATE/DELETE without WHERE and TRUNCATE are refused unless allow_unqualified_writes is true."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in writeSQLIn) (*mcp.CallToolResult, any, error) {
			return t.runSQL(ctx, in.sqlIn, capydb.SQLQueryRequest{ReadOnly: no, AllowUnqualifiedWrites: optional(in.AllowUnqualifiedWrites)})
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_get_schema", Annotations: readOnly("Get the schema"),
		Description: "Describe a project's or preview's schema: schemas, tables, columns with types, keys, indexes, views, functions, extensions."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in targetIn) (*mcp.CallToolResult, any, error) {
			if err := in.check(); err != nil {
				return nil, nil, err
			}
			if in.PreviewID != "" {
				return t.reply(t.c.GetPreviewSchemaWithResponse(ctx, in.PreviewID))
			}
			return t.reply(t.c.GetProjectSchemaWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_generate_types", Annotations: readOnly("Generate types"),
		Description: "Generate source code types for a project's or preview's tables: typescript (default), zod, drizzle, go or python."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in typesIn) (*mcp.CallToolResult, any, error) {
			if err := (targetIn{ProjectID: in.ProjectID, PreviewID: in.PreviewID}).check(); err != nil {
				return nil, nil, err
			}
			if in.PreviewID != "" {
				return t.reply(t.c.GeneratePreviewTypesWithResponse(ctx, in.PreviewID, &capydb.GeneratePreviewTypesParams{Language: optional(in.Language)}))
			}
			return t.reply(t.c.GenerateProjectTypesWithResponse(ctx, in.ProjectID, &capydb.GenerateProjectTypesParams{Language: optional(in.Language)}))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_lint", Annotations: readOnly("Lint the schema"),
		Description: "Check a project's or preview's schema for problems (missing primary keys, unindexed foreign keys, ...) with fixes."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in targetIn) (*mcp.CallToolResult, any, error) {
			if err := in.check(); err != nil {
				return nil, nil, err
			}
			if in.PreviewID != "" {
				return t.reply(t.c.LintPreviewWithResponse(ctx, in.PreviewID))
			}
			return t.reply(t.c.LintProjectWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_get_observability", Annotations: readOnly("Get live metrics"),
		Description: "Live metrics of a project: connections and storage against the plan's limits, active queries with durations and wait events."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in projectRef) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.GetProjectObservabilityWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_list_alerts", Annotations: readOnly("List alerts"),
		Description: "List a project's usage alerts (connections, storage...), open and resolved."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in projectRef) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.ListProjectAlertsWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_get_logs", Annotations: readOnly("Get logs"),
		Description: "Read a project's PostgreSQL log entries, oldest first, optionally filtered by severity."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in logsIn) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.GetProjectLogsWithResponse(ctx, in.ProjectID, &capydb.GetProjectLogsParams{
				Hours: optional(in.Hours), Severity: optional(in.Severity), Limit: optional(in.Limit)}))
		})
}
