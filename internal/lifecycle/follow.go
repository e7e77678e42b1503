package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Follow imports (PRODUCT.md §14.4, docs/follow-imports.md): the schema is
// copied, then a publication on the source and a subscription in the
// project database stream the rows until cutover or abort.
const (
	JobFollowStart   = "project.import_follow_start"
	JobFollowStatus  = "project.import_follow_status"
	JobFollowCutover = "project.import_follow_cutover"
	JobFollowAbort   = "project.import_follow_abort"
)

// followName is the publication's, slot's and subscription's name for a
// project: stable across retries, unique per project, valid as a slot name.
func followName(projectID string) string {
	sum := sha256.Sum256([]byte(projectID))
	return "capydb_follow_" + hex.EncodeToString(sum[:8])
}

// sourceConfig reaches an import source under the outbound address rules.
func (s *Service) sourceConfig(sourceURL string) dataplane.SourceConfig {
	g := s.importGuard()
	return dataplane.SourceConfig{URL: sourceURL, Dial: g.DialContext,
		Lookup: func(ctx context.Context, host string) ([]string, error) {
			addrs, err := g.Resolve(ctx, host)
			if err != nil {
				return nil, err
			}
			out := make([]string, len(addrs))
			for i, a := range addrs {
				out[i] = a.String()
			}
			return out, nil
		}}
}

type followPayload struct {
	SourceURLEnc []byte `json:"source_url_enc,omitempty"`
}

// StartFollow checks the source (a 400 names what logical replication
// lacks), marks the project importing and queues project.import_follow_start.
func (s *Service) StartFollow(ctx context.Context, org *store.Organization, projectID, sourceURL string, actor Actor) (*queue.Job, error) {
	p, err := store.GetProject(ctx, s.Store.Pool, org.ID, projectID)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectReady {
		return nil, conflictf("project is not ready (state %s)", p.State)
	}
	pf, err := s.Preflight(ctx, org, p, sourceURL)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, c := range pf.Checks {
		if c.Status == "fail" {
			problems = append(problems, c.Name+": "+c.Detail)
		}
	}
	if len(pf.Checks) > 1 && !pf.Source.Replication.Ready {
		problems = append(problems, pf.Source.Replication.Blockers...)
	}
	if len(problems) > 0 {
		return nil, invalidf("the source is not ready for a follow import: %s", strings.Join(problems, "; "))
	}
	var job *queue.Job
	err = s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		if p.State != store.ProjectReady {
			return conflictf("project is not ready (state %s)", p.State)
		}
		enc := s.seal(sourceURL)
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobFollowStart, OrganizationID: org.ID, ProjectID: p.ID,
			ClusterID: p.ClusterID, LockedResource: "project:" + p.ID, Payload: followPayload{SourceURLEnc: enc}, MaxAttempts: 2})
		if err != nil {
			return err
		}
		if err := store.BeginProjectImport(ctx, tx, p.ID, job.ID); err != nil {
			return err
		}
		_ = store.DeleteProjectFollow(ctx, tx, p.ID) // a row an earlier failure left
		if err := store.InsertProjectFollow(ctx, tx, &store.ProjectFollow{ProjectID: p.ID, OrganizationID: org.ID,
			Name: followName(p.ID), SourceURLEnc: enc, StartJobID: job.ID}); err != nil {
			return err
		}
		return audit(ctx, tx, org.ID, p.ID, "project.import_follow_started", actor, map[string]any{"job_id": job.ID})
	})
	return job, err
}

// FollowAction queues the status, cutover or abort job of a follow import.
// Cutover and abort need one in progress (409); status always runs.
func (s *Service) FollowAction(ctx context.Context, org *store.Organization, projectID, jobType string, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		f, err := store.GetProjectFollow(ctx, tx, p.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		lock := "project:" + p.ID
		switch jobType {
		case JobFollowStatus:
			lock = "" // a status never waits behind a long cutover
		default:
			if f == nil || p.State != store.ProjectImporting {
				return conflictf("no follow import is in progress")
			}
			if jobType == JobFollowCutover && !f.Streaming {
				return conflictf("the follow import is still starting; wait for its start job")
			}
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: jobType, OrganizationID: org.ID, ProjectID: p.ID,
			ClusterID: p.ClusterID, LockedResource: lock, MaxAttempts: 3})
		if err != nil {
			return err
		}
		if jobType == JobFollowStatus {
			return nil
		}
		action := map[string]string{JobFollowCutover: "project.import_follow_cutover", JobFollowAbort: "project.import_follow_aborted"}[jobType]
		return audit(ctx, tx, org.ID, p.ID, action, actor, map[string]any{"job_id": job.ID})
	})
	return job, err
}
