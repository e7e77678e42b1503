package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster states (docs/fleet.md). Only active clusters take new projects;
// offline is also what a node's cluster shows while its heartbeat is older
// than OfflineAfter.
const (
	ClusterActive   = "active"
	ClusterCordoned = "cordoned"
	ClusterDraining = "draining"
	ClusterOffline  = "offline"
)

// OfflineAfter is how long a node may miss heartbeats before its cluster
// counts as offline (no placement; its jobs wait for it).
const OfflineAfter = 30 * time.Second

// EffectiveState is the state a cluster shows: its stored state, or offline
// when its node's heartbeat is overdue. The embedded cluster never
// heartbeats and never goes offline this way.
func EffectiveState(c *Cluster, now time.Time) string {
	if c.LastHeartbeatAt != nil && now.Sub(*c.LastHeartbeatAt) > OfflineAfter {
		return ClusterOffline
	}
	return c.State
}

// ClusterLoad is what placement and the registry count per cluster.
type ClusterLoad struct {
	Projects int
	Previews int
}

// ClusterLoads counts live projects and previews per cluster.
func ClusterLoads(ctx context.Context, db DB) (map[string]ClusterLoad, error) {
	rows, err := db.Query(ctx, `SELECT c.id,
			(SELECT count(*) FROM projects p WHERE p.cluster_id = c.id AND p.deleted_at IS NULL),
			(SELECT count(*) FROM preview_databases v WHERE v.cluster_id = c.id AND v.deleted_at IS NULL)
		FROM clusters c`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]ClusterLoad{}
	for rows.Next() {
		var id string
		var l ClusterLoad
		if err := rows.Scan(&id, &l.Projects, &l.Previews); err != nil {
			return nil, err
		}
		out[id] = l
	}
	return out, rows.Err()
}

// PlaceTx picks, inside the create transaction, the least loaded cluster
// that is active, heartbeating, below its cap and matches version and
// region ("" = any). A transaction-scoped lock serializes placements, so
// concurrent creates see each other's projects and spread; projects moving
// to a cluster count for it. nil when none fits.
//
// The lock is held until the create commits, so it serializes every create;
// it is taken only when placement has a choice to make (more than one
// cluster fits) or a cap to keep. A single uncapped cluster (the embedded
// one) needs neither, and a burst of creates then does not queue on it.
func PlaceTx(ctx context.Context, tx pgx.Tx, region, version string) (*Cluster, error) {
	var fit int
	var capped bool
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(bool_or(max_projects > 0), false) FROM clusters
		WHERE state = 'active' AND replica_of IS NULL AND postgres_version = $1 AND ($2 = '' OR region = $2)
		  AND (last_heartbeat_at IS NULL OR last_heartbeat_at > now() - $3::interval)`,
		version, region, fmt.Sprintf("%d seconds", int(OfflineAfter.Seconds()))).Scan(&fit, &capped); err != nil {
		return nil, err
	}
	if fit > 1 || capped {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capydb.placement'))`); err != nil {
			return nil, err
		}
	}
	c, err := scanCluster(tx.QueryRow(ctx, `WITH load AS (
			SELECT c.id, (SELECT count(*) FROM projects p
				WHERE (p.cluster_id = c.id OR p.move_to = c.id) AND p.deleted_at IS NULL) AS n
			FROM clusters c)
		SELECT `+clusterColumns+` FROM clusters JOIN load USING (id)
		WHERE state = 'active' AND replica_of IS NULL AND postgres_version = $1 AND ($2 = '' OR region = $2)
		  AND (last_heartbeat_at IS NULL OR last_heartbeat_at > now() - $3::interval)
		  AND (max_projects = 0 OR load.n < max_projects)
		ORDER BY load.n, created_at, id
		LIMIT 1`, version, region, fmt.Sprintf("%d seconds", int(OfflineAfter.Seconds()))))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// GetClusterByRef reads a cluster by id or name.
func GetClusterByRef(ctx context.Context, db DB, ref string) (*Cluster, error) {
	return scanCluster(db.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE id = $1 OR name = $1
		ORDER BY (id = $1) DESC LIMIT 1`, ref))
}

// SetClusterState sets a cluster's operator state (active, cordoned, draining).
func SetClusterState(ctx context.Context, db DB, id, state string) error {
	tag, err := db.Exec(ctx, `UPDATE clusters SET state = $2, updated_at = now() WHERE id = $1`, id, state)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RegisterNode is a node's first statement at start: it fills in its own
// cluster row (the only one row-level security lets it update) with where
// it listens and what it runs, and returns the row. A cluster that never
// joined before (offline) becomes active; an operator's cordon stays.
func RegisterNode(ctx context.Context, db DB, c *Cluster) (*Cluster, error) {
	return scanCluster(db.QueryRow(ctx, `UPDATE clusters SET public_host = $1, direct_port = $2, pooled_port = $3,
			session_port = $4, postgres_version = $5, ca_pem = $6, last_heartbeat_at = now(),
			state = CASE WHEN state = 'offline' THEN 'active' ELSE state END, updated_at = now()
		WHERE node_role = current_user
		RETURNING `+clusterColumns,
		c.PublicHost, c.DirectPort, c.PooledPort, c.SessionPort, c.PostgresVersion, c.CAPEM))
}
