package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClusterFenced is the state of a primary that failed over to a standby: its
// node refuses to run its postgres (docs/fleet.md, "Failover").
const ClusterFenced = "fenced"

// ReplicationLink is a primary's report of one standby cluster, from its
// pg_stat_replication (application_name is the standby's cluster id).
type ReplicationLink struct {
	ClusterID  string    `json:"cluster_id"`
	Streaming  bool      `json:"streaming"`
	LagBytes   int64     `json:"lag_bytes"`
	LagSeconds float64   `json:"lag_seconds"`
	ReportedAt time.Time `json:"reported_at"`
}

// NodeSelf is the cluster row of the node whose login runs the statement.
func NodeSelf(ctx context.Context, db DB) (*Cluster, error) {
	return scanCluster(db.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE node_role = current_user`))
}

// NodeBeat records that the node running cluster id is alive and returns
// its row (state, replica_of: what the node must do next).
func NodeBeat(ctx context.Context, db DB, id string) (*Cluster, error) {
	return scanCluster(db.QueryRow(ctx, `UPDATE clusters SET last_heartbeat_at = now() WHERE id = $1
		RETURNING `+clusterColumns, id))
}

// NodeStopped records a clean shutdown of the node's cluster: a failover
// then knows every committed write reached the streaming standbys.
func NodeStopped(ctx context.Context, db DB, id string) error {
	_, err := db.Exec(ctx, `UPDATE clusters SET stopped_at = now() WHERE id = $1`, id)
	return err
}

// ClusterSecrets are a cluster's sealed superuser and replication passwords
// (nil: not recorded yet).
func ClusterSecrets(ctx context.Context, db DB, id string) (admin, replication []byte, err error) {
	err = db.QueryRow(ctx, `SELECT admin_secret, replication_secret FROM clusters WHERE id = $1`, id).Scan(&admin, &replication)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	return admin, replication, err
}

// SetClusterSecrets records sealed passwords (a nil one is left as it is).
func SetClusterSecrets(ctx context.Context, db DB, id string, admin, replication []byte) error {
	_, err := db.Exec(ctx, `UPDATE clusters SET admin_secret = coalesce($2, admin_secret),
		replication_secret = coalesce($3, replication_secret) WHERE id = $1`, id, admin, replication)
	return err
}

// ReplicasOf lists the standby clusters of a cluster, oldest first.
func ReplicasOf(ctx context.Context, db DB, id string) ([]*Cluster, error) {
	rows, err := db.Query(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE replica_of = $1 ORDER BY created_at, id`, id)
	return collect(rows, err, scanCluster)
}

// SetReplication stores a primary's report of its standbys.
func SetReplication(ctx context.Context, db DB, id string, links []ReplicationLink) error {
	if links == nil {
		links = []ReplicationLink{}
	}
	_, err := db.Exec(ctx, `UPDATE clusters SET replication = $2 WHERE id = $1`, id, links)
	return err
}
