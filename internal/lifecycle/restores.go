package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/blobstore"
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
	// RestoreTime is a point in time (the source when set).
	RestoreTime *time.Time
}

type restorePayload struct {
	BackupID       string       `json:"backup_id,omitempty"`
	TargetKind     string       `json:"target_kind"`
	SafetyBackupID string       `json:"safety_backup_id,omitempty"`
	PITR           *pitrPayload `json:"pitr,omitempty"`
}

// pitrPayload is a point-in-time source, resolved when the job was queued.
type pitrPayload struct {
	Requested time.Time `json:"requested"`
	Effective time.Time `json:"effective"`
	Clamped   bool      `json:"clamped"`
	// DatabaseOID is the incarnation restored: the project's database
	// when the job was queued (a restore over the project makes a new one).
	DatabaseOID uint32 `json:"database_oid"`
}

// resolveSource finds what a restore names: a backup, or a point in time
// (restore_time or a pitr restore point), checked and clamped.
func (s *Service) resolveSource(ctx context.Context, tx pgx.Tx, p *store.Project, in RestoreParams) (*store.Backup, *PITRTarget, error) {
	if in.RestoreTime != nil {
		t, err := s.resolvePITR(ctx, p, *in.RestoreTime, "restore_time")
		return nil, t, err
	}
	if in.RestorePointID != "" {
		rp, err := store.GetRestorePoint(ctx, tx, p.ID, in.RestorePointID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, domainerr.New(domainerr.NotFound, "restore point not found")
		}
		if err != nil {
			return nil, nil, err
		}
		if rp.Kind == "pitr" && rp.PITRTime != nil {
			t, err := s.resolvePITR(ctx, p, *rp.PITRTime, "")
			return nil, t, err
		}
	}
	b, err := resolveBackup(ctx, tx, p.ID, in)
	return b, nil, err
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
// A point-in-time source is returned resolved (requested, effective, clamped).
func (s *Service) CreateRestore(ctx context.Context, org *store.Organization, projectID string, in RestoreParams, actor Actor) (*queue.Job, *PITRTarget, error) {
	var job *queue.Job
	var pt *PITRTarget
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		b, t, err := s.resolveSource(ctx, tx, p, in)
		if err != nil {
			return err
		}
		pt = t
		jobID := ids.New("job_")
		payload := restorePayload{TargetKind: in.TargetKind}
		params := queue.EnqueueParams{ID: jobID, Type: JobProjectRestore, OrganizationID: org.ID, ProjectID: p.ID,
			ClusterID: p.ClusterID}
		meta := map[string]any{"job_id": jobID, "target_kind": in.TargetKind}
		source := "restore"
		if b != nil {
			payload.BackupID = b.ID
			meta["backup_id"], meta["backup_key"] = b.ID, b.BackupKey
			source = "restore of " + b.ID
		} else {
			oid, err := s.databaseOID(ctx, p, p.DatabaseName)
			if err != nil {
				return fmt.Errorf("while looking up the project's database: %w", err)
			}
			payload.PITR = &pitrPayload{Requested: t.Requested, Effective: t.Effective, Clamped: t.Clamped, DatabaseOID: oid}
			params.Type = JobPITRRestore
			meta["requested_restore_time"], meta["restore_time"], meta["restore_time_clamped"] = t.Requested, t.Effective, t.Clamped
			source = "restore to " + t.Effective.Format(time.RFC3339)
		}
		action := "project.restore_started"
		switch in.TargetKind {
		case TargetNewPreview:
			if p.State != store.ProjectReady {
				return conflictf("project is not ready (state %s)", p.State)
			}
			pv, err := s.insertRestorePreview(ctx, tx, org, p, b, t, in, jobID)
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
			safety := s.newBackup(p, "before "+source, store.BackupKindPreRestore, time.Now().Add(ManualBackupRetention))
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
	if err != nil {
		return nil, nil, err
	}
	return job, pt, nil
}

// insertRestorePreview registers the new preview a restore of b (or to t) builds.
func (s *Service) insertRestorePreview(ctx context.Context, tx pgx.Tx, org *store.Organization, p *store.Project, b *store.Backup, t *PITRTarget, in RestoreParams, jobID string) (*store.Preview, error) {
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
	if b == nil {
		kind = "pitr"
	}
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
	if b == nil {
		return pv, store.SetPreviewSourceTime(ctx, tx, pv.ID, t.Effective)
	}
	if err := store.SetPreviewSourceBackup(ctx, tx, pv.ID, b.BackupKey); err != nil {
		return nil, err
	}
	return pv, nil
}

// CreateRestorePoint writes a restore point with its audit record.
func (s *Service) CreateRestorePoint(ctx context.Context, rp *store.RestorePoint, actor Actor) error {
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertRestorePoint(ctx, tx, rp); err != nil {
			return err
		}
		meta := map[string]any{"restore_point_id": rp.ID, "kind": rp.Kind, "backup_id": deref(rp.BackupID)}
		if rp.PITRTime != nil {
			meta["pitr_time"] = rp.PITRTime.UTC()
		}
		return audit(ctx, tx, rp.OrganizationID, rp.ProjectID, "restore_point.created", actor, meta)
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
