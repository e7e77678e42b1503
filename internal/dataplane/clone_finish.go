package dataplane

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// copySequencesAndLargeObjects sets every sequence of the target to the
// source's value and copies large objects, both from the snapshot's
// coordinator transaction.
func (c *Cluster) copySequencesAndLargeObjects(ctx context.Context, src *pgx.Conn, dstAgent *agent, p BuildParams) error {
	rows, err := src.Query(ctx, `SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE c.relkind OPERATOR(pg_catalog.=) 'S'
		  AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		      AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')`)
	if err != nil {
		return err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var loids []uint32
	rows, err = src.Query(ctx, `SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid`)
	if err != nil {
		return err
	}
	if loids, err = pgx.CollectRows(rows, pgx.RowTo[uint32]); err != nil {
		return err
	}
	if len(seqs) == 0 && len(loids) == 0 {
		return nil
	}
	dst, err := dstAgent.connect(ctx, p.Target, "capydb-clone")
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	for _, s := range seqs {
		var last int64
		var called bool
		if err := src.QueryRow(ctx, `SELECT last_value, is_called FROM `+s).Scan(&last, &called); err != nil {
			return fmt.Errorf("while reading sequence %s: %w", s, err)
		}
		if _, err := dst.Exec(ctx, `SELECT pg_catalog.setval($1::pg_catalog.regclass, $2, $3)`, s, last, called); err != nil {
			return fmt.Errorf("while setting sequence %s: %w", s, err)
		}
	}
	for _, oid := range loids {
		var data []byte
		// lo_get checks the reader's privilege on the object (pg_largeobject
		// itself is readable by superusers only).
		if err := src.QueryRow(ctx, `SELECT pg_catalog.lo_get($1)`, oid).Scan(&data); err != nil {
			return fmt.Errorf("while reading large object %d: %w", oid, err)
		}
		if _, err := dst.Exec(ctx, `SELECT pg_catalog.lo_from_bytea($1, $2)`, oid, data); err != nil {
			return fmt.Errorf("while copying large object %d: %w", oid, err)
		}
		if _, err := dst.Exec(ctx, fmt.Sprintf(`ALTER LARGE OBJECT %d OWNER TO %s`, oid, ident(p.Owner))); err != nil {
			return err
		}
	}
	return nil
}

// refreshMaterializedViews fills the target's materialized views that hold
// data in the source (a schema dump creates them empty). A view built on
// another one may need a second pass.
func (c *Cluster) refreshMaterializedViews(ctx context.Context, src *pgx.Conn, dstAgent *agent, target string) error {
	rows, err := src.Query(ctx, `SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE c.relkind OPERATOR(pg_catalog.=) 'm' AND c.relispopulated ORDER BY c.oid`)
	var views []string
	if err == nil {
		views, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(views) == 0 {
		return err
	}
	dst, err := dstAgent.connect(ctx, target, "capydb-clone")
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	pending := views
	for pass := 0; pass < 5 && len(pending) > 0; pass++ {
		var failed []string
		var lastErr error
		for _, v := range pending {
			if _, err := dst.Exec(ctx, `REFRESH MATERIALIZED VIEW `+v); err != nil {
				failed, lastErr = append(failed, v), err
			}
		}
		if len(failed) == len(pending) {
			return fmt.Errorf("while refreshing materialized views: %w", lastErr)
		}
		pending = failed
	}
	return nil
}

// reassignOwnership gives owner every object in db that a non-superuser
// role other than owner owns (a template copy keeps the source's owners).
// REASSIGN OWNED cannot be used: it would also hand over the project's own
// database (a shared object). It runs as an agent that is a member of owner
// and of the source's roles — the two tenants of one project — and only
// issues ALTER … OWNER, which runs no tenant code. The agent (owners) was
// created while the copy ran; BuildDatabase drops it.
func (c *Cluster) reassignOwnership(ctx context.Context, owners *pendingAgent, db, owner string, st *steps) ([]string, error) {
	a, srcOwner, err := owners.wait()
	if err != nil {
		return nil, err
	}
	st.lap("owner_agent_wait")
	// ALTER EXTENSION has no OWNER TO: extensions move in the catalogs, in a
	// session of their own, meanwhile (they are no object the ALTERs below
	// touch: alterOwnerSQL skips extensions).
	extDone := make(chan error, 1)
	go func() { extDone <- c.adoptExtensions(ctx, db, owner, srcOwner) }()
	failed, err := c.alterOwners(ctx, a, db, owner, st)
	if eerr := <-extDone; err == nil && eerr != nil {
		err = eerr
	}
	st.lap("adopt_extensions_wait")
	if err != nil {
		return nil, err
	}
	var out []string
	for k, v := range failed {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out, nil
}

// alterOwners gives owner, through agent a, every object of db that another
// tenant role owns, and returns those it could not move.
func (c *Cluster) alterOwners(ctx context.Context, a *agent, db, owner string, st *steps) (map[string]string, error) {
	conn, err := a.connect(ctx, db, "capydb-clone")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	st.lap("owner_connect")
	var failed map[string]string
	for pass := 0; pass < 3; pass++ {
		rows, err := conn.Query(ctx, `SELECT o.type, o.identity
			FROM pg_catalog.pg_shdepend d
			JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.refobjid
			CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
			WHERE d.dbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
			      WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
			  AND d.deptype OPERATOR(pg_catalog.=) 'o' AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass
			  AND r.rolname OPERATOR(pg_catalog.<>) $1 AND NOT r.rolsuper
			  AND NOT r.rolname OPERATOR(pg_catalog.~~) 'capydb\_agent\_%'
			ORDER BY o.type OPERATOR(pg_catalog.=) 'sequence', d.classid, d.objid`, owner)
		if err != nil {
			return nil, err
		}
		type obj struct{ typ, identity string }
		objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (obj, error) {
			var o obj
			return o, r.Scan(&o.typ, &o.identity)
		})
		if err != nil {
			return nil, err
		}
		st.lap("owner_list")
		failed = map[string]string{}
		// One round trip for all of them (an implicit transaction); only
		// when one fails are they retried one by one, to find which.
		var batch []string
		for _, o := range objs {
			if stmt := alterOwnerSQL(o.typ, o.identity, owner); stmt != "" {
				batch = append(batch, stmt)
			}
		}
		if len(batch) == 0 {
			break
		}
		if _, err := conn.Exec(ctx, strings.Join(batch, ";\n")); err == nil {
			st.lap(fmt.Sprintf("owner_alter_%d", len(batch)))
			break
		}
		progress := false
		for _, o := range objs {
			stmt := alterOwnerSQL(o.typ, o.identity, owner)
			if stmt == "" {
				continue
			}
			if _, err := conn.Exec(ctx, stmt); err != nil {
				failed[o.typ+" "+o.identity] = err.Error()
				continue
			}
			progress = true
		}
		st.lap(fmt.Sprintf("owner_alter_%d", len(objs)))
		if len(failed) == 0 || !progress {
			break
		}
	}
	return failed, nil
}

// alterOwnerSQL renders ALTER … OWNER TO for an object described by
// pg_identify_object, or "" for kinds whose owner follows another object
// (indexes, TOAST tables) or cannot change.
func alterOwnerSQL(typ, identity, owner string) string {
	kw := map[string]string{
		"table": "TABLE", "partitioned table": "TABLE", "view": "VIEW", "materialized view": "MATERIALIZED VIEW",
		"foreign table": "FOREIGN TABLE", "sequence": "SEQUENCE", "type": "TYPE", "composite type": "TYPE",
		"domain": "DOMAIN", "function": "FUNCTION", "procedure": "PROCEDURE", "aggregate": "AGGREGATE",
		"schema": "SCHEMA", "collation": "COLLATION", "conversion": "CONVERSION", "operator": "OPERATOR",
		"operator class": "OPERATOR CLASS", "operator family": "OPERATOR FAMILY",
		"text search dictionary": "TEXT SEARCH DICTIONARY", "text search configuration": "TEXT SEARCH CONFIGURATION",
		"statistics object": "STATISTICS", "publication": "PUBLICATION", "server": "SERVER",
		"foreign-data wrapper": "FOREIGN DATA WRAPPER", "language": "LANGUAGE", "event trigger": "EVENT TRIGGER",
		"large object": "LARGE OBJECT",
	}[typ]
	if kw == "" {
		return ""
	}
	return `ALTER ` + kw + ` ` + identity + ` OWNER TO ` + ident(owner)
}
