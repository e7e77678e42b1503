package schema

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier is a session or transaction (pgx.Conn, pgx.Tx).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// The catalogue SQL runs in a session holding only the tenant's rights with
// search_path pinned to pg_catalog, and still names pg_catalog explicitly:
// a shadow object could only ever fool the tenant's own view of itself.

// UserNamespacesSQL selects the oids of the user schemas: not the system
// ones, and not those an extension created.
const UserNamespacesSQL = userNamespaces

const userNamespaces = `SELECT n.oid FROM pg_catalog.pg_namespace n
	WHERE n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema'])
	  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
	  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
	    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
	      AND d.objid OPERATOR(pg_catalog.=) n.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')`

// NotExtensionMember is a condition on an object oid of catalogue cat:
// no extension owns it.
func NotExtensionMember(cat, oid string) string { return notExtensionMember(cat, oid) }

func notExtensionMember(cat, oid string) string {
	return `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
	    WHERE d.classid OPERATOR(pg_catalog.=) '` + cat + `'::pg_catalog.regclass
	      AND d.objid OPERATOR(pg_catalog.=) ` + oid + ` AND d.deptype OPERATOR(pg_catalog.=) 'e')`
}

// Introspect reads the DatabaseSchema of the database q is connected to.
// Order is deterministic: schemas, tables and enums by name (byte order),
// columns by position, constraints by name.
func Introspect(ctx context.Context, q Querier) (*DatabaseSchema, error) {
	out := &DatabaseSchema{Extensions: []SchemaExtension{}, Schemas: []SchemaNamespace{}}
	var version string
	if err := q.QueryRow(ctx, `SELECT pg_catalog.current_database()::text, pg_catalog.current_setting('server_version')`).
		Scan(&out.DatabaseName, &version); err != nil {
		return nil, fmt.Errorf("while reading the database name: %w", err)
	}
	out.PostgresVersion, _, _ = strings.Cut(version, " ")

	rows, err := q.Query(ctx, `SELECT extname::text, extversion FROM pg_catalog.pg_extension`)
	if err != nil {
		return nil, err
	}
	var e SchemaExtension
	if _, err := pgx.ForEachRow(rows, []any{&e.Name, &e.Version}, func() error {
		out.Extensions = append(out.Extensions, e)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("while listing extensions: %w", err)
	}
	sort.Slice(out.Extensions, func(i, j int) bool { return out.Extensions[i].Name < out.Extensions[j].Name })

	byName := map[string]*SchemaNamespace{}
	rows, err = q.Query(ctx, `SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE n.oid IN (`+userNamespaces+`)`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("while listing schemas: %w", err)
	}
	sort.Strings(names)
	out.Schemas = make([]SchemaNamespace, len(names))
	for i, n := range names {
		out.Schemas[i] = SchemaNamespace{Name: n, Tables: []SchemaTable{}, Enums: []SchemaEnum{}}
		byName[n] = &out.Schemas[i]
	}
	if err := readEnums(ctx, q, byName); err != nil {
		return nil, err
	}
	tables, err := readTables(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if ns := byName[t.schema]; ns != nil {
			ns.Tables = append(ns.Tables, *t.SchemaTable)
		}
	}
	for i := range out.Schemas {
		ns := &out.Schemas[i]
		sort.Slice(ns.Tables, func(a, b int) bool { return ns.Tables[a].Name < ns.Tables[b].Name })
		sort.Slice(ns.Enums, func(a, b int) bool { return ns.Enums[a].Name < ns.Enums[b].Name })
	}
	return out, nil
}

func readEnums(ctx context.Context, q Querier, byName map[string]*SchemaNamespace) error {
	rows, err := q.Query(ctx, `SELECT n.nspname::text, t.typname::text,
		  pg_catalog.array_agg(e.enumlabel::text ORDER BY e.enumsortorder),
		  pg_catalog.obj_description(t.oid, 'pg_type')
		FROM pg_catalog.pg_type t
		JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
		JOIN pg_catalog.pg_enum e ON e.enumtypid OPERATOR(pg_catalog.=) t.oid
		WHERE t.typtype OPERATOR(pg_catalog.=) 'e' AND n.oid IN (`+userNamespaces+`)
		  AND `+notExtensionMember("pg_catalog.pg_type", "t.oid")+`
		GROUP BY n.nspname, t.typname, t.oid`)
	if err != nil {
		return err
	}
	var schemaName, name string
	var values []string
	var comment *string
	_, err = pgx.ForEachRow(rows, []any{&schemaName, &name, &values, &comment}, func() error {
		if ns := byName[schemaName]; ns != nil {
			ns.Enums = append(ns.Enums, SchemaEnum{Name: name, Values: values, Comment: deref(comment)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("while listing enums: %w", err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type located struct {
	schema string
	*SchemaTable
}

var relKinds = map[string]string{"r": KindTable, "p": KindPartitionedTable, "v": KindView, "m": KindMaterializedView, "f": KindForeignTable}

func readTables(ctx context.Context, q Querier) ([]located, error) {
	rows, err := q.Query(ctx, `SELECT c.oid::bigint, n.nspname::text, c.relname::text, c.relkind::text,
		  pg_catalog.obj_description(c.oid, 'pg_class')
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']::"char"[])
		  AND NOT c.relispartition
		  AND n.oid IN (`+userNamespaces+`)
		  AND `+notExtensionMember("pg_catalog.pg_class", "c.oid"))
	if err != nil {
		return nil, err
	}
	byOID := map[int64]*SchemaTable{}
	var out []located
	var oid int64
	var schemaName, name, kind string
	var comment *string
	_, err = pgx.ForEachRow(rows, []any{&oid, &schemaName, &name, &kind, &comment}, func() error {
		t := &SchemaTable{Name: name, Kind: relKinds[kind], Columns: []SchemaColumn{}, PrimaryKey: []string{},
			ForeignKeys: []SchemaForeignKey{}, UniqueConstraints: []SchemaUniqueConstraint{}, Comment: deref(comment)}
		byOID[oid] = t
		out = append(out, located{schema: schemaName, SchemaTable: t})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("while listing tables: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	oids := make([]int64, 0, len(byOID))
	for o := range byOID {
		oids = append(oids, o)
	}
	if err := readColumns(ctx, q, oids, byOID); err != nil {
		return nil, err
	}
	if err := readConstraints(ctx, q, oids, byOID); err != nil {
		return nil, err
	}
	return out, nil
}
