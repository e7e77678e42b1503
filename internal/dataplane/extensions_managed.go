package dataplane

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ExtensionInfo is one allowlisted extension the cluster provides, and its
// state in a project database.
type ExtensionInfo struct {
	Name             string
	Description      string
	Trusted          bool
	DefaultVersion   string
	InstalledVersion string // "" = not enabled
	AvailableVersion string // newest version the cluster has
}

// ExtensionUnavailableError: the extension is not allowlisted or the cluster
// cannot provide it; Msg is for the caller.
type ExtensionUnavailableError struct{ Msg string }

func (e *ExtensionUnavailableError) Error() string { return e.Msg }

// ExtensionFailedError: Postgres refused the change (e.g. objects depend on
// the extension); retrying cannot help. Msg is Postgres's message.
type ExtensionFailedError struct{ Msg string }

func (e *ExtensionFailedError) Error() string { return e.Msg }

// CheckExtension says whether name may be enabled on this cluster.
func (c *Cluster) CheckExtension(ctx context.Context, name string) error {
	if !slices.Contains(AllowedExtensions, name) {
		return &ExtensionUnavailableError{Msg: fmt.Sprintf("extension %q is not on the allowlist (%v)", name, AllowedExtensions)}
	}
	var ok bool
	if err := c.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = $1)`, name).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return &ExtensionUnavailableError{Msg: fmt.Sprintf("extension %s is not installed on this server (no package for it on this cluster)", name)}
	}
	return nil
}

// ProjectExtensions lists the allowlisted extensions the cluster provides,
// sorted by name, with their state in db (read by an agent of the tenant).
func (c *Cluster) ProjectExtensions(ctx context.Context, db string) ([]ExtensionInfo, error) {
	rows, err := c.admin.Query(ctx, `
		SELECT e.name, coalesce(e.comment, ''), coalesce(e.default_version, ''),
		  coalesce((SELECT v.trusted FROM pg_catalog.pg_available_extension_versions v
		            WHERE v.name = e.name AND v.version = e.default_version), false),
		  coalesce((SELECT max(v.version COLLATE "C") FROM pg_catalog.pg_available_extension_versions v
		            WHERE v.name = e.name), '')
		FROM pg_catalog.pg_available_extensions e WHERE e.name = ANY($1) ORDER BY e.name`, AllowedExtensions)
	if err != nil {
		return nil, err
	}
	var out []ExtensionInfo
	var x ExtensionInfo
	if _, err := pgx.ForEachRow(rows, []any{&x.Name, &x.Description, &x.DefaultVersion, &x.Trusted, &x.AvailableVersion}, func() error {
		// The newest version is the default one unless the cluster ships a newer script.
		if x.AvailableVersion == "" || x.DefaultVersion != "" {
			x.AvailableVersion = x.DefaultVersion
		}
		out = append(out, x)
		return nil
	}); err != nil {
		return nil, err
	}
	installed, err := c.withTenant(ctx, db, func(conn *pgx.Conn) (map[string]string, error) {
		rows, err := conn.Query(ctx, `SELECT extname, extversion FROM pg_catalog.pg_extension`)
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		var n, v string
		_, err = pgx.ForEachRow(rows, []any{&n, &v}, func() error { m[n] = v; return nil })
		return m, err
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].InstalledVersion = installed[out[i].Name]
	}
	return out, nil
}

// withTenant runs f on a session of db as an agent of its owner.
func (c *Cluster) withTenant(ctx context.Context, db string, f func(*pgx.Conn) (map[string]string, error)) (map[string]string, error) {
	a, err := c.agentForDatabase(ctx, db)
	if err != nil {
		return nil, err
	}
	defer a.close(ctx) //nolint:errcheck
	conn, err := a.connect(ctx, db, "capydb-extensions")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

// Extension changes the managed path makes.
const (
	ExtensionEnable  = "enable"
	ExtensionDisable = "disable"
	ExtensionUpdate  = "update"
)

// ChangeExtension enables, disables or updates name in db, as an agent of
// the owner, so the extension belongs to the owner and no superuser session
// enters the tenant database. It reports whether anything changed.
// Untrusted extensions need a superuser, which the isolation rule keeps out
// of databases holding tenant objects: enabling one fails with a reason.
func (c *Cluster) ChangeExtension(ctx context.Context, db, name, op string) (changed bool, err error) {
	if op == ExtensionEnable {
		if err := c.CheckExtension(ctx, name); err != nil {
			return false, err
		}
	} else if !slices.Contains(AllowedExtensions, name) {
		return false, &ExtensionUnavailableError{Msg: fmt.Sprintf("extension %q is not on the allowlist", name)}
	}
	var trusted bool
	if err := c.admin.QueryRow(ctx, `SELECT coalesce((SELECT v.trusted FROM pg_catalog.pg_available_extension_versions v
		JOIN pg_catalog.pg_available_extensions e ON e.name = v.name AND e.default_version = v.version
		WHERE v.name = $1), false)`, name).Scan(&trusted); err != nil {
		return false, err
	}
	res, err := c.withTenant(ctx, db, func(conn *pgx.Conn) (map[string]string, error) {
		var before string
		err := conn.QueryRow(ctx, `SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) $1`, name).Scan(&before)
		present := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		var stmt string
		switch {
		case op == ExtensionEnable && !present:
			if !trusted {
				return nil, &ExtensionFailedError{Msg: fmt.Sprintf("extension %s is not trusted: it needs a superuser to install, "+
					"and CapyDB never runs superuser code inside a database that holds tenant objects (docs/security.md)", name)}
			}
			stmt = `CREATE EXTENSION IF NOT EXISTS ` + ident(name) + ` SCHEMA public`
		case op == ExtensionDisable && present:
			stmt = `DROP EXTENSION ` + ident(name) + ` RESTRICT`
		case op == ExtensionUpdate && present:
			stmt = `ALTER EXTENSION ` + ident(name) + ` UPDATE`
		default:
			return map[string]string{"changed": "false"}, nil
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code[:2] != "08" && pgErr.Code[:2] != "57" && pgErr.Code[:2] != "53" {
				msg := pgErr.Message
				if pgErr.Detail != "" {
					msg += ": " + pgErr.Detail
				}
				if pgErr.Hint != "" {
					msg += " (" + pgErr.Hint + ")"
				}
				return nil, &ExtensionFailedError{Msg: msg}
			}
			return nil, err
		}
		var after string
		_ = conn.QueryRow(ctx, `SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) $1`, name).Scan(&after)
		return map[string]string{"changed": fmt.Sprint(after != before)}, nil
	})
	if err != nil {
		return false, err
	}
	return res["changed"] == "true", nil
}
