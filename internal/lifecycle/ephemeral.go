package lifecycle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// EphemeralTTL is how long an unclaimed ephemeral database lives.
const EphemeralTTL = 72 * time.Hour

// DefaultEphemeralCap is the number of unclaimed ephemeral databases one
// client address (or one organization, with a key) may hold at a time.
const DefaultEphemeralCap = 3

// EphemeralCapError is the cap being reached: RetryAfter is when the oldest
// of the owner's ephemeral databases expires.
type EphemeralCapError struct {
	Cap        int
	RetryAfter time.Duration
}

func (e *EphemeralCapError) Error() string {
	return fmt.Sprintf("at most %d unclaimed ephemeral databases at a time; claim or destroy one first", e.Cap)
}

// HashClaimToken is what is stored of a claim token.
func HashClaimToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateEphemeral creates an ephemeral database for owner ("addr:<ip>" or
// "org:<id>"): a project of the ephemeral organization, its instance.create
// job and its claim token (returned once, stored hashed), all in one
// transaction that first counts the owner's open ephemeral databases.
func (s *Service) CreateEphemeral(ctx context.Context, owner string, limit int, in CreateProjectParams) (*store.Project, *queue.Job, string, time.Time, error) {
	token := "eph_" + ids.RandomBase62(40)
	var p *store.Project
	var job *queue.Job
	var expires time.Time
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		open, err := store.OpenEphemeral(ctx, tx, owner)
		if err != nil {
			return err
		}
		if len(open) >= limit {
			return &EphemeralCapError{Cap: limit, RetryAfter: max(time.Until(open[0].ExpiresAt), time.Second)}
		}
		org, err := store.EnsureEphemeralOrg(ctx, tx)
		if err != nil {
			return err
		}
		in.Environment = EnvNonProduction
		p, job, err = s.createProjectTx(ctx, tx, org, in, Actor{Kind: "system", ID: "ephemeral"})
		if err != nil {
			return err
		}
		expires = p.CreatedAt.Add(EphemeralTTL)
		if p.CreatedAt.IsZero() {
			expires = time.Now().Add(EphemeralTTL)
		}
		return store.InsertEphemeral(ctx, tx, p.ID, HashClaimToken(token), owner, expires)
	})
	if err != nil {
		return nil, nil, "", time.Time{}, err
	}
	return p, job, token, expires, nil
}

// EphemeralByToken returns a live ephemeral database and its project, or
// store.ErrNotFound (wrong token, claimed, destroyed or expired).
func (s *Service) EphemeralByToken(ctx context.Context, projectID, token string) (*store.Ephemeral, *store.Project, error) {
	var e *store.Ephemeral
	var p *store.Project
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if e, err = store.LockEphemeralByToken(ctx, tx, projectID, HashClaimToken(token), time.Now()); err != nil {
			return err
		}
		if e.DestroyedAt != nil {
			return store.ErrNotFound
		}
		p, err = store.GetProject(ctx, tx, store.EphemeralOrgID, projectID)
		if err == nil && p.State == store.ProjectDeleting {
			return store.ErrNotFound
		}
		return err
	})
	return e, p, err
}

// DestroyEphemeral deletes an ephemeral database now; destroying it again is
// a no-op. store.ErrNotFound for a wrong token or a claimed database.
func (s *Service) DestroyEphemeral(ctx context.Context, projectID, token string) error {
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		e, err := store.LockEphemeralByToken(ctx, tx, projectID, HashClaimToken(token), time.Now())
		if err != nil || e.DestroyedAt != nil {
			return err
		}
		if _, err := s.deleteProjectTx(ctx, tx, store.EphemeralOrgID, projectID, Actor{Kind: "system", ID: "ephemeral"}); err != nil {
			return err
		}
		return store.MarkEphemeralDestroyed(ctx, tx, projectID)
	})
}

// ClaimEphemeral moves a live ephemeral database into orgID as an ordinary
// production project: same id, database, role and URLs, no expiry.
func (s *Service) ClaimEphemeral(ctx context.Context, orgID, projectID, token string, actor Actor) (*store.Project, error) {
	var p *store.Project
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		e, err := store.LockEphemeralByToken(ctx, tx, projectID, HashClaimToken(token), time.Now())
		if err != nil {
			return err
		}
		if e.DestroyedAt != nil {
			return store.ErrNotFound
		}
		cur, err := store.LockProject(ctx, tx, store.EphemeralOrgID, projectID)
		if err != nil {
			return err
		}
		if cur.State == store.ProjectDeleting {
			return store.ErrNotFound
		}
		if err := store.LockOrgCreates(ctx, tx, orgID, cur.Slug); err != nil {
			return err
		}
		taken, err := store.SlugsWithPrefix(ctx, tx, orgID, cur.Slug)
		if err != nil {
			return err
		}
		slug := cur.Slug
		for n := 2; taken[slug]; n++ {
			slug = fmt.Sprintf("%s-%d", cur.Slug, n)
		}
		if err := store.ClaimEphemeral(ctx, tx, projectID, orgID, slug); err != nil {
			return err
		}
		if err := audit(ctx, tx, orgID, projectID, "ephemeral_database.claimed", actor, map[string]any{"slug": slug}); err != nil {
			return err
		}
		p, err = store.GetProject(ctx, tx, orgID, projectID)
		return err
	})
	return p, err
}

// ReapExpiredEphemeral queues the deletion of unclaimed ephemeral databases
// past their 72 hours; one server leads each round.
func (s *Service) ReapExpiredEphemeral(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		leader, err := bgsvc.TryLeadTx(ctx, tx, "capydb.ephemeral_reaper")
		if err != nil || !leader {
			return err
		}
		due, err := store.DueEphemeral(ctx, tx, now, 200)
		if err != nil {
			return err
		}
		for _, id := range due {
			if _, err := s.deleteProjectTx(ctx, tx, store.EphemeralOrgID, id, Actor{Kind: "system", ID: "ephemeral_reaper"}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := store.MarkEphemeralDestroyed(ctx, tx, id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// deleteProjectTx queues project.delete for a project that needs no
// approval (ephemeral databases are non_production), or returns the delete
// already under way.
func (s *Service) deleteProjectTx(ctx context.Context, tx pgx.Tx, orgID, projectID string, actor Actor) (*queue.Job, error) {
	p, err := store.LockProject(ctx, tx, orgID, projectID)
	if err != nil {
		return nil, err
	}
	if p.State == store.ProjectDeleting {
		job, err := queue.ActiveJob(ctx, tx, p.ID, JobProjectDelete)
		if !errors.Is(err, store.ErrNotFound) {
			return job, err
		}
	}
	job, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
		Type: JobProjectDelete, OrganizationID: orgID, ProjectID: p.ID, ClusterID: p.ClusterID,
		LockedResource: "project:" + p.ID,
	})
	if err != nil {
		return nil, err
	}
	if err := store.BeginProjectDelete(ctx, tx, p.ID, job.ID); err != nil {
		return nil, err
	}
	return job, audit(ctx, tx, orgID, p.ID, "project.deleted", actor, map[string]any{"job_id": job.ID})
}
