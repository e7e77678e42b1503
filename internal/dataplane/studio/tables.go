package studio

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Table is a DatabaseTable (API.md §4.11).
type Table struct {
	Schema        string `json:"schema"`
	Table         string `json:"table"`
	Type          string `json:"type"`
	EstimatedRows *int64 `json:"estimated_rows,omitempty"`
}

var relTypes = map[string]string{"r": "table", "p": "partitioned_table", "v": "view", "m": "materialized_view", "f": "foreign_table"}

// Every function and operator is qualified: the session is the tenant's and
// its search_path is the tenant's to set (docs/security.md).
const tablesSQL = `SELECT n.nspname, c.relname, c.relkind, c.reltuples::pg_catalog.int8
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f}'::pg_catalog."char"[])
	  AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.text[])
	  AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\_toast%' AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\_temp\_%'
	  AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\_toast\_temp\_%'
	  -- Objects an extension owns (pg_qualstats' and hypopg's views in every
	  -- new project) are the extension's, not the user's tables.
	  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
		WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		  AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
	ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`

// ListTables lists every table, partitioned table, view, materialized view
// and foreign table outside the system schemas, by schema then name, with
// the planner's row estimate (absent for views and never-analyzed tables).
func ListTables(ctx context.Context, conn *pgconn.PgConn) ([]Table, error) {
	rr := conn.ExecParams(ctx, tablesSQL, nil, nil, nil, nil)
	out := []Table{}
	for rr.NextRow() {
		v := rr.Values()
		t := Table{Schema: string(v[0]), Table: string(v[1]), Type: relTypes[string(v[2])]}
		if n, err := strconv.ParseInt(string(v[3]), 10, 64); err == nil && n >= 0 && t.Type != "view" && t.Type != "foreign_table" {
			t.EstimatedRows = &n
		}
		out = append(out, t)
	}
	_, err := rr.Close()
	return out, err
}

// ErrNoTable is an unknown schema or table.
var ErrNoTable = errors.New("table not found")

const pkSQL = `SELECT c.relkind, a.attname
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	LEFT JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary
	LEFT JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true
	LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
	WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2
	  AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f}'::pg_catalog."char"[])
	ORDER BY k.ord`

// RowsQuery builds the statement that pages through a table: every column,
// in primary-key order when there is one, from offset on. The runner's row
// cap is the page size and tells whether more rows follow.
func RowsQuery(ctx context.Context, conn *pgconn.PgConn, schema, table string, offset int) (string, error) {
	rr := conn.ExecParams(ctx, pkSQL, [][]byte{[]byte(schema), []byte(table)}, nil, nil, nil)
	found := false
	var pk []string
	for rr.NextRow() {
		found = true
		if v := rr.Values()[1]; v != nil {
			pk = append(pk, pgx.Identifier{string(v)}.Sanitize())
		}
	}
	if _, err := rr.Close(); err != nil {
		return "", err
	}
	if !found {
		return "", ErrNoTable
	}
	sql := "SELECT * FROM " + pgx.Identifier{schema, table}.Sanitize()
	if len(pk) > 0 {
		sql += " ORDER BY " + strings.Join(pk, ", ")
	}
	if offset > 0 {
		sql += " OFFSET " + strconv.Itoa(offset)
	}
	return sql, nil
}
