package fleet

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/store"
)

// RemoveReplica removes a standby cluster: its projects' read replicas are
// detached, its node's login revoked, and its row deleted; the primary's
// node then drops the slot (no row names it any more). It returns how many
// read replicas were detached.
func RemoveReplica(ctx context.Context, st *store.Store, c *store.Cluster) (int, error) {
	if c.ReplicaOf == "" {
		return 0, fmt.Errorf("cluster %s is not a standby cluster", c.Name)
	}
	var detached int64
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM project_read_replicas WHERE cluster_id = $1`, c.ID)
		if err != nil {
			return err
		}
		detached = tag.RowsAffected()
		for _, q := range []string{`DELETE FROM jobs WHERE cluster_id = $1`, `DELETE FROM postgres_logs WHERE cluster_id = $1`,
			`DELETE FROM postgres_log_positions WHERE cluster_id = $1`,
			`DELETE FROM clusters WHERE id = $1`} {
			if _, err := tx.Exec(ctx, q, c.ID); err != nil {
				return fmt.Errorf("while removing the standby cluster: %w", err)
			}
		}
		if c.NodeRole != "" {
			role := pgx.Identifier{c.NodeRole}.Sanitize()
			if _, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, c.NodeRole); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP ROLE IF EXISTS `+role); err != nil {
				return err
			}
		}
		return nil
	})
	return int(detached), err
}
