package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane/studio"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// SQLQueryRequest is the body of the SQL routes (API.md §4.11).
type SQLQueryRequest struct {
	Query                  string `json:"query" doc:"1-20,000 characters; several statements separated by ; run in one transaction and the last one's result is returned"`
	MaxRows                int    `json:"max_rows,omitempty" doc:"rows returned: absent or 0 = 200, above 1000 = 1000, negative = 400"`
	AllowUnqualifiedWrites bool   `json:"allow_unqualified_writes,omitempty" doc:"run UPDATE/DELETE without WHERE and TRUNCATE"`
	ReadOnly               bool   `json:"read_only,omitempty" doc:"run the transaction READ ONLY (a write is a 400 with SQLSTATE 25006)"`
}

// SQLInput is POST /v1/projects/{projectID}/sql.
type SQLInput struct {
	ProjectID string `path:"projectID"`
	Body      SQLQueryRequest
}

// PreviewSQLInput is POST /v1/preview-databases/{previewID}/sql.
type PreviewSQLInput struct {
	PreviewID string `path:"previewID"`
	Body      SQLQueryRequest
}

// SQLQueryResult is the result of a Studio query (API.md §4.11).
type SQLQueryResult studio.Result

// SQLResultOutput is {result}.
type SQLResultOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Result *SQLQueryResult `json:"result"`
	}
}

// SQLHistoryEntry is one entry of a project's SQL history †.
type SQLHistoryEntry struct {
	ID             string    `json:"id"`
	Query          string    `json:"query"`
	StatementKinds []string  `json:"statement_kinds"`
	ReadOnly       bool      `json:"read_only"`
	DurationMS     int64     `json:"duration_ms"`
	RowCount       int64     `json:"row_count"`
	Error          *string   `json:"error,omitempty"`
	ActorKind      string    `json:"actor_kind"`
	ActorID        *string   `json:"actor_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// SQLHistoryInput is GET /v1/projects/{projectID}/sql/history.
type SQLHistoryInput struct {
	ProjectID string `path:"projectID"`
	Limit     int    `query:"limit" minimum:"0" doc:"default 25, max 100"`
}

// SQLHistoryOutput is {sql_history}.
type SQLHistoryOutput struct {
	Body struct {
		History []*SQLHistoryEntry `json:"sql_history"`
	}
}

func (s *Server) registerStudio() {
	tags := []string{"studio"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "runProjectSql", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/sql", Scope: auth.ScopeProjectsWrite},
		Summary: "Run SQL on the project database as the project's role, in one transaction", Tags: tags, Errors: sqlErrors}, s.runProjectSQL)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "runPreviewSql", Method: http.MethodPost,
		Path: "/v1/preview-databases/{previewID}/sql", Scope: auth.ScopeProjectsWrite},
		Summary: "Run SQL on a preview database as the preview's role, in one transaction", Tags: tags, Errors: sqlErrors}, s.runPreviewSQL)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectSqlHistory", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/sql/history", Scope: auth.ScopeProjectsWrite},
		Addition: true, Summary: "List the project's Studio SQL history, newest first (query text, duration, rows, who)", Tags: tags}, s.listSQLHistory)
	s.registerStudioTables()
	s.registerSnippets()
}

func (s *Server) runProjectSQL(ctx context.Context, in *SQLInput) (*SQLResultOutput, error) {
	// The middleware has checked the caller may see the project; one read
	// of it is all this route needs (no organization).
	p, err := store.GetProject(ctx, s.deps.Store.Pool, principal(ctx).OrganizationID, in.ProjectID)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	plan, err := s.studioPlan(in.Body)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectReady {
		return nil, errorf(http.StatusConflict, "project is %s, not ready", p.State)
	}
	res, runErr := s.deps.Lifecycle.RunProjectSQL(ctx, p, plan)
	s.recordSQL(ctx, "project.sql_executed", p.OrganizationID, p.ID, "", in.Body, plan, res, runErr)
	return s.sqlOutput(ctx, res, runErr)
}

func (s *Server) runPreviewSQL(ctx context.Context, in *PreviewSQLInput) (*SQLResultOutput, error) {
	pv, _, err := s.loadPreview(ctx, in.PreviewID)
	if err != nil {
		return nil, err
	}
	plan, err := s.studioPlan(in.Body)
	if err != nil {
		return nil, err
	}
	if pv.State != store.PreviewReady {
		return nil, errorf(http.StatusConflict, "preview is %s, not ready", pv.State)
	}
	res, runErr := s.deps.Lifecycle.RunPreviewSQL(ctx, pv, plan)
	s.recordSQL(ctx, "preview.sql_executed", pv.OrganizationID, pv.ProjectID, pv.ID, in.Body, plan, res, runErr)
	return s.sqlOutput(ctx, res, runErr)
}

func (s *Server) studioPlan(body SQLQueryRequest) (*studio.Plan, error) {
	plan, err := studio.Prepare(studio.Request{SQL: body.Query, MaxRows: body.MaxRows, ReadOnly: body.ReadOnly,
		AllowUnqualifiedWrites: body.AllowUnqualifiedWrites})
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%s", err.Error())
	}
	return plan, nil
}

// sqlOutput maps the runner's outcome to the wire: SQL errors and refusals
// are 400, the time limit 408, an unreachable database 503.
func (s *Server) sqlOutput(ctx context.Context, res *studio.Result, err error) (*SQLResultOutput, error) {
	if err != nil {
		return nil, s.studioError(ctx, err)
	}
	out := &SQLResultOutput{CacheControl: "no-store"}
	out.Body.Result = (*SQLQueryResult)(res)
	return out, nil
}

func (s *Server) studioError(ctx context.Context, err error) error {
	var se *studio.Error
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "%s", se.Error())
	case errors.Is(err, studio.ErrTimeout):
		return errorf(http.StatusRequestTimeout, "%s", s.deps.Lifecycle.StudioTimeoutMessage())
	case errors.Is(err, lifecycle.ErrDatabaseUnreachable):
		s.deps.Log.ErrorContext(ctx, "studio: no login URL for the database", "error", err)
		return errorf(http.StatusServiceUnavailable, "the database is not reachable from this server right now; try again")
	case errors.As(err, &pe) && pe.Code == "53300":
		return errorf(http.StatusServiceUnavailable, "the database has no free connection for this role (%s); try again", pe.Message)
	case errors.As(err, &pe) && strings.HasPrefix(pe.Code, "57") || errors.As(err, &pe) && strings.HasPrefix(pe.Code, "08"):
		// shutdown, connection trouble: not the caller's mistake, a retry can help
		return errorf(http.StatusServiceUnavailable, "the database is not available right now (%s); try again", pe.Message)
	case errors.As(err, &ce):
		s.deps.Log.WarnContext(ctx, "studio could not connect", "error", err)
		return errorf(http.StatusServiceUnavailable, "the database is not reachable right now; try again")
	}
	return s.fail(ctx, err, "")
}

// recordSQL writes the audit event (and, for projects, the history entry) of
// a query that ran. The request may be gone (a client that disconnected), so
// the record is written with a context of its own.
func (s *Server) recordSQL(ctx context.Context, action, orgID, projectID, previewID string, body SQLQueryRequest,
	plan *studio.Plan, res *studio.Result, runErr error) {
	kind, id := principal(ctx).ActorKind()
	var actorID *string
	if id != "" {
		actorID = &id
	}
	sum := sha256.Sum256([]byte(body.Query))
	meta := map[string]any{"statement_kinds": plan.Kinds(), "read_only": body.ReadOnly, "query_sha256": hex.EncodeToString(sum[:])}
	var rowCount, duration int64
	var errText *string
	if res != nil {
		rowCount, duration = res.RowCount, res.DurationMS
		meta["truncated"] = res.Truncated
	}
	if runErr != nil {
		msg := "cancelled: the client disconnected"
		if !errors.Is(runErr, context.Canceled) {
			msg = s.studioError(ctx, runErr).Error()
		}
		errText = &msg
		var se *studio.Error
		if errors.As(runErr, &se) && se.SQLState != "" {
			meta["sqlstate"] = se.SQLState
		}
		meta["failed"] = true
	}
	meta["row_count"], meta["duration_ms"] = rowCount, duration
	if previewID != "" {
		meta["preview_id"] = previewID
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	audit := &store.AuditEvent{ID: ids.New("aud_"), OrganizationID: orgID, ProjectID: &projectID, Action: action,
		ActorKind: kind, ActorID: actorID, Metadata: meta}
	var hist *store.SQLHistoryEntry
	if previewID == "" {
		hist = &store.SQLHistoryEntry{ID: ids.New("sqh_"), OrganizationID: orgID, ProjectID: projectID,
			Query: body.Query, StatementKinds: plan.Kinds(), ReadOnly: body.ReadOnly, DurationMS: duration, RowCount: rowCount,
			Error: errText, ActorKind: kind, ActorID: actorID}
	}
	err := store.RecordSQL(rctx, s.deps.Store.Pool, audit, hist)
	if err != nil {
		s.deps.Log.ErrorContext(ctx, "recording a Studio query failed", "action", action, "project", projectID, "error", err)
	}
}

func (s *Server) listSQLHistory(ctx context.Context, in *SQLHistoryInput) (*SQLHistoryOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListSQLHistory(ctx, s.deps.Store.Pool, p.ID, pageLimit(in.Limit))
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &SQLHistoryOutput{}
	out.Body.History = make([]*SQLHistoryEntry, 0, len(list))
	for _, e := range list {
		out.Body.History = append(out.Body.History, &SQLHistoryEntry{ID: e.ID, Query: e.Query, StatementKinds: e.StatementKinds,
			ReadOnly: e.ReadOnly, DurationMS: e.DurationMS, RowCount: e.RowCount, Error: e.Error, ActorKind: e.ActorKind,
			ActorID: e.ActorID, CreatedAt: e.CreatedAt.UTC()})
	}
	return out, nil
}

// sqlErrors are the runner's answers beyond the derived ones: 408 when the
// statement timed out, 409 while the database is not ready.
var sqlErrors = []int{http.StatusRequestTimeout, http.StatusConflict}
