package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/capydb/capydb/internal/wire"
)

// Observability shapes (API.md §4.13).
type (
	ProjectObservability = wire.ProjectObservability
	ObservabilitySample  = wire.ObservabilitySample
	ProjectAlert         = wire.ProjectAlert
	ProjectLogs          = wire.ProjectLogs
	ProjectLogEntry      = wire.ProjectLogEntry
	ProjectLogSearch     = wire.ProjectLogSearch
)

// GetObservability is GET /v1/projects/{id}/observability.
func (c *Client) GetObservability(ctx context.Context, projectID string) (*ProjectObservability, error) {
	var out struct {
		Observability *ProjectObservability `json:"observability"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/observability", nil, &out)
	return out.Observability, err
}

// LogsQuery is the query of GET …/logs (zero values are left out).
type LogsQuery struct {
	Cursor, Severity string
	Hours, Limit     int
}

// GetLogs is GET /v1/projects/{id}/logs.
func (c *Client) GetLogs(ctx context.Context, projectID string, q LogsQuery) (*ProjectLogs, error) {
	v := url.Values{}
	set(v, "cursor", q.Cursor)
	set(v, "severity", q.Severity)
	setInt(v, "hours", q.Hours)
	setInt(v, "limit", q.Limit)
	var out struct {
		Logs *ProjectLogs `json:"logs"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/logs", v, &out)
	return out.Logs, err
}

// LogSearchQuery is the query of GET …/logs/search.
type LogSearchQuery struct {
	Q, SQLState, Severity, Since, Until, Cursor string
	Limit                                       int
}

// SearchLogs is GET /v1/projects/{id}/logs/search.
func (c *Client) SearchLogs(ctx context.Context, projectID string, q LogSearchQuery) (*ProjectLogSearch, error) {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Q, "sqlstate": q.SQLState, "severity": q.Severity,
		"since": q.Since, "until": q.Until, "cursor": q.Cursor} {
		set(v, k, s)
	}
	setInt(v, "limit", q.Limit)
	var out struct {
		Search *ProjectLogSearch `json:"search"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/logs/search", v, &out)
	return out.Search, err
}

// ListAlerts is GET /v1/projects/{id}/alerts.
func (c *Client) ListAlerts(ctx context.Context, projectID string) ([]ProjectAlert, error) {
	var out struct {
		Alerts []ProjectAlert `json:"alerts"`
	}
	err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/alerts", nil, &out)
	return nonNil(out.Alerts), err
}

// AcknowledgeAlert is POST /v1/projects/{id}/alerts/{alertID}/acknowledge.
func (c *Client) AcknowledgeAlert(ctx context.Context, projectID, alertID string) (*ProjectAlert, error) {
	var out struct {
		Alert *ProjectAlert `json:"alert"`
	}
	err := c.send(ctx, http.MethodPost, "/v1/projects/"+seg(projectID)+"/alerts/"+seg(alertID)+"/acknowledge", nil, &out)
	return out.Alert, err
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setInt(v url.Values, k string, n int) {
	if n != 0 {
		v.Set(k, strconv.Itoa(n))
	}
}
