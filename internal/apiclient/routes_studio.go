package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
)

// SQLQueryRequest is the body of POST .../sql (API.md §4.11).
type SQLQueryRequest struct {
	Query                  string `json:"query"`
	MaxRows                int    `json:"max_rows,omitempty"`
	AllowUnqualifiedWrites bool   `json:"allow_unqualified_writes,omitempty"`
	ReadOnly               bool   `json:"read_only,omitempty"`
}

// SQLQueryResult is a Studio query's result. Rows stay raw JSON objects so
// that printing them keeps the server's column order.
type SQLQueryResult struct {
	Columns    []string          `json:"columns"`
	Rows       []json.RawMessage `json:"rows"`
	RowCount   int64             `json:"row_count"`
	DurationMS int64             `json:"duration_ms"`
	Truncated  bool              `json:"truncated"`
}

// DatabaseTable is one entry of GET /v1/projects/{id}/tables.
type DatabaseTable struct {
	Schema        string `json:"schema"`
	Table         string `json:"table"`
	Type          string `json:"type"`
	EstimatedRows *int64 `json:"estimated_rows,omitempty"`
}

// RunSQL is POST /v1/projects/{id}/sql, or /v1/preview-databases/{id}/sql
// when previewID is set.
func (c *Client) RunSQL(ctx context.Context, projectID, previewID string, req SQLQueryRequest) (*SQLQueryResult, error) {
	path := "/v1/projects/" + seg(projectID) + "/sql"
	if previewID != "" {
		path = "/v1/preview-databases/" + seg(previewID) + "/sql"
	}
	var out struct {
		Result *SQLQueryResult `json:"result"`
	}
	if err := c.send(ctx, http.MethodPost, path, req, &out); err != nil {
		return nil, err
	}
	if out.Result == nil {
		out.Result = &SQLQueryResult{}
	}
	out.Result.Columns, out.Result.Rows = nonNil(out.Result.Columns), nonNil(out.Result.Rows)
	return out.Result, nil
}

// ListTables is GET /v1/projects/{id}/tables.
func (c *Client) ListTables(ctx context.Context, projectID string) ([]DatabaseTable, error) {
	var out struct {
		Tables []DatabaseTable `json:"tables"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/tables", nil, &out)
	return nonNil(out.Tables), err
}
