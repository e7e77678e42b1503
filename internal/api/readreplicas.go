package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// ReadReplica is the wire form of a project's read replica.
type ReadReplica = wire.ReadReplica

// ReadReplicaPath names one read replica of a project.
type ReadReplicaPath struct {
	ProjectID string `path:"projectID"`
	ReplicaID string `path:"replicaID"`
}

// ReadReplicaOutput is {read_replica}.
type ReadReplicaOutput struct {
	Body struct {
		ReadReplica *ReadReplica `json:"read_replica"`
	}
}

// ReadReplicasOutput is {read_replicas}.
type ReadReplicasOutput struct {
	Body struct {
		ReadReplicas []*ReadReplica `json:"read_replicas"`
	}
}

func (s *Server) registerReadReplicas() {
	tags := []string{"projects"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listReadReplicas", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/read-replicas", Scope: auth.ScopeProjectsRead},
		Summary:     "List a project's read replicas",
		Description: "† (self-hosted addition) The project's attachments to the hot standby of its cluster (docs/fleet.md, \"Read replicas\").",
		Tags:        tags}, s.listReadReplicas)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createReadReplica", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/read-replicas", Scope: auth.ScopeProjectsWrite}, Status: http.StatusCreated,
		Summary: "Attach a read replica",
		Description: "† (self-hosted addition) Attaches the project to the hot standby of its cluster: the connections object then lists " +
			"a read-only URL in `read_replica_urls` (same role and password; they replicate). 409 when the cluster has no standby " +
			"(`capydb server --read-replica`) or the project already has a read replica.",
		Tags: tags}, s.createReadReplica)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deleteReadReplica", Method: http.MethodDelete,
		Path: "/v1/projects/{projectID}/read-replicas/{replicaID}", Scope: auth.ScopeProjectsWrite}, Status: http.StatusNoContent,
		Summary:     "Detach a read replica",
		Description: "† (self-hosted addition) Removes the read-only URL from the connections object; the primary is untouched.",
		Tags:        tags}, s.deleteReadReplica)
}

func (s *Server) listReadReplicas(ctx context.Context, in *ProjectPath) (*ReadReplicasOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := s.readReplicas(ctx, p)
	if err != nil {
		return nil, err
	}
	out := &ReadReplicasOutput{}
	out.Body.ReadReplicas = list
	return out, nil
}

func (s *Server) createReadReplica(ctx context.Context, in *ProjectPath) (*ReadReplicaOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if p.State == store.ProjectDeleting {
		return nil, errorf(http.StatusConflict, "project is being deleted")
	}
	// A standby cluster on another node (its pgBouncer) is preferred; else
	// the embedded cluster's same-host standby.
	target, port, err := s.replicaTarget(ctx, p)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, errorf(http.StatusConflict, "the project's cluster has no read replica (add a standby cluster with `capydb admin cluster add-replica`, or start the server with --read-replica)")
	}
	r := &store.ReadReplica{ID: ids.New("rr_"), ProjectID: p.ID, ClusterID: target}
	var ok bool
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		if ok, err = store.InsertReadReplica(ctx, tx, r); err != nil || !ok {
			return err
		}
		// The embedded standby serves attached projects only: its HBA
		// file follows (a standby cluster's node follows by itself).
		if _, err := lifecycle.QueueNetworkApply(ctx, tx, p.OrganizationID, p.ID); err != nil {
			return err
		}
		return auth.Audit(ctx, tx, p.OrganizationID, &p.ID, "read_replica.attached", principal(ctx).Actor(),
			map[string]any{"read_replica_id": r.ID, "cluster_id": r.ClusterID})
	})
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	if !ok {
		return nil, errorf(http.StatusConflict, "the project already has a read replica")
	}
	out := &ReadReplicaOutput{}
	out.Body.ReadReplica = &ReadReplica{ID: r.ID, ProjectID: r.ProjectID, ClusterID: r.ClusterID, Port: port, CreatedAt: r.CreatedAt}
	return out, nil
}

func (s *Server) deleteReadReplica(ctx context.Context, in *ReadReplicaPath) (*struct{}, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.DeleteReadReplica(ctx, tx, p.ID, in.ReplicaID); err != nil {
			return err
		}
		if _, err := lifecycle.QueueNetworkApply(ctx, tx, p.OrganizationID, p.ID); err != nil {
			return err
		}
		return auth.Audit(ctx, tx, p.OrganizationID, &p.ID, "read_replica.detached", principal(ctx).Actor(),
			map[string]any{"read_replica_id": in.ReplicaID})
	})
	if err != nil {
		return nil, s.fail(ctx, err, "read replica not found")
	}
	return nil, nil
}

// replicaTarget picks where a new read replica goes: the first streaming
// standby cluster of the project's cluster (its pooled port), else the
// embedded standby (its direct port). port 0: none.
func (s *Server) replicaTarget(ctx context.Context, p *store.Project) (string, int, error) {
	standbys, err := store.ReplicasOf(ctx, s.deps.Store.Pool, p.ClusterID)
	if err != nil {
		return "", 0, s.fail(ctx, err, "")
	}
	for _, c := range standbys {
		if c.PooledPort > 0 && store.EffectiveState(c, time.Now()) == store.ClusterActive {
			return c.ID, c.PooledPort, nil
		}
	}
	port, err := store.ClusterReadReplicaPort(ctx, s.deps.Store.Pool, p.ClusterID)
	if err != nil {
		return "", 0, s.fail(ctx, err, "cluster not found")
	}
	return p.ClusterID, port, nil
}

// replicaEndpoint is where one attachment serves: a standby cluster of the
// project's cluster, or the embedded standby (cluster_id = the project's
// cluster). nil: it lapsed (the project moved, the standby is gone).
func (s *Server) replicaEndpoint(ctx context.Context, p *store.Project, r store.ReadReplica) (*store.Cluster, int, error) {
	if r.ClusterID == p.ClusterID {
		port, err := store.ClusterReadReplicaPort(ctx, s.deps.Store.Pool, p.ClusterID)
		if err != nil || port == 0 {
			return nil, 0, ignoreNotFound(err)
		}
		c, err := store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID)
		if err != nil {
			return nil, 0, ignoreNotFound(err)
		}
		rc := *c
		rc.DirectPort = port
		return &rc, port, nil
	}
	c, err := store.GetCluster(ctx, s.deps.Store.Pool, r.ClusterID)
	if err != nil || c.ReplicaOf != p.ClusterID {
		return nil, 0, ignoreNotFound(err)
	}
	return c, c.PooledPort, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// readReplicas lists the project's attachments that still point at a
// standby of its cluster (after a move or a failover they lapse).
func (s *Server) readReplicas(ctx context.Context, p *store.Project) ([]*ReadReplica, error) {
	rows, err := store.ListReadReplicas(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := []*ReadReplica{}
	for _, r := range rows {
		c, port, err := s.replicaEndpoint(ctx, p, r)
		if err != nil {
			return nil, s.fail(ctx, err, "")
		}
		if c == nil {
			continue
		}
		out = append(out, &ReadReplica{ID: r.ID, ProjectID: r.ProjectID, ClusterID: r.ClusterID, Port: port, CreatedAt: r.CreatedAt})
	}
	return out, nil
}

// readReplicaURLs are the project's read-only URLs: on a standby cluster
// its pooled URL there (the standby's host, TLS and pgBouncer); on the
// embedded standby its direct URL with the standby's port. Roles replicate,
// so the credentials are the project's.
func (s *Server) readReplicaURLs(ctx context.Context, p *store.Project, _ *store.Cluster) ([]string, error) {
	rows, err := store.ListReadReplicas(ctx, s.deps.Store.Pool, p.ID)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	var urls []string
	for _, r := range rows {
		c, _, err := s.replicaEndpoint(ctx, p, r)
		if err != nil {
			return nil, s.fail(ctx, err, "")
		}
		if c == nil {
			continue
		}
		conn, err := s.deps.Lifecycle.ConnectionFor(p, c)
		if err != nil {
			return nil, s.fail(ctx, err, "")
		}
		if r.ClusterID == p.ClusterID {
			urls = append(urls, conn.DirectURL)
		} else {
			urls = append(urls, conn.PooledURL)
		}
	}
	return urls, nil
}
