package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
)

// ImportFollowRequest is POST /v1/projects/{projectID}/imports/follow.
type ImportFollowRequest struct {
	Confirm   bool   `json:"confirm"`
	SourceURL string `json:"source_url"`
}

// ImportFollowInput wraps it.
type ImportFollowInput struct {
	ProjectID string `path:"projectID"`
	Body      ImportFollowRequest
}

// ImportFollowCutoverRequest is POST .../imports/follow/cutover.
type ImportFollowCutoverRequest struct {
	Confirm bool `json:"confirm"`
}

// ImportFollowCutoverInput wraps it.
type ImportFollowCutoverInput struct {
	ProjectID string `path:"projectID"`
	Body      ImportFollowCutoverRequest
}

// ImportFollowActionInput is the status and abort routes (no body).
type ImportFollowActionInput struct {
	ProjectID string    `path:"projectID"`
	Body      *struct{} `required:"false"`
}

func (s *Server) registerFollowImports() {
	tags := []string{"imports"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "startImportFollow", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports/follow", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Start a follow import: copy the schema, then stream the source's rows by logical replication", Tags: tags}, s.startImportFollow)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getImportFollowStatus", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports/follow/status", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Queue a job that reports the follow import's stream state and lag", Tags: tags},
		func(ctx context.Context, in *ImportFollowActionInput) (*JobOutput, error) {
			return s.followAction(ctx, in.ProjectID, lifecycle.JobFollowStatus)
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "cutoverImportFollow", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports/follow/cutover", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Wait for the stream to catch up, bring sequences forward and end the follow import", Tags: tags}, s.cutoverImportFollow)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "abortImportFollow", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports/follow/abort", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Stop the follow import and remove its slot and publication from the source", Tags: tags},
		func(ctx context.Context, in *ImportFollowActionInput) (*JobOutput, error) {
			return s.followAction(ctx, in.ProjectID, lifecycle.JobFollowAbort)
		})
}

func (s *Server) startImportFollow(ctx context.Context, in *ImportFollowInput) (*JobOutput, error) {
	if !in.Body.Confirm {
		return nil, errorf(http.StatusBadRequest, "confirm must be true: a follow import writes into the project's live database")
	}
	if in.Body.SourceURL == "" {
		return nil, errorf(http.StatusBadRequest, "source_url is required")
	}
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	u, err := s.deps.Lifecycle.CheckSourceURL(ctx, in.Body.SourceURL)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	job, err := s.deps.Lifecycle.StartFollow(ctx, org, p.ID, u, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) cutoverImportFollow(ctx context.Context, in *ImportFollowCutoverInput) (*JobOutput, error) {
	if !in.Body.Confirm {
		return nil, errorf(http.StatusBadRequest, "confirm must be true: a cutover ends the follow import")
	}
	return s.followAction(ctx, in.ProjectID, lifecycle.JobFollowCutover)
}

func (s *Server) followAction(ctx context.Context, projectID, jobType string) (*JobOutput, error) {
	p, org, err := s.loadProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.FollowAction(ctx, org, p.ID, jobType, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}
