package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/observe"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// ProjectObservability and friends are the wire forms of API.md §4.13.
type (
	ProjectObservability = wire.ProjectObservability
	ObservabilitySample  = wire.ObservabilitySample
	ProjectAlert         = wire.ProjectAlert
)

// ObservabilityOutput is {observability}.
type ObservabilityOutput struct {
	Body struct {
		Observability *ProjectObservability `json:"observability"`
	}
}

// HistoryInput is GET …/observability/history.
type HistoryInput struct {
	ProjectID string `path:"projectID"`
	Hours     int    `query:"hours" minimum:"1" maximum:"720" default:"24" doc:"1-720, default 24"`
}

// SamplesOutput is {samples}.
type SamplesOutput struct {
	Body struct {
		Samples []*ObservabilitySample `json:"samples"`
	}
}

// AlertsOutput is {alerts}.
type AlertsOutput struct {
	Body struct {
		Alerts []*ProjectAlert `json:"alerts"`
	}
}

// AlertOutput is {alert}.
type AlertOutput struct {
	Body struct {
		Alert *ProjectAlert `json:"alert"`
	}
}

// AlertActionInput names an alert; the body is optional and field-less.
type AlertActionInput struct {
	ProjectID string            `path:"projectID"`
	AlertID   string            `path:"alertID"`
	Body      *WebhookEmptyBody `required:"false"`
}

// maxHistoryBuckets bounds the history answer (API.md §3.19).
const maxHistoryBuckets = 1000

// alertHistory is how long resolved alerts stay listed.
const alertHistory = 30 * 24 * time.Hour

func (s *Server) registerObservability() {
	tags := []string{"observability"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectObservability", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/observability", Scope: auth.ScopeProjectsRead},
		Summary: "Measure a project's connections, size, active and slow queries now", Tags: tags,
		Errors: []int{http.StatusConflict}}, s.getObservability)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectObservabilityHistory", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/observability/history", Scope: auth.ScopeProjectsRead},
		Summary: "A project's sampled metrics, oldest first, in at most 1,000 buckets", Tags: tags},
		func(ctx context.Context, in *HistoryInput) (*SamplesOutput, error) {
			p, _, err := s.loadProject(ctx, in.ProjectID)
			if err != nil {
				return nil, err
			}
			rows, err := store.HistorySamples(ctx, s.deps.Store.Pool, p.ID,
				time.Now().Add(-time.Duration(in.Hours)*time.Hour), maxHistoryBuckets)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &SamplesOutput{}
			out.Body.Samples = make([]*ObservabilitySample, len(rows))
			for i, r := range rows {
				out.Body.Samples[i] = &ObservabilitySample{SampledAt: r.SampledAt.UTC(), Connections: r.Connections,
					ConnectionLimit: r.ConnectionLimit, ActiveQueries: r.ActiveQueries, BlockedQueries: r.BlockedQueries,
					AvgQueryMs: r.AvgQueryMs, CacheHitRatio: r.CacheHitRatio, RollbackRatio: r.RollbackRatio,
					Deadlocks: r.Deadlocks, DeadTuples: r.DeadTuples, DatabaseSizeBytes: r.DatabaseSizeBytes,
					StorageLimitBytes: r.StorageLimitBytes}
			}
			return out, nil
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectAlerts", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/alerts", Scope: auth.ScopeProjectsRead},
		Summary: "Open usage alerts and those resolved in the last 30 days, newest first", Tags: tags},
		func(ctx context.Context, in *ProjectPath) (*AlertsOutput, error) {
			p, _, err := s.loadProject(ctx, in.ProjectID)
			if err != nil {
				return nil, err
			}
			rows, err := store.ListAlerts(ctx, s.deps.Store.Pool, p.ID, time.Now().Add(-alertHistory))
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &AlertsOutput{}
			out.Body.Alerts = make([]*ProjectAlert, len(rows))
			for i, a := range rows {
				out.Body.Alerts[i] = observe.ToWire(a)
			}
			return out, nil
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "acknowledgeProjectAlert", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/alerts/{alertID}/acknowledge", Scope: auth.ScopeProjectsWrite},
		Summary: "Acknowledge an alert (keeps the first time; does not resolve it)", Tags: tags, Status: http.StatusOK},
		func(ctx context.Context, in *AlertActionInput) (*AlertOutput, error) {
			p, _, err := s.loadProject(ctx, in.ProjectID)
			if err != nil {
				return nil, err
			}
			a, err := store.AcknowledgeAlert(ctx, s.deps.Store.Pool, p.ID, in.AlertID, time.Now())
			if err != nil {
				return nil, s.fail(ctx, err, "alert not found")
			}
			out := &AlertOutput{}
			out.Body.Alert = observe.ToWire(a)
			return out, nil
		})
}

func (s *Server) getObservability(ctx context.Context, in *ProjectPath) (*ObservabilityOutput, error) {
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if !p.Provisioned || p.State == store.ProjectProvisioning || p.State == store.ProjectDeleting {
		return nil, errorf(http.StatusConflict, "project %s has no database while it is %s", p.ID, p.State)
	}
	c, err := s.deps.Lifecycle.Cluster(p.ClusterID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	st, err := c.LiveStats(ctx, p.DatabaseName)
	if errors.Is(err, dataplane.ErrNoDatabase) {
		return nil, errorf(http.StatusConflict, "project %s has no database right now", p.ID)
	}
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	limits := lifecycle.PlanFor(org)
	o := &ProjectObservability{ConnectionCount: st.Connections, ConnectionLimit: limits.MaxConnections,
		ConnectionUsagePercent: min(100, observe.Percent(int64(st.Connections), int64(limits.MaxConnections))),
		DatabaseSizeBytes:      st.SizeBytes, StorageLimitBytes: limits.StorageLimitBytes,
		StorageUsagePercent: observe.Percent(st.SizeBytes, limits.StorageLimitBytes),
		PgStatStatements:    st.StatsEnabled,
		ActiveQueries:       make([]wire.ActiveQuerySample, len(st.Active)),
		SlowQueries:         make([]wire.SlowQuerySample, len(st.Slow))}
	o.Alerts = observe.Flags(o.ConnectionUsagePercent, o.StorageUsagePercent)
	for i, q := range st.Active {
		o.ActiveQueries[i] = wire.ActiveQuerySample{PID: q.PID, Username: q.Username, State: q.State, Query: q.Query,
			DurationMs: q.Duration.Milliseconds(), WaitEventType: q.WaitEventType, WaitEvent: q.WaitEvent}
	}
	for i, q := range st.Slow {
		o.SlowQueries[i] = wire.SlowQuerySample{Query: q.Query, Calls: q.Calls, Rows: q.Rows, MeanTimeMs: q.MeanTimeMs,
			TotalTimeMs: q.TotalTimeMs, QueryID: &q.QueryID, JITTimeMs: &q.JITTimeMs, SharedBlksHit: &q.SharedBlksHit,
			SharedBlksRead: &q.SharedBlksRead, TempBlksRead: &q.TempBlksRead, TempBlksWritten: &q.TempBlksWritten}
	}
	out := &ObservabilityOutput{}
	out.Body.Observability = o
	return out, nil
}
