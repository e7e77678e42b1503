package api

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
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
	port, err := store.ClusterReadReplicaPort(ctx, s.deps.Store.Pool, p.ClusterID)
	if err != nil {
		return nil, s.fail(ctx, err, "cluster not found")
	}
	if port == 0 {
		return nil, errorf(http.StatusConflict, "the project's cluster has no read replica (start the server with --read-replica)")
	}
	r := &store.ReadReplica{ID: ids.New("rr_"), ProjectID: p.ID, ClusterID: p.ClusterID}
	var ok bool
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		if ok, err = store.InsertReadReplica(ctx, tx, r); err != nil || !ok {
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
		return auth.Audit(ctx, tx, p.OrganizationID, &p.ID, "read_replica.detached", principal(ctx).Actor(),
			map[string]any{"read_replica_id": in.ReplicaID})
	})
	if err != nil {
		return nil, s.fail(ctx, err, "read replica not found")
	}
	return nil, nil
}

// readReplicas lists the project's attachments that still point at its
// cluster's standby (after a move to another cluster they lapse).
func (s *Server) readReplicas(ctx context.Context, p *store.Project) ([]*ReadReplica, error) {
	rows, err := store.ListReadReplicas(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := []*ReadReplica{}
	if len(rows) == 0 {
		return out, nil
	}
	port, err := store.ClusterReadReplicaPort(ctx, s.deps.Store.Pool, p.ClusterID)
	if err != nil {
		return nil, s.fail(ctx, err, "cluster not found")
	}
	for _, r := range rows {
		if r.ClusterID != p.ClusterID || port == 0 {
			continue
		}
		out = append(out, &ReadReplica{ID: r.ID, ProjectID: r.ProjectID, ClusterID: r.ClusterID, Port: port, CreatedAt: r.CreatedAt})
	}
	return out, nil
}

// readReplicaURLs are the project's read-only URLs: its direct URL with the
// standby's port (the standby shares the cluster's host, TLS and roles).
func (s *Server) readReplicaURLs(ctx context.Context, p *store.Project, c *store.Cluster) ([]string, error) {
	list, err := s.readReplicas(ctx, p)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	var urls []string
	for _, r := range list {
		rc := *c
		rc.DirectPort = r.Port
		conn, err := s.deps.Lifecycle.ConnectionFor(p, &rc)
		if err != nil {
			return nil, s.fail(ctx, err, "")
		}
		urls = append(urls, conn.DirectURL)
	}
	return urls, nil
}
