package server

import (
	"context"

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
