package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/store"
)

// Signed object transfers (API.md §3.16): capydb serves uploads and
// downloads itself when the blob store cannot presign URLs. The path token is
// the whole credential: no Authorization header is read.

func (s *Server) registerObjects(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/object-uploads/{token}", s.objectUpload)
	mux.HandleFunc("GET /v1/object-downloads/{token}", s.objectDownload)
}

func (s *Server) grant(w http.ResponseWriter, r *http.Request, action string) (blobstore.Grant, bool) {
	blob := s.deps.Blob
	if blob == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return blobstore.Grant{}, false
	}
	g, err := blob.Verify(r.PathValue("token"), action, time.Now())
	switch {
	case errors.Is(err, blobstore.ErrExpiredToken):
		writeJSON(w, http.StatusGone, map[string]string{"error": "this link has expired"})
		return g, false
	case err != nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return g, false
	}
	return g, true
}

func (s *Server) objectUpload(w http.ResponseWriter, r *http.Request) {
	g, ok := s.grant(w, r, "put")
	if !ok {
		return
	}
	if r.ContentLength < 0 {
		writeJSON(w, http.StatusLengthRequired, map[string]string{"error": "Content-Length is required"})
		return
	}
	if r.ContentLength > g.MaxBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("the upload may be at most %d bytes", g.MaxBytes)})
		return
	}
	ctx := r.Context()
	u, err := store.GetImportUpload(ctx, s.deps.Store.Pool, g.ProjectID, g.Key)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	if u.CompletedAt != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this upload has already finished"})
		return
	}
	art, err := s.deps.Blob.Put(ctx, g.Key, io.LimitReader(r.Body, r.ContentLength), nil)
	if err != nil || art.Size != r.ContentLength {
		_ = s.deps.Blob.Delete(context.WithoutCancel(ctx), g.Key)
		if err != nil {
			s.deps.Log.Error("object upload failed", "error", err)
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body is shorter than Content-Length"})
		return
	}
	done, err := store.CompleteImportUpload(ctx, s.deps.Store.Pool, g.Key, art.Size, art.SHA256)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		return
	}
	if !done {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this upload has already finished"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object_key": g.Key, "size_bytes": art.Size})
}

func (s *Server) objectDownload(w http.ResponseWriter, r *http.Request) {
	g, ok := s.grant(w, r, "get")
	if !ok {
		return
	}
	rd, size, err := s.deps.Blob.Reader(r.Context(), g.Key)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	defer rd.Close()
	name := g.Filename
	if name == "" {
		name = "export"
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.dump"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rd)
}
