package dataplane

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConnectTenant opens a session on db logged in as the tenant's own login
// (role, password), for read-only tools that must hold exactly the tenant's
// rights (schema introspection, lint, index advice). It reaches the cluster
// the way the admin pool does (the internal address), not through the
// public host. The search path is pinned on connect so a database- or
// role-level setting cannot point catalog SQL at tenant shadows.
func (c *Cluster) ConnectTenant(ctx context.Context, db, role, password, app string) (*pgx.Conn, error) {
	u, err := url.Parse(c.dsnFor(db))
	if err != nil {
		return nil, fmt.Errorf("while reading the cluster DSN: %w", err)
	}
	u.User = url.UserPassword(role, password)
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 10 * time.Second
	cfg.RuntimeParams["application_name"] = app
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", db, err)
	}
	return conn, nil
}
