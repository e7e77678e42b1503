package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// provisionHandler runs instance.create (JobProjectProvision): role, database, pooler entry.
type provisionHandler struct{ s *Service }

func (h *provisionHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	p, err := h.s.liveProject(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectProvisioning {
		return nil, queue.PermanentError(fmt.Errorf("project is %s, not provisioning", p.State))
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	limits, err := h.s.planForOrg(ctx, p.OrganizationID)
	if err != nil {
		return nil, err
	}
	pw, err := h.s.open(p.PasswordEnc)
	if err != nil {
		return nil, queue.PermanentError(fmt.Errorf("while decrypting credentials: %w", err))
	}
	rep.Secret(pw)
	return nil, permanentIfForeign(c.CreateTenant(ctx, dataplane.Tenant{
		Database: p.DatabaseName, Role: p.RoleName, Password: pw,
		ConnectionLimit: limits.MaxConnections, StatementTimeout: limits.StatementTimeout,
		IdleTransactionTimeout: limits.IdleTransactionTimeout,
	}))
}

// Abort removes what a failed provisioning made, so no half-made role or
// database is left behind.
func (h *provisionHandler) Abort(ctx context.Context, j *queue.Job) error {
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil
	}
	if p.Provisioned {
		return nil
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return err
	}
	return c.DropTenantIfOwned(ctx, p.DatabaseName, p.OwnerRole)
}

func (h *provisionHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	if err := store.MarkProjectReady(ctx, tx, *j.ProjectID); err != nil {
		return skipStale(err)
	}
	return event(ctx, tx, j.OrganizationID, "project.ready", map[string]any{"project_id": *j.ProjectID, "job_id": j.ID})
}

func (h *provisionHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	return skipStale(store.MarkProjectFailed(ctx, tx, *j.ProjectID, msg))
}

// deleteHandler runs project.delete: database, roles, pooler entry.
type deleteHandler struct{ s *Service }

func (h *deleteHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil {
		return nil, nil // already done by an earlier attempt
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	// Previews first: they live on the project's cluster with their own roles.
	if err := h.s.dropProjectPreviews(ctx, p, c); err != nil {
		return nil, err
	}
	if err := h.s.deleteProjectArtifacts(ctx, p); err != nil { // backups.go
		return nil, err
	}
	if err := h.s.endFollowForDelete(ctx, j, rep); err != nil { // follow_jobs.go
		return nil, err
	}
	var logins []string
	for _, r := range []*string{&p.RoleName, p.GraceRole} {
		if r != nil && *r != p.OwnerRole {
			logins = append(logins, *r)
		}
	}
	return nil, c.DropTenantIfOwned(ctx, p.DatabaseName, p.OwnerRole, logins...)
}

func (h *deleteHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	if err := store.MarkProjectDeleted(ctx, tx, *j.ProjectID); err != nil {
		return skipStale(err)
	}
	if err := markProjectPreviewsDeleted(ctx, tx, j); err != nil {
		return err
	}
	return event(ctx, tx, j.OrganizationID, "project.deleted", map[string]any{"project_id": *j.ProjectID, "job_id": j.ID})
}

func (h *deleteHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	return store.SetProjectLastError(ctx, tx, *j.ProjectID, msg)
}

type rotatePayload struct {
	GraceHours int    `json:"grace_hours,omitempty"`
	NewRole    string `json:"new_role,omitempty"`
}

// rotateHandler runs project.rotate_credentials. The new password is kept
// encrypted on the project while the job runs, so a retry reuses it.
type rotateHandler struct{ s *Service }

func (h *rotateHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	var in rotatePayload
	if err := j.DecodePayload(&in); err != nil {
		return nil, queue.PermanentError(err)
	}
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil || p.State != store.ProjectReady {
		return nil, queue.PermanentError(fmt.Errorf("project is not ready (state %s)", p.State))
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	// A new rotation ends an open grace window first.
	if p.GraceRole != nil && *p.GraceRole != in.NewRole {
		if err := c.RetireLogin(ctx, *p.GraceRole, p.OwnerRole, p.DatabaseName); err != nil {
			return nil, err
		}
		if err := store.ClearGrace(ctx, h.s.Store.Pool, p.ID); err != nil {
			return nil, err
		}
	}
	pw, err := h.pendingPassword(ctx, p)
	if err != nil {
		return nil, err
	}
	rep.Secret(pw)
	if in.NewRole == "" {
		return nil, c.SetPassword(ctx, p.RoleName, pw, p.DatabaseName)
	}
	limits, err := h.s.planForOrg(ctx, p.OrganizationID)
	if err != nil {
		return nil, err
	}
	if err := c.CreateMemberLogin(ctx, in.NewRole, p.OwnerRole, pw, limits.MaxConnections,
		limits.StatementTimeout, limits.IdleTransactionTimeout); err != nil {
		return nil, err
	}
	// The project's settings, read-only mode and connection limit live per
	// (login, database): the new login takes them over.
	return nil, c.CopyTenantSettings(ctx, p.DatabaseName, p.RoleName, in.NewRole)
}

func (h *rotateHandler) pendingPassword(ctx context.Context, p *store.Project) (string, error) {
	if len(p.PendingPasswordEnc) > 0 {
		pw, err := h.s.open(p.PendingPasswordEnc)
		if err != nil {
			return "", queue.PermanentError(fmt.Errorf("while decrypting credentials: %w", err))
		}
		return pw, nil
	}
	pw := newPassword()
	enc := h.s.seal(pw)
	if err := store.SetPendingPassword(ctx, h.s.Store.Pool, p.ID, enc); err != nil {
		return "", err
	}
	return pw, nil
}

func (h *rotateHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	var in rotatePayload
	if err := j.DecodePayload(&in); err != nil {
		return err
	}
	oldRole, pending, err := store.LockPendingPassword(ctx, tx, *j.ProjectID)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		return fmt.Errorf("rotation finished without a pending password")
	}
	if in.NewRole == "" {
		if err := store.CommitPendingPassword(ctx, tx, *j.ProjectID, "", time.Time{}); err != nil {
			return err
		}
	} else {
		expires := time.Now().Add(time.Duration(in.GraceHours) * time.Hour)
		if err := store.CommitPendingPassword(ctx, tx, *j.ProjectID, in.NewRole, expires); err != nil {
			return err
		}
		if _, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
			Type: JobProjectExpireCredential, OrganizationID: j.OrganizationID, ProjectID: *j.ProjectID,
			ClusterID: deref(j.ClusterID), LockedResource: "project:" + *j.ProjectID,
			Payload: expirePayload{Role: oldRole}, RunAt: expires,
		}); err != nil {
			return err
		}
	}
	if err := ResyncPlatforms(ctx, tx, j.OrganizationID, *j.ProjectID, deref(j.ClusterID)); err != nil {
		return err
	}
	return event(ctx, tx, j.OrganizationID, "credentials.rotated", map[string]any{
		"project_id": *j.ProjectID, "job_id": j.ID, "grace_hours": in.GraceHours,
	})
}

func (h *rotateHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	return store.SetProjectLastError(ctx, tx, *j.ProjectID, msg)
}

type expirePayload struct {
	Role string `json:"role"`
}

// expireHandler runs project.expire_credential at the end of a grace window.
type expireHandler struct{ s *Service }

func (h *expireHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	var in expirePayload
	if err := j.DecodePayload(&in); err != nil || in.Role == "" {
		return nil, queue.PermanentError(fmt.Errorf("expire job without a role"))
	}
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil || in.Role == p.RoleName {
		return nil, nil // project gone, or the role is the current login again: nothing to retire
	}
	c, err := h.s.Cluster(p.ClusterID)
	if err != nil {
		return nil, err
	}
	return nil, c.RetireLogin(ctx, in.Role, p.OwnerRole, p.DatabaseName)
}

func (h *expireHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	var in expirePayload
	if err := j.DecodePayload(&in); err != nil {
		return err
	}
	return store.EndGrace(ctx, tx, *j.ProjectID, in.Role)
}

func (h *expireHandler) OnFail(context.Context, pgx.Tx, *queue.Job, string) error { return nil }

// skipStale turns "the row has moved on" into nil: a finisher whose project
// or preview was deleted (or changed state) meanwhile has nothing to record.
func skipStale(err error) error {
	if errors.Is(err, store.ErrTransition) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// permanentIfForeign marks err permanent when it is a *dataplane.ForeignObjectError:
// an object of the name belongs to someone else, which no retry changes.
// Any other error is returned as it is.
func permanentIfForeign(err error) error {
	var foreign *dataplane.ForeignObjectError
	if errors.As(err, &foreign) {
		return queue.PermanentError(err)
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
