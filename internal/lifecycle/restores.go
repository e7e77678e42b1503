package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Restore targets.
const (
	TargetNewPreview = "new_preview"
	TargetPreview    = "preview"
	TargetProject    = "project"
)

// RestoreParams is a validated restore request.
type RestoreParams struct {
	BackupKey       string
	RestorePointID  string
	TargetKind      string
	PreviewID       string
	PreviewName     string // "" = restore-<UTC time>
	TTLHours        int
	ApprovalToken   string
	AllowUnverified bool
}

type restorePayload struct {
	BackupID       string `json:"backup_id"`
	TargetKind     string `json:"target_kind"`
	SafetyBackupID string `json:"safety_backup_id,omitempty"`
}

// resolveBackup finds the backup a restore (or restore point) names and
// checks it can be restored.
func resolveBackup(ctx context.Context, tx pgx.Tx, projectID string, in RestoreParams) (*store.Backup, error) {
	key := in.BackupKey
	if in.RestorePointID != "" {
		rp, err := store.GetRestorePoint(ctx, tx, projectID, in.RestorePointID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, domainerr.New(domainerr.NotFound, "restore point not found")
		}
		if err != nil {
			return nil, err
		}
		if rp.BackupState != nil && *rp.BackupState == store.BackupExpired {
			return nil, domainerr.New(domainerr.Gone, "restore point has expired")
		}
		if rp.BackupKey == nil {
			return nil, invalidf("point-in-time recovery is not available for this project")
		}
		key = *rp.BackupKey
	}
	if !blobstore.ValidKey(key) {
		return nil, domainerr.New(domainerr.NotFound, "backup not found")
	}
	b, err := store.GetBackupByKey(ctx, tx, projectID, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, domainerr.New(domainerr.NotFound, "backup not found")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case b.State == store.BackupExpired:
		return nil, domainerr.New(domainerr.Gone, "backup has expired")
	case b.State != store.BackupCompleted:
		return nil, conflictf("backup is not completed (state %s)", b.State)
	case b.VerificationState != store.VerifyVerified && !in.AllowUnverified:
		return nil, conflictf("backup has not been verified; pass allow_unverified_backup to restore it anyway")
	}
	return b, nil
}

// CreateRestore validates a restore, prepares its target (a new preview, a
// preview marked resetting, or the project marked restoring) and queues
// project.restore, all in one transaction.
func (s *Service) CreateRestore(ctx context.Context, org *store.Organization, projectID string, in RestoreParams, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		b, err := resolveBackup(ctx, tx, p.ID, in)
		if err != nil {
			return err
		}
		payload := restorePayload{BackupID: b.ID, TargetKind: in.TargetKind}
		jobID := ids.New("job_")
		params := queue.EnqueueParams{ID: jobID, Type: JobProjectRestore, OrganizationID: org.ID, ProjectID: p.ID,
			ClusterID: p.ClusterID}
		meta := map[string]any{"job_id": jobID, "backup_id": b.ID, "backup_key": b.BackupKey, "target_kind": in.TargetKind}
		action := "project.restore_started"
		switch in.TargetKind {
		case TargetNewPreview:
			if p.State != store.ProjectReady {
				return conflictf("project is not ready (state %s)", p.State)
			}
			pv, err := s.insertRestorePreview(ctx, tx, org, p, b, in, jobID)
			if err != nil {
				return err
			}
			params.PreviewID, params.LockedResource = pv.ID, "preview:"+pv.ID
			meta["preview_id"] = pv.ID
		case TargetPreview:
			pv, err := store.LockPreview(ctx, tx, org.ID, in.PreviewID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && pv.ProjectID != p.ID) {
				return domainerr.New(domainerr.NotFound, "preview not found")
			}
			if err != nil {
				return err
			}
			if pv.State != store.PreviewReady {
				return conflictf("preview is not ready (state %s)", pv.State)
			}
			if err := store.BeginPreviewReset(ctx, tx, pv.ID, jobID); err != nil {
				return err
			}
			params.PreviewID, params.LockedResource = pv.ID, "preview:"+pv.ID
			meta["preview_id"] = pv.ID
		case TargetProject:
			if p.Environment != "non_production" {
				return conflictf("overwrite restores are only allowed on non_production projects")
			}
			if in.ApprovalToken == "" {
				return errApprovalRequired
			}
			approval, err := checkApproval(ctx, tx, org.ID, p.ID, "project.restore_overwrite", in.ApprovalToken)
			if err != nil {
				return err
			}
			if approval.UsedAt != nil {
				return domainerr.New(domainerr.Forbidden, "approval token has already been used")
			}
			if p.State != store.ProjectReady {
				return conflictf("project is not ready (state %s)", p.State)
			}
			// The safety backup is recorded now and taken first by the job.
			safety := s.newBackup(p, "before restore of "+b.ID, store.BackupKindPreRestore, time.Now().Add(ManualBackupRetention))
			safety.JobID = &jobID
			if err := store.InsertBackup(ctx, tx, safety); err != nil {
				return err
			}
			payload.SafetyBackupID = safety.ID
			meta["safety_backup_id"] = safety.ID
			if err := store.UseApproval(ctx, tx, approval.ID, jobID); err != nil {
				return err
			}
			if err := store.BeginProjectRestore(ctx, tx, p.ID, jobID); err != nil {
				return err
			}
			params.LockedResource = "project:" + p.ID
			action = "project.restore_overwrite_started"
		default:
			return invalidf("target_kind must be new_preview, preview or project")
		}
		params.Payload = payload
		job, err = queue.Enqueue(ctx, tx, params)
		if err != nil {
			return err
		}
		return audit(ctx, tx, org.ID, p.ID, action, actor, meta)
	})
	return job, err
}

func (s *Service) insertRestorePreview(ctx context.Context, tx pgx.Tx, org *store.Organization, p *store.Project, b *store.Backup, in RestoreParams, jobID string) (*store.Preview, error) {
	limits := PlanFor(org)
	if limits.MaxPreviews >= 0 {
		n, err := store.CountLivePreviews(ctx, tx, p.ID)
		if err != nil {
			return nil, err
		}
		if n >= limits.MaxPreviews {
			return nil, conflictf("plan %s allows %d live previews per project", limits.Name, limits.MaxPreviews)
		}
	}
	name := in.PreviewName
	if name == "" {
		name = "restore-" + time.Now().UTC().Format("20060102-150405")
	}
	holder, err := store.PreviewNameHolder(ctx, tx, p.ID, name)
	if err != nil {
		return nil, err
	}
	if holder != "" {
		return nil, conflictf("preview name %q is already used by %s", name, holder)
	}
	ttl := in.TTLHours
	if ttl == 0 {
		ttl = DefaultPreviewTTLHours
	}
	db, role := previewNames(p.Slug)
	kind := "backup"
	pv := &store.Preview{
		ID: ids.New("pvw_"), OrganizationID: org.ID, ProjectID: p.ID, ClusterID: p.ClusterID, Name: name,
		Mode: store.PreviewModeClone, State: store.PreviewProvisioning,
		TTLExpiresAt: time.Now().Add(time.Duration(ttl) * time.Hour).UTC(),
		DatabaseName: db, RoleName: role, PasswordEnc: s.seal(newPassword()), LatestJobID: &jobID,
		SourceKind: &kind, SourceDatabase: &p.DatabaseName,
	}
	if err := store.InsertPreview(ctx, tx, pv); err != nil {
		if store.IsUniqueViolation(err, "preview_databases_live_name") {
			return nil, conflictf("preview name %q is already in use", name)
		}
		return nil, err
	}
	if err := store.SetPreviewSourceBackup(ctx, tx, pv.ID, b.BackupKey); err != nil {
		return nil, err
	}
	return pv, nil
}

// restoreHandler runs project.restore: the backup (checksum checked) is
// loaded into a new database that is swapped in only once it is complete.
type restoreHandler struct{ s *Service }

func (h *restoreHandler) payload(j *queue.Job) (restorePayload, error) {
	var in restorePayload
	if err := j.DecodePayload(&in); err != nil || in.BackupID == "" {
		return in, queue.PermanentError(fmt.Errorf("restore job without a backup"))
	}
	return in, nil
}

func (h *restoreHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	in, err := h.payload(j)
	if err != nil {
		return nil, err
	}
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil || p.State == store.ProjectDeleting {
		return nil, queue.PermanentError(fmt.Errorf("project is being deleted"))
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	b, err := store.GetBackup(ctx, h.s.Store.Pool, in.BackupID)
	if err != nil {
		return nil, err
	}
	if b.State != store.BackupCompleted {
		return nil, queue.PermanentError(fmt.Errorf("backup %s is %s", b.ID, b.State))
	}
	if in.TargetKind == TargetProject && in.SafetyBackupID != "" {
		safety, err := store.GetBackup(ctx, h.s.Store.Pool, in.SafetyBackupID)
		if err != nil {
			return nil, err
		}
		if safety.VerificationState != store.VerifyVerified {
			if err := h.s.runBackup(ctx, rep, p, c, safety); err != nil {
				if queue.IsPermanent(err) {
					_ = store.MarkBackupFailed(ctx, h.s.Store.Pool, safety.ID, nil)
				}
				return nil, fmt.Errorf("while taking the safety backup: %w", err)
			}
			if err := store.MarkBackupCompleted(ctx, h.s.Store.Pool, safety.ID); err != nil {
				return nil, err
			}
		}
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "downloading", "bytes_total": b.SizeBytes})
	file, err := h.s.Blob.FetchFile(ctx, b.BackupKey, artifactOf(b))
	if errors.Is(err, blobstore.ErrChecksumMismatch) || errors.Is(err, blobstore.ErrNotFound) {
		return nil, queue.PermanentError(err)
	}
	if err != nil {
		return nil, err
	}
	defer os.Remove(file)
	_ = rep.Progress(ctx, map[string]any{"phase": "restoring", "bytes_total": b.SizeBytes})

	main, owner := p.DatabaseName, p.OwnerRole
	if in.TargetKind != TargetProject {
		pv, err := h.s.previewOf(ctx, j)
		if err != nil {
			return nil, err
		}
		if pv.DeletedAt != nil || pv.State == store.PreviewDeleting {
			return nil, queue.PermanentError(fmt.Errorf("preview is being deleted"))
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
		main, owner = pv.DatabaseName, pv.RoleName
	}
	err = c.Restore(ctx, dataplane.RestoreParams{File: file, Target: nextDB(main), Owner: owner, Jobs: h.s.cloneWorkers(), Command: rep.Command})
	if err != nil {
		var foreign *dataplane.ForeignObjectError
		if errors.As(err, &foreign) {
			return nil, queue.PermanentError(err)
		}
		return nil, err
	}
	if err := c.SwapDatabase(ctx, main, nextDB(main), oldDB(main), owner); err != nil {
		return nil, err
	}
	result := map[string]any{"target_kind": in.TargetKind}
	if j.PreviewDatabaseID != nil {
		result["preview_id"] = *j.PreviewDatabaseID
	}
	return result, nil
}

// Abort leaves the target as it was: a half-finished swap is undone and the
// partial database dropped; a new preview is removed entirely.
func (h *restoreHandler) Abort(ctx context.Context, j *queue.Job) error {
	in, err := h.payload(j)
	if err != nil {
		return nil
	}
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return err
	}
	if in.TargetKind == TargetProject {
		if err := c.RecoverSwap(ctx, p.DatabaseName, oldDB(p.DatabaseName), p.OwnerRole); err != nil {
			return err
		}
		return dropIgnoringForeign(ctx, c, nextDB(p.DatabaseName), p.OwnerRole)
	}
	pv, err := h.s.previewOf(ctx, j)
	if err != nil {
		return nil
	}
	if err := c.RecoverSwap(ctx, pv.DatabaseName, oldDB(pv.DatabaseName), pv.RoleName); err != nil {
		return err
	}
	if err := dropIgnoringForeign(ctx, c, nextDB(pv.DatabaseName), pv.RoleName); err != nil {
		return err
	}
	if in.TargetKind == TargetNewPreview {
		return h.s.dropPreviewObjects(ctx, c, pv)
	}
	return nil
}

func (h *restoreHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	in, err := h.payload(j)
	if err != nil {
		return err
	}
	b, err := store.GetBackup(ctx, tx, in.BackupID)
	if err != nil {
		return err
	}
	data := map[string]any{"organization_id": j.OrganizationID, "project_id": *j.ProjectID, "job_id": j.ID,
		"backup_id": b.ID, "backup_key": b.BackupKey, "target_kind": in.TargetKind}
	switch in.TargetKind {
	case TargetProject:
		if err := skipStale(store.FinishProjectRestore(ctx, tx, *j.ProjectID, nil)); err != nil {
			return err
		}
		data["safety_backup_id"] = in.SafetyBackupID
	default:
		if err := skipStale(store.MarkPreviewRestored(ctx, tx, *j.PreviewDatabaseID, b.BackupKey)); err != nil {
			return err
		}
		data["preview_id"] = *j.PreviewDatabaseID
		if in.TargetKind == TargetNewPreview {
			if err := event(ctx, tx, j.OrganizationID, "preview.ready", map[string]any{
				"organization_id": j.OrganizationID, "project_id": *j.ProjectID, "preview_id": *j.PreviewDatabaseID, "job_id": j.ID,
			}); err != nil {
				return err
			}
		}
	}
	return event(ctx, tx, j.OrganizationID, "restore.completed", data)
}

func (h *restoreHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	in, _ := h.payload(j)
	switch in.TargetKind {
	case TargetProject:
		return skipStale(store.FinishProjectRestore(ctx, tx, *j.ProjectID, &msg))
	case TargetPreview:
		return skipStale(store.FailPreviewRestore(ctx, tx, *j.PreviewDatabaseID, msg))
	default:
		return skipStale(store.MarkPreviewFailed(ctx, tx, *j.PreviewDatabaseID, store.PreviewProvisioning, msg))
	}
}

// CreateRestorePoint writes a restore point with its audit record.
func (s *Service) CreateRestorePoint(ctx context.Context, rp *store.RestorePoint, actor Actor) error {
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertRestorePoint(ctx, tx, rp); err != nil {
			return err
		}
		return audit(ctx, tx, rp.OrganizationID, rp.ProjectID, "restore_point.created", actor, map[string]any{
			"restore_point_id": rp.ID, "kind": rp.Kind, "backup_id": deref(rp.BackupID)})
	})
}

// DeleteRestorePoint removes a restore point (not its backup).
func (s *Service) DeleteRestorePoint(ctx context.Context, p *store.Project, id string, actor Actor) error {
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		ok, err := store.DeleteRestorePoint(ctx, tx, p.ID, id)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		return audit(ctx, tx, p.OrganizationID, p.ID, "restore_point.deleted", actor, map[string]any{"restore_point_id": id})
	})
}
