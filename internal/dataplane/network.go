package dataplane

import (
	"context"
	"errors"

	"github.com/capydb/capydb/internal/netrules"
)

// Network is the cluster's host-based access: both HBA files rendered from
// one policy (the embedded cluster implements it).
type Network interface {
	ApplyNetwork(ctx context.Context, load func(context.Context) (netrules.Policy, error)) error
	PlaintextAllowed() bool
}

// ErrNoNetwork is returned by ApplyNetwork on a cluster without HBA control.
var ErrNoNetwork = errors.New("this cluster does not support network rules")

// ApplyNetwork regenerates the cluster's HBA files from the policy load
// returns (called under the cluster's network lock).
func (c *Cluster) ApplyNetwork(ctx context.Context, load func(context.Context) (netrules.Policy, error)) error {
	if c.network == nil {
		return ErrNoNetwork
	}
	return c.network.ApplyNetwork(ctx, load)
}

// PlaintextAllowed reports whether the operator allowed non-TLS lines.
func (c *Cluster) PlaintextAllowed() bool { return c.network != nil && c.network.PlaintextAllowed() }
