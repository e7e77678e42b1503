package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/netrules"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// JobProjectApplyNetwork regenerates the cluster's HBA files after a
// project's allow-list, bans or plaintext switch changed.
const JobProjectApplyNetwork = "project.apply_network"

// NetworkPolicy builds a cluster's policy from the store. Stored lists are
// validated again: a row that does not validate is never rendered (the
// project then denies all rather than allowing what nobody checked).
func (s *Service) NetworkPolicy(ctx context.Context, clusterID string) (netrules.Policy, error) {
	return s.networkPolicy(ctx, s.Store.Pool, clusterID)
}

func (s *Service) networkPolicy(ctx context.Context, db store.DB, clusterID string) (netrules.Policy, error) {
	rows, err := store.ClusterNetwork(ctx, db, clusterID)
	if err != nil {
		return netrules.Policy{}, fmt.Errorf("while reading network rules: %w", err)
	}
	var p netrules.Policy
	for _, r := range rows {
		pr := netrules.Project{Database: r.Database, Restricted: r.Restricted, Bans: r.Bans, Plaintext: r.Plaintext}
		if r.Restricted {
			allow, err := netrules.Validate(netrules.Lists{V4: r.V4, V6: r.V6})
			if err != nil {
				s.Log.Error("stored network list does not validate; the project denies all", "project_id", r.ProjectID, "error", err)
			}
			pr.Allow = allow
		}
		p.Projects = append(p.Projects, pr)
	}
	if p.Replica, err = store.EmbeddedReplicaDatabases(ctx, db, clusterID); err != nil {
		return p, fmt.Errorf("while reading the read replica's projects: %w", err)
	}
	return p, nil
}

// ApplyNetwork regenerates a cluster's HBA files from the store now.
func (s *Service) ApplyNetwork(ctx context.Context, clusterID string) error {
	return s.applyNetwork(ctx, s.Store.Pool, clusterID)
}

// applyNetwork reads the policy through db (a transaction sees its own
// uncommitted rows).
func (s *Service) applyNetwork(ctx context.Context, db store.DB, clusterID string) error {
	c, err := s.Cluster(clusterID)
	if err != nil {
		return err
	}
	return c.ApplyNetwork(ctx, func(ctx context.Context) (netrules.Policy, error) { return s.networkPolicy(ctx, db, clusterID) })
}

// QueueNetworkApply locks a project and queues its network apply in tx:
// attaching or detaching a read replica changes which databases the
// cluster's embedded standby serves.
func QueueNetworkApply(ctx context.Context, tx pgx.Tx, orgID, projectID string) (*queue.Job, error) {
	p, err := store.LockProject(ctx, tx, orgID, projectID)
	if err != nil {
		return nil, err
	}
	return enqueueNetwork(ctx, tx, p)
}

// enqueueNetwork queues the apply job of a locked project.
func enqueueNetwork(ctx context.Context, tx pgx.Tx, p *store.Project) (*queue.Job, error) {
	job, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{
		Type: JobProjectApplyNetwork, OrganizationID: p.OrganizationID, ProjectID: p.ID, ClusterID: p.ClusterID,
		LockedResource: "project:" + p.ID,
	})
	if err != nil {
		return nil, err
	}
	return job, store.SetProjectLatestJob(ctx, tx, p.ID, job.ID)
}

// SetNetworkRestrictions stores a validated allow-list and queues its apply.
func (s *Service) SetNetworkRestrictions(ctx context.Context, orgID, projectID string, l netrules.Lists, actor Actor) (*queue.Job, error) {
	if _, err := netrules.Validate(l); err != nil {
		return nil, invalidf("%s", err.Error())
	}
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := lockReadyProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		if _, err := store.PutProjectNetwork(ctx, tx, p.ID, l.V4, l.V6); err != nil {
			return err
		}
		if job, err = enqueueNetwork(ctx, tx, p); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "project.network_restrictions_updated", actor,
			map[string]any{"job_id": job.ID, "db_allowed_cidrs": l.V4, "db_allowed_cidrs_v6": l.V6})
	})
	return job, err
}

// SetProjectPlaintext lets a project's clients connect without TLS (or
// stops it) and queues the apply. It is refused unless the cluster's
// operator allowed plaintext (capydb server --allow-plaintext).
func (s *Service) SetProjectPlaintext(ctx context.Context, orgID, projectID string, plaintext bool, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := lockReadyProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		if plaintext && !s.PlaintextAllowed(p.ClusterID) {
			return invalidf("this server does not allow connections without TLS (the operator's --allow-plaintext is off)")
		}
		if err := store.SetProjectPlaintext(ctx, tx, p.ID, plaintext); err != nil {
			return err
		}
		if job, err = enqueueNetwork(ctx, tx, p); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "project.plaintext_updated", actor, map[string]any{"job_id": job.ID, "plaintext": plaintext})
	})
	return job, err
}

// PlaintextAllowed reports whether the operator allowed non-TLS lines on a cluster.
func (s *Service) PlaintextAllowed(clusterID string) bool {
	c, err := s.Cluster(clusterID)
	return err == nil && c.PlaintextAllowed()
}

// Unban lifts a project's ban on addr and queues the apply; store.ErrNotFound
// when addr is not banned.
func (s *Service) Unban(ctx context.Context, orgID, projectID string, addr netip.Addr, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, orgID, projectID)
		if err != nil {
			return err
		}
		if p.State == store.ProjectDeleting {
			return conflictf("project is being deleted")
		}
		if err := store.DeleteBan(ctx, tx, p.ID, addr.Unmap()); err != nil {
			return err
		}
		if job, err = enqueueNetwork(ctx, tx, p); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, p.ID, "project.network_unbanned", actor, map[string]any{"job_id": job.ID, "address": addr.String()})
	})
	return job, err
}

// networkHandler runs project.apply_network.
type networkHandler struct{ s *Service }

func (h *networkHandler) Run(ctx context.Context, j *queue.Job, _ *queue.Reporter) (any, error) {
	p, err := h.s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil {
		return nil, queue.PermanentError(fmt.Errorf("project %s was deleted", p.ID))
	}
	err = h.s.ApplyNetwork(ctx, p.ClusterID)
	if errors.Is(err, dataplane.ErrNoNetwork) || errors.Is(err, netrules.ErrRejected) {
		return nil, queue.PermanentError(err)
	}
	return nil, err
}

func (h *networkHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	return store.MarkNetworkApplied(ctx, tx, *j.ProjectID, j.CreatedAt)
}

func (h *networkHandler) OnFail(context.Context, pgx.Tx, *queue.Job, string) error { return nil }

// applyNetworkForPreview puts a preview's database under its project's
// rules before the database appears under its name (previews share the
// project's lists and bans). Nothing to do for a project without rules.
func (s *Service) applyNetworkForPreview(ctx context.Context, projectID, clusterID string) error {
	has, err := store.HasNetworkRules(ctx, s.Store.Pool, projectID)
	if err != nil || !has {
		return err
	}
	if err := s.ApplyNetwork(ctx, clusterID); err != nil && !errors.Is(err, dataplane.ErrNoNetwork) {
		return fmt.Errorf("while applying the project's network rules to the preview: %w", err)
	}
	return nil
}

// ApplyStandbyNetwork gives standby cluster id the network rules of its
// primary's projects, and denies every database whose project has no read
// replica on it (previews included): only attached projects log in there,
// and detaching ends the project's sessions on the standby.
func (s *Service) ApplyStandbyNetwork(ctx context.Context, id, primary string) error {
	c, err := s.Cluster(id)
	if err != nil {
		return err
	}
	return c.ApplyNetwork(ctx, func(ctx context.Context) (netrules.Policy, error) {
		p, err := s.networkPolicy(ctx, s.Store.Pool, primary)
		if err != nil {
			return p, err
		}
		dbs, err := store.StandbyDatabases(ctx, s.Store.Pool, primary, id)
		if err != nil {
			return p, fmt.Errorf("while reading the standby's read replicas: %w", err)
		}
		ruled := map[string]int{}
		for i, pr := range p.Projects {
			ruled[pr.Database] = i
		}
		for _, d := range dbs {
			if d.Attached {
				continue
			}
			if i, ok := ruled[d.Database]; ok {
				p.Projects[i].Restricted, p.Projects[i].Allow = true, nil
				continue
			}
			p.Projects = append(p.Projects, netrules.Project{Database: d.Database, Restricted: true})
		}
		slices.SortFunc(p.Projects, func(a, b netrules.Project) int { return strings.Compare(a.Database, b.Database) })
		return p, nil
	})
}
