package dataplane

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
)

// createExtensions creates exts in db. Trusted extensions are created by the
// tenant's agent, as the tenant could itself. An untrusted one needs the
// superuser, whose session must never reach tenant code: CREATE EXTENSION
// resolves names through the target schema, where a tenant could plant
// shadows, so the superuser creates it only while db holds no tenant object
// yet (fresh). Otherwise the load stops with a clear error. Extensions go to
// schema public, as they always did (the pinned search_path would otherwise
// put them in pg_catalog).
func (c *Cluster) createExtensions(ctx context.Context, a *agent, db string, exts []string, fresh bool) error {
	if len(exts) == 0 {
		return nil
	}
	trusted := map[string]bool{}
	rows, err := c.admin.Query(ctx, `SELECT v.name, v.trusted FROM pg_catalog.pg_available_extension_versions v
		JOIN pg_catalog.pg_available_extensions e ON e.name OPERATOR(pg_catalog.=) v.name
		  AND e.default_version OPERATOR(pg_catalog.=) v.version
		WHERE v.name OPERATOR(pg_catalog.=) ANY ($1::text[])`, exts)
	if err != nil {
		return err
	}
	var name string
	var t bool
	if _, err := pgx.ForEachRow(rows, []any{&name, &t}, func() error { trusted[name] = t; return nil }); err != nil {
		return err
	}
	conn, err := a.connect(ctx, db, "capydb-restore")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var untrusted []string
	for _, e := range exts {
		var present bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
			WHERE extname OPERATOR(pg_catalog.=) $1)`, e).Scan(&present); err != nil {
			return err
		}
		switch {
		case present:
		case trusted[e]:
			if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS `+ident(e)+` SCHEMA public`); err != nil {
				return fmt.Errorf("while creating extension %s: %w", e, err)
			}
		default:
			untrusted = append(untrusted, e)
		}
	}
	if len(untrusted) == 0 {
		return nil
	}
	if !fresh {
		return &ForeignObjectError{Msg: fmt.Sprintf("extension %s needs a superuser to install and the database already holds "+
			"user objects; enable it on the project before loading, or load into a new project", untrusted[0])}
	}
	admin, err := c.adminConnect(ctx, db)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, e := range untrusted {
		if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS `+ident(e)+` SCHEMA public`); err != nil {
			return fmt.Errorf("while creating extension %s: %w", e, err)
		}
	}
	return nil
}

// adminConnect opens a superuser session on db. Only for databases that hold
// no tenant object (the template, a fresh load target before its load): the
// isolation rule forbids it anywhere a tenant could have planted code. The
// search_path is pinned on connect, overriding any database default.
func (c *Cluster) adminConnect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.dsnFor(db))
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = "capydb-admin"
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", db, err)
	}
	return conn, nil
}

func (c *Cluster) tempFile(pattern string) (*os.File, error) { return os.CreateTemp(c.tmpDir, pattern) }
func (c *Cluster) tempDir(pattern string) (string, error)    { return os.MkdirTemp(c.tmpDir, pattern) }
