package api

import (
	"context"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/wire"
)

// CreateImportRequest is POST /v1/projects/{projectID}/imports.
type CreateImportRequest = wire.CreateImportRequest

// CreateImportInput wraps it.
type CreateImportInput struct {
	ProjectID string `path:"projectID"`
	Body      CreateImportRequest
}

// ImportPreflightRequest is POST /v1/projects/{projectID}/imports/preflight.
type ImportPreflightRequest struct {
	SourceURL string `json:"source_url"`
}

// ImportPreflightInput wraps it.
type ImportPreflightInput struct {
	ProjectID string `path:"projectID"`
	Body      ImportPreflightRequest
}

// CreateUploadInput takes no body.
type CreateUploadInput struct {
	requestBase
	ProjectID string    `path:"projectID"`
	Body      *struct{} `required:"false"`
}

func (s *Server) registerImports() {
	tags := []string{"imports"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createImport", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Import a Postgres database or an uploaded dump into the project", Tags: tags}, s.createImport)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "preflightImport", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports/preflight", Scope: auth.ScopeProjectsWrite},
		Summary: "Check an import source without changing anything", Tags: tags}, s.preflightImport)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createImportUpload", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/imports/uploads", Scope: auth.ScopeProjectsWrite}, Status: http.StatusCreated,
		Summary: "Get a one-time signed URL to upload a dump file for an import", Tags: tags}, s.createImportUpload)
}

type importPreflightOut struct {
	Body struct {
		Preflight *lifecycle.PreflightResult `json:"preflight"`
	}
}

type importUploadOut struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Upload struct {
			ObjectKey string    `json:"object_key"`
			UploadURL string    `json:"upload_url"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"upload"`
	}
}

func (s *Server) createImport(ctx context.Context, in *CreateImportInput) (*JobOutput, error) {
	b := in.Body
	if !b.Confirm {
		return nil, errorf(http.StatusBadRequest, "confirm must be true: an import writes into the project's live database")
	}
	if (b.SourceURL == "") == (b.UploadKey == "") {
		return nil, errorf(http.StatusBadRequest, "exactly one of source_url and upload_key is required")
	}
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	params := lifecycle.ImportParams{UploadKey: b.UploadKey, Recreate: b.Recreate}
	if b.UploadKey != "" && !blobstore.ValidKey(b.UploadKey) {
		return nil, errorf(http.StatusBadRequest, "upload_key is unknown or the upload is not complete")
	}
	if b.SourceURL != "" {
		if params.SourceURL, err = s.deps.Lifecycle.CheckSourceURL(ctx, b.SourceURL); err != nil {
			return nil, s.fail(ctx, err, "")
		}
	}
	job, err := s.deps.Lifecycle.CreateImport(ctx, org, p.ID, params, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) preflightImport(ctx context.Context, in *ImportPreflightInput) (*importPreflightOut, error) {
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
	res, err := s.deps.Lifecycle.Preflight(ctx, org, p, u)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	_ = s.deps.Lifecycle.AuditPreflight(ctx, p, res.OK, actor(ctx))
	out := &importPreflightOut{}
	out.Body.Preflight = res
	return out, nil
}

func (s *Server) createImportUpload(ctx context.Context, in *CreateUploadInput) (*importUploadOut, error) {
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	u, err := s.deps.Lifecycle.CreateUpload(ctx, org, p.ID, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	url, err := s.transferURL(ctx, in.base, blobstore.Grant{Action: "put", Key: u.ObjectKey, ProjectID: p.ID,
		MaxBytes: u.MaxBytes, Expires: u.ExpiresAt.Unix()})
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &importUploadOut{CacheControl: "no-store"}
	out.Body.Upload.ObjectKey, out.Body.Upload.UploadURL, out.Body.Upload.ExpiresAt = u.ObjectKey, url, u.ExpiresAt.UTC().Truncate(time.Second)
	return out, nil
}
