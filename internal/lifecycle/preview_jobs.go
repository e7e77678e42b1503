package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// previewResult is the result of branch.create and branch.reset.
type previewResult = wire.PreviewJobResult

func (s *Service) previewOf(ctx context.Context, j *queue.Job) (*store.Preview, error) {
	if j.PreviewDatabaseID == nil {
		return nil, queue.PermanentError(fmt.Errorf("job has no preview"))
	}
	pv, err := store.GetPreviewAny(ctx, s.Store.Pool, *j.PreviewDatabaseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, queue.PermanentError(fmt.Errorf("preview %s no longer exists", *j.PreviewDatabaseID))
	}
	return pv, err
}

// previewBuildHandler runs branch.create and branch.reset: the new contents
// are built in <db>_n and swapped in at the end, so a failed reset keeps the
// previous contents and a create never shows a half-built database.
type previewBuildHandler struct {
	s     *Service
	reset bool
}

func (h *previewBuildHandler) wantState() string {
	if h.reset {
		return store.PreviewResetting
	}
	return store.PreviewProvisioning
}

func (h *previewBuildHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	pv, err := h.s.previewOf(ctx, j)
	if err != nil {
		return nil, err
	}
	if pv.DeletedAt != nil || pv.State == store.PreviewDeleting {
		return nil, nil // deleted before it was built: branch.delete (queued behind this job) removes it
	}
	if pv.State != h.wantState() {
		return nil, queue.PermanentError(fmt.Errorf("preview is %s, not %s", pv.State, h.wantState()))
	}
	p, err := store.GetProjectAny(ctx, h.s.Store.Pool, pv.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := notDeleting(p); err != nil {
		return nil, err
	}
	if pv.Mode == store.PreviewModeClone && p.State != store.ProjectReady {
		return nil, queue.PermanentError(fmt.Errorf("project is not ready (state %s)", p.State))
	}
	c, err := h.s.Cluster(pv.ClusterID)
	if err != nil {
		return nil, err
	}
	if err := h.s.ensurePreviewRole(ctx, c, pv, rep); err != nil {
		return nil, err
	}
	source := ""
	if pv.Mode == store.PreviewModeClone {
		source = p.DatabaseName
	}
	res, err := c.BuildDatabase(ctx, dataplane.BuildParams{
		Source: source, Target: nextDB(pv.DatabaseName), Owner: pv.RoleName, Workers: h.s.cloneWorkers(),
		Progress: progressReporter(ctx, rep), Command: rep.Command, Log: h.s.Log.With("preview_id", pv.ID),
	})
	if err != nil {
		return nil, permanentIfForeign(err)
	}
	if len(res.Unowned) > 0 {
		h.s.Log.Warn("some cloned objects keep their previous owner", "preview_id", pv.ID, "objects", res.Unowned)
	}
	if err := h.s.applyNetworkForPreview(ctx, pv.ProjectID, pv.ClusterID); err != nil {
		return nil, err
	}
	if err := c.SwapDatabase(ctx, pv.DatabaseName, nextDB(pv.DatabaseName), oldDB(pv.DatabaseName), pv.RoleName); err != nil {
		return nil, err
	}
	h.s.Log.Info("preview built", "preview_id", pv.ID, "strategy", res.Strategy, "duration_ms", res.Duration.Milliseconds(),
		"bytes", res.Bytes, "tables", res.Tables, "steps", dataplane.FormatSteps(res.Steps))
	return previewResult{CloneStrategy: res.Strategy, CloneDurationMS: res.Duration.Milliseconds()}, nil
}

// progressReporter turns clone progress into the job's progress object,
// written at most twice a second (and on every phase change).
func progressReporter(ctx context.Context, rep *queue.Reporter) func(dataplane.CloneProgress) {
	var mu sync.Mutex
	var last time.Time
	var lastPhase string
	base := map[string]int{dataplane.PhaseCreating: 0, dataplane.PhaseSchema: 2, dataplane.PhaseCopying: 5,
		dataplane.PhaseIndexes: 85, dataplane.PhaseFinishing: 97}
	return func(p dataplane.CloneProgress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Phase == lastPhase && time.Since(last) < 500*time.Millisecond {
			return
		}
		last, lastPhase = time.Now(), p.Phase
		percent := base[p.Phase]
		out := map[string]any{"phase": p.Phase}
		if p.BytesTotal > 0 {
			out["bytes_done"], out["bytes_total"] = p.BytesDone, p.BytesTotal
			if p.Phase == dataplane.PhaseCopying {
				percent = 5 + int(80*min(p.BytesDone, p.BytesTotal)/p.BytesTotal)
			}
		}
		out["percent"] = percent
		_ = rep.Progress(ctx, out)
	}
}

// Abort undoes a build that failed for good. A create leaves no database or
// role behind; a reset keeps the previous contents.
func (h *previewBuildHandler) Abort(ctx context.Context, j *queue.Job) error {
	pv, err := h.s.previewOf(ctx, j)
	if err != nil {
		return nil
	}
	c, err := h.s.Cluster(pv.ClusterID)
	if err != nil {
		return err
	}
	if err := undoSwap(ctx, c, pv.DatabaseName, pv.RoleName); err != nil {
		return err
	}
	hasMain, err := c.DatabaseExists(ctx, pv.DatabaseName)
	if err != nil {
		return err
	}
	if h.reset && hasMain {
		return c.SyncPooler(ctx)
	}
	return h.s.dropPreviewObjects(ctx, c, pv)
}

func (h *previewBuildHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, result any) error {
	r, _ := result.(previewResult)
	pv, err := store.GetPreviewAny(ctx, tx, *j.PreviewDatabaseID)
	if err != nil {
		return err
	}
	build := store.PreviewBuild{CloneStrategy: r.CloneStrategy, CloneDurationMS: r.CloneDurationMS, SourceKind: pv.Mode}
	if pv.Mode == store.PreviewModeClone {
		p, err := store.GetProjectAny(ctx, tx, pv.ProjectID)
		if err != nil {
			return err
		}
		build.SourceDatabase = &p.DatabaseName
	}
	if err := store.MarkPreviewReady(ctx, tx, pv.ID, h.wantState(), build); err != nil || h.reset {
		return skipStale(err)
	}
	return event(ctx, tx, j.OrganizationID, "preview.ready", map[string]any{
		"organization_id": j.OrganizationID, "project_id": pv.ProjectID, "preview_id": pv.ID, "job_id": j.ID,
	})
}

func (h *previewBuildHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	err := store.MarkPreviewFailed(ctx, tx, *j.PreviewDatabaseID, h.wantState(), msg)
	// A live preview that moved on keeps its state but still shows the error.
	var te *store.TransitionError
	if errors.As(err, &te) && !te.Deleted {
		return store.SetPreviewLastError(ctx, tx, *j.PreviewDatabaseID, msg)
	}
	return skipStale(err)
}

// dropIgnoringForeign drops db when owner owns it; a database of that name
// that someone else owns is not ours and stays.
func dropIgnoringForeign(ctx context.Context, c *dataplane.Cluster, db, owner string) error {
	err := c.DropDatabaseIfOwned(ctx, db, owner)
	var foreign *dataplane.ForeignObjectError
	if errors.As(err, &foreign) {
		return nil
	}
	return err
}

// ensurePreviewRole (re)creates pv's login role with its plan's limits; the
// password is registered with rep so no job output can show it.
func (s *Service) ensurePreviewRole(ctx context.Context, c *dataplane.Cluster, pv *store.Preview, rep *queue.Reporter) error {
	limits, err := s.planForOrg(ctx, pv.OrganizationID)
	if err != nil {
		return err
	}
	pw, err := s.open(pv.PasswordEnc)
	if err != nil {
		return queue.PermanentError(fmt.Errorf("while decrypting credentials: %w", err))
	}
	rep.Secret(pw)
	return c.EnsureLoginRole(ctx, pv.RoleName, pw, limits.MaxConnections, limits.StatementTimeout, limits.IdleTransactionTimeout)
}

// undoSwap puts db back as it was before a swap into it was begun: a
// half-finished swap is reversed and the partial next database dropped.
func undoSwap(ctx context.Context, c *dataplane.Cluster, db, owner string) error {
	if err := c.RecoverSwap(ctx, db, oldDB(db), owner); err != nil {
		return err
	}
	return dropIgnoringForeign(ctx, c, nextDB(db), owner)
}

// dropPreviewObjects removes a preview's databases and role from its cluster.
func (s *Service) dropPreviewObjects(ctx context.Context, c *dataplane.Cluster, pv *store.Preview) error {
	for _, db := range []string{pv.DatabaseName, nextDB(pv.DatabaseName), oldDB(pv.DatabaseName)} {
		if err := dropIgnoringForeign(ctx, c, db, pv.RoleName); err != nil {
			return err
		}
	}
	return c.DropTenant(ctx, "", pv.RoleName)
}

// previewDeleteHandler runs branch.delete.
type previewDeleteHandler struct{ s *Service }

func (h *previewDeleteHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	pv, err := h.s.previewOf(ctx, j)
	if err != nil {
		return nil, err
	}
	if pv.DeletedAt != nil {
		return nil, nil // done by an earlier attempt or by the project's deletion
	}
	c, err := h.s.Cluster(pv.ClusterID)
	if err != nil {
		return nil, err
	}
	return nil, h.s.dropPreviewObjects(ctx, c, pv)
}

func (h *previewDeleteHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	projectID, reason, err := store.MarkPreviewDeleted(ctx, tx, *j.PreviewDatabaseID)
	if err != nil {
		return skipStale(err)
	}
	return previewDeletedEvent(ctx, tx, j.OrganizationID, projectID, *j.PreviewDatabaseID, j.ID, deref(reason))
}

func (h *previewDeleteHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	return store.SetPreviewLastError(ctx, tx, *j.PreviewDatabaseID, msg)
}

func previewDeletedEvent(ctx context.Context, tx pgx.Tx, orgID, projectID, previewID, jobID, reason string) error {
	if reason == "" {
		reason = DeleteReasonManual
	}
	return event(ctx, tx, orgID, "preview.deleted", map[string]any{
		"organization_id": orgID, "project_id": projectID, "preview_id": previewID, "job_id": jobID, "reason": reason,
	})
}

// dropProjectPreviews removes every preview of a project being deleted, after
// the preview jobs already running on it have finished (new ones see the
// project deleting and stop at once).
func (s *Service) dropProjectPreviews(ctx context.Context, p *store.Project, c *dataplane.Cluster) error {
	for {
		running, err := queue.CountRunning(ctx, s.Store.Pool, p.ID, []string{JobPreviewCreate, JobPreviewReset, JobPreviewDelete})
		if err != nil {
			return err
		}
		if running == 0 {
			break
		}
		if err := bgsvc.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	previews, err := store.ListPreviews(ctx, s.Store.Pool, p.ID)
	if err != nil {
		return err
	}
	for _, pv := range previews {
		if err := s.dropPreviewObjects(ctx, c, pv); err != nil {
			return fmt.Errorf("while deleting preview %s: %w", pv.ID, err)
		}
	}
	return nil
}

// markProjectPreviewsDeleted records, in the project deletion's final
// transaction, that its previews are gone.
func markProjectPreviewsDeleted(ctx context.Context, tx pgx.Tx, j *queue.Job) error {
	list, err := store.MarkProjectPreviewsDeleted(ctx, tx, *j.ProjectID)
	if err != nil {
		return err
	}
	for _, g := range list {
		if err := previewDeletedEvent(ctx, tx, j.OrganizationID, *j.ProjectID, g.ID, j.ID, g.Reason); err != nil {
			return err
		}
	}
	return nil
}
