// Package advisor suggests indexes from the predicates queries actually
// filtered on (pg_qualstats, sized with hypopg) and finds indexes worth
// dropping (unused or redundant). It runs in a session holding the
// tenant's rights only.
package advisor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/schema"
)

// Defaults of the index advisor (API.md §3.20).
const (
	DefaultMinFilter      = 1000
	DefaultMinSelectivity = 30
)

// IndexAdvisorReport is the advisor report of API.md §4.14.
type IndexAdvisorReport struct {
	Available              bool              `json:"available"`
	Reason                 string            `json:"reason,omitempty"`
	MissingExtensions      []string          `json:"missing_extensions"`
	MinFilter              int               `json:"min_filter"`
	MinSelectivity         int               `json:"min_selectivity"`
	CostEstimatesAvailable bool              `json:"cost_estimates_available"`
	SizeEstimatesAvailable bool              `json:"size_estimates_available"`
	Suggestions            []IndexSuggestion `json:"suggestions"`
}

// IndexSuggestion is one suggested index.
type IndexSuggestion struct {
	DDL                       string   `json:"ddl"`
	Table                     string   `json:"table,omitempty"`
	IndexMethod               string   `json:"index_method,omitempty"`
	EstimatedSizeBytes        *int64   `json:"estimated_size_bytes,omitempty"`
	EstimatedCostReductionPct *float64 `json:"estimated_cost_reduction_pct,omitempty" minimum:"0" maximum:"100"`
	QueryID                   *int64   `json:"query_id,omitempty"`
}

// installed lists which of names are installed in the database (with
// their schemas) and which the server offers.
func installed(ctx context.Context, q schema.Querier, names []string) (have map[string]string, offered map[string]bool, err error) {
	have, offered = map[string]string{}, map[string]bool{}
	rows, err := q.Query(ctx, `SELECT a.name::text, n.nspname::text
		FROM pg_catalog.pg_available_extensions a
		LEFT JOIN pg_catalog.pg_extension e ON e.extname OPERATOR(pg_catalog.=) a.name
		LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
		WHERE a.name OPERATOR(pg_catalog.=) ANY ($1::text[])`, names)
	if err != nil {
		return nil, nil, err
	}
	var name string
	var ns *string
	_, err = pgx.ForEachRow(rows, []any{&name, &ns}, func() error {
		offered[name] = true
		if ns != nil {
			have[name] = *ns
		}
		return nil
	})
	return have, offered, err
}

var advisedDDL = regexp.MustCompile(`^CREATE INDEX ON (.+) USING (\S+) \((.*)\)$`)

// Indexes asks pg_qualstats for index suggestions and hypopg for their
// sizes. tx should be a transaction (it changes search_path locally and
// creates backend-local hypothetical indexes, both gone at its end).
func Indexes(ctx context.Context, tx pgx.Tx, minFilter, minSelectivity int) (*IndexAdvisorReport, error) {
	if minFilter <= 0 {
		minFilter = DefaultMinFilter
	}
	if minSelectivity <= 0 {
		minSelectivity = DefaultMinSelectivity
	}
	r := &IndexAdvisorReport{MinFilter: minFilter, MinSelectivity: minSelectivity, MissingExtensions: []string{}, Suggestions: []IndexSuggestion{}}
	have, offered, err := installed(ctx, tx, []string{"pg_qualstats", "hypopg"})
	if err != nil {
		return nil, fmt.Errorf("while listing extensions: %w", err)
	}
	for _, e := range []string{"pg_qualstats", "hypopg"} {
		if _, ok := have[e]; !ok && offered[e] {
			r.MissingExtensions = append(r.MissingExtensions, e)
		}
	}
	qs, ok := have["pg_qualstats"]
	if !ok {
		if offered["pg_qualstats"] {
			r.Reason = "the pg_qualstats extension is not enabled in this database; enable pg_qualstats (and hypopg for size estimates)"
		} else {
			r.Reason = "this server does not offer the pg_qualstats extension"
		}
		return r, nil
	}
	// The extensions' SQL functions call each other unqualified: put their
	// schemas after pg_catalog for this transaction only.
	path := []string{"pg_catalog", qs}
	if hs, ok := have["hypopg"]; ok && !slices.Contains(path, hs) {
		path = append(path, hs)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('search_path', $1, true)`,
		strings.Join(append(quoteAll(path), "pg_temp"), ", ")); err != nil {
		return nil, err
	}
	var raw struct {
		Indexes []string `json:"indexes"`
	}
	if _, err := tx.Exec(ctx, `SAVEPOINT advisor`); err != nil {
		return nil, err
	}
	err = tx.QueryRow(ctx, `SELECT pg_qualstats_index_advisor(min_filter => $1, min_selectivity => $2)::pg_catalog.jsonb`,
		minFilter, minSelectivity).Scan(&raw)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Typically: the library is not in shared_preload_libraries.
		r.Reason = "pg_qualstats cannot collect statistics on this server: " + pgErr.Message
		_, _ = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT advisor`)
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while asking pg_qualstats: %w", err)
	}
	r.Available = true
	_, r.SizeEstimatesAvailable = have["hypopg"]
	seen := map[string]bool{}
	for _, ddl := range raw.Indexes {
		if seen[ddl] {
			continue // one column filtered by several query shapes
		}
		seen[ddl] = true
		s := IndexSuggestion{DDL: ddl}
		if m := advisedDDL.FindStringSubmatch(ddl); m != nil {
			s.DDL = "CREATE INDEX CONCURRENTLY ON " + m[1] + " USING " + m[2] + " (" + m[3] + ");"
			s.Table, s.IndexMethod = m[1], m[2]
		}
		if r.SizeEstimatesAvailable {
			h, err := hypothetical(ctx, tx, ddl)
			if err != nil {
				return nil, err
			}
			if h != nil {
				s.EstimatedSizeBytes = &h.size
				if s.QueryID, err = topQuery(ctx, tx, h.relid, h.firstAtt); err != nil {
					return nil, err
				}
			}
		}
		r.Suggestions = append(r.Suggestions, s)
	}
	if r.SizeEstimatesAvailable {
		if _, err := tx.Exec(ctx, `SELECT hypopg_reset()`); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return out
}

// hypo is what hypopg says about a suggested index.
type hypo struct {
	size     int64
	relid    int64
	firstAtt int16
}

// hypothetical asks hypopg to model the index ddl would build: its size,
// table and leading column. nil when hypopg cannot model it (the
// suggestion stays, unsized).
func hypothetical(ctx context.Context, tx pgx.Tx, ddl string) (*hypo, error) {
	if _, err := tx.Exec(ctx, `SAVEPOINT advisor_size`); err != nil {
		return nil, err
	}
	var h hypo
	err := tx.QueryRow(ctx, `SELECT hypopg_relation_size(h.indexrelid), x.indrelid::pg_catalog.int8, (x.indkey::pg_catalog.int2[])[0]
		FROM hypopg_create_index($1) h JOIN hypopg() x ON x.indexrelid OPERATOR(pg_catalog.=) h.indexrelid`, ddl).
		Scan(&h.size, &h.relid, &h.firstAtt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT advisor_size`); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while sizing %s: %w", ddl, err)
	}
	return &h, nil
}

// topQuery is the query (pg_stat_statements id) that most often filtered
// on the index's leading column, if pg_qualstats knows one.
func topQuery(ctx context.Context, tx pgx.Tx, relid int64, att int16) (*int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT q.queryid FROM pg_qualstats() q
		JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) q.dbid
		WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() AND q.eval_type OPERATOR(pg_catalog.=) 'f'
		  AND q.queryid IS NOT NULL AND q.queryid OPERATOR(pg_catalog.<>) 0
		  AND COALESCE(q.lrelid, q.rrelid)::pg_catalog.int8 OPERATOR(pg_catalog.=) $1
		  AND COALESCE(q.lattnum, q.rattnum) OPERATOR(pg_catalog.=) $2
		GROUP BY q.queryid ORDER BY pg_catalog.sum(q.execution_count) DESC, q.queryid LIMIT 1`, relid, att).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while finding the query behind a suggestion: %w", err)
	}
	return &id, nil
}
