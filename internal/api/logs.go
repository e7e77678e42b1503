package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/pglogs"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// LogsInput is GET …/logs.
type LogsInput struct {
	ProjectID string `path:"projectID"`
	Cursor    string `query:"cursor" doc:"tail mode: entries after this cursor (takes precedence over hours)"`
	Hours     int    `query:"hours" minimum:"1" maximum:"720" default:"1" doc:"1-720, default 1"`
	Limit     int    `query:"limit" minimum:"0" doc:"default 200, max 500"`
	Severity  string `query:"severity" doc:"comma-separated: debug, log, info, notice, warning, error, fatal, panic, detail"`
}

// LogSearchInput is GET …/logs/search.
type LogSearchInput struct {
	ProjectID string `path:"projectID"`
	Q         string `query:"q" maxLength:"200" doc:"case-insensitive substring"`
	SQLState  string `query:"sqlstate" doc:"comma-separated five-character codes or two-character classes"`
	Severity  string `query:"severity" doc:"comma-separated severities"`
	Since     string `query:"since" doc:"RFC 3339; default 24 hours before until"`
	Until     string `query:"until" doc:"RFC 3339; default now; at most 30 days after since"`
	Cursor    string `query:"cursor"`
	Limit     int    `query:"limit" minimum:"0" doc:"default 200, max 500"`
}

// LogsOutput is {logs}.
type LogsOutput struct {
	Body struct {
		Logs *wire.ProjectLogs `json:"logs"`
	}
}

// LogSearchOutput is {search}.
type LogSearchOutput struct {
	Body struct {
		Search *wire.ProjectLogSearch `json:"search"`
	}
}

const (
	defaultLogLimit = 200
	maxLogLimit     = 500
	maxSearchSpan   = 30 * 24 * time.Hour
)

var logSeverities = []string{"debug", "log", "info", "notice", "warning", "error", "fatal", "panic", "detail"}

var sqlstateRe = regexp.MustCompile(`^[0-9A-Z]{2}([0-9A-Z]{3})?$`)

func (s *Server) registerLogs() {
	tags := []string{"observability"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectLogs", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/logs", Scope: auth.ScopeProjectsRead},
		Summary: "The project database's server log lines, oldest first (tail with cursor)", Tags: tags}, s.getLogs)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "searchProjectLogs", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/logs/search", Scope: auth.ScopeProjectsRead},
		Summary: "Search the project database's log archive, newest first", Tags: tags,
		Errors: []int{http.StatusServiceUnavailable}}, s.searchLogs)
}

func (s *Server) logRetention() time.Duration {
	if s.deps.LogRetention > 0 {
		return s.deps.LogRetention
	}
	return pglogs.DefaultRetention
}

// logCursor binds a line id to its project, so a cursor of another
// project is refused rather than read.
func logCursor(projectID string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(projectID + "." + strconv.FormatInt(id, 10)))
}

func parseLogCursor(projectID, c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	prj, idText, ok := strings.Cut(string(b), ".")
	id, perr := strconv.ParseInt(idText, 10, 64)
	if err != nil || !ok || prj != projectID || perr != nil || id < 0 {
		return 0, errorf(http.StatusBadRequest, "invalid field \"cursor\": pass the next_cursor of a previous answer for this project")
	}
	return id, nil
}

func parseList(field, v string, valid func(string) bool, hint string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if !valid(item) {
			return nil, errorf(http.StatusBadRequest, "invalid field %q: %q is not %s", field, item, hint)
		}
		out = append(out, item)
	}
	return out, nil
}

func parseSeverities(v string) ([]string, error) {
	return parseList("severity", strings.ToLower(v), func(s string) bool { return slices.Contains(logSeverities, s) },
		"one of "+strings.Join(logSeverities, ", "))
}

func logLimit(n int) int {
	if n == 0 {
		return defaultLogLimit
	}
	return min(n, maxLogLimit)
}

func toLogEntry(projectID string, l *store.LogLine) wire.ProjectLogEntry {
	return wire.ProjectLogEntry{Timestamp: l.LoggedAt.UTC(), Severity: l.Severity, Message: l.Message,
		Cursor: logCursor(projectID, l.ID), SQLState: l.SQLState, PID: l.PID, User: l.Username, Database: l.Database}
}

func (s *Server) getLogs(ctx context.Context, in *LogsInput) (*LogsOutput, error) {
	sev, err := parseSeverities(in.Severity)
	if err != nil {
		return nil, err
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	q := store.LogQuery{ClusterID: p.ClusterID, Database: p.DatabaseName, Severities: sev, Limit: logLimit(in.Limit),
		Since: time.Now().Add(-s.logRetention())}
	if in.Cursor != "" {
		if q.AfterID, err = parseLogCursor(p.ID, in.Cursor); err != nil {
			return nil, err
		}
	} else {
		// The trailing window: its newest lines, served oldest first.
		q.Since = maxTime(q.Since, time.Now().Add(-time.Duration(in.Hours)*time.Hour))
		q.NewestFirst = true
	}
	lines, err := store.QueryLogLines(ctx, s.deps.Store.Pool, q)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if q.NewestFirst {
		slices.Reverse(lines)
	}
	out := &LogsOutput{}
	logs := &wire.ProjectLogs{Entries: make([]wire.ProjectLogEntry, len(lines))}
	for i, l := range lines {
		logs.Entries[i] = toLogEntry(p.ID, l)
	}
	if len(lines) > 0 {
		logs.NextCursor = logs.Entries[len(lines)-1].Cursor
	}
	out.Body.Logs = logs
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Server) searchLogs(ctx context.Context, in *LogSearchInput) (*LogSearchOutput, error) {
	if !s.deps.LogSearch {
		return nil, errorf(http.StatusServiceUnavailable, "log search is not enabled on this deployment")
	}
	if utf8.RuneCountInString(in.Q) > 200 {
		return nil, errorf(http.StatusBadRequest, "invalid field \"q\": at most 200 characters")
	}
	sev, err := parseSeverities(in.Severity)
	if err != nil {
		return nil, err
	}
	codes, err := parseList("sqlstate", strings.ToUpper(in.SQLState), sqlstateRe.MatchString,
		"a five-character SQLSTATE or a two-character class")
	if err != nil {
		return nil, err
	}
	until, since := time.Now(), time.Time{}
	if in.Until != "" {
		if until, err = time.Parse(time.RFC3339, in.Until); err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid field \"until\": use RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
	}
	since = until.Add(-24 * time.Hour)
	if in.Since != "" {
		if since, err = time.Parse(time.RFC3339, in.Since); err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid field \"since\": use RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
	}
	switch {
	case since.After(until):
		return nil, errorf(http.StatusBadRequest, "since must not be after until")
	case until.Sub(since) > maxSearchSpan:
		return nil, errorf(http.StatusBadRequest, "since and until may be at most 30 days apart")
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	limit := logLimit(in.Limit)
	q := store.LogQuery{ClusterID: p.ClusterID, Database: p.DatabaseName, Severities: sev, Substring: in.Q,
		Since: maxTime(since, time.Now().Add(-s.logRetention())), Until: until, Limit: limit + 1, NewestFirst: true}
	for _, c := range codes {
		if len(c) == 2 {
			q.SQLClasses = append(q.SQLClasses, c)
		} else {
			q.SQLStates = append(q.SQLStates, c)
		}
	}
	if in.Cursor != "" {
		if q.BeforeID, err = parseLogCursor(p.ID, in.Cursor); err != nil {
			return nil, err
		}
	}
	lines, err := store.QueryLogLines(ctx, s.deps.Store.Pool, q)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	res := &wire.ProjectLogSearch{Truncated: len(lines) > limit}
	lines = lines[:min(len(lines), limit)]
	res.Entries = make([]wire.ProjectLogEntry, len(lines))
	for i, l := range lines {
		res.Entries[i] = toLogEntry(p.ID, l)
	}
	if res.Truncated {
		res.NextCursor = res.Entries[len(lines)-1].Cursor
	}
	out := &LogSearchOutput{}
	out.Body.Search = res
	return out, nil
}
