package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capydb/capydb/internal/api"
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
		"WAL bytes the cluster's read replica has not replayed yet.", []string{"cluster_id"}, nil)
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
	st := c.s.readReplicaLag(ctx, c.s.clusterID)
	if st == nil {
		return
	}
	streaming := 0.0
	if st.Streaming {
		streaming = 1
	}
	ch <- prometheus.MustNewConstMetric(replicaLagBytes, prometheus.GaugeValue, float64(st.LagBytes), c.s.clusterID)
	ch <- prometheus.MustNewConstMetric(replicaLagSeconds, prometheus.GaugeValue, st.LagSeconds, c.s.clusterID)
	ch <- prometheus.MustNewConstMetric(replicaStreaming, prometheus.GaugeValue, streaming, c.s.clusterID)
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
