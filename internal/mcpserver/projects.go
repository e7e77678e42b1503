package mcpserver

import (
	"cmp"
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/capydb/capydb/pkg/capydb"
)

type noInput struct{}

type projectRef struct {
	ProjectID string `json:"project_id" jsonschema:"the project's id (prj_...), from capydb_list_projects"`
}

type createProjectIn struct {
	Name            string `json:"name" jsonschema:"1-64 characters; the slug is derived from it"`
	Region          string `json:"region,omitempty" jsonschema:"region id from capydb_list_regions; the server's default when absent"`
	PostgresVersion string `json:"postgres_version,omitempty" jsonschema:"major version such as 16; the default when absent"`
	NonProduction   bool   `json:"non_production,omitempty" jsonschema:"true for a development/test project (production projects need an approval to delete)"`
	WaitSeconds     int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for provisioning, at most 300 (default 300)"`
}

type deleteProjectIn struct {
	ProjectID     string `json:"project_id" jsonschema:"the project's id (prj_...)"`
	ApprovalToken string `json:"approval_token,omitempty" jsonschema:"ap_... token a person minted; production projects need one"`
	WaitSeconds   int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the deletion job, at most 300 (default 120)"`
}

type jobIn struct {
	JobID       string `json:"job_id" jsonschema:"the job's id (job_...), as returned by a mutation"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"capydb_wait_job only: how long to wait, at most 300 (default 120)"`
}

type typesIn struct {
	ProjectID string `json:"project_id,omitempty" jsonschema:"the project's id; give this or preview_id"`
	PreviewID string `json:"preview_id,omitempty" jsonschema:"the preview's id (pvw_...); give this or project_id"`
	Language  string `json:"language,omitempty" jsonschema:"typescript (default), zod, drizzle, go or python"`
}

func (t *tools) addProjectTools(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_list_projects", Annotations: readOnly("List projects"),
		Description: "List the projects (one PostgreSQL database each) the API key can see, with id, name, slug, state, region and plan."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.ListProjectsWithResponse(ctx, nil))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_get_project", Annotations: readOnly("Get a project"),
		Description: "Get one project by id: state (provisioning, ready, failed, deleting), plan limits, region, Postgres version."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in projectRef) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.GetProjectWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_create_project", Annotations: additive("Create a project", false),
		Description: "Create a project (a new PostgreSQL database) and wait until it is ready. Returns the project and its finished job; " +
			"then use capydb_get_connection_strings for its URLs."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in createProjectIn) (*mcp.CallToolResult, any, error) {
			body := capydb.CreateProjectBody{Name: in.Name, Region: optional(in.Region), PostgresVersion: optional(in.PostgresVersion)}
			if in.NonProduction {
				body.Environment = ptr(capydb.CreateProjectBodyEnvironmentNonProduction)
			}
			r, err := t.c.CreateProjectWithResponse(ctx, body)
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), cmp.Or(in.WaitSeconds, 300))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_delete_project", Annotations: destructive("Delete a project"),
		Description: "DESTRUCTIVE: delete a project, its database and all its previews. Production projects need an approval_token minted by a person."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in deleteProjectIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.DeleteProjectWithResponse(ctx, in.ProjectID, &capydb.DeleteProjectParams{ApprovalToken: optional(in.ApprovalToken)})
			if err != nil {
				return nil, nil, t.toolError(err)
			}
			return t.waitFor(ctx, r.Bytes(), in.WaitSeconds)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_get_connection_strings", Annotations: readOnly("Get connection strings"),
		Description: "Get the postgres:// URLs of a project or preview: direct_url (sessions, migrations), pooled_url (pgBouncer, for apps). " +
			"They contain the password: do not print them where others can read them. Needs credentials:read."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in targetIn) (*mcp.CallToolResult, any, error) {
			if err := in.check(); err != nil {
				return nil, nil, err
			}
			if in.PreviewID != "" {
				return t.reply(t.c.GetPreviewDatabaseConnectionsWithResponse(ctx, in.PreviewID))
			}
			return t.reply(t.c.GetProjectConnectionsWithResponse(ctx, in.ProjectID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_list_regions", Annotations: readOnly("List regions"),
		Description: "List the regions projects can be placed in."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.ListRegionsWithResponse(ctx))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_get_job", Annotations: readOnly("Get a job"),
		Description: "Get an asynchronous job (provisioning, preview builds, backups, restores...): state queued, running, completed or failed, and its error."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in jobIn) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.GetJobWithResponse(ctx, in.JobID))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_wait_job", Annotations: readOnly("Wait for a job"),
		Description: "Wait (at most wait_seconds, up to 300) until a job is completed or failed and return it. A failed job is a tool error with its message."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in jobIn) (*mcp.CallToolResult, any, error) {
			return t.waitFor(ctx, jobRef(in.JobID), in.WaitSeconds)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "capydb_create_ephemeral_database", Annotations: additive("Create an ephemeral database", false),
		Description: "Create a throwaway database (destroyed after 72 hours unless claimed) where the server offers them; returns its URLs and claim token."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in struct {
			Name string `json:"name,omitempty" jsonschema:"optional name"`
		}) (*mcp.CallToolResult, any, error) {
			return t.reply(t.c.CreateEphemeralDatabaseWithResponse(ctx, capydb.EphemeralCreateBody{Name: optional(in.Name)}))
		})
}
