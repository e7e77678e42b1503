package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReadReplica attaches a project to its cluster's hot standby.
type ReadReplica struct {
	ID        string
	ProjectID string
	ClusterID string
	CreatedAt time.Time
}

// SetClusterReadReplicaPort records the port of a cluster's standby (0: none).
func SetClusterReadReplicaPort(ctx context.Context, db DB, clusterID string, port int) error {
	_, err := db.Exec(ctx, `UPDATE clusters SET read_replica_port = $2 WHERE id = $1`, clusterID, port)
	return err
}

// ClusterReadReplicaPort is the port of a cluster's standby (0: none).
func ClusterReadReplicaPort(ctx context.Context, db DB, clusterID string) (int, error) {
	var port int
	err := db.QueryRow(ctx, `SELECT read_replica_port FROM clusters WHERE id = $1`, clusterID).Scan(&port)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	return port, err
}

// InsertReadReplica attaches a project; ok is false when it already has one
// on the same cluster. One left from before a move to another cluster is
// replaced.
func InsertReadReplica(ctx context.Context, db DB, r *ReadReplica) (ok bool, err error) {
	err = db.QueryRow(ctx, `INSERT INTO project_read_replicas (id, project_id, cluster_id) VALUES ($1, $2, $3)
		ON CONFLICT (project_id) DO UPDATE SET id = EXCLUDED.id, cluster_id = EXCLUDED.cluster_id, created_at = now()
		WHERE project_read_replicas.cluster_id <> EXCLUDED.cluster_id
		RETURNING created_at`, r.ID, r.ProjectID, r.ClusterID).Scan(&r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ListReadReplicas returns a project's attachments, oldest first.
func ListReadReplicas(ctx context.Context, db DB, projectID string) ([]ReadReplica, error) {
	rows, err := db.Query(ctx, `SELECT id, project_id, cluster_id, created_at FROM project_read_replicas
		WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReadReplica, error) {
		var r ReadReplica
		err := row.Scan(&r.ID, &r.ProjectID, &r.ClusterID, &r.CreatedAt)
		return r, err
	})
}

// DeleteReadReplica detaches; ErrNotFound when the project has no such replica.
func DeleteReadReplica(ctx context.Context, db DB, projectID, id string) error {
	tag, err := db.Exec(ctx, `DELETE FROM project_read_replicas WHERE project_id = $1 AND id = $2`, projectID, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// EmbeddedReplicaDatabases lists the databases of cluster's projects that
// are attached to its embedded standby (cluster_id = the project's own
// cluster): the only ones that standby serves.
func EmbeddedReplicaDatabases(ctx context.Context, db DB, clusterID string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT p.database_name FROM project_read_replicas r
		JOIN projects p ON p.id = r.project_id AND p.cluster_id = r.cluster_id
		WHERE r.cluster_id = $1 AND p.deleted_at IS NULL ORDER BY 1`, clusterID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
