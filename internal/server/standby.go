package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
)

// Standby clusters on nodes (docs/fleet.md, "Standby clusters"). A
// primary's node keeps, every heartbeat, the replication login and one
// physical slot per standby cluster, and reports their lag; a standby's
// node copies the primary at its first start, then keeps its pgBouncer and
// HBA files in step with the primary's catalogs and rules. A fenced cluster
// (failed over) never runs its postgres again.

// errFenced is returned by a node whose cluster was failed over.
type errFenced struct{ c *store.Cluster }

func (e errFenced) Error() string {
	return fmt.Sprintf("cluster %s is fenced: it failed over to %s, so this node does not run its postgres "+
		"(writes here would be lost); remove its data directory and add the host again as a replica "+
		"(capydb admin cluster add-replica) to reuse it", e.c.Name, e.c.FailedOverTo)
}

// nodeStandbySource reads, before the node's cluster starts, whether it is
// a standby (and of what) or fenced. nil: a primary.
func nodeStandbySource(ctx context.Context, dsn, dataDir string, box *secretbox.Box, log interface {
	Info(string, ...any)
}) (*localcluster.StandbySource, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("while connecting to the control database: %w", err)
	}
	defer conn.Close(context.Background())
	self, err := store.NodeSelf(ctx, conn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errors.New("this login runs no cluster: use the URL `capydb admin node add` printed for this node")
	}
	if err != nil {
		return nil, err
	}
	if self.State == store.ClusterFenced {
		return nil, errFenced{self}
	}
	if self.ReplicaOf == "" {
		return nil, nil
	}
	// A copy exists: start it whatever the primary's state (it may be gone,
	// and this standby about to replace it).
	_, statErr := os.Stat(filepath.Join(dataDir, "pg", "PG_VERSION"))
	announced := false
	for {
		primary, err := store.GetCluster(ctx, conn, self.ReplicaOf)
		if err != nil {
			return nil, fmt.Errorf("while reading the primary cluster %s: %w", self.ReplicaOf, err)
		}
		admin, repl, err := store.ClusterSecrets(ctx, conn, primary.ID)
		if err != nil {
			return nil, err
		}
		ready := admin != nil && repl != nil && primary.PublicHost != "" &&
			slices.ContainsFunc(primary.Replication, func(l store.ReplicationLink) bool { return l.ClusterID == self.ID })
		if ready || (statErr == nil && admin != nil && repl != nil) {
			adminPW, err := box.Open(admin)
			if err != nil {
				return nil, fmt.Errorf("while opening the primary's admin password (is this the control plane's secret key?): %w", err)
			}
			replPW, err := box.Open(repl)
			if err != nil {
				return nil, err
			}
			return &localcluster.StandbySource{Host: primary.PublicHost, Port: primary.DirectPort,
				User: localcluster.ReplicationUser, Password: string(replPW), Slot: localcluster.StandbySlot(self.ID),
				AdminPassword: string(adminPW), CAPEM: primary.CAPEM}, nil
		}
		if !announced {
			log.Info("waiting for the primary's node to prepare replication (slot and login)", "primary", primary.Name)
			announced = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// nodeBeat is one heartbeat of a node: record it, then act on the row.
func (s *Server) nodeBeat(ctx context.Context) error {
	self, err := store.NodeBeat(ctx, s.store.Pool, s.clusterID)
	if err != nil {
		return err
	}
	if self.State == store.ClusterFenced {
		return errFenced{self}
	}
	if s.standby {
		rec, err := s.cluster.InRecovery(ctx)
		if err != nil {
			return err
		}
		switch {
		case rec && self.ReplicaOf != "":
			return s.followPrimary(ctx, self.ReplicaOf)
		case rec || self.ReplicaOf != "":
			// Promoted, but the failover's switch is still to come (or the
			// row stopped naming a primary before the promotion ran).
			return nil
		}
		if err := s.finishPromotion(ctx); err != nil {
			return err
		}
	}
	return s.reconcileStandbys(ctx, self)
}

// followPrimary keeps a standby's pgBouncer (new tenant databases, roles,
// rotated passwords arrive by replication) and HBA files (the primary's
// projects' network rules) in step.
func (s *Server) followPrimary(ctx context.Context, primary string) error {
	if err := s.cluster.SyncPooler(ctx); err != nil {
		return err
	}
	return s.lifecycle.ApplyStandbyNetwork(ctx, s.clusterID, primary)
}

// finishPromotion runs, once the failover moved the projects here, what a
// standby skipped at start.
func (s *Server) finishPromotion(ctx context.Context) error {
	dp, err := s.lifecycle.Cluster(s.clusterID)
	if err != nil {
		return err
	}
	if err := dp.EnsureTemplate(ctx); err != nil {
		return err
	}
	if err := s.lifecycle.ApplyNetwork(ctx, s.clusterID); err != nil {
		return err
	}
	if err := s.cluster.SyncPooler(ctx); err != nil {
		return err
	}
	s.standby = false
	s.log.Info("this cluster is the primary now")
	return nil
}

// recordAdminSecret seals a primary's admin password into its row, for the
// standby clusters its node may get.
func (s *Server) recordAdminSecret(ctx context.Context, box *secretbox.Box) error {
	return store.SetClusterSecrets(ctx, s.store.Pool, s.clusterID, box.Seal([]byte(s.cluster.AdminPassword())), nil)
}

// reconcileStandbys keeps the replication login (LOGIN only while the
// cluster has standbys), one slot per standby (others dropped: a slot keeps
// WAL forever) and the lag report.
func (s *Server) reconcileStandbys(ctx context.Context, self *store.Cluster) error {
	replicas, err := store.ReplicasOf(ctx, s.store.Pool, s.clusterID)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, s.cluster.AdminDSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	role := pgx.Identifier{localcluster.ReplicationUser}.Sanitize()
	var canLogin bool
	if err := conn.QueryRow(ctx, `SELECT coalesce(bool_or(rolcanlogin), false) FROM pg_roles WHERE rolname = $1`,
		localcluster.ReplicationUser).Scan(&canLogin); err != nil {
		return err
	}
	if len(replicas) == 0 {
		if canLogin {
			if _, err := conn.Exec(ctx, `ALTER ROLE `+role+` NOLOGIN`); err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`,
				localcluster.ReplicationUser); err != nil {
				return err
			}
		}
	} else if !canLogin || s.replPassword == "" {
		pw, err := s.replicationPassword(ctx)
		if err != nil {
			return err
		}
		if err := localcluster.EnsureLoginRole(ctx, conn, localcluster.ReplicationUser,
			"REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE", pw); err != nil {
			return fmt.Errorf("while preparing the replication login: %w", err)
		}
		s.replPassword = pw
	}
	want := map[string]string{}
	for _, r := range replicas {
		want[localcluster.StandbySlot(r.ID)] = r.ID
		if _, err := conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
			WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, localcluster.StandbySlot(r.ID)); err != nil {
			return fmt.Errorf("while creating a standby's slot: %w", err)
		}
	}
	// A removed standby's slot goes: its walsender is ended first (a
	// standby still running would keep it active), the slot at the next beat.
	rows, err := conn.Query(ctx, `SELECT slot_name, coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name LIKE 'capydb\_replica\_%'`)
	if err != nil {
		return err
	}
	type slotRow struct {
		name string
		pid  int
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slotRow, error) {
		var sr slotRow
		return sr, r.Scan(&sr.name, &sr.pid)
	})
	if err != nil {
		return err
	}
	for _, sr := range slots {
		switch {
		case want[sr.name] != "":
		case sr.pid != 0:
			if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, sr.pid); err != nil {
				return err
			}
		default:
			if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, sr.name); err != nil {
				return err
			}
			s.log.Info("dropped the slot of a removed standby cluster", "slot", sr.name)
		}
	}
	links := make([]store.ReplicationLink, 0, len(replicas))
	now := time.Now().UTC()
	for _, r := range replicas {
		lag, err := localcluster.StandbyLagOn(ctx, conn, localcluster.StandbySlot(r.ID))
		if err != nil {
			return err
		}
		l := store.ReplicationLink{ClusterID: r.ID, ReportedAt: now, Streaming: lag.Streaming, LagBytes: lag.Bytes, LagSeconds: lag.Seconds}
		links = append(links, l)
	}
	if len(links) == 0 && len(self.Replication) == 0 {
		return nil
	}
	return store.SetReplication(ctx, s.store.Pool, s.clusterID, links)
}

// replicationPassword is the sealed one in the cluster's row, made once.
func (s *Server) replicationPassword(ctx context.Context) (string, error) {
	_, sealed, err := store.ClusterSecrets(ctx, s.store.Pool, s.clusterID)
	if err != nil {
		return "", err
	}
	if sealed != nil {
		b, err := s.box.Open(sealed)
		return string(b), err
	}
	pw := ids.RandomBase62(32)
	if err := store.SetClusterSecrets(ctx, s.store.Pool, s.clusterID, nil, s.box.Seal([]byte(pw))); err != nil {
		return "", err
	}
	return pw, nil
}
