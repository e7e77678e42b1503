package lifecycle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Actor is who asked for a change, for the audit log.
type Actor struct {
	Kind string // user, api_key, operator, system
	ID   string
}

// Caller-caused errors are domainerr kinds; package api maps them to statuses.
func conflictf(format string, a ...any) error {
	return domainerr.Errorf(domainerr.Conflict, format, a...)
}
func invalidf(format string, a ...any) error {
	return domainerr.Errorf(domainerr.Invalid, format, a...)
}

var errApprovalRequired = domainerr.New(domainerr.Precondition, "this action requires an approval token")

// CreateProjectParams is a validated create request.
type CreateProjectParams struct {
	Name            string
	Slug            string // empty = derive from name
	Environment     string
	AlwaysOn        *bool
	ClusterID       string // chosen cluster
	PostgresVersion string
	// Place picks the cluster inside the create transaction (region ""
	// = any, PostgresVersion), replacing ClusterID: concurrent creates then
	// see each other and spread (docs/fleet.md).
	Place  bool
	Region string
}

var slugRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ValidSlug reports whether s is an acceptable explicit slug.
func ValidSlug(s string) bool { return slugRe.MatchString(s) && !strings.HasSuffix(s, "-") }

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// DeriveSlug turns a project name into a slug base.
func DeriveSlug(name string) string {
	s := nonSlug.ReplaceAllString(strings.ToLower(name), "-")
	s = strings.Trim(s, "-")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "p-" + s
	}
	s = strings.TrimRight(s, "-")
	if len(s) > 50 {
		s = strings.TrimRight(s[:50], "-")
	}
	return s
}

// CreateProject writes the project (state provisioning, generated names and
// encrypted password) and its instance.create job in one transaction.
func (s *Service) CreateProject(ctx context.Context, org *store.Organization, in CreateProjectParams, actor Actor) (*store.Project, *queue.Job, error) {
	var p *store.Project
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, job, err = s.createProjectTx(ctx, tx, org, in, actor)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return p, job, nil
}

// createProjectTx is CreateProject inside the caller's transaction.
func (s *Service) createProjectTx(ctx context.Context, tx pgx.Tx, org *store.Organization, in CreateProjectParams, actor Actor) (*store.Project, *queue.Job, error) {
	var p *store.Project
	var job *queue.Job
	// Serialize creates whose slugs could collide so derived slugs do not race.
	slug := in.Slug
	lockKey := slug
	if lockKey == "" {
		lockKey = DeriveSlug(in.Name)
	}
	if err := store.LockOrgCreates(ctx, tx, org.ID, lockKey); err != nil {
		return nil, nil, err
	}
	if slug != "" {
		holder, err := store.SlugTaken(ctx, tx, org.ID, slug)
		if err != nil {
			return nil, nil, err
		}
		if holder != "" {
			return nil, nil, conflictf("slug %q is already used by project %s", slug, holder)
		}
	} else {
		base := DeriveSlug(in.Name)
		taken, err := store.SlugsWithPrefix(ctx, tx, org.ID, base)
		if err != nil {
			return nil, nil, err
		}
		slug = base
		for n := 2; taken[slug]; n++ {
			slug = fmt.Sprintf("%s-%d", base, n)
		}
	}
	alwaysOn := in.Environment == "production"
	if in.AlwaysOn != nil {
		alwaysOn = *in.AlwaysOn
	}
	if in.Place {
		c, err := store.PlaceTx(ctx, tx, in.Region, in.PostgresVersion)
		if err != nil {
			return nil, nil, err
		}
		if c == nil {
			where := ""
			if in.Region != "" {
				where = " in region " + in.Region
			}
			return nil, nil, conflictf("no cluster can take a new project: every cluster offering postgres %s%s is cordoned, draining, offline or full", in.PostgresVersion, where)
		}
		in.ClusterID = c.ID
	}
	pw := s.seal(newPassword())
	suffix := randomLower(10)
	namePart := strings.ReplaceAll(slug, "-", "_")
	if len(namePart) > 24 {
		namePart = strings.TrimRight(namePart[:24], "_")
	}
	projectID := ids.New("prj_")
	jobID := ids.New("job_")
	p = &store.Project{
		ID:              projectID,
		OrganizationID:  org.ID,
		ClusterID:       in.ClusterID,
		Name:            in.Name,
		Slug:            slug,
		Environment:     in.Environment,
		AlwaysOn:        alwaysOn,
		State:           store.ProjectProvisioning,
		PostgresVersion: in.PostgresVersion,
		DatabaseName:    "db_" + namePart + "_" + suffix,
		OwnerRole:       "u_" + namePart + "_" + suffix,
		PasswordEnc:     pw,
		LatestJobID:     &jobID,
	}
	p.RoleName = p.OwnerRole
	if err := store.InsertProject(ctx, tx, p); err != nil {
		if store.IsUniqueViolation(err, "projects_org_slug") {
			return nil, nil, conflictf("slug %q is already in use", slug)
		}
		return nil, nil, err
	}
	var err error
	job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
		ID: jobID, Type: JobProjectProvision, OrganizationID: org.ID, ProjectID: p.ID,
		ClusterID: p.ClusterID, LockedResource: "project:" + p.ID,
	})
	if err != nil {
		return nil, nil, err
	}
	return p, job, audit(ctx, tx, org.ID, p.ID, "project.created", actor, map[string]any{"job_id": job.ID, "slug": slug})
}

// DeleteProject marks the project deleting and queues project.delete; a
// project already being deleted returns its in-flight delete job. Production
// projects need a project.delete approval token, consumed in the same
// transaction; replaying a consumed token returns the job it authorised.
func (s *Service) DeleteProject(ctx context.Context, orgID, projectID, approvalToken string, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		var approval *store.Approval
		if p.Environment == "production" {
			if approvalToken == "" {
				return errApprovalRequired
			}
			approval, err = checkApproval(ctx, tx, orgID, p.ID, "project.delete", approvalToken)
			if err != nil {
				return err
			}
			if approval.UsedAt != nil {
				job, err = queue.Get(ctx, tx, orgID, deref(approval.JobID))
				return err
			}
		}
		if p.State == store.ProjectDeleting {
			job, err = queue.ActiveJob(ctx, tx, p.ID, JobProjectDelete)
			if err == nil {
				if approval != nil {
					return store.UseApproval(ctx, tx, approval.ID, job.ID)
				}
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
			Type: JobProjectDelete, OrganizationID: orgID, ProjectID: p.ID, ClusterID: p.ClusterID,
			LockedResource: "project:" + p.ID,
		})
		if err != nil {
			return err
		}
		if approval != nil {
			if err := store.UseApproval(ctx, tx, approval.ID, job.ID); err != nil {
				return err
			}
			if err := audit(ctx, tx, orgID, p.ID, "approval.used", actor, map[string]any{"approval_id": approval.ID, "action": "project.delete"}); err != nil {
				return err
			}
		}
		if err := store.BeginProjectDelete(ctx, tx, p.ID, job.ID); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "project.deleted", actor, map[string]any{"job_id": job.ID})
	})
	return job, err
}

// Project environments (the OpenAPI enum of environment).
const (
	EnvProduction    = "production"
	EnvNonProduction = "non_production"
)

// ApprovalActions are the actions an approval can authorise.
var ApprovalActions = []string{"project.delete", "project.restore_overwrite", "project.upgrade_major",
	"project.upgrade_major_confirm", "project.upgrade_major_rollback"}

// ApprovalTTL is how long a minted approval token is valid.
const ApprovalTTL = 10 * time.Minute

// MintApproval creates a single-use approval token for one project and action.
func (s *Service) MintApproval(ctx context.Context, orgID, projectID, action string, actor Actor) (*store.Approval, string, error) {
	token := "ap_" + ids.RandomBase62(40)
	var a *store.Approval
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		if action == "project.restore_overwrite" && p.Environment == "production" {
			return conflictf("overwrite restores are only allowed on non_production projects")
		}
		a = &store.Approval{ID: ids.New("apr_"), OrganizationID: orgID, ProjectID: p.ID, Action: action,
			TokenHash: hashToken(token), ExpiresAt: time.Now().Add(ApprovalTTL)}
		if err := store.InsertApproval(ctx, tx, a); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "approval.created", actor, map[string]any{"approval_id": a.ID, "action": action})
	})
	return a, token, err
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

func checkApproval(ctx context.Context, tx pgx.Tx, orgID, projectID, action, token string) (*store.Approval, error) {
	a, err := store.LockApprovalByHash(ctx, tx, orgID, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, domainerr.New(domainerr.Forbidden, "approval token is invalid or expired")
	}
	if err != nil {
		return nil, err
	}
	if a.ProjectID != projectID {
		return nil, domainerr.New(domainerr.Forbidden, "approval token was minted for another project")
	}
	if a.Action != action {
		return nil, domainerr.Errorf(domainerr.Forbidden, "approval token was minted for %s, not %s", a.Action, action)
	}
	if a.UsedAt == nil && !a.ExpiresAt.After(time.Now()) {
		return nil, domainerr.New(domainerr.Forbidden, "approval token is invalid or expired")
	}
	return a, nil
}

// lockReadyProject locks a live project for a change that needs it ready.
func lockReadyProject(ctx context.Context, tx pgx.Tx, orgID, projectID string) (*store.Project, error) {
	p, err := store.LockProject(ctx, tx, orgID, projectID)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectReady {
		return nil, conflictf("project is not ready (state %s)", p.State)
	}
	return p, nil
}

// RotateCredentials queues project.rotate_credentials on a ready project.
func (s *Service) RotateCredentials(ctx context.Context, orgID, projectID string, graceHours int, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := lockReadyProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		payload := rotatePayload{GraceHours: graceHours}
		if graceHours > 0 {
			payload.NewRole = graceLoginName(p.OwnerRole)
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
			Type: JobProjectRotateCredentials, OrganizationID: orgID, ProjectID: p.ID, ClusterID: p.ClusterID,
			LockedResource: "project:" + p.ID, Payload: payload,
		})
		if err != nil {
			return err
		}
		if err := store.SetProjectLatestJob(ctx, tx, p.ID, job.ID); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "project.credentials_rotated", actor,
			map[string]any{"job_id": job.ID, "grace_hours": graceHours})
	})
	return job, err
}

// graceLoginName derives a new login name from the owner role, within 63 bytes.
func graceLoginName(owner string) string {
	if len(owner) > 50 {
		owner = owner[:50]
	}
	return owner + "_g" + randomLower(8)
}

func audit(ctx context.Context, db store.DB, orgID, projectID, action string, actor Actor, meta map[string]any) error {
	a := &store.AuditEvent{ID: ids.New("aud_"), OrganizationID: orgID, Action: action, ActorKind: actor.Kind, Metadata: meta}
	if projectID != "" {
		a.ProjectID = &projectID
	}
	if actor.ID != "" {
		a.ActorID = &actor.ID
	}
	if a.ActorKind == "" {
		a.ActorKind = "system"
	}
	return store.InsertAuditEvent(ctx, db, a)
}

// PlanFor returns the plan limits of an organization.
func PlanFor(org *store.Organization) plan.Limits {
	l, err := plan.Lookup(org.BillingPlan)
	if err != nil {
		return plan.Defaults["business"]
	}
	return l
}

func (s *Service) planForOrg(ctx context.Context, orgID string) (plan.Limits, error) {
	org, err := store.GetOrganization(ctx, s.Store.Pool, orgID)
	if err != nil {
		return plan.Limits{}, err
	}
	return PlanFor(org), nil
}

func event(ctx context.Context, db store.DB, orgID, typ string, data map[string]any) error {
	data["occurred_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	return store.InsertEvent(ctx, db, ids.New("evt_"), orgID, typ, data)
}
