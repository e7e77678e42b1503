package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/studio"
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
		Path: "/v1/projects/{projectID}/tables", Scope: auth.ScopeProjectsRead, AltScope: auth.ScopeSchemaRead},
		Summary: "List the project's tables, views, materialized views and foreign tables with estimated row counts", Tags: tags}, s.listProjectTables)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectTableRows", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/tables/{schema}/{table}/rows", Scope: auth.ScopeProjectsWrite},
		Summary: "Page through a table's rows (primary-key order, READ ONLY)", Tags: tags}, s.getProjectTableRows)
}

// readyProjectDSN loads a project the caller may see and its login URL; 409
// unless it is ready.
func (s *Server) readyProjectDSN(ctx context.Context, id string) (*store.Project, string, error) {
	p, _, err := s.loadProject(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if p.State != store.ProjectReady {
		return nil, "", errorf(http.StatusConflict, "project is %s, not ready", p.State)
	}
	dsn, err := s.deps.Lifecycle.ProjectLoginDSN(p)
	if err != nil {
		return nil, "", s.noDSN(ctx, err)
	}
	return p, dsn, nil
}

func (s *Server) listProjectTables(ctx context.Context, in *ProjectPath) (*TablesOutput, error) {
	_, dsn, err := s.readyProjectDSN(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	var tables []studio.Table
	err = s.studio.pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		var err error
		tables, err = studio.ListTables(ctx, c)
		return err == nil, err
	})
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
	_, dsn, err := s.readyProjectDSN(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	var res *studio.Result
	err = s.studio.pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		sql, err := studio.RowsQuery(ctx, c, in.Schema, in.Table, in.Offset)
		if err != nil {
			return !errors.Is(err, context.Canceled), err
		}
		plan, err := studio.Prepare(studio.Request{SQL: sql, MaxRows: min(max(in.Limit, 0), studio.MaxRows), ReadOnly: true})
		if err != nil {
			return true, err
		}
		var ok bool
		res, ok, err = s.studio.runner.Execute(ctx, c, plan)
		return ok, err
	})
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
