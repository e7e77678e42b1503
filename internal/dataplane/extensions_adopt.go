package dataplane

import (
	"context"
	"fmt"
)

// adoptExtensions makes owner the owner of the extensions in db that a
// tenant of this database should own: the trusted default extensions a new
// database copied from the template holds (owned by the superuser), and,
// in a clone, the extensions the source's owner (from) had. Postgres gives a
// trusted extension created by a non-superuser exactly this shape: the
// extension owned by the caller, its member objects by the bootstrap
// superuser — so the owner can then update or drop it.
//
// Postgres has no ALTER EXTENSION … OWNER TO, so the owner is set in
// pg_extension and recorded in pg_shdepend (which REASSIGN/DROP OWNED and
// DROP ROLE read). These are two catalog statements with qualified names
// under search_path pg_catalog: no tenant code runs, so the isolation rule
// (no superuser code that a tenant can reach) holds. Idempotent.
func (c *Cluster) adoptExtensions(ctx context.Context, db, owner, from string) error {
	conn, err := c.adminConnect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	// From the superuser: only trusted defaults, and the ownership is new
	// in pg_shdepend (a pinned superuser has no entries there).
	if _, err := tx.Exec(ctx, `
		WITH moved AS (
		  UPDATE pg_catalog.pg_extension x SET extowner = o.oid
		  FROM pg_catalog.pg_roles r, pg_catalog.pg_roles o
		  WHERE r.oid OPERATOR(pg_catalog.=) x.extowner AND r.rolsuper AND o.rolname OPERATOR(pg_catalog.=) $1
		    AND x.extname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])
		    AND EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions v
		                WHERE v.name OPERATOR(pg_catalog.=) x.extname
		                  AND v.version OPERATOR(pg_catalog.=) x.extversion AND v.trusted)
		  RETURNING x.oid, o.oid AS owner)
		INSERT INTO pg_catalog.pg_shdepend (dbid, classid, objid, objsubid, refclassid, refobjid, deptype)
		SELECT d.oid, 'pg_catalog.pg_extension'::pg_catalog.regclass, moved.oid, 0,
		       'pg_catalog.pg_authid'::pg_catalog.regclass, moved.owner, 'o'
		FROM moved, pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()`,
		owner, DefaultExtensions); err != nil {
		return fmt.Errorf("while handing the default extensions of %s to %s: %w", db, owner, err)
	}
	// From the source's owner of a clone: its pg_shdepend entry moves along.
	if from != "" && from != owner {
		if _, err := tx.Exec(ctx, `
			WITH moved AS (
			  UPDATE pg_catalog.pg_extension x SET extowner = o.oid
			  FROM pg_catalog.pg_roles f, pg_catalog.pg_roles o
			  WHERE f.oid OPERATOR(pg_catalog.=) x.extowner AND f.rolname OPERATOR(pg_catalog.=) $2 AND NOT f.rolsuper
			    AND o.rolname OPERATOR(pg_catalog.=) $1
			  RETURNING x.oid, f.oid AS was, o.oid AS owner)
			UPDATE pg_catalog.pg_shdepend d SET refobjid = moved.owner FROM moved
			WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
			  AND d.objid OPERATOR(pg_catalog.=) moved.oid AND d.refobjid OPERATOR(pg_catalog.=) moved.was
			  AND d.deptype OPERATOR(pg_catalog.=) 'o'
			  AND d.dbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
			                                     WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())`,
			owner, from); err != nil {
			return fmt.Errorf("while handing the extensions of %s to %s: %w", db, owner, err)
		}
	}
	return tx.Commit(ctx)
}
