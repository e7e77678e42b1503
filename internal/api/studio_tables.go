package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane/studio"
	"github.com/capydb/capydb/internal/store"
)

// DatabaseTable is one entry of GET .../tables (API.md §4.11).
type DatabaseTable studio.Table

// TablesOutput is {tables}.
type TablesOutput struct {
	Body struct {
		Tables []DatabaseTable `json:"tables"`
	}
}

// TableRowsInput is GET /v1/projects/{projectID}/tables/{schema}/{table}/rows.
type TableRowsInput struct {
	ProjectID string `path:"projectID"`
	Schema    string `path:"schema"`
	Table     string `path:"table"`
	Limit     int    `query:"limit" minimum:"0" doc:"default 200, max 1000"`
	Offset    int    `query:"offset" minimum:"0" doc:"rows to skip (default 0)"`
}

// TableRowsResult is a page of rows: the shape of SQLQueryResult, with
// truncated meaning "more rows follow this page".
type TableRowsResult studio.Result

// TableRowsOutput is {result}.
type TableRowsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Result *TableRowsResult `json:"result"`
	}
}

func (s *Server) registerStudioTables() {
	tags := []string{"studio"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectTables", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/tables", Scope: auth.ScopeProjectsRead, OrScope: auth.ScopeSchemaRead},
		Summary: "List the project's tables, views, materialized views and foreign tables with estimated row counts", Tags: tags, Errors: notReady}, s.listProjectTables)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectTableRows", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/tables/{schema}/{table}/rows", Scope: auth.ScopeProjectsWrite},
		Summary: "Page through a table's rows (primary-key order, READ ONLY)", Tags: tags, Errors: sqlErrors}, s.getProjectTableRows)
}

// readyProject loads a project the caller may see; 409 unless it is ready.
func (s *Server) readyProject(ctx context.Context, id string) (*store.Project, error) {
	p, _, err := s.loadProject(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectReady {
		return nil, errorf(http.StatusConflict, "project is %s, not ready", p.State)
	}
	return p, nil
}

func (s *Server) listProjectTables(ctx context.Context, in *ProjectPath) (*TablesOutput, error) {
	p, err := s.readyProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	tables, err := s.deps.Lifecycle.ListTables(ctx, p)
	if err != nil {
		return nil, s.studioError(ctx, err)
	}
	out := &TablesOutput{}
	out.Body.Tables = make([]DatabaseTable, len(tables))
	for i, t := range tables {
		out.Body.Tables[i] = DatabaseTable(t)
	}
	return out, nil
}

func (s *Server) getProjectTableRows(ctx context.Context, in *TableRowsInput) (*TableRowsOutput, error) {
	p, err := s.readyProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	res, err := s.deps.Lifecycle.TableRows(ctx, p, in.Schema, in.Table, in.Limit, in.Offset)
	if errors.Is(err, studio.ErrNoTable) {
		return nil, errorf(http.StatusNotFound, "table %s.%s not found", in.Schema, in.Table)
	}
	if err != nil {
		return nil, s.studioError(ctx, err)
	}
	out := &TableRowsOutput{CacheControl: "no-store"}
	out.Body.Result = (*TableRowsResult)(res)
	return out, nil
}
