package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PoolConfigRole is a NOLOGIN role whose per-database settings
// (capydb.pool_size, capydb.pool_mode in pg_db_role_setting) carry a
// project's pooler settings. They live in the cluster's catalogs, next to
// the roles and databases the pooler files are generated from, so every
// SyncPooler (from any server) renders them; a tenant cannot alter a role
// it is not a member of, and DROP DATABASE removes them.
const PoolConfigRole = "capydb_pool_config"

// Pool modes a project may choose.
const (
	PoolModeTransaction = "transaction"
	PoolModeSession     = "session"
)

// PoolSettings are a project's pooler settings (0 / "" = the default).
type PoolSettings struct {
	PoolSize int
	PoolMode string
}

// ParsePoolSettings reads the pg_db_role_setting entries of PoolConfigRole;
// anything malformed is ignored (the pooler file only ever gets numbers and
// the two mode words).
func ParsePoolSettings(entries []string) PoolSettings {
	var ps PoolSettings
	for _, e := range entries {
		k, v, _ := strings.Cut(e, "=")
		switch k {
		case "capydb.pool_size":
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 10000 {
				ps.PoolSize = n
			}
		case "capydb.pool_mode":
			if v == PoolModeTransaction || v == PoolModeSession {
				ps.PoolMode = v
			}
		}
	}
	return ps
}

// ReadPoolSettings returns db's pooler settings.
func (c *Cluster) ReadPoolSettings(ctx context.Context, db string) (PoolSettings, error) {
	var entries []string
	err := c.admin.QueryRow(ctx, `
		SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
		WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = $1)
		  AND s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2)`, db, PoolConfigRole).Scan(&entries)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return PoolSettings{}, err
	}
	return ParsePoolSettings(entries), nil
}

// ApplyPoolSettings stores db's pooler settings (zero fields are left
// alone) and regenerates and reloads both pgBouncers' [databases] files.
func (c *Cluster) ApplyPoolSettings(ctx context.Context, db string, ps PoolSettings) error {
	if _, err := c.admin.Exec(ctx, `DO $$BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '`+PoolConfigRole+`') THEN
			CREATE ROLE `+PoolConfigRole+` NOLOGIN;
		END IF; END$$`); err != nil && !isDuplicate(err) {
		return fmt.Errorf("while creating the pool settings role: %w", err)
	}
	if ps.PoolSize > 0 {
		if _, err := c.admin.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s IN DATABASE %s SET capydb.pool_size = '%d'`,
			PoolConfigRole, ident(db), ps.PoolSize)); err != nil {
			return fmt.Errorf("while storing pool_size: %w", err)
		}
	}
	if ps.PoolMode == PoolModeTransaction || ps.PoolMode == PoolModeSession {
		if _, err := c.admin.Exec(ctx, `ALTER ROLE `+PoolConfigRole+` IN DATABASE `+ident(db)+` SET capydb.pool_mode = `+literal(ps.PoolMode)); err != nil {
			return fmt.Errorf("while storing pool_mode: %w", err)
		}
	}
	if err := c.SyncPooler(ctx); err != nil {
		return err
	}
	// Server connections made under the old mode go; new ones follow the file.
	return c.reconnect(ctx, db)
}
