// Package schemalint runs the schema lint rules of PRODUCT.md §20 against
// one database: catalogue and statistics views only, never table data, in
// the read-only session the caller opened with the tenant's rights.
package schemalint

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/schema"
)

// LintReport is the report of API.md §4.12.
type LintReport struct {
	Findings []LintFinding `json:"findings"`
	Skipped  []string      `json:"skipped" doc:"checks that could not run, each \"<rule>: <reason>\""`
}

// LintFinding is one finding.
type LintFinding struct {
	Rule     string `json:"rule" enum:"missing_primary_key,unindexed_foreign_key,duplicate_index,unused_index,redundant_index,table_bloat"`
	Severity string `json:"severity" enum:"warning,info"`
	Object   string `json:"object"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

// Rules, in report order.
var Rules = []string{"missing_primary_key", "unindexed_foreign_key", "duplicate_index", "unused_index", "redundant_index", "table_bloat"}

// Options tune a run.
type Options struct {
	// Preview: no statistics history, so unused_index and redundant_index
	// are skipped.
	Preview bool
	// MinObservation is how long statistics must cover before unused_index
	// runs (default 7 days).
	MinObservation time.Duration
}

// Bloat thresholds: dead rows over 20 % of at least 10,000 rows.
const (
	bloatMinRows     = 10000
	bloatDeadPercent = 20
)

type rule struct {
	name, severity string
	run            func(ctx context.Context, q schema.Querier) ([]LintFinding, error)
}

// Lint runs every rule that can run and lists the others in Skipped.
func Lint(ctx context.Context, q schema.Querier, o Options) (*LintReport, error) {
	if o.MinObservation == 0 {
		o.MinObservation = 7 * 24 * time.Hour
	}
	r := &LintReport{Findings: []LintFinding{}, Skipped: []string{}}
	rules := []rule{
		{"missing_primary_key", "warning", missingPrimaryKey},
		{"unindexed_foreign_key", "warning", unindexedForeignKeys},
		{"duplicate_index", "warning", duplicateIndexes},
		{"unused_index", "info", nil},
		{"redundant_index", "info", redundantIndexes},
		{"table_bloat", "warning", tableBloat},
	}
	for _, ru := range rules {
		run := ru.run
		switch {
		case o.Preview && (ru.name == "unused_index" || ru.name == "redundant_index"):
			r.Skipped = append(r.Skipped, ru.name+": previews have no statistics history")
			continue
		case ru.name == "unused_index":
			window, err := ObservationWindow(ctx, q)
			if err != nil {
				return nil, err
			}
			if window < o.MinObservation {
				r.Skipped = append(r.Skipped, fmt.Sprintf("unused_index: statistics cover %s; at least %s are needed",
					RoundDuration(window), RoundDuration(o.MinObservation)))
				continue
			}
			run = unusedIndexes
		}
		found, err := run(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("lint %s: %w", ru.name, err)
		}
		sort.SliceStable(found, func(i, j int) bool { return found[i].Object < found[j].Object })
		for _, f := range found {
			f.Rule, f.Severity = ru.name, ru.severity
			r.Findings = append(r.Findings, f)
		}
	}
	return r, nil
}

// RoundDuration renders a statistics window for people: whole days from
// two days on, else seconds' precision.
func RoundDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Second).String()
}

// ObservationWindow is how long the database's statistics have been
// collecting: since their last reset, and at most since the server started
// (a crash discards them).
func ObservationWindow(ctx context.Context, q schema.Querier) (time.Duration, error) {
	var secs float64
	err := q.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM pg_catalog.now() OPERATOR(pg_catalog.-) GREATEST(
		  (SELECT d.stats_reset FROM pg_catalog.pg_stat_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()),
		  pg_catalog.pg_postmaster_start_time()))::pg_catalog.float8`).Scan(&secs)
	if err != nil {
		return 0, fmt.Errorf("while reading the statistics window: %w", err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// StatsResetAt is the database's last statistics reset (zero: never).
func StatsResetAt(ctx context.Context, q schema.Querier) (time.Time, error) {
	var t *time.Time
	err := q.QueryRow(ctx, `SELECT d.stats_reset FROM pg_catalog.pg_stat_database d
		WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()`).Scan(&t)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// qname quotes schema.name for SQL in fixes.
func qname(schemaName, name string) string {
	return pgx.Identifier{schemaName, name}.Sanitize()
}

func quoteCols(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}
