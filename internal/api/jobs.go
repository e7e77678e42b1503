package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/queue"
)

// JobsOutput is {jobs}.
type JobsOutput struct {
	Body struct {
		Jobs []*Job `json:"jobs"`
	}
}

// ListJobsInput is GET /v1/projects/{projectID}/jobs.
type ListJobsInput struct {
	ProjectID string `path:"projectID"`
	Limit     int    `query:"limit" minimum:"0" doc:"default 25, max 100"`
}

// JobPath names a job.
type JobPath struct {
	JobID string `path:"jobID"`
}

func (s *Server) registerJobs() {
	tags := []string{"jobs"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectJobs", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/jobs", Scope: auth.ScopeJobsRead}, Summary: "List a project's jobs", Tags: tags}, s.listProjectJobs)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getJob", Method: http.MethodGet, Path: "/v1/jobs/{jobID}",
		Scope: auth.ScopeJobsRead}, Summary: "Get a job", Tags: tags}, s.getJob)
}

func (s *Server) listProjectJobs(ctx context.Context, in *ListJobsInput) (*JobsOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	jobs, err := queue.ListByProject(ctx, s.deps.Store.Pool, p.ID, pageLimit(in.Limit))
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &JobsOutput{}
	out.Body.Jobs = make([]*Job, 0, len(jobs))
	for _, j := range jobs {
		out.Body.Jobs = append(out.Body.Jobs, toJob(j))
	}
	return out, nil
}

func (s *Server) getJob(ctx context.Context, in *JobPath) (*JobOutput, error) {
	pr := principal(ctx)
	j, err := queue.Get(ctx, s.deps.Store.Pool, pr.OrganizationID, in.JobID)
	if err != nil {
		return nil, s.fail(ctx, err, "job not found")
	}
	if pr.ProjectScoped() && (j.ProjectID == nil || *j.ProjectID != pr.ProjectID) {
		return nil, errorf(http.StatusNotFound, "job not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(j)
	return out, nil
}
