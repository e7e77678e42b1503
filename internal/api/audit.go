package api

import (
	"context"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
)

// ProjectAuditEvent is the wire form of an audit event.
type ProjectAuditEvent struct {
	ID             string         `json:"id"`
	OrganizationID string         `json:"organization_id"`
	ProjectID      *string        `json:"project_id,omitempty"`
	Action         string         `json:"action"`
	ActorKind      string         `json:"actor_kind"`
	ActorID        *string        `json:"actor_id,omitempty"`
	Metadata       map[string]any `json:"metadata"`
	CreatedAt      time.Time      `json:"created_at"`
}

// ListAuditEventsInput is GET /v1/projects/{projectID}/audit-events.
type ListAuditEventsInput struct {
	ProjectID string `path:"projectID"`
	Limit     int    `query:"limit" minimum:"0" doc:"default 25, max 100"`
}

// AuditEventsOutput is {audit_events}.
type AuditEventsOutput struct {
	Body struct {
		AuditEvents []*ProjectAuditEvent `json:"audit_events"`
	}
}

func (s *Server) registerAudit() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectAuditEvents", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/audit-events", Scope: auth.ScopeProjectsRead},
		Summary: "List a project's audit events, newest first", Tags: []string{"audit"}},
		func(ctx context.Context, in *ListAuditEventsInput) (*AuditEventsOutput, error) {
			p, _, err := s.loadProject(ctx, in.ProjectID)
			if err != nil {
				return nil, err
			}
			events, err := store.ListProjectAuditEvents(ctx, s.deps.Store.Pool, p.OrganizationID, p.ID, pageLimit(in.Limit))
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &AuditEventsOutput{}
			out.Body.AuditEvents = make([]*ProjectAuditEvent, 0, len(events))
			for _, e := range events {
				out.Body.AuditEvents = append(out.Body.AuditEvents, &ProjectAuditEvent{
					ID: e.ID, OrganizationID: e.OrganizationID, ProjectID: e.ProjectID, Action: e.Action,
					ActorKind: e.ActorKind, ActorID: e.ActorID, Metadata: e.Metadata, CreatedAt: e.CreatedAt.UTC(),
				})
			}
			return out, nil
		})
}
