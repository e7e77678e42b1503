package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// registerNode fills in this node's cluster row (created by `capydb admin
// node add`; row-level security lets the node's login see only that row)
// with where the cluster listens, what it runs and the CA its certificate
// chains to.
func (s *Server) registerNode(ctx context.Context, c *store.Cluster) (*store.Cluster, error) {
	ca, err := s.cluster.CACertPEM()
	if err != nil {
		return nil, err
	}
	c.CAPEM = string(ca)
	got, err := store.RegisterNode(ctx, s.store.Pool, c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errors.New("this login runs no cluster: use the URL `capydb admin node add` printed for this node")
	}
	if err != nil {
		return nil, fmt.Errorf("while registering the node's cluster: %w", err)
	}
	return got, nil
}

// startNodeWork runs a node's worker, scoped to its own cluster, and its
// heartbeat. Schedulers, webhooks and the API stay on the control plane.
func (s *Server) startNodeWork(ctx context.Context) {
	s.worker = queue.NewWorker(s.store.Pool, queue.Config{Concurrency: s.cfg.Workers, Logger: s.log,
		Scope: queue.Scope{Clusters: []string{s.clusterID}}}, s.lifecycle.Handlers())
	s.run(ctx, s.worker.Run)
	s.run(ctx, func(ctx context.Context) error {
		t := time.NewTicker(s.cfg.HeartbeatInterval)
		defer t.Stop()
		for {
			err := s.nodeBeat(ctx)
			var fenced errFenced
			if errors.As(err, &fenced) {
				// Failed over: stop taking writes now (runNode stops the cluster).
				s.log.Error("this node's cluster was fenced", "error", err)
				s.errCh <- err
				return nil
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("heartbeat failed", "error", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}

// ClusterID is the id of the cluster this process runs ("" without one).
func (s *Server) ClusterID() string { return s.clusterID }

// fleetCAs is what GET /v1/ca.pem serves: own (the embedded cluster's CA)
// followed by the CA of every node's cluster, so one file verifies every
// host's certificate (sslmode=verify-full).
func (s *Server) fleetCAs(own []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clusters, err := store.ListClusters(ctx, s.store.Pool)
	if err != nil {
		return nil, err
	}
	var extra []byte
	for _, c := range clusters {
		pem := bytes.TrimSpace([]byte(c.CAPEM))
		if len(pem) == 0 || bytes.Contains(own, pem) || bytes.Contains(extra, pem) {
			continue
		}
		extra = append(append(extra, pem...), '\n')
	}
	if len(extra) == 0 {
		return own, nil // a single machine serves its CA unchanged
	}
	if len(own) > 0 && own[len(own)-1] != '\n' {
		own = append(own, '\n')
	}
	return append(append([]byte{}, own...), extra...), nil
}
