package schema

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// readColumns fills the columns of the tables in byOID. The udt is the
// element type of an array and the base type of a domain (one level), which
// is what type generators need.
func readColumns(ctx context.Context, q Querier, oids []int64, byOID map[int64]*SchemaTable) error {
	rows, err := q.Query(ctx, `SELECT a.attrelid::pg_catalog.int8, a.attnum::pg_catalog.int4, a.attname::text,
		  pg_catalog.format_type(a.atttypid, a.atttypmod),
		  u.typname::text, un.nspname::text, NOT a.attnotnull,
		  t.typcategory OPERATOR(pg_catalog.=) 'A', a.attndims::pg_catalog.int4,
		  u.typtype OPERATOR(pg_catalog.=) 'e', a.attgenerated::text, a.attidentity::text,
		  pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
		  pg_catalog.col_description(a.attrelid, a.attnum)
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
		JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=)
		  CASE WHEN t.typcategory OPERATOR(pg_catalog.=) 'A' THEN t.typelem ELSE t.oid END
		JOIN pg_catalog.pg_type u ON u.oid OPERATOR(pg_catalog.=)
		  CASE WHEN e.typtype OPERATOR(pg_catalog.=) 'd' THEN e.typbasetype ELSE e.oid END
		JOIN pg_catalog.pg_namespace un ON un.oid OPERATOR(pg_catalog.=) u.typnamespace
		LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid
		  AND ad.adnum OPERATOR(pg_catalog.=) a.attnum
		WHERE a.attrelid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])
		  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped`, oids)
	if err != nil {
		return err
	}
	var rel int64
	var c SchemaColumn
	var dims int
	var generated, identity string
	var def, comment *string
	_, err = pgx.ForEachRow(rows, []any{&rel, &c.Position, &c.Name, &c.DataType, &c.UdtName, &c.UdtSchema, &c.IsNullable,
		&c.IsArray, &dims, &c.IsEnum, &generated, &identity, &def, &comment}, func() error {
		col := c
		col.ArrayDims = 0
		if col.IsArray {
			col.ArrayDims = max(dims, 1)
		}
		switch generated {
		case "s":
			col.IsGenerated, col.Generated = true, "stored"
		case "v":
			col.IsGenerated, col.Generated = true, "virtual"
		default:
			col.IsGenerated, col.Generated = false, ""
		}
		switch identity {
		case "a":
			col.Identity = "always"
		case "d":
			col.Identity = "by_default"
		default:
			col.Identity = ""
		}
		col.Default, col.Expression, col.Comment = deref(def), "", deref(comment)
		if col.IsGenerated {
			col.Default, col.Expression = "", deref(def)
		}
		if t := byOID[rel]; t != nil {
			t.Columns = append(t.Columns, col)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("while listing columns: %w", err)
	}
	for _, t := range byOID {
		sort.Slice(t.Columns, func(i, j int) bool { return t.Columns[i].Position < t.Columns[j].Position })
	}
	return nil
}

var fkActions = map[string]string{"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

// readConstraints fills primary keys, foreign keys and unique constraints,
// with column names in key order.
func readConstraints(ctx context.Context, q Querier, oids []int64, byOID map[int64]*SchemaTable) error {
	rows, err := q.Query(ctx, `SELECT k.conrelid::pg_catalog.int8, k.conname::text, k.contype::text,
		  ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY x(n, i)
		        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid
		          AND a.attnum OPERATOR(pg_catalog.=) x.n ORDER BY x.i),
		  COALESCE(fn.nspname::text, ''), COALESCE(fc.relname::text, ''),
		  ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY x(n, i)
		        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.confrelid
		          AND a.attnum OPERATOR(pg_catalog.=) x.n ORDER BY x.i),
		  k.confupdtype::text, k.confdeltype::text
		FROM pg_catalog.pg_constraint k
		LEFT JOIN pg_catalog.pg_class fc ON fc.oid OPERATOR(pg_catalog.=) k.confrelid
		LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid OPERATOR(pg_catalog.=) fc.relnamespace
		WHERE k.conrelid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])
		  AND k.contype OPERATOR(pg_catalog.=) ANY (ARRAY['p', 'f', 'u']::"char"[])
		  AND k.conparentid OPERATOR(pg_catalog.=) 0`, oids)
	if err != nil {
		return err
	}
	var rel int64
	var name, typ, refSchema, refTable, upd, del string
	var cols, refCols []string
	_, err = pgx.ForEachRow(rows, []any{&rel, &name, &typ, &cols, &refSchema, &refTable, &refCols, &upd, &del}, func() error {
		t := byOID[rel]
		if t == nil {
			return nil
		}
		switch typ {
		case "p":
			t.PrimaryKey = cols
		case "u":
			t.UniqueConstraints = append(t.UniqueConstraints, SchemaUniqueConstraint{Name: name, Columns: cols})
		case "f":
			t.ForeignKeys = append(t.ForeignKeys, SchemaForeignKey{Name: name, Columns: cols, ReferencedSchema: refSchema,
				ReferencedTable: refTable, ReferencedColumns: refCols, OnUpdate: fkActions[upd], OnDelete: fkActions[del]})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("while listing constraints: %w", err)
	}
	for _, t := range byOID {
		sort.Slice(t.ForeignKeys, func(i, j int) bool { return t.ForeignKeys[i].Name < t.ForeignKeys[j].Name })
		sort.Slice(t.UniqueConstraints, func(i, j int) bool { return t.UniqueConstraints[i].Name < t.UniqueConstraints[j].Name })
	}
	return nil
}
