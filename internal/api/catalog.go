package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// RegionDetail describes a region.
type RegionDetail = wire.RegionDetail

// PostgresVersion is one offered major.
type PostgresVersion = wire.PostgresVersion

// RegionsOutput is GET /v1/regions (bare).
type RegionsOutput struct {
	Body struct {
		Regions       []string       `json:"regions"`
		RegionDetails []RegionDetail `json:"region_details"`
	}
}

// VersionsOutput is GET /v1/postgres-versions (bare).
type VersionsOutput struct {
	Body struct {
		Versions []PostgresVersion `json:"versions"`
	}
}

// ClustersOutput is GET /v1/clusters.
type ClustersOutput struct {
	Body struct {
		Clusters []*Cluster `json:"clusters"`
	}
}

func (s *Server) registerCatalog() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listRegions", Method: http.MethodGet, Path: "/v1/regions",
		Scope: auth.ScopeProjectsRead}, Summary: "List regions", Tags: []string{"catalogue"}},
		func(ctx context.Context, _ *struct{}) (*RegionsOutput, error) {
			clusters, err := store.ListClusters(ctx, s.deps.Store.Pool)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &RegionsOutput{}
			out.Body.Regions, out.Body.RegionDetails = []string{}, []RegionDetail{}
			seen := map[string]bool{}
			for _, c := range clusters {
				if c.State != "active" || seen[c.Region] {
					continue
				}
				seen[c.Region] = true
				out.Body.Regions = append(out.Body.Regions, c.Region)
				display := c.Region
				if c.Region == "local" {
					display = "Local (embedded cluster)"
				}
				out.Body.RegionDetails = append(out.Body.RegionDetails, RegionDetail{ID: c.Region, DisplayName: display, Location: c.PublicHost})
			}
			sort.Strings(out.Body.Regions)
			sort.Slice(out.Body.RegionDetails, func(i, j int) bool { return out.Body.RegionDetails[i].ID < out.Body.RegionDetails[j].ID })
			return out, nil
		})

	register(s, opSpec{AccessRule: AccessRule{OperationID: "listPostgresVersions", Method: http.MethodGet, Path: "/v1/postgres-versions",
		Scope: auth.ScopeProjectsRead}, Summary: "List Postgres versions", Tags: []string{"catalogue"}},
		func(ctx context.Context, _ *struct{}) (*VersionsOutput, error) {
			versions, err := s.deps.Lifecycle.OfferedVersions(ctx)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &VersionsOutput{}
			out.Body.Versions = []PostgresVersion{}
			for i, v := range versions {
				out.Body.Versions = append(out.Body.Versions, PostgresVersion{Version: v, Channel: "stable",
					Default: i == len(versions)-1, ProductionReady: true})
			}
			return out, nil
		})

	register(s, opSpec{AccessRule: AccessRule{OperationID: "listClusters", Method: http.MethodGet, Path: "/v1/clusters",
		Scope: auth.ScopeProjectsRead}, Summary: "List clusters", Tags: []string{"catalogue"}},
		func(ctx context.Context, _ *struct{}) (*ClustersOutput, error) {
			clusters, err := store.ListClusters(ctx, s.deps.Store.Pool)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &ClustersOutput{}
			out.Body.Clusters = []*Cluster{}
			handles := s.deps.Lifecycle.Clusters()
			loads, err := store.ClusterLoads(ctx, s.deps.Store.Pool)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			now := time.Now()
			for _, c := range clusters {
				var replica *wire.ReplicaStatus
				if s.deps.ReadReplicaLag != nil {
					replica = s.deps.ReadReplicaLag(ctx, c.ID)
				}
				exts := []string{}
				if h, ok := handles[c.ID]; ok {
					if list, err := h.Extensions(ctx); err == nil {
						exts = list
					}
				}
				out.Body.Clusters = append(out.Body.Clusters, &Cluster{
					ID: c.ID, Name: c.Name, Provider: c.Provider, Region: c.Region, PublicHost: c.PublicHost,
					DirectPort: c.DirectPort, PooledPort: c.PooledPort, PostgresVersion: c.PostgresVersion,
					Extensions: exts,
					State:      store.EffectiveState(c, now), SupportsPointInTimeRecovery: false, BackupStorage: "file",
					Projects: loads[c.ID].Projects, LastHeartbeatAt: c.LastHeartbeatAt, ReadReplica: replica,
					ReplicaOf: c.ReplicaOf, Replication: standbyStatus(clusters, c), FailedOverTo: c.FailedOverTo,
				})
			}
			return out, nil
		})
}

// standbyStatus is a standby cluster's replication as its primary reported
// it (nil for a primary; not streaming until the primary reports it).
func standbyStatus(all []*store.Cluster, c *store.Cluster) *wire.ReplicaStatus {
	if c.ReplicaOf == "" {
		return nil
	}
	st := &wire.ReplicaStatus{Port: c.DirectPort}
	for _, p := range all {
		if p.ID != c.ReplicaOf {
			continue
		}
		for _, l := range p.Replication {
			if l.ClusterID == c.ID {
				st.Streaming, st.LagBytes, st.LagSeconds = l.Streaming, l.LagBytes, l.LagSeconds
			}
		}
	}
	return st
}
