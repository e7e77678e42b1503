package lifecycle

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Preview job types. The Go names follow our nouns; the wire strings
// (branch.*) are public in the jobs API and stay.
const (
	JobPreviewCreate = "branch.create"
	JobPreviewReset  = "branch.reset"
	JobPreviewDelete = "branch.delete"
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
// uses (Config.CloneWorkers, defaulted by New).
func (s *Service) cloneWorkers() int { return s.cfg.CloneWorkers }

var previewNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidPreviewName reports whether name is an acceptable preview name.
func ValidPreviewName(name string) bool { return previewNameRe.MatchString(name) }

// CreatePreviewParams is a validated create request.
type CreatePreviewParams struct {
	Name     string // "" = generated
	Mode     string // empty or clone
	TTLHours int    // 1-168
	// Protected previews never expire (Supabase branches through the facade).
	Protected bool
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
		p, err := lockReadyProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
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
			Protected: in.Protected,
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
			ID: jobID, Type: JobPreviewCreate, OrganizationID: org.ID, ProjectID: p.ID, PreviewID: pv.ID,
			ClusterID: pv.ClusterID, LockedResource: "preview:" + pv.ID,
		})
		if err != nil {
			return err
		}
		return audit(ctx, tx, org.ID, p.ID, "preview.created", actor, map[string]any{
			"preview_id": pv.ID, "job_id": job.ID, "name": name, "mode": in.Mode, "ttl_hours": in.TTLHours,
			"protected": in.Protected,
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
			Type: JobPreviewReset, OrganizationID: orgID, ProjectID: pv.ProjectID, PreviewID: pv.ID,
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
		job, err := queue.ActivePreviewJob(ctx, tx, pv.ID, JobPreviewDelete)
		if err == nil {
			return job, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		// The last delete failed for good: start another.
	}
	job, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
		Type: JobPreviewDelete, OrganizationID: pv.OrganizationID, ProjectID: pv.ProjectID, PreviewID: pv.ID,
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
		leader, err := bgsvc.TryLeadTx(ctx, tx, "capydb.preview_reaper")
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
	return s.connection(pv.RoleName, pv.PasswordEnc, pv.DatabaseName, c)
}
