package lifecycle

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// importHandler runs project.import: the source is loaded into a new
// database (empty, or a copy of the current one) that is swapped in at the end.
type importHandler struct{ s *Service }

func (h *importHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	var in importPayload
	if err := j.DecodePayload(&in); err != nil {
		return nil, queue.PermanentError(err)
	}
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil || p.State != store.ProjectImporting {
		return nil, queue.PermanentError(fmt.Errorf("project is not importing (state %s)", p.State))
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(h.s.cfg.TempDir, "capydb-import-*.dump")
	if err != nil {
		return nil, err
	}
	file := f.Name()
	defer os.Remove(file)
	if in.UploadKey != "" {
		f.Close()
		u, err := store.GetImportUpload(ctx, h.s.Store.Pool, p.ID, in.UploadKey)
		if err != nil {
			return nil, queue.PermanentError(fmt.Errorf("upload %s is unknown", in.UploadKey))
		}
		os.Remove(file)
		if u.SizeBytes != nil && u.ChecksumSHA256 != nil {
			file, err = h.s.cfg.Blob.FetchFile(ctx, u.ObjectKey, blobstore.Artifact{Size: *u.SizeBytes, SHA256: *u.ChecksumSHA256})
		} else {
			// Uploaded straight to the object store: record what arrived.
			var art blobstore.Artifact
			if file, art, err = h.s.cfg.Blob.FetchNew(ctx, u.ObjectKey, u.MaxBytes); err == nil {
				_, err = store.CompleteImportUpload(ctx, h.s.Store.Pool, u.ObjectKey, art.Size, art.SHA256)
			}
		}
		if file != "" {
			defer os.Remove(file)
		}
		if err != nil {
			return nil, queue.PermanentError(err)
		}
	} else {
		raw, err := h.s.Box.Open(in.SourceURLEnc)
		if err != nil {
			f.Close()
			return nil, queue.PermanentError(fmt.Errorf("while decrypting the source URL: %w", err))
		}
		sourceURL := string(raw)
		rep.Secret(sourceURL)
		if u, err := url.Parse(sourceURL); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				rep.Secret(pw)
			}
		}
		org, err := store.GetOrganization(ctx, h.s.Store.Pool, p.OrganizationID)
		if err != nil {
			f.Close()
			return nil, err
		}
		// The source must still pass before anything is written.
		pf, err := h.s.Preflight(ctx, org, p, sourceURL)
		if err != nil {
			f.Close()
			return nil, queue.PermanentError(err)
		}
		if !pf.OK {
			f.Close()
			var failed []string
			for _, c := range pf.Checks {
				if c.Status == "fail" {
					failed = append(failed, c.Name+": "+c.Detail)
				}
			}
			return nil, queue.PermanentError(fmt.Errorf("preflight failed: %s", strings.Join(failed, "; ")))
		}
		// pg_dump connects to an address checked just now (no rebinding).
		pinned, err := h.s.pinHost(ctx, sourceURL)
		if err != nil {
			f.Close()
			return nil, queue.PermanentError(err)
		}
		_ = rep.Progress(ctx, map[string]any{"phase": "dumping"})
		err = c.DumpURL(ctx, pinned, f, rep.Command)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "restoring"})
	params := dataplane.RestoreParams{File: file, Target: nextDB(p.DatabaseName), Owner: p.OwnerRole, Jobs: h.s.cloneWorkers(), Command: rep.Command}
	if in.Recreate {
		params.Template = dataplane.TemplateDatabase
	} else {
		params.CopyFrom = p.DatabaseName
	}
	if err := c.Restore(ctx, params); err != nil {
		return nil, queue.PermanentError(err) // any failed load is permanent, foreign object or not
	}
	if err := c.SwapDatabase(ctx, p.DatabaseName, nextDB(p.DatabaseName), oldDB(p.DatabaseName), p.OwnerRole); err != nil {
		return nil, err
	}
	return nil, nil
}

// pinHost replaces the URL's host name by an address the guard allows, so
// the tool cannot be sent elsewhere by a changed DNS answer.
func (s *Service) pinHost(ctx context.Context, sourceURL string) (string, error) {
	u, err := url.Parse(sourceURL)
	if err != nil {
		return "", err
	}
	addrs, err := s.importGuard().Resolve(ctx, u.Hostname())
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("host %s has no address", u.Hostname())
	}
	q := u.Query()
	q.Set("hostaddr", addrs[0].String())
	u.RawQuery = q.Encode()
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.String(), nil
}

func (h *importHandler) Abort(ctx context.Context, j *queue.Job) error {
	p, c, err := h.s.abortProjectCluster(ctx, j)
	if p == nil {
		return err
	}
	return undoSwap(ctx, c, p.DatabaseName, p.OwnerRole)
}

func (h *importHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	if err := skipStale(store.FinishProjectImport(ctx, tx, *j.ProjectID, nil)); err != nil {
		return err
	}
	return event(ctx, tx, j.OrganizationID, "import.completed", map[string]any{
		"organization_id": j.OrganizationID, "project_id": *j.ProjectID, "job_id": j.ID,
	})
}

func (h *importHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	return skipStale(store.FinishProjectImport(ctx, tx, *j.ProjectID, &msg))
}
