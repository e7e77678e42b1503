package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// ProjectExport is the wire form of an export.
type ProjectExport = wire.ProjectExport

func toExport(e *store.Export, now time.Time) *ProjectExport {
	state := e.State
	if state == store.BackupCompleted && !now.Before(e.ExpiresAt) {
		state = store.BackupExpired
	}
	return &ProjectExport{ID: e.ID, ProjectID: e.ProjectID, DatabaseName: e.DatabaseName, State: state, SizeBytes: e.SizeBytes,
		CreatedAt: e.CreatedAt.UTC(), ExpiresAt: e.ExpiresAt.UTC(), JobID: e.JobID, ChecksumSHA256: e.ChecksumSHA256}
}

// DownloadTTL is how long an export download URL works.
const DownloadTTL = 15 * time.Minute

// requestBase captures the scheme and host the client used, to build the
// signed transfer URLs capydb serves itself.
type requestBase struct {
	base string
}

// Resolve implements huma.Resolver.
func (r *requestBase) Resolve(ctx huma.Context) []error {
	scheme := "http"
	if ctx.TLS() != nil {
		scheme = "https"
	}
	r.base = scheme + "://" + ctx.Host()
	return nil
}

// ExportPath names an export.
type ExportPath struct {
	requestBase
	ProjectID string `path:"projectID"`
	ExportID  string `path:"exportID"`
}

// CreateExportInput takes no body.
type CreateExportInput struct {
	ProjectID string    `path:"projectID"`
	Body      *struct{} `required:"false"`
}

// transferURL returns a URL for one action on key: presigned by the object
// store, or capydb's own signed route for file:// storage.
func (s *Server) transferURL(ctx context.Context, base string, g blobstore.Grant) (string, error) {
	blob := s.deps.Blob
	if blob.Presigns {
		method := http.MethodGet
		if g.Action == "put" {
			method = http.MethodPut
		}
		return blob.PresignedURL(ctx, g.Key, method, time.Until(time.Unix(g.Expires, 0)))
	}
	route := "/v1/object-downloads/"
	if g.Action == "put" {
		route = "/v1/object-uploads/"
	}
	return base + route + blob.Sign(g), nil
}

func (s *Server) registerExports() {
	tags := []string{"exports"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createExport", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/exports", Scope: auth.ScopeBackupsWrite}, Status: http.StatusAccepted,
		Summary: "Export the project database as a pg_dump custom-format archive", Tags: tags}, s.createExport)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listExports", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/exports", Scope: auth.ScopeBackupsRead},
		Summary: "List the project's exports, newest first", Tags: tags}, s.listExports)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "downloadExport", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/exports/{exportID}/download", Scope: auth.ScopeBackupsRead},
		Summary: "Get a 15-minute signed download URL for an export", Tags: tags,
		Errors: []int{http.StatusConflict, http.StatusGone}}, s.downloadExport)
}

type exportCreateOut struct {
	Body struct {
		ExportID string `json:"export_id"`
		Job      *Job   `json:"job"`
	}
}

type exportListOut struct {
	Body struct {
		Exports []*ProjectExport `json:"exports"`
	}
}

type exportDownloadOut struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Download struct {
			DownloadURL string    `json:"download_url"`
			ExpiresAt   time.Time `json:"expires_at"`
		} `json:"download"`
	}
}

func (s *Server) createExport(ctx context.Context, in *CreateExportInput) (*exportCreateOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	e, job, err := s.deps.Lifecycle.CreateExport(ctx, p.OrganizationID, p.ID, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &exportCreateOut{}
	out.Body.ExportID, out.Body.Job = e.ID, toJob(job)
	return out, nil
}

func (s *Server) listExports(ctx context.Context, in *ProjectPath) (*exportListOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListExports(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &exportListOut{}
	out.Body.Exports = make([]*ProjectExport, 0, len(list))
	now := time.Now()
	for _, e := range list {
		out.Body.Exports = append(out.Body.Exports, toExport(e, now))
	}
	return out, nil
}

func (s *Server) downloadExport(ctx context.Context, in *ExportPath) (*exportDownloadOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	e, err := store.GetExport(ctx, s.deps.Store.Pool, p.ID, in.ExportID)
	if err != nil {
		return nil, s.fail(ctx, err, "export not found")
	}
	now := time.Now()
	switch {
	case e.State == store.BackupExpired || !now.Before(e.ExpiresAt):
		return nil, errorf(http.StatusGone, "export has expired")
	case e.State != store.BackupCompleted:
		return nil, errorf(http.StatusConflict, "export is not ready")
	}
	expires := now.Add(DownloadTTL).UTC().Truncate(time.Second)
	u, err := s.transferURL(ctx, in.base, blobstore.Grant{Action: "get", Key: e.ObjectKey, ProjectID: p.ID,
		Filename: p.Slug + "-" + e.ID, Expires: expires.Unix()})
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &exportDownloadOut{CacheControl: "no-store"}
	out.Body.Download.DownloadURL, out.Body.Download.ExpiresAt = u, expires
	return out, nil
}
