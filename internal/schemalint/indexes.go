package schemalint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/schema"
)

// Index is one index of a user table, as the index rules see it.
type Index struct {
	Schema, Table, Name string
	Definition          string
	Method              string
	Columns             []string // key columns; empty when any is an expression
	HasExpressions      bool
	HasPredicate        bool
	// Protected: unique, primary-key, exclusion, replica-identity or
	// constraint-backing indexes, which no rule may suggest dropping.
	Protected  bool
	Constraint bool
	Signature  string // equal for indexes with the same definition
	SizeBytes  int64
	Scans      int64
	Valid      bool
	OID        int64
}

// Qualified is schema.index.
func (i *Index) Qualified() string { return i.Schema + "." + i.Name }

// DropStatement drops the index without blocking writes.
func (i *Index) DropStatement() string {
	return "DROP INDEX CONCURRENTLY " + qname(i.Schema, i.Name) + ";"
}

// LoadIndexes reads every index of the user tables (not those of
// extension-owned tables).
func LoadIndexes(ctx context.Context, q schema.Querier) ([]Index, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname::text, t.relname::text, i.relname::text,
		  pg_catalog.pg_get_indexdef(x.indexrelid), am.amname::text,
		  ARRAY(SELECT COALESCE(a.attname::text, '') FROM pg_catalog.unnest((x.indkey::pg_catalog.int2[])[0:x.indnkeyatts OPERATOR(pg_catalog.-) 1]) WITH ORDINALITY k(n, o)
		        LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.n
		        ORDER BY k.o),
		  x.indexprs IS NOT NULL, x.indpred IS NOT NULL,
		  x.indisunique OR x.indisprimary OR x.indisexclusion OR x.indisreplident,
		  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid OPERATOR(pg_catalog.=) x.indexrelid),
		  pg_catalog.concat_ws(' ', am.amname, x.indkey::text, x.indclass::text, x.indcollation::text, x.indoption::text,
		    x.indisunique::text, pg_catalog.pg_get_expr(x.indexprs, x.indrelid), pg_catalog.pg_get_expr(x.indpred, x.indrelid)),
		  pg_catalog.pg_relation_size(x.indexrelid), COALESCE(s.idx_scan, 0), x.indisvalid, x.indexrelid::pg_catalog.int8
		FROM pg_catalog.pg_index x
		JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid
		JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) x.indrelid
		JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace
		JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) i.relam
		LEFT JOIN pg_catalog.pg_stat_user_indexes s ON s.indexrelid OPERATOR(pg_catalog.=) x.indexrelid
		WHERE n.oid IN (`+schema.UserNamespacesSQL+`)
		  AND `+schema.NotExtensionMember("pg_catalog.pg_class", "t.oid")+`
		ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, err
	}
	var out []Index
	var ix Index
	_, err = pgx.ForEachRow(rows, []any{&ix.Schema, &ix.Table, &ix.Name, &ix.Definition, &ix.Method, &ix.Columns,
		&ix.HasExpressions, &ix.HasPredicate, &ix.Protected, &ix.Constraint, &ix.Signature, &ix.SizeBytes, &ix.Scans, &ix.Valid, &ix.OID}, func() error {
		x := ix
		if x.Constraint {
			x.Protected = true
		}
		for _, c := range x.Columns {
			if c == "" {
				x.Columns = nil // an expression column
				break
			}
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("while listing indexes: %w", err)
	}
	return out, nil
}

// Unused lists the droppable indexes never scanned, at least minSize bytes.
func Unused(idx []Index, minSize int64) []Index {
	var out []Index
	for _, i := range idx {
		if !i.Protected && i.Valid && i.Scans == 0 && i.SizeBytes >= minSize {
			out = append(out, i)
		}
	}
	return out
}

// Redundancy pairs an index with the wider one that covers it.
type Redundancy struct {
	Index     Index
	CoveredBy Index
}

// Redundant lists plain indexes whose key columns are a leading prefix of
// another index of the same table and method (no expressions, no
// predicates on either), at least minSize bytes. Of two identical
// indexes, neither is listed here (duplicate_index reports them).
func Redundant(idx []Index, minSize int64) []Redundancy {
	var out []Redundancy
	for _, a := range idx {
		if a.Protected || !a.Valid || a.HasExpressions || a.HasPredicate || len(a.Columns) == 0 || a.SizeBytes < minSize {
			continue
		}
		for _, b := range idx {
			if b.Name == a.Name || b.Schema != a.Schema || b.Table != a.Table || b.Method != a.Method || !b.Valid ||
				b.HasExpressions || b.HasPredicate || len(b.Columns) <= len(a.Columns) {
				continue
			}
			prefix := true
			for k := range a.Columns {
				if a.Columns[k] != b.Columns[k] {
					prefix = false
					break
				}
			}
			if prefix {
				out = append(out, Redundancy{Index: a, CoveredBy: b})
				break
			}
		}
	}
	return out
}
