package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Preview job types.
const (
	JobBranchCreate = "branch.create"
	JobBranchReset  = "branch.reset"
	JobBranchDelete = "branch.delete"
)

// Preview TTLs, in hours.
const (
	DefaultPreviewTTLHours = 24
	MaxPreviewTTLHours     = 168
)

// Why a preview is deleted (the preview.deleted event's reason).
const (
	DeleteReasonManual = "manual"
	DeleteReasonTTL    = "ttl"
)

// cloneWorkers is how many parallel workers a snapshot clone or restore
// uses: Service.CloneWorkers, or one per CPU (at least 2) when unset.
func (s *Service) cloneWorkers() int {
	if s.CloneWorkers > 0 {
		return s.CloneWorkers
	}
	return max(2, runtime.NumCPU())
}

var previewNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidPreviewName reports whether name is an acceptable preview name.
func ValidPreviewName(name string) bool { return previewNameRe.MatchString(name) }

// CreatePreviewParams is a validated create request.
type CreatePreviewParams struct {
	Name     string // "" = generated
	Mode     string // empty or clone
	TTLHours int    // 1-168
}

// previewNames derives the database and role of a preview; the suffixes
// _n (next contents) and _o (old contents, during a swap) stay within 63 bytes.
func previewNames(projectSlug string) (db, role string) {
	part := strings.ReplaceAll(projectSlug, "-", "_")
	if len(part) > 20 {
		part = strings.TrimRight(part[:20], "_")
	}
	sfx := randomLower(10)
	return "pv_" + part + "_" + sfx, "pvu_" + part + "_" + sfx
}

func nextDB(main string) string { return main + "_n" }
func oldDB(main string) string  { return main + "_o" }

// CreatePreview writes the preview (state provisioning, generated names and
// encrypted password) and its branch.create job in one transaction.
func (s *Service) CreatePreview(ctx context.Context, org *store.Organization, projectID string, in CreatePreviewParams, actor Actor) (*store.Preview, *queue.Job, error) {
	var pv *store.Preview
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		// The project row lock serializes creates: limits and names cannot race.
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		if p.State != store.ProjectReady {
			return conflictf("project is not ready (state %s)", p.State)
		}
		limits := PlanFor(org)
		if limits.MaxPreviews >= 0 {
			n, err := store.CountLivePreviews(ctx, tx, p.ID)
			if err != nil {
				return err
			}
			if n >= limits.MaxPreviews {
				plural := "s"
				if limits.MaxPreviews == 1 {
					plural = ""
				}
				return conflictf("plan %s allows %d live preview%s per project", limits.Name, limits.MaxPreviews, plural)
			}
		}
		name := in.Name
		if name != "" {
			holder, err := store.PreviewNameHolder(ctx, tx, p.ID, name)
			if err != nil {
				return err
			}
			if holder != "" {
				return conflictf("preview name %q is already used by %s", name, holder)
			}
		} else {
			for {
				name = "preview-" + randomLower(6)
				holder, err := store.PreviewNameHolder(ctx, tx, p.ID, name)
				if err != nil {
					return err
				}
				if holder == "" {
					break
				}
			}
		}
		db, role := previewNames(p.Slug)
		jobID := ids.New("job_")
		pv = &store.Preview{
			ID: ids.New("pvw_"), OrganizationID: org.ID, ProjectID: p.ID, ClusterID: p.ClusterID, Name: name,
			Mode: in.Mode, State: store.PreviewProvisioning,
			TTLExpiresAt: time.Now().Add(time.Duration(in.TTLHours) * time.Hour).UTC(),
			DatabaseName: db, RoleName: role, PasswordEnc: s.seal(newPassword()), LatestJobID: &jobID,
		}
		kind := in.Mode
		pv.SourceKind = &kind
		if in.Mode == store.PreviewModeClone {
			pv.SourceDatabase = &p.DatabaseName
		}
		if err := store.InsertPreview(ctx, tx, pv); err != nil {
			if store.IsUniqueViolation(err, "preview_databases_live_name") {
				return conflictf("preview name %q is already in use", name)
			}
			return err
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
			ID: jobID, Type: JobBranchCreate, OrganizationID: org.ID, ProjectID: p.ID, PreviewID: pv.ID,
			ClusterID: pv.ClusterID, LockedResource: "preview:" + pv.ID,
		})
		if err != nil {
			return err
		}
		return audit(ctx, tx, org.ID, p.ID, "preview.created", actor, map[string]any{
			"preview_id": pv.ID, "job_id": job.ID, "name": name, "mode": in.Mode, "ttl_hours": in.TTLHours,
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return pv, job, nil
}

// ResetPreview queues branch.reset on a ready or failed preview.
func (s *Service) ResetPreview(ctx context.Context, orgID, previewID string, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		pv, err := store.LockPreview(ctx, tx, orgID, previewID)
		if err != nil {
			return err
		}
		if pv.State != store.PreviewReady && pv.State != store.PreviewFailed {
			return conflictf("preview is not ready or failed (state %s)", pv.State)
		}
		p, err := store.GetProject(ctx, tx, orgID, pv.ProjectID)
		if err != nil {
			return err
		}
		if pv.Mode == store.PreviewModeClone && p.State != store.ProjectReady {
			return conflictf("project is not ready (state %s)", p.State)
		}
		if p.State == store.ProjectDeleting {
			return conflictf("project is being deleted")
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
			Type: JobBranchReset, OrganizationID: orgID, ProjectID: pv.ProjectID, PreviewID: pv.ID,
			ClusterID: pv.ClusterID, LockedResource: "preview:" + pv.ID,
		})
		if err != nil {
			return err
		}
		return store.BeginPreviewReset(ctx, tx, pv.ID, job.ID)
	})
	return job, err
}

// ExtendPreview moves a ready preview's expiry to now + ttlHours, never earlier.
func (s *Service) ExtendPreview(ctx context.Context, orgID, previewID string, ttlHours int, actor Actor) (*store.Preview, error) {
	var out *store.Preview
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		pv, err := store.LockPreview(ctx, tx, orgID, previewID)
		if err != nil {
			return err
		}
		now := time.Now()
		if pv.State != store.PreviewReady {
			return conflictf("preview is not ready (state %s)", pv.State)
		}
		if !pv.TTLExpiresAt.After(now) {
			return conflictf("preview has expired (at %s)", pv.TTLExpiresAt.UTC().Format(time.RFC3339))
		}
		expires := now.Add(time.Duration(ttlHours) * time.Hour).UTC()
		if expires.Before(pv.TTLExpiresAt) {
			return invalidf("extend can only move the expiry later (currently %s)", pv.TTLExpiresAt.UTC().Format(time.RFC3339))
		}
		if err := store.SetPreviewTTL(ctx, tx, pv.ID, expires); err != nil {
			return err
		}
		if err := audit(ctx, tx, orgID, pv.ProjectID, "preview.ttl_extended", actor, map[string]any{
			"preview_id": pv.ID, "ttl_hours": ttlHours,
			"previous_expires_at": pv.TTLExpiresAt.UTC().Format(time.RFC3339), "ttl_expires_at": expires.Format(time.RFC3339),
		}); err != nil {
			return err
		}
		out, err = store.GetPreview(ctx, tx, orgID, pv.ID)
		return err
	})
	return out, err
}

// DeletePreview queues branch.delete; a preview already being deleted
// returns its in-flight delete job.
func (s *Service) DeletePreview(ctx context.Context, orgID, previewID string, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		pv, err := store.LockPreview(ctx, tx, orgID, previewID)
		if err != nil {
			return err
		}
		job, err = s.deletePreviewTx(ctx, tx, pv, DeleteReasonManual, actor)
		return err
	})
	return job, err
}

func (s *Service) deletePreviewTx(ctx context.Context, tx pgx.Tx, pv *store.Preview, reason string, actor Actor) (*queue.Job, error) {
	if pv.State == store.PreviewDeleting {
		job, err := queue.ActivePreviewJob(ctx, tx, pv.ID, JobBranchDelete)
		if err == nil {
			return job, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		// The last delete failed for good: start another.
	}
	job, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
		Type: JobBranchDelete, OrganizationID: pv.OrganizationID, ProjectID: pv.ProjectID, PreviewID: pv.ID,
		ClusterID: pv.ClusterID, LockedResource: "preview:" + pv.ID, Payload: map[string]string{"reason": reason},
	})
	if err != nil {
		return nil, err
	}
	if err := store.BeginPreviewDelete(ctx, tx, pv.ID, reason, job.ID); err != nil {
		return nil, err
	}
	return job, audit(ctx, tx, pv.OrganizationID, pv.ProjectID, "preview.deleted", actor, map[string]any{
		"preview_id": pv.ID, "job_id": job.ID, "reason": reason,
	})
}

// ReapExpiredPreviews queues the deletion of every preview whose TTL ran out
// at now. One server reaps at a time (a transaction-scoped advisory lock);
// the others skip the round.
func (s *Service) ReapExpiredPreviews(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		leader, err := store.TryLeaderLock(ctx, tx, "capydb.preview_reaper")
		if err != nil {
			return err
		}
		if !leader {
			return nil
		}
		due, err := store.LockDuePreviews(ctx, tx, now, 200)
		if err != nil {
			return err
		}
		for _, pv := range due {
			if _, err := s.deletePreviewTx(ctx, tx, pv, DeleteReasonTTL, Actor{Kind: "system"}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// Connection builds a preview's direct and pooled URLs.
func (s *Service) PreviewConnection(pv *store.Preview, c *store.Cluster) (Connection, error) {
	pw, err := s.open(pv.PasswordEnc)
	if err != nil {
		return Connection{}, fmt.Errorf("while decrypting credentials: %w", err)
	}
	return Connection{
		Username:  pv.RoleName,
		DirectURL: BuildURL(pv.RoleName, pw, c.PublicHost, c.DirectPort, pv.DatabaseName),
		PooledURL: BuildURL(pv.RoleName, pw, c.PublicHost, c.PooledPort, pv.DatabaseName),
	}, nil
}

// previewResult is the result of branch.create and branch.reset.
type previewResult struct {
	CloneStrategy   string `json:"clone_strategy"`
	CloneDurationMS int64  `json:"clone_duration_ms"`
}

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
	if p.DeletedAt != nil || p.State == store.ProjectDeleting {
		return nil, queue.PermanentError(fmt.Errorf("project is being deleted"))
	}
	if pv.Mode == store.PreviewModeClone && p.State != store.ProjectReady {
		return nil, queue.PermanentError(fmt.Errorf("project is not ready (state %s)", p.State))
	}
	c, err := h.s.Cluster(pv.ClusterID)
	if err != nil {
		return nil, err
	}
	limits, err := h.s.planForOrg(ctx, pv.OrganizationID)
	if err != nil {
		return nil, err
	}
	pw, err := h.s.open(pv.PasswordEnc)
	if err != nil {
		return nil, queue.PermanentError(fmt.Errorf("while decrypting credentials: %w", err))
	}
	rep.Secret(pw)
	if err := c.EnsureLoginRole(ctx, pv.RoleName, pw, limits.MaxConnections, limits.StatementTimeout, limits.IdleTransactionTimeout); err != nil {
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
		var foreign *dataplane.ForeignObjectError
		if errors.As(err, &foreign) {
			return nil, queue.PermanentError(err)
		}
		return nil, err
	}
	if len(res.Unowned) > 0 {
		h.s.Log.Warn("some cloned objects keep their previous owner", "preview_id", pv.ID, "objects", res.Unowned)
	}
	if err := c.SwapDatabase(ctx, pv.DatabaseName, nextDB(pv.DatabaseName), oldDB(pv.DatabaseName), pv.RoleName); err != nil {
		return nil, err
	}
	h.s.Log.Info("preview built", "preview_id", pv.ID, "strategy", res.Strategy, "duration_ms", res.Duration.Milliseconds(),
		"bytes", res.Bytes, "tables", res.Tables)
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
	if err := c.RecoverSwap(ctx, pv.DatabaseName, oldDB(pv.DatabaseName), pv.RoleName); err != nil {
		return err
	}
	if err := dropIgnoringForeign(ctx, c, nextDB(pv.DatabaseName), pv.RoleName); err != nil {
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
		running, err := queue.CountRunning(ctx, s.Store.Pool, p.ID, []string{JobBranchCreate, JobBranchReset, JobBranchDelete})
		if err != nil {
			return err
		}
		if running == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
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
