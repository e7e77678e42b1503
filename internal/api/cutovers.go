package api

import (
	"context"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// CutoverRequest is API.md §4.18.
type CutoverRequest struct {
	ID                   string     `json:"id" doc:"cor_…"`
	OrganizationID       string     `json:"organization_id"`
	ProjectID            string     `json:"project_id"`
	PreviewDatabaseID    string     `json:"preview_database_id" doc:"the preview to promote"`
	Status               string     `json:"status" enum:"open,acked,rejected,completed"`
	CustomerNote         string     `json:"customer_note,omitempty"`
	ExternalTicketRef    string     `json:"external_ticket_ref,omitempty" doc:"required before execution"`
	OperatorNote         string     `json:"operator_note,omitempty"`
	RejectedReason       string     `json:"rejected_reason,omitempty"`
	RequestedByActorKind string     `json:"requested_by_actor_kind" enum:"user,api_key"`
	RequestedByActorID   string     `json:"requested_by_actor_id,omitempty"`
	AckByUserID          string     `json:"ack_by_user_id,omitempty" doc:"the operator who acknowledged"`
	AckAt                *time.Time `json:"ack_at,omitempty"`
	PreCutoverBackupID   string     `json:"pre_cutover_backup_id,omitempty" doc:"verified backup taken before promotion"`
	PromoteJobID         string     `json:"promote_job_id,omitempty" doc:"the project.promote_preview job"`
	CompletedAt          *time.Time `json:"completed_at,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toCutover(c *store.CutoverRequest) *CutoverRequest {
	return &CutoverRequest{ID: c.ID, OrganizationID: c.OrganizationID, ProjectID: c.ProjectID, PreviewDatabaseID: c.PreviewDatabaseID,
		Status: c.Status, CustomerNote: deref(c.CustomerNote), ExternalTicketRef: deref(c.ExternalTicketRef),
		OperatorNote: deref(c.OperatorNote), RejectedReason: deref(c.RejectedReason), RequestedByActorKind: c.RequestedByActorKind,
		RequestedByActorID: deref(c.RequestedByActorID), AckByUserID: deref(c.AckByUserID), AckAt: utcp(c.AckAt),
		PreCutoverBackupID: deref(c.PreCutoverBackupID), PromoteJobID: deref(c.PromoteJobID), CompletedAt: utcp(c.CompletedAt),
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

// CreateCutoverRequestBody is POST /v1/projects/{projectID}/cutover-requests.
type CreateCutoverRequestBody struct {
	PreviewID         string `json:"preview_id"`
	CustomerNote      string `json:"customer_note,omitempty" maxLength:"1000"`
	ExternalTicketRef string `json:"external_ticket_ref,omitempty" maxLength:"120"`
}

// CreateCutoverRequestInput wraps it.
type CreateCutoverRequestInput struct {
	ProjectID string `path:"projectID"`
	Body      CreateCutoverRequestBody
}

type cutoverOut struct {
	Body struct {
		CutoverRequest *CutoverRequest `json:"cutover_request"`
	}
}

type cutoverListOut struct {
	Body struct {
		CutoverRequests []*CutoverRequest `json:"cutover_requests"`
	}
}

func (s *Server) registerCutovers() {
	tags := []string{"projects"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listCutoverRequests", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/cutover-requests", Scope: auth.ScopeProjectsRead},
		Summary: "List the project's cutover requests, newest first", Tags: tags}, s.listCutoverRequests)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createCutoverRequest", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/cutover-requests", Scope: auth.ScopeProjectsWrite}, Status: http.StatusCreated,
		Summary: "Ask an operator to promote a ready preview to the project's production data", Tags: tags}, s.createCutoverRequest)
}

func (s *Server) listCutoverRequests(ctx context.Context, in *ProjectPath) (*cutoverListOut, error) {
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := s.deps.Lifecycle.ListCutoverRequests(ctx, org, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &cutoverListOut{}
	out.Body.CutoverRequests = []*CutoverRequest{}
	for _, c := range list {
		out.Body.CutoverRequests = append(out.Body.CutoverRequests, toCutover(c))
	}
	return out, nil
}

func (s *Server) createCutoverRequest(ctx context.Context, in *CreateCutoverRequestInput) (*cutoverOut, error) {
	if in.Body.PreviewID == "" {
		return nil, errorf(http.StatusBadRequest, "preview_id is required")
	}
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	c, err := s.deps.Lifecycle.CreateCutoverRequest(ctx, org, p.ID, lifecycle.CutoverParams{PreviewID: in.Body.PreviewID,
		CustomerNote: in.Body.CustomerNote, ExternalTicketRef: in.Body.ExternalTicketRef}, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &cutoverOut{}
	out.Body.CutoverRequest = toCutover(c)
	return out, nil
}
