package schemalint_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/schema/schematest"
	"github.com/capydb/capydb/internal/schemalint"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// fixture has, for every rule, one object that triggers it (bad_*) and one
// close to it that must not (good_*).
const fixture = `
CREATE TABLE good_pk (id bigint PRIMARY KEY, code text, other text);
CREATE TABLE bad_nopk (id bigint, note text);

CREATE TABLE good_child (id bigint PRIMARY KEY, parent bigint REFERENCES good_pk (id));
CREATE INDEX good_child_parent_idx ON good_child (parent);
CREATE TABLE bad_child (id bigint PRIMARY KEY, parent bigint REFERENCES good_pk (id));
CREATE TABLE comp_parent (a int, b int, PRIMARY KEY (a, b));
CREATE TABLE good_comp_child (id int PRIMARY KEY, a int, b int, FOREIGN KEY (a, b) REFERENCES comp_parent (a, b));
CREATE INDEX good_comp_child_ba ON good_comp_child (b, a, id);
CREATE TABLE bad_comp_child (id int PRIMARY KEY, a int, b int, FOREIGN KEY (a, b) REFERENCES comp_parent (a, b));
CREATE INDEX bad_comp_child_a_id ON bad_comp_child (a, id, b);

CREATE INDEX good_pk_code_idx ON good_pk (code);
CREATE INDEX bad_pk_code_dup ON good_pk (code);
CREATE INDEX good_pk_code_lower ON good_pk (lower(code));
CREATE INDEX good_pk_other_desc ON good_pk (other DESC);
CREATE INDEX good_pk_other_asc ON good_pk (other);

CREATE TABLE red (a int, b int, c int);
CREATE INDEX bad_red_a ON red (a);
CREATE INDEX red_a_b ON red (a, b);
CREATE INDEX good_red_c ON red (c);
CREATE INDEX red_b_c ON red (b, c);

CREATE TABLE bad_bloat (id int) WITH (autovacuum_enabled = false);
INSERT INTO bad_bloat SELECT g FROM generate_series(1, 12000) g;
DELETE FROM bad_bloat WHERE id <= 5000;
CREATE TABLE good_bloat (id int) WITH (autovacuum_enabled = false);
INSERT INTO good_bloat SELECT g FROM generate_series(1, 12000) g;
DELETE FROM good_bloat WHERE id <= 100;
CREATE TABLE good_small (id int) WITH (autovacuum_enabled = false);
INSERT INTO good_small SELECT g FROM generate_series(1, 1000) g;
DELETE FROM good_small WHERE id <= 900;
`

func lint(t *testing.T, conn *pgx.Conn, o schemalint.Options) *schemalint.LintReport {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	r, err := schemalint.Lint(ctx, tx, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func findings(r *schemalint.LintReport) map[string][]string {
	out := map[string][]string{}
	for _, f := range r.Findings {
		out[f.Rule] = append(out[f.Rule], f.Object)
	}
	return out
}

func TestLintRules(t *testing.T) {
	t.Parallel()
	tn := schematest.New(t)
	tn.Exec(t, fixture)
	conn := tn.Connect(t)
	ctx := context.Background()
	// Use good_pk_code_idx once and wait for the statistics to show it.
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off; SELECT * FROM good_pk WHERE code = 'x'; SELECT * FROM good_pk WHERE other = 'x';
		SELECT * FROM good_pk WHERE lower(code) = 'x'; SELECT * FROM red WHERE a = 1 AND b = 2; SELECT * FROM red WHERE b = 1 AND c = 2;
		SELECT * FROM good_pk WHERE other = 'x' ORDER BY other DESC; RESET enable_seqscan`); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, "table and index statistics", func() (bool, error) {
		_, _ = conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		var dead, scans int64
		err := conn.QueryRow(ctx, `SELECT (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'bad_bloat'),
			(SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'red_b_c')`).Scan(&dead, &scans)
		return dead == 5000 && scans > 0, err
	})

	// Projects: statistics cover less than 7 days, so unused_index is skipped.
	r := lint(t, conn, schemalint.Options{})
	got := findings(r)
	want := map[string][]string{
		"missing_primary_key":   {"public.bad_bloat", "public.bad_nopk", "public.good_bloat", "public.good_small", "public.red"},
		"unindexed_foreign_key": {"public.bad_child.bad_child_parent_fkey", "public.bad_comp_child.bad_comp_child_a_b_fkey"},
		"duplicate_index":       {"public.bad_pk_code_dup"},
		"redundant_index":       {"public.bad_red_a"},
		"table_bloat":           {"public.bad_bloat"},
	}
	for rule, objs := range want {
		if !slices.Equal(got[rule], objs) {
			t.Errorf("%s: got %v, want %v", rule, got[rule], objs)
		}
	}
	if len(got["unused_index"]) != 0 || len(r.Skipped) != 1 || !strings.HasPrefix(r.Skipped[0], "unused_index: statistics cover ") {
		t.Fatalf("skipped %q, unused %v", r.Skipped, got["unused_index"])
	}
	for _, f := range r.Findings {
		wantSev := "warning"
		if f.Rule == "unused_index" || f.Rule == "redundant_index" {
			wantSev = "info"
		}
		if f.Severity != wantSev || f.Message == "" || f.Fix == "" {
			t.Errorf("finding %+v", f)
		}
		if f.Rule == "unindexed_foreign_key" && f.Object == "public.bad_comp_child.bad_comp_child_a_b_fkey" &&
			f.Fix != `CREATE INDEX CONCURRENTLY ON "public"."bad_comp_child" ("a", "b");` {
			t.Errorf("fix %q", f.Fix)
		}
		if f.Rule == "duplicate_index" && f.Fix != `DROP INDEX CONCURRENTLY "public"."bad_pk_code_dup";` {
			t.Errorf("fix %q", f.Fix)
		}
	}

	// With the window requirement met, unused_index runs: every droppable
	// index without scans, never a primary key or unique index.
	r = lint(t, conn, schemalint.Options{MinObservation: time.Nanosecond})
	got = findings(r)
	if len(r.Skipped) != 0 {
		t.Fatalf("skipped %v", r.Skipped)
	}
	for _, obj := range got["unused_index"] {
		if strings.HasSuffix(obj, "_pkey") || obj == "public.red_b_c" || obj == "public.good_pk_code_lower" {
			t.Errorf("unused_index lists %s", obj)
		}
	}
	if !slices.Contains(got["unused_index"], "public.good_child_parent_idx") {
		t.Errorf("unused_index: %v", got["unused_index"])
	}

	// Previews skip the two history rules.
	r = lint(t, conn, schemalint.Options{Preview: true})
	if !slices.Equal(r.Skipped, []string{"unused_index: previews have no statistics history", "redundant_index: previews have no statistics history"}) {
		t.Fatalf("preview skipped %v", r.Skipped)
	}
	if len(findings(r)["redundant_index"]) != 0 {
		t.Fatal("a preview ran redundant_index")
	}
}
