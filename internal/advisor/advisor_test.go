package advisor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/advisor"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/schema/schematest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

const workloadTable = `
CREATE TABLE adv_orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, status text NOT NULL, note text);
INSERT INTO adv_orders SELECT g, g % 5000, CASE WHEN g % 2 = 0 THEN 'open' ELSE 'closed' END, 'n' || g
  FROM generate_series(1, 100000) g;
ANALYZE adv_orders;`

func indexes(t *testing.T, conn *pgx.Conn, minFilter, minSel int) *advisor.IndexAdvisorReport {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	r, err := advisor.Indexes(ctx, tx, minFilter, minSel)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIndexAdvisorWorkload: a filtered sequential scan repeated by the
// application gets exactly the index it needs, sized by hypopg; a
// predicate that filters nothing gets none.
func TestIndexAdvisorWorkload(t *testing.T) {
	t.Parallel()
	tn := schematest.New(t, "pg_qualstats", "hypopg")
	tn.Exec(t, workloadTable)
	app := tn.Connect(t)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		var n int
		if err := app.QueryRow(ctx, `SELECT count(*) FROM adv_orders WHERE customer_id = $1`, i).Scan(&n); err != nil || n != 20 {
			t.Fatalf("workload: %d %v", n, err)
		}
		if err := app.QueryRow(ctx, `SELECT count(*) FROM adv_orders WHERE note <> 'x'`).Scan(&n); err != nil || n != 100000 {
			t.Fatalf("workload: %d %v", n, err)
		}
	}
	r := indexes(t, tn.Connect(t), 0, 0)
	if !r.Available || r.Reason != "" || len(r.MissingExtensions) != 0 || !r.SizeEstimatesAvailable || r.CostEstimatesAvailable ||
		r.MinFilter != 1000 || r.MinSelectivity != 30 {
		t.Fatalf("report %+v", r)
	}
	if len(r.Suggestions) != 1 {
		t.Fatalf("suggestions %+v", r.Suggestions)
	}
	s := r.Suggestions[0]
	if s.DDL != "CREATE INDEX CONCURRENTLY ON public.adv_orders USING btree (customer_id);" || s.Table != "public.adv_orders" || s.IndexMethod != "btree" {
		t.Fatalf("suggestion %+v", s)
	}
	// A btree on 100,000 integers is about 2.2 MB; hypopg's estimate must be in range.
	if s.EstimatedSizeBytes == nil || *s.EstimatedSizeBytes < 1<<20 || *s.EstimatedSizeBytes > 8<<20 {
		t.Fatalf("estimated size %v", s.EstimatedSizeBytes)
	}
	// The query behind it is the application's (its id as EXPLAIN VERBOSE
	// and pg_stat_statements show it).
	var explain string
	rows, err := app.Query(ctx, `EXPLAIN (VERBOSE) SELECT count(*) FROM adv_orders WHERE customer_id = $1`, 1)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		explain += line + "\n"
	}
	rows.Close()
	if s.QueryID == nil || !strings.Contains(explain, fmt.Sprintf("Query Identifier: %d\n", *s.QueryID)) {
		t.Fatalf("query id %v, plan:\n%s", s.QueryID, explain)
	}
	// The suggestion really helps: with the index, the planner stops scanning the table.
	tn.Exec(t, strings.Replace(s.DDL, " CONCURRENTLY", "", 1))
	var plan string
	if err := app.QueryRow(ctx, `EXPLAIN (FORMAT TEXT) SELECT count(*) FROM adv_orders WHERE customer_id = 7`).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan, "Seq Scan") {
		t.Fatalf("plan after the suggested index: %s", plan)
	}
	// Higher thresholds than the workload reached: nothing to suggest.
	if r := indexes(t, tn.Connect(t), 1000000, 0); !r.Available || len(r.Suggestions) != 0 || r.MinFilter != 1000000 {
		t.Fatalf("high min_filter %+v", r)
	}
}

// TestIndexAdvisorUnavailable: without the extensions the report says why
// and names what the database could enable.
func TestIndexAdvisorUnavailable(t *testing.T) {
	t.Parallel()
	none := schematest.New(t)
	r := indexes(t, none.Connect(t), 0, 0)
	if r.Available || !strings.Contains(r.Reason, "pg_qualstats") || !slices.Equal(r.MissingExtensions, []string{"pg_qualstats", "hypopg"}) ||
		r.Suggestions == nil || len(r.Suggestions) != 0 {
		t.Fatalf("no extensions: %+v", r)
	}
	// pg_qualstats without hypopg: suggestions, but no sizes.
	only := schematest.New(t, "pg_qualstats")
	only.Exec(t, workloadTable)
	app := only.Connect(t)
	for i := 0; i < 5; i++ {
		if _, err := app.Exec(context.Background(), `SELECT count(*) FROM adv_orders WHERE customer_id = 3`); err != nil {
			t.Fatal(err)
		}
	}
	r = indexes(t, only.Connect(t), 0, 0)
	if !r.Available || r.SizeEstimatesAvailable || !slices.Equal(r.MissingExtensions, []string{"hypopg"}) || len(r.Suggestions) != 1 ||
		r.Suggestions[0].EstimatedSizeBytes != nil {
		t.Fatalf("no hypopg: %+v", r)
	}
}

func TestIndexHygiene(t *testing.T) {
	t.Parallel()
	tn := schematest.New(t)
	tn.Exec(t, workloadTable+`
		CREATE INDEX adv_note ON adv_orders (note);
		CREATE INDEX adv_note_id ON adv_orders (note, id);
		CREATE UNIQUE INDEX adv_id_note_unique ON adv_orders (id, note);
		CREATE INDEX adv_status ON adv_orders (status); -- deduplicated: under 1 MiB
		CREATE INDEX adv_customer ON adv_orders (customer_id);
		CREATE TABLE small (id int);
		CREATE INDEX small_id ON small (id);`)
	conn := tn.Connect(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off; SELECT count(*) FROM adv_orders WHERE customer_id = 3; RESET enable_seqscan`); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, "index statistics", func() (bool, error) {
		_, _ = conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		var scans int64
		err := conn.QueryRow(ctx, `SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'adv_customer'`).Scan(&scans)
		return scans > 0, err
	})

	r, err := advisor.Hygiene(ctx, conn, advisor.HygieneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Available || !strings.HasSuffix(r.Reason, "index hygiene needs at least 7 days") || r.MinIndexSizeBytes != 1<<20 || len(r.UnusedIndexes) != 0 ||
		r.ObservationWindowSeconds < 0 || r.ObservationWindowSeconds > 7*24*3600 {
		t.Fatalf("young statistics: %+v", r)
	}

	r, err = advisor.Hygiene(ctx, conn, advisor.HygieneOptions{MinObservation: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var unused []string
	for _, u := range r.UnusedIndexes {
		unused = append(unused, u.Index)
		if u.DropStatement != `DROP INDEX CONCURRENTLY "public"."`+u.Index+`";` || u.SizeBytes < 1<<20 || u.IndexScans != 0 || !strings.HasPrefix(u.Definition, "CREATE INDEX") {
			t.Errorf("unused %+v", u)
		}
	}
	// Not the primary key, not the unique index, not the used one, not the small ones.
	if !slices.Equal(unused, []string{"adv_note", "adv_note_id"}) {
		t.Fatalf("unused %v", unused)
	}
	if len(r.RedundantIndexes) != 1 || r.RedundantIndexes[0].Index != "adv_note" || r.RedundantIndexes[0].CoveredBy != "adv_note_id" {
		t.Fatalf("redundant %+v", r.RedundantIndexes)
	}
	if want := r.UnusedIndexes[0].SizeBytes + r.UnusedIndexes[1].SizeBytes; !r.Available || r.ReclaimableBytes != want {
		t.Fatalf("reclaimable %d, want %d", r.ReclaimableBytes, want)
	}
}
