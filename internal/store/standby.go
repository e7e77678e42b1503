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

// StandbyDatabase is a database of a primary's projects or previews as a
// standby cluster serves it: Attached when its project has a read replica
// on that standby.
type StandbyDatabase struct {
	Database string
	Attached bool
}

// StandbyDatabases lists the live project and preview databases of primary
// and whether each is attached to standby (previews never are).
func StandbyDatabases(ctx context.Context, db DB, primary, standby string) ([]StandbyDatabase, error) {
	rows, err := db.Query(ctx, `SELECT p.database_name,
			EXISTS (SELECT 1 FROM project_read_replicas r WHERE r.project_id = p.id AND r.cluster_id = $2)
		FROM projects p WHERE p.cluster_id = $1 AND p.deleted_at IS NULL
		UNION ALL
		SELECT v.database_name, false FROM preview_databases v WHERE v.cluster_id = $1 AND v.deleted_at IS NULL
		ORDER BY 1`, primary, standby)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StandbyDatabase, error) {
		var d StandbyDatabase
		err := r.Scan(&d.Database, &d.Attached)
		return d, err
	})
}
