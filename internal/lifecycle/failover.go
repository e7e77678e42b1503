package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/netrules"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Failover of a data cluster to one of its standby clusters (docs/fleet.md,
// "Failover"), run by the operator's `capydb admin cluster failover`:
//
//  1. fence the primary (state fenced): its node stops its postgres when it
//     sees the fence and refuses to start it again;
//  2. wait until the primary is safe: its node reported a clean stop (so
//     the standby received every committed write) or its heartbeat is
//     overdue (a crash: asynchronous replication may have lost the last
//     commits), unless forced;
//  3. cluster.promote on the standby's node (pg_promote);
//  4. one transaction moves every project, preview and waiting job to the
//     standby and records project.moved for each project.
//
// Every step is idempotent: after an interruption the same command finishes
// the failover.
const JobClusterPromote = "cluster.promote"

// FailoverOptions tune the operator command.
type FailoverOptions struct {
	// Force promotes without waiting for the primary to be stopped or
	// overdue (the operator knows it is gone). Writes it still accepts are lost.
	Force bool
	// Wait bounds each waiting step (default 2 minutes).
	Wait time.Duration
	// Progress reports each step (may be nil).
	Progress func(msg string)
}

// FailoverResult is what a failover did.
type FailoverResult struct {
	From, To string
	// CleanStop is true when the primary's node had stopped its cluster
	// cleanly before the promotion: no committed write was lost.
	CleanStop bool
	Projects  []string
	PromoteMS int64
}

// Failover replaces primary by its standby.
func Failover(ctx context.Context, st *store.Store, primary, standby *store.Cluster, o FailoverOptions) (*FailoverResult, error) {
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	if standby.ReplicaOf != primary.ID && !(primary.State == store.ClusterFenced && primary.FailedOverTo == standby.ID) {
		return nil, fmt.Errorf("cluster %s is not a standby of %s", standby.Name, primary.Name)
	}
	if primary.State == store.ClusterFenced && primary.FailedOverTo != "" && primary.FailedOverTo != standby.ID {
		return nil, fmt.Errorf("cluster %s already failed over to %s", primary.Name, primary.FailedOverTo)
	}
	if store.EffectiveState(standby, time.Now()) == store.ClusterOffline {
		return nil, fmt.Errorf("the standby %s is offline (its node's last heartbeat is overdue): start its node first", standby.Name)
	}
	res := &FailoverResult{From: primary.ID, To: standby.ID}
	if _, err := st.Pool.Exec(ctx, `UPDATE clusters SET state = $2, failed_over_to = $3, updated_at = now() WHERE id = $1`,
		primary.ID, store.ClusterFenced, standby.ID); err != nil {
		return nil, err
	}
	say("fenced %s: its node stops its postgres and will not start it again", primary.Name)
	clean, err := waitPrimarySafe(ctx, st, primary.ID, o, say)
	if err != nil {
		return nil, err
	}
	res.CleanStop = clean
	t0 := time.Now()
	jobID, err := enqueuePromote(ctx, st, standby.ID)
	if err != nil {
		return nil, err
	}
	say("promoting %s (job %s)", standby.Name, jobID)
	if err := waitJobDone(ctx, st, jobID, o.Wait); err != nil {
		return nil, err
	}
	res.PromoteMS = time.Since(t0).Milliseconds()
	err = st.InTx(ctx, func(tx pgx.Tx) error {
		res.Projects, err = switchClusters(ctx, tx, primary.ID, standby.ID, clean)
		return err
	})
	if err != nil {
		return nil, err
	}
	say("%s is the primary now: %d projects moved from %s", standby.Name, len(res.Projects), primary.Name)
	return res, nil
}

// waitPrimarySafe waits until the fenced primary's node stopped its cluster
// cleanly (clean) or its heartbeat is overdue.
func waitPrimarySafe(ctx context.Context, st *store.Store, id string, o FailoverOptions, say func(string, ...any)) (clean bool, err error) {
	deadline := time.Now().Add(o.Wait)
	announced := false
	for {
		var hb, stopped *time.Time
		var overdue bool
		if err := st.Pool.QueryRow(ctx, `SELECT last_heartbeat_at, stopped_at,
				coalesce(last_heartbeat_at < now() - $2::interval, true) FROM clusters WHERE id = $1`,
			id, fmt.Sprintf("%d seconds", int(store.OfflineAfter.Seconds()))).Scan(&hb, &stopped, &overdue); err != nil {
			return false, err
		}
		if stopped != nil && (hb == nil || !stopped.Before(*hb)) {
			return true, nil
		}
		if overdue {
			say("the primary's node is not answering (heartbeat overdue): writes it committed but had not sent yet are lost")
			return false, nil
		}
		if o.Force {
			say("--force: promoting while the primary's node still heartbeats")
			return false, nil
		}
		if !announced {
			say("waiting for the primary's node to stop its cluster (it checks the fence every heartbeat) or to go offline")
			announced = true
		}
		if time.Now().After(deadline) {
			return false, errors.New("the primary's node neither stopped nor went offline in time; retry, or pass --force if it is gone")
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// enqueuePromote queues cluster.promote for the standby once: a rerun finds
// the job of the earlier run.
func enqueuePromote(ctx context.Context, st *store.Store, standby string) (string, error) {
	var id string
	err := st.Pool.QueryRow(ctx, `SELECT id FROM jobs WHERE type = $1 AND cluster_id = $2 AND state <> 'failed'
		ORDER BY created_at DESC LIMIT 1`, JobClusterPromote, standby).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	var job *queue.Job
	err = st.InTx(ctx, func(tx pgx.Tx) error {
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobClusterPromote, ClusterID: standby,
			LockedResource: "cluster:" + standby, MaxAttempts: 3})
		return err
	})
	if err != nil {
		return "", err
	}
	return job.ID, nil
}

func waitJobDone(ctx context.Context, st *store.Store, id string, wait time.Duration) error {
	j, err := queue.Await(ctx, wait, func(ctx context.Context) (*queue.Job, error) { return queue.GetAny(ctx, st.Pool, id) })
	switch {
	case errors.Is(err, queue.ErrNotFinished):
		return fmt.Errorf("promotion job %s is still %s: is the standby's node running?", id, j.State)
	case err != nil:
		return err
	case j.State == queue.StateFailed:
		return fmt.Errorf("promotion job %s failed: %s", id, j.FailureMessage(""))
	}
	return nil
}

// switchClusters hands everything of from to to in one transaction.
func switchClusters(ctx context.Context, tx pgx.Tx, from, to string, clean bool) ([]string, error) {
	rows, err := tx.Query(ctx, `UPDATE projects SET cluster_id = $2, updated_at = now() WHERE cluster_id = $1
		RETURNING id, organization_id, deleted_at IS NULL`, from, to)
	if err != nil {
		return nil, err
	}
	type moved struct{ id, org string }
	var live []moved
	var id, org string
	var alive bool
	if _, err := pgx.ForEachRow(rows, []any{&id, &org, &alive}, func() error {
		if alive {
			live = append(live, moved{id, org})
		}
		return nil
	}); err != nil {
		return nil, err
	}
	stmts := []string{
		`UPDATE preview_databases SET cluster_id = $2 WHERE cluster_id = $1`,
		`UPDATE jobs SET cluster_id = $2 WHERE cluster_id = $1 AND state IN ('pending', 'running')`,
		// The standby served read replicas; it is the primary now.
		`DELETE FROM project_read_replicas WHERE cluster_id = $2 AND $1::text IS NOT NULL`,
		// Its admin role is the old primary's (a physical copy); its own
		// standbys will use the same replication password.
		`UPDATE clusters n SET replica_of = NULL, state = 'active', admin_secret = o.admin_secret,
			replication_secret = o.replication_secret, updated_at = now() FROM clusters o WHERE n.id = $2 AND o.id = $1`,
		// Other standbys of the old primary follow the new one (their nodes copy it again).
		`UPDATE clusters SET replica_of = $2 WHERE replica_of = $1 AND id <> $2`,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s, from, to); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(live))
	for _, p := range live {
		meta := map[string]any{"project_id": p.id, "from_cluster_id": from, "to_cluster_id": to,
			"reason": "failover", "clean_stop": clean}
		if err := audit(ctx, tx, p.org, p.id, "project.moved", Actor{Kind: "system"}, meta); err != nil {
			return nil, err
		}
		if err := event(ctx, tx, p.org, "project.moved", meta); err != nil {
			return nil, err
		}
		out = append(out, p.id)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('capydb_jobs', '')`); err != nil {
		return nil, err
	}
	return out, nil
}

// promoteHandler runs cluster.promote on the standby's node.
type promoteClusterHandler struct{ s *Service }

// PromoteResult is what cluster.promote reports.
type PromoteResult struct {
	// Promoted is false when the cluster was already a primary (a retry).
	Promoted bool `json:"promoted"`
}

func (h *promoteClusterHandler) Run(ctx context.Context, j *queue.Job, _ *queue.Reporter) (any, error) {
	c, err := h.s.Cluster(deref(j.ClusterID))
	if err != nil {
		return nil, err
	}
	var inRecovery bool
	if err := c.Admin().QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return nil, err
	}
	if inRecovery {
		var ok bool
		if err := c.Admin().QueryRow(ctx, `SELECT pg_promote(true, 60)`).Scan(&ok); err != nil {
			return nil, fmt.Errorf("while promoting: %w", err)
		}
		if !ok {
			return nil, errors.New("postgres did not finish the promotion within 60 s")
		}
	}
	// The standby's HBA files admitted only attached projects: give every
	// project of the old primary its own rules again before the switch.
	self, err := store.GetCluster(ctx, h.s.Store.Pool, deref(j.ClusterID))
	if err != nil {
		return nil, err
	}
	if self.ReplicaOf != "" {
		if err := c.ApplyNetwork(ctx, func(ctx context.Context) (netrules.Policy, error) {
			return h.s.networkPolicy(ctx, h.s.Store.Pool, self.ReplicaOf)
		}); err != nil {
			return nil, fmt.Errorf("while applying the projects' network rules: %w", err)
		}
	}
	return PromoteResult{Promoted: inRecovery}, nil
}
