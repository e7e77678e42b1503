package lifecycle

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// RetryProvisioning (API.md §3.6) returns the in-flight instance.create job
// of the project if there is one; otherwise a project that failed while
// provisioning gets a new instance.create job for the same database name,
// role and password (all kept on the row), and goes back to provisioning.
func (s *Service) RetryProvisioning(ctx context.Context, orgID, projectID string, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		job, err = queue.ActiveJob(ctx, tx, p.ID, JobProjectProvision)
		if err == nil {
			return nil // a repeated retry gets the job already under way
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if p.State != store.ProjectFailed {
			return conflictf("project is not failed (state %s)", p.State)
		}
		if p.Provisioned {
			return conflictf("provisioning already completed; only a project that failed while provisioning can be retried")
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
			Type: JobProjectProvision, OrganizationID: orgID, ProjectID: p.ID,
			ClusterID: p.ClusterID, LockedResource: "project:" + p.ID,
		})
		if err != nil {
			return err
		}
		if err := store.RetryProjectProvision(ctx, tx, p.ID, job.ID); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "project.provisioning_retried", actor, map[string]any{"job_id": job.ID})
	})
	return job, err
}
