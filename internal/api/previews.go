package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// PreviewDatabase is the wire form of a preview.
type PreviewDatabase = wire.PreviewDatabase

func toPreview(pv *store.Preview, c *store.Cluster) *PreviewDatabase {
	out := &PreviewDatabase{
		ID: pv.ID, ProjectID: pv.ProjectID, Name: pv.Name, Mode: pv.Mode, State: pv.State,
		TTLExpiresAt: pv.TTLExpiresAt.UTC(), DatabaseName: pv.DatabaseName, RoleName: pv.RoleName, SSLMode: "require",
		SourceKind: pv.SourceKind, SourceDatabase: pv.SourceDatabase, SourceBackupKey: pv.SourceBackupKey,
		SourceRestoreTime: utcp(pv.SourceRestoreTime), LastError: pv.LastError, CloneStrategy: pv.CloneStrategy,
		CloneDurationMS: pv.CloneDurationMS, LatestJobID: pv.LatestJobID, Protected: pv.Protected,
		CreatedAt: pv.CreatedAt.UTC(), UpdatedAt: pv.UpdatedAt.UTC(),
	}
	if c != nil {
		out.PublicHost, out.DirectPort, out.PooledPort = c.PublicHost, c.DirectPort, c.PooledPort
	}
	return out
}

// CreatePreviewBody is POST /v1/projects/{projectID}/preview-databases.
type CreatePreviewBody = wire.CreatePreviewBody

// CreatePreviewInput wraps the optional body.
type CreatePreviewInput struct {
	ProjectID string             `path:"projectID"`
	Body      *CreatePreviewBody `required:"false"`
}

// ExtendPreviewBody is POST /v1/preview-databases/{previewID}/extend.
type ExtendPreviewBody struct {
	TTLHours int `json:"ttl_hours" doc:"1-168: the new expiry is now + ttl_hours"`
}

// ExtendPreviewInput wraps it.
type ExtendPreviewInput struct {
	PreviewID string `path:"previewID"`
	Body      ExtendPreviewBody
}

// ResetPreviewInput takes no body (an empty one or {} is accepted).
type ResetPreviewInput struct {
	PreviewID string    `path:"previewID"`
	Body      *struct{} `required:"false"`
}

// PreviewPath names a preview.
type PreviewPath struct {
	PreviewID string `path:"previewID"`
}

// PreviewOutput is {preview}.
type PreviewOutput struct {
	Body struct {
		Preview *PreviewDatabase `json:"preview"`
	}
}

// PreviewJobOutput is {preview, job}.
type PreviewJobOutput struct {
	Body struct {
		Preview *PreviewDatabase `json:"preview"`
		Job     *Job             `json:"job"`
	}
}

// PreviewsOutput is {preview_databases}.
type PreviewsOutput struct {
	Body struct {
		Previews []*PreviewDatabase `json:"preview_databases"`
	}
}

func (s *Server) registerPreviews() {
	tags := []string{"previews"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listPreviewDatabases", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/preview-databases", Scope: auth.ScopeProjectsRead},
		Summary: "List a project's preview databases", Tags: tags}, s.listPreviewDatabases)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createPreviewDatabase", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/preview-databases", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Create a preview database (empty or a clone of the project)", Tags: tags}, s.createPreview)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getPreviewDatabase", Method: http.MethodGet,
		Path: "/v1/preview-databases/{previewID}", Scope: auth.ScopeProjectsRead},
		Summary: "Get a preview database", Tags: tags}, s.getPreviewDatabase)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deletePreviewDatabase", Method: http.MethodDelete,
		Path: "/v1/preview-databases/{previewID}", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Delete a preview database", Tags: tags}, s.deletePreviewDatabase)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "extendPreviewDatabase", Method: http.MethodPost,
		Path: "/v1/preview-databases/{previewID}/extend", Scope: auth.ScopeProjectsWrite},
		Summary: "Move a preview's expiry to now + ttl_hours", Tags: tags}, s.extendPreviewDatabase)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "resetPreviewDatabase", Method: http.MethodPost,
		Path: "/v1/preview-databases/{previewID}/reset", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Re-clone (or re-empty) a preview, keeping its credentials and URLs", Tags: tags}, s.resetPreviewDatabase)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getPreviewDatabaseConnections", Method: http.MethodGet,
		Path: "/v1/preview-databases/{previewID}/connections", Scope: auth.ScopeCredentialsRead},
		Summary: "Get a preview's connection URLs", Tags: tags}, s.getPreviewDatabaseConnections)
}

func (s *Server) listPreviewDatabases(ctx context.Context, in *ProjectPath) (*PreviewsOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListPreviews(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	c, _ := store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID)
	out := &PreviewsOutput{}
	out.Body.Previews = make([]*PreviewDatabase, 0, len(list))
	for _, pv := range list {
		out.Body.Previews = append(out.Body.Previews, toPreview(pv, c))
	}
	return out, nil
}

func (s *Server) getPreviewDatabase(ctx context.Context, in *PreviewPath) (*PreviewOutput, error) {
	pv, c, err := s.loadPreview(ctx, in.PreviewID)
	if err != nil {
		return nil, err
	}
	out := &PreviewOutput{}
	out.Body.Preview = toPreview(pv, c)
	return out, nil
}

func (s *Server) deletePreviewDatabase(ctx context.Context, in *PreviewPath) (*JobOutput, error) {
	pv, _, err := s.loadPreview(ctx, in.PreviewID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.DeletePreview(ctx, pv.OrganizationID, pv.ID, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "preview not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) extendPreviewDatabase(ctx context.Context, in *ExtendPreviewInput) (*PreviewOutput, error) {
	if in.Body.TTLHours < 1 || in.Body.TTLHours > lifecycle.MaxPreviewTTLHours {
		return nil, errorf(http.StatusBadRequest, "ttl_hours must be between 1 and %d", lifecycle.MaxPreviewTTLHours)
	}
	pv, c, err := s.loadPreview(ctx, in.PreviewID)
	if err != nil {
		return nil, err
	}
	pv, err = s.deps.Lifecycle.ExtendPreview(ctx, pv.OrganizationID, pv.ID, in.Body.TTLHours, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "preview not found")
	}
	out := &PreviewOutput{}
	out.Body.Preview = toPreview(pv, c)
	return out, nil
}

func (s *Server) resetPreviewDatabase(ctx context.Context, in *ResetPreviewInput) (*JobOutput, error) {
	pv, _, err := s.loadPreview(ctx, in.PreviewID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.ResetPreview(ctx, pv.OrganizationID, pv.ID, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "preview not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) getPreviewDatabaseConnections(ctx context.Context, in *PreviewPath) (*ConnectionsOutput, error) {
	pv, c, err := s.loadPreview(ctx, in.PreviewID)
	if err != nil {
		return nil, err
	}
	if pv.State == store.PreviewDeleting {
		return nil, errorf(http.StatusConflict, "preview is being deleted")
	}
	if c == nil {
		return nil, s.fail(ctx, store.ErrNotFound, "cluster not found")
	}
	conn, err := s.deps.Lifecycle.PreviewConnection(pv, c)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &ConnectionsOutput{CacheControl: "no-store"}
	out.Body.Connections = ConnectionInfo{Username: conn.Username, DirectURL: conn.DirectURL, PooledURL: conn.PooledURL, SessionURL: conn.SessionURL}
	return out, nil
}

func (s *Server) createPreview(ctx context.Context, in *CreatePreviewInput) (*PreviewJobOutput, error) {
	var b CreatePreviewBody
	if in.Body != nil {
		b = *in.Body
	}
	mode := b.Mode
	if mode == "" {
		mode = store.PreviewModeClone
	}
	if mode != store.PreviewModeClone && mode != store.PreviewModeEmpty {
		return nil, errorf(http.StatusBadRequest, "mode must be empty or clone")
	}
	ttl := b.TTLHours
	if ttl == 0 {
		ttl = lifecycle.DefaultPreviewTTLHours
	}
	if ttl < 1 || ttl > lifecycle.MaxPreviewTTLHours {
		return nil, errorf(http.StatusBadRequest, "ttl_hours must be between 1 and %d", lifecycle.MaxPreviewTTLHours)
	}
	if b.Name != "" && !lifecycle.ValidPreviewName(b.Name) {
		return nil, errorf(http.StatusBadRequest, "name must be 1-63 letters, digits, -, _ or ., starting with a letter or digit")
	}
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	pv, job, err := s.deps.Lifecycle.CreatePreview(ctx, org, p.ID, lifecycle.CreatePreviewParams{Name: b.Name, Mode: mode, TTLHours: ttl, Protected: b.Protected}, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	c, _ := store.GetCluster(ctx, s.deps.Store.Pool, pv.ClusterID)
	out := &PreviewJobOutput{}
	out.Body.Preview = toPreview(pv, c)
	out.Body.Job = toJob(job)
	return out, nil
}

// loadPreview returns a preview the caller may see (and its cluster), or a 404.
func (s *Server) loadPreview(ctx context.Context, id string) (*store.Preview, *store.Cluster, error) {
	pr := principal(ctx)
	pv, err := store.GetPreview(ctx, s.deps.Store.Pool, pr.OrganizationID, id)
	if err != nil {
		return nil, nil, s.fail(ctx, err, "preview not found")
	}
	if pr.ProjectScoped() && pv.ProjectID != pr.ProjectID {
		return nil, nil, errorf(http.StatusNotFound, "preview not found")
	}
	c, err := store.GetCluster(ctx, s.deps.Store.Pool, pv.ClusterID)
	if err != nil {
		c = nil
	}
	return pv, c, nil
}
