package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// CreateProjectBody is POST /v1/projects.
type CreateProjectBody = wire.CreateProjectBody

// CreateProjectInput wraps the body.
type CreateProjectInput struct {
	Body CreateProjectBody
}

// ProjectJobOutput is {project, job}.
type ProjectJobOutput struct {
	Body struct {
		Project *Project `json:"project"`
		Job     *Job     `json:"job"`
	}
}

// ProjectOutput is {project}.
type ProjectOutput struct {
	Body struct {
		Project *Project `json:"project"`
	}
}

// ProjectsOutput is {projects, next_cursor?}.
type ProjectsOutput struct {
	Body struct {
		Projects   []*Project `json:"projects"`
		NextCursor string     `json:"next_cursor,omitempty" doc:"present when more projects follow: pass it as cursor"`
	}
}

// ListProjectsInput is GET /v1/projects. Without limit every project is
// returned, as before pagination existed.
type ListProjectsInput struct {
	Limit  int    `query:"limit" minimum:"0" doc:"page size: 0 or absent = every project, at most 100"`
	Cursor string `query:"cursor" doc:"opaque: the next_cursor of the previous page"`
}

// JobOutput is {job}.
type JobOutput struct {
	Body struct {
		Job *Job `json:"job"`
	}
}

// ProjectPath names a project in the path.
type ProjectPath struct {
	ProjectID string `path:"projectID"`
}

// DeleteProjectInput is DELETE /v1/projects/{projectID}.
type DeleteProjectInput struct {
	ProjectID     string `path:"projectID"`
	ApprovalToken string `query:"approval_token" doc:"required for production projects"`
	Confirm       string `query:"confirm" doc:"accepted and ignored (old clients)"`
}

// ConnectionsOutput is {connections}.
type ConnectionsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Connections ConnectionInfo `json:"connections"`
	}
}

// RotateBody is the optional body of a rotation.
type RotateBody struct {
	GraceHours int `json:"grace_hours,omitempty" minimum:"0" maximum:"720" doc:"0-720; 0 = no grace window"`
}

// RotateInput is POST /v1/projects/{projectID}/credentials/rotate.
type RotateInput struct {
	ProjectID string      `path:"projectID"`
	Body      *RotateBody `required:"false"`
}

// ApprovalBody is POST /v1/projects/{projectID}/approvals.
type ApprovalBody struct {
	Action string `json:"action"`
}

// ApprovalInput wraps it.
type ApprovalInput struct {
	ProjectID string `path:"projectID"`
	Body      ApprovalBody
}

// ApprovalOutput is {approval}.
type ApprovalOutput struct {
	Body struct {
		Approval struct {
			ID        string `json:"id"`
			Action    string `json:"action"`
			Token     string `json:"token"`
			ExpiresAt string `json:"expires_at"`
			ProjectID string `json:"project_id"`
		} `json:"approval"`
	}
}

func (s *Server) registerProjects() {
	tags := []string{"projects"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjects", Method: http.MethodGet, Path: "/v1/projects",
		Scope: auth.ScopeProjectsRead}, Summary: "List projects", Tags: tags}, s.listProjects)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createProject", Method: http.MethodPost, Path: "/v1/projects",
		Scope: auth.ScopeProjectsWrite, OrgKeyOnly: true, AdminOnly: true}, Status: http.StatusAccepted,
		Summary: "Create a project", Tags: tags, Errors: []int{http.StatusNotFound}}, s.createProject)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProject", Method: http.MethodGet, Path: "/v1/projects/{projectID}",
		Scope: auth.ScopeProjectsRead}, Summary: "Get a project", Tags: tags}, s.getProject)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deleteProject", Method: http.MethodDelete, Path: "/v1/projects/{projectID}",
		Scope: auth.ScopeProjectsWrite, AdminOnly: true}, Status: http.StatusAccepted, Summary: "Delete a project", Tags: tags,
		Errors: []int{http.StatusPreconditionRequired}}, s.deleteProject)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectConnections", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/connections", Scope: auth.ScopeCredentialsRead},
		Summary: "Get a project's connection URLs", Tags: tags}, s.getProjectConnections)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "rotateProjectCredentials", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/credentials/rotate", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Rotate a project's credentials", Tags: tags}, s.rotateProjectCredentials)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createProjectApproval", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/approvals", Scope: auth.ScopeOrganizationsWrite, OrgKeyOnly: true, AdminOnly: true,
		DeniedMessage: "an approval must come from an organization admin"}, Status: http.StatusCreated,
		Summary: "Mint a single-use approval token", Tags: tags}, s.createProjectApproval)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "retryProjectProvisioning", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/retry-provisioning", Scope: auth.ScopeProjectsWrite, OrgKeyOnly: true, AdminOnly: true},
		Status: http.StatusAccepted, Summary: "Retry provisioning a project that failed while provisioning", Tags: tags},
		s.retryProjectProvisioning)
}

// RetryProvisioningInput is POST /v1/projects/{projectID}/retry-provisioning (no body).
type RetryProvisioningInput struct {
	ProjectID string    `path:"projectID"`
	Body      *struct{} `required:"false"`
}

func (s *Server) retryProjectProvisioning(ctx context.Context, in *RetryProvisioningInput) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.RetryProvisioning(ctx, p.OrganizationID, p.ID, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) getProject(ctx context.Context, in *ProjectPath) (*ProjectOutput, error) {
	p, err := s.loadProjectRow(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	org, c, err := store.GetOrganizationAndCluster(ctx, s.deps.Store.Pool, p.OrganizationID, p.ClusterID)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &ProjectOutput{}
	out.Body.Project = toProject(p, org, c)
	return out, nil
}

func (s *Server) deleteProject(ctx context.Context, in *DeleteProjectInput) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.DeleteProject(ctx, p.OrganizationID, p.ID, in.ApprovalToken, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) getProjectConnections(ctx context.Context, in *ProjectPath) (*ConnectionsOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if p.State == store.ProjectDeleting {
		return nil, errorf(http.StatusConflict, "project is being deleted")
	}
	c, err := store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID)
	if err != nil {
		return nil, s.fail(ctx, err, "cluster not found")
	}
	conn, err := s.deps.Lifecycle.ConnectionFor(p, c)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &ConnectionsOutput{CacheControl: "no-store"}
	out.Body.Connections = ConnectionInfo{Username: conn.Username, DirectURL: conn.DirectURL, PooledURL: conn.PooledURL, SessionURL: conn.SessionURL}
	if out.Body.Connections.ReadReplicaURLs, err = s.readReplicaURLs(ctx, p, c); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) rotateProjectCredentials(ctx context.Context, in *RotateInput) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	grace := 0
	if in.Body != nil {
		grace = in.Body.GraceHours
	}
	job, err := s.deps.Lifecycle.RotateCredentials(ctx, p.OrganizationID, p.ID, grace, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) createProjectApproval(ctx context.Context, in *ApprovalInput) (*ApprovalOutput, error) {
	if !slices.Contains(lifecycle.ApprovalActions, in.Body.Action) {
		return nil, errorf(http.StatusBadRequest, "action must be one of %s", strings.Join(lifecycle.ApprovalActions, ", "))
	}
	if strings.HasPrefix(in.Body.Action, "project.upgrade_major") {
		return nil, errorf(http.StatusForbidden, "self-serve major upgrades are not enabled for this organization")
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	a, token, err := s.deps.Lifecycle.MintApproval(ctx, p.OrganizationID, p.ID, in.Body.Action, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &ApprovalOutput{}
	out.Body.Approval.ID, out.Body.Approval.Action, out.Body.Approval.Token = a.ID, a.Action, token
	out.Body.Approval.ExpiresAt = a.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	out.Body.Approval.ProjectID = a.ProjectID
	return out, nil
}

func actor(ctx context.Context) lifecycle.Actor {
	kind, id := principal(ctx).ActorKind()
	return lifecycle.Actor{Kind: kind, ID: id}
}

// loadProject returns a live project the caller may see, or a 404 error.
func (s *Server) loadProject(ctx context.Context, id string) (*store.Project, *store.Organization, error) {
	p, err := s.loadProjectRow(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	org, err := store.GetOrganization(ctx, s.deps.Store.Pool, p.OrganizationID)
	if err != nil {
		return nil, nil, s.fail(ctx, err, "project not found")
	}
	return p, org, nil
}

// loadProjectRow is the caller's project id: the row the access check
// already read for this request when there is one (checkedProject).
func (s *Server) loadProjectRow(ctx context.Context, id string) (*store.Project, error) {
	pr := principal(ctx)
	if pr.ProjectScoped() && pr.ProjectID != id {
		return nil, errorf(http.StatusNotFound, "project not found")
	}
	if c, ok := ctx.Value(checkedProjectKey{}).(*checkedProject); ok && c.project != nil &&
		c.project.ID == id && c.project.OrganizationID == pr.OrganizationID {
		return c.project, nil
	}
	p, err := store.GetProject(ctx, s.deps.Store.Pool, pr.OrganizationID, id)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	return p, nil
}

func (s *Server) listProjects(ctx context.Context, in *ListProjectsInput) (*ProjectsOutput, error) {
	pr := principal(ctx)
	page := store.ProjectPage{Limit: min(in.Limit, maxPage)}
	if in.Cursor != "" {
		var ok bool
		if page.AfterCreated, page.AfterID, ok = decodeProjectCursor(in.Cursor); !ok {
			return nil, errorf(http.StatusBadRequest, "invalid field \"cursor\": pass the next_cursor of a previous page")
		}
	}
	if page.Limit > 0 {
		page.Limit++ // one more row tells whether another page follows
	}
	projects, err := store.ListProjectsPage(ctx, s.deps.Store.Pool, pr.OrganizationID, pr.ProjectID, page)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	nextCursor := ""
	if page.Limit > 0 && len(projects) == page.Limit {
		projects = projects[:len(projects)-1]
		last := projects[len(projects)-1]
		nextCursor = encodeProjectCursor(last.CreatedAt, last.ID)
	}
	org, err := store.GetOrganization(ctx, s.deps.Store.Pool, pr.OrganizationID)
	if err != nil {
		return nil, s.fail(ctx, err, "organization not found")
	}
	clusters, err := s.clusterMap(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &ProjectsOutput{}
	out.Body.Projects = make([]*Project, 0, len(projects))
	for _, p := range projects {
		out.Body.Projects = append(out.Body.Projects, toProject(p, org, clusters[p.ClusterID]))
	}
	out.Body.NextCursor = nextCursor
	return out, nil
}

// A project cursor is the list position (created_at, id) of the last project
// of a page; clients treat it as opaque.
func encodeProjectCursor(created time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(created.UnixMicro(), 10) + "." + id))
}

func decodeProjectCursor(c string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", false
	}
	us, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || !strings.HasPrefix(id, "prj_") || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return time.Time{}, "", false
	}
	return time.UnixMicro(n), id, true
}

func (s *Server) clusterMap(ctx context.Context) (map[string]*store.Cluster, error) {
	clusters, err := store.ListClusters(ctx, s.deps.Store.Pool)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*store.Cluster, len(clusters))
	for _, c := range clusters {
		m[c.ID] = c
	}
	return m, nil
}

func (s *Server) createProject(ctx context.Context, in *CreateProjectInput) (*ProjectJobOutput, error) {
	pr := principal(ctx)
	b := in.Body
	req, err := lifecycle.CheckProjectRequest(lifecycle.ProjectRequest{Name: b.Name, Slug: b.Slug, Environment: b.Environment})
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if b.OrganizationID != "" && b.OrganizationID != pr.OrganizationID {
		return nil, errorf(http.StatusNotFound, "organization not found")
	}
	org, err := store.GetOrganization(ctx, s.deps.Store.Pool, pr.OrganizationID)
	if err != nil {
		return nil, s.fail(ctx, err, "organization not found")
	}
	cluster, err := s.deps.Lifecycle.Place(ctx, b.Region, b.ClusterID, b.PostgresVersion)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	p, job, err := s.deps.Lifecycle.CreateProject(ctx, org, lifecycle.CreateProjectParams{
		Name: req.Name, Slug: req.Slug, Environment: req.Environment, AlwaysOn: b.AlwaysOn, ClusterID: cluster.ID,
		PostgresVersion: cluster.PostgresVersion, Place: b.ClusterID == "", Region: b.Region,
	}, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "organization not found")
	}
	if p.ClusterID != cluster.ID {
		// Placement in the transaction chose another cluster than the check did.
		if cluster, err = store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID); err != nil {
			return nil, s.fail(ctx, err, "")
		}
	}
	out := &ProjectJobOutput{}
	out.Body.Project = toProject(p, org, cluster)
	out.Body.Job = toJob(job)
	return out, nil
}
