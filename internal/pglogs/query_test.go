package pglogs_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
)

// TestLogQueries: the search filters (substring, SQLSTATE code and class,
// severity, time range, paging before a cursor) select exactly the
// database's matching lines.
func TestLogQueries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := storetest.ControlDB(t, 2)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := func(v string) *string { return &v }
	db, other := "db_one", "db_two"
	lines := []*store.LogLine{
		{Database: &db, LoggedAt: t0, Severity: "error", SQLState: s("23505"), Message: "duplicate KEY value"},
		{Database: &db, LoggedAt: t0.Add(time.Minute), Severity: "error", SQLState: s("23503"), Message: "foreign key violation"},
		{Database: &db, LoggedAt: t0.Add(2 * time.Minute), Severity: "fatal", SQLState: s("28P01"), Message: "password authentication failed"},
		{Database: &db, LoggedAt: t0.Add(3 * time.Minute), Severity: "log", Message: "duration: 1.2 ms"},
		{Database: &other, LoggedAt: t0, Severity: "error", SQLState: s("23505"), Message: "duplicate key value"},
		{LoggedAt: t0, Severity: "log", Message: "checkpoint starting: time"},
	}
	if err := st.InTx(ctx, func(tx pgx.Tx) error {
		return store.StoreLogLines(ctx, tx, "cl_x", lines, "f.json", 100)
	}); err != nil {
		t.Fatal(err)
	}
	q := func(lq store.LogQuery) []string {
		t.Helper()
		lq.ClusterID, lq.Database, lq.NewestFirst = "cl_x", db, true
		if lq.Limit == 0 {
			lq.Limit = 100
		}
		ls, err := store.QueryLogLines(ctx, st.Pool, lq)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range ls {
			out = append(out, l.Message)
		}
		return out
	}
	expect := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: %q, want %q", what, got, want)
			}
		}
	}
	expect("all", q(store.LogQuery{}), "duration: 1.2 ms", "password authentication failed", "foreign key violation", "duplicate KEY value")
	expect("substring", q(store.LogQuery{Substring: "key"}), "foreign key violation", "duplicate KEY value")
	expect("class 23", q(store.LogQuery{SQLClasses: []string{"23"}}), "foreign key violation", "duplicate KEY value")
	expect("code", q(store.LogQuery{SQLStates: []string{"28P01"}}), "password authentication failed")
	expect("severity", q(store.LogQuery{Severities: []string{"fatal", "log"}}), "duration: 1.2 ms", "password authentication failed")
	expect("range", q(store.LogQuery{Since: t0.Add(30 * time.Second), Until: t0.Add(150 * time.Second)}),
		"password authentication failed", "foreign key violation")
	page := q(store.LogQuery{Limit: 2})
	expect("page 1", page, "duration: 1.2 ms", "password authentication failed")
	all, _ := store.QueryLogLines(ctx, st.Pool, store.LogQuery{ClusterID: "cl_x", Database: db, Limit: 100, NewestFirst: true})
	expect("page 2", q(store.LogQuery{Limit: 2, BeforeID: all[1].ID}), "foreign key violation", "duplicate KEY value")
	if file, off, err := store.LogPosition(ctx, st.Pool, "cl_x"); err != nil || file != "f.json" || off != 100 {
		t.Fatalf("position %q %d %v", file, off, err)
	}
}
