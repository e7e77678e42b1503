package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capydb/capydb/internal/api"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// readReplicaLag reports the embedded cluster's standby (nil: none).
func (s *Server) readReplicaLag(ctx context.Context, clusterID string) *wire.ReplicaStatus {
	if s.cluster == nil || clusterID != s.clusterID || s.cluster.ReadReplicaPort() == 0 {
		return nil
	}
	st := &wire.ReplicaStatus{Port: s.cluster.ReadReplicaPort()}
	if lag, err := s.cluster.ReadReplicaLag(ctx); err == nil {
		st.Streaming, st.LagBytes, st.LagSeconds = lag.Streaming, lag.Bytes, lag.Seconds
	}
	return st
}

// replicaCollector exports the standby's lag to Prometheus (one query per
// scrape).
type replicaCollector struct{ s *Server }

var (
	replicaLagBytes = prometheus.NewDesc("capydb_read_replica_lag_bytes",
		"WAL bytes the cluster's read replica (or the standby cluster cluster_id) has not replayed yet.", []string{"cluster_id"}, nil)
	replicaLagSeconds = prometheus.NewDesc("capydb_read_replica_lag_seconds",
		"Replay lag of the cluster's read replica (0 when idle and caught up).", []string{"cluster_id"}, nil)
	replicaStreaming = prometheus.NewDesc("capydb_read_replica_streaming",
		"1 while the cluster's read replica streams from its slot.", []string{"cluster_id"}, nil)
)

func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicaLagBytes
	ch <- replicaLagSeconds
	ch <- replicaStreaming
}

func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	emit := func(id string, streaming bool, lagBytes int64, lagSeconds float64) {
		s := 0.0
		if streaming {
			s = 1
		}
		ch <- prometheus.MustNewConstMetric(replicaLagBytes, prometheus.GaugeValue, float64(lagBytes), id)
		ch <- prometheus.MustNewConstMetric(replicaLagSeconds, prometheus.GaugeValue, lagSeconds, id)
		ch <- prometheus.MustNewConstMetric(replicaStreaming, prometheus.GaugeValue, s, id)
	}
	if st := c.s.readReplicaLag(ctx, c.s.clusterID); st != nil {
		emit(c.s.clusterID, st.Streaming, st.LagBytes, st.LagSeconds)
	}
	// Standby clusters on other nodes, as their primaries last reported
	// them (label: the standby's cluster id).
	if c.s.store == nil {
		return
	}
	clusters, err := store.ListClusters(ctx, c.s.store.Pool)
	if err != nil {
		return
	}
	for _, p := range clusters {
		for _, l := range p.Replication {
			emit(l.ClusterID, l.Streaming, l.LagBytes, l.LagSeconds)
		}
	}
}

// replicaComponent is the read replica's line on GET /status (nil: none).
func (s *Server) replicaComponent(ctx context.Context) *api.StatusComponent {
	st := s.readReplicaLag(ctx, s.clusterID)
	if st == nil {
		return nil
	}
	c := &api.StatusComponent{Name: "read_replica", Status: "operational"}
	if !st.Streaming {
		c.Status, c.Message = "degraded", "the read replica is not streaming from the primary; its reads fall behind"
	}
	return c
}
