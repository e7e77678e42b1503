package schemalint

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/schema"
)

// userTables is the FROM clause of ordinary and partitioned user tables
// (partitions are judged through their parent).
var userTables = `pg_catalog.pg_class t
		JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace
		WHERE t.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[]) AND NOT t.relispartition
		  AND n.oid IN (` + schema.UserNamespacesSQL + `)
		  AND ` + schema.NotExtensionMember("pg_catalog.pg_class", "t.oid")

func missingPrimaryKey(ctx context.Context, q schema.Querier) ([]LintFinding, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname::text, t.relname::text FROM `+userTables+`
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
		    WHERE c.conrelid OPERATOR(pg_catalog.=) t.oid AND c.contype OPERATOR(pg_catalog.=) 'p')`)
	if err != nil {
		return nil, err
	}
	var out []LintFinding
	var ns, name string
	_, err = pgx.ForEachRow(rows, []any{&ns, &name}, func() error {
		out = append(out, LintFinding{Object: ns + "." + name,
			Message: fmt.Sprintf("table %s.%s has no primary key; logical replication, follow imports and most ORMs need one", ns, name),
			Fix:     fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (<columns>);", qname(ns, name))})
		return nil
	})
	return out, err
}

// unindexedForeignKeys: foreign keys whose columns do not lead any index
// (in any order), so deletes on the referenced table scan this one.
func unindexedForeignKeys(ctx context.Context, q schema.Querier) ([]LintFinding, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname::text, t.relname::text, c.conname::text,
		  ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY k(n, o)
		        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.n
		        ORDER BY k.o)
		FROM pg_catalog.pg_constraint c
		JOIN `+strings.Replace(userTables, "WHERE", "ON t.oid OPERATOR(pg_catalog.=) c.conrelid WHERE", 1)+`
		  AND c.contype OPERATOR(pg_catalog.=) 'f'
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index x
		    WHERE x.indrelid OPERATOR(pg_catalog.=) c.conrelid AND x.indpred IS NULL
		      AND (x.indkey::pg_catalog.int2[])[0:(pg_catalog.cardinality(c.conkey) OPERATOR(pg_catalog.-) 1)] OPERATOR(pg_catalog.@>) c.conkey
		      AND pg_catalog.cardinality(c.conkey) OPERATOR(pg_catalog.<=) x.indnkeyatts)`)
	if err != nil {
		return nil, err
	}
	var out []LintFinding
	var ns, table, name string
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&ns, &table, &name, &cols}, func() error {
		out = append(out, LintFinding{Object: ns + "." + table + "." + name,
			Message: fmt.Sprintf("foreign key %s on %s.%s (%s) has no index leading with its columns; deletes and key updates on the referenced table scan %s",
				name, ns, table, strings.Join(cols, ", "), table),
			Fix: fmt.Sprintf("CREATE INDEX CONCURRENTLY ON %s (%s);", qname(ns, table), quoteCols(cols))})
		return nil
	})
	return out, err
}

func duplicateIndexes(ctx context.Context, q schema.Querier) ([]LintFinding, error) {
	idx, err := LoadIndexes(ctx, q)
	if err != nil {
		return nil, err
	}
	groups := map[string][]Index{}
	var order []string
	for _, i := range idx {
		key := i.Schema + "." + i.Table + " " + i.Signature
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], i)
	}
	var out []LintFinding
	for _, key := range order {
		g := groups[key]
		if len(g) < 2 {
			continue
		}
		// Keep the first constraint-backing index, else the oldest; every
		// other one is droppable.
		keep := 0
		for k, i := range g {
			if i.OID < g[keep].OID {
				keep = k
			}
		}
		for k, i := range g {
			if i.Constraint {
				keep = k
				break
			}
		}
		for k, i := range g {
			if k == keep || i.Constraint {
				continue
			}
			out = append(out, LintFinding{Object: i.Qualified(),
				Message: fmt.Sprintf("index %s has the same definition as %s on %s.%s", i.Name, g[keep].Name, i.Schema, i.Table),
				Fix:     i.DropStatement()})
		}
	}
	return out, nil
}

func unusedIndexes(ctx context.Context, q schema.Querier) ([]LintFinding, error) {
	idx, err := LoadIndexes(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []LintFinding
	for _, i := range Unused(idx, 0) {
		out = append(out, LintFinding{Object: i.Qualified(),
			Message: fmt.Sprintf("index %s on %s.%s has not been scanned since statistics began (%d bytes)", i.Name, i.Schema, i.Table, i.SizeBytes),
			Fix:     i.DropStatement()})
	}
	return out, nil
}

func redundantIndexes(ctx context.Context, q schema.Querier) ([]LintFinding, error) {
	idx, err := LoadIndexes(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []LintFinding
	for _, r := range Redundant(idx, 0) {
		out = append(out, LintFinding{Object: r.Index.Qualified(),
			Message: fmt.Sprintf("index %s (%s) is a leading prefix of %s (%s) on %s.%s", r.Index.Name,
				strings.Join(r.Index.Columns, ", "), r.CoveredBy.Name, strings.Join(r.CoveredBy.Columns, ", "), r.Index.Schema, r.Index.Table),
			Fix: r.Index.DropStatement()})
	}
	return out, nil
}

func tableBloat(ctx context.Context, q schema.Querier) ([]LintFinding, error) {
	rows, err := q.Query(ctx, `SELECT s.schemaname::text, s.relname::text, s.n_live_tup, s.n_dead_tup
		FROM pg_catalog.pg_stat_user_tables s
		JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) s.relid
		JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace
		WHERE n.oid IN (`+schema.UserNamespacesSQL+`)
		  AND `+schema.NotExtensionMember("pg_catalog.pg_class", "t.oid")+`
		  AND (s.n_live_tup OPERATOR(pg_catalog.+) s.n_dead_tup) OPERATOR(pg_catalog.>=) $1::pg_catalog.int8
		  AND (s.n_dead_tup OPERATOR(pg_catalog.*) 100) OPERATOR(pg_catalog.>)
		      ($2::pg_catalog.int8 OPERATOR(pg_catalog.*) (s.n_live_tup OPERATOR(pg_catalog.+) s.n_dead_tup))`,
		int64(bloatMinRows), int64(bloatDeadPercent))
	if err != nil {
		return nil, err
	}
	var out []LintFinding
	var ns, name string
	var live, dead int64
	_, err = pgx.ForEachRow(rows, []any{&ns, &name, &live, &dead}, func() error {
		out = append(out, LintFinding{Object: ns + "." + name,
			Message: fmt.Sprintf("%d of %d rows of %s.%s are dead (%.0f %%); autovacuum is not keeping up", dead, live+dead, ns, name,
				float64(dead)*100/float64(live+dead)),
			Fix: fmt.Sprintf("VACUUM (ANALYZE) %s;", qname(ns, name))})
		return nil
	})
	return out, err
}
