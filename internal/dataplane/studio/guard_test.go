package studio

import (
	"errors"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	cases := []struct {
		sql     string
		refused string // substring of the refusal, "" = allowed
	}{
		{"DELETE FROM t", "refusing DELETE without a WHERE clause; set allow_unqualified_writes to run it"},
		{"delete from t where id = 1", ""},
		{"UPDATE t SET a = 1", "refusing UPDATE without a WHERE clause"},
		{"UPDATE t SET a = 1 WHERE id = 2", ""},
		{"UPDATE t SET a = 1 /* WHERE id = 1 */", "refusing UPDATE"},
		{"UPDATE t SET a = 1 -- WHERE id = 1", "refusing UPDATE"},
		{"UPDATE t SET a = 'x WHERE id = 1'", "refusing UPDATE"},
		{"UPDATE t SET a = $$ WHERE true $$", "refusing UPDATE"},
		{"DELETE FROM \"where\"", "refusing DELETE"},
		{"WITH x AS (SELECT id FROM t WHERE a = 1) DELETE FROM t", "refusing DELETE"},
		{"WITH x AS (SELECT id FROM t WHERE a = 1) DELETE FROM t WHERE id IN (SELECT id FROM x)", ""},
		{"UPDATE t SET a = (SELECT 1 FROM u WHERE u.id = 3)", "refusing UPDATE"},
		{"DELETE FROM t USING (SELECT 1 WHERE true) s", "refusing DELETE"},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "refusing DELETE"},
		{"WITH d AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT * FROM d", ""},
		{"EXPLAIN ANALYZE DELETE FROM t", "refusing DELETE"},
		{"PREPARE p AS UPDATE t SET a = 1", "refusing UPDATE"},
		{"SELECT 1; DELETE FROM t", "refusing DELETE"},
		{"TRUNCATE t", "refusing TRUNCATE; set allow_unqualified_writes to run it"},
		{"truncate table t, u cascade", "refusing TRUNCATE"},
		{"SELECT 'DELETE FROM t'", ""},
		{"INSERT INTO t VALUES (1)", ""},
		{"COMMIT", "transaction control statements"},
		{"SELECT 1; COMMIT; DELETE FROM t WHERE true", "transaction control statements"},
		{"BEGIN", "transaction control statements"},
		{"ROLLBACK", "transaction control statements"},
		{"END", "transaction control statements"},
		{"PREPARE TRANSACTION 'x'", "transaction control statements"},
		{"SAVEPOINT a; ROLLBACK TO SAVEPOINT a; RELEASE a", ""},
		{"COPY t FROM STDIN", "COPY … FROM STDIN / TO STDOUT"},
		{"COPY (SELECT 1) TO STDOUT", "COPY … FROM STDIN / TO STDOUT"},
		{"COPY t FROM '/etc/passwd'", ""}, // Postgres refuses it for lack of pg_read_server_files (runner_test)
	}
	for _, c := range cases {
		_, tree, err := Parse(c.sql)
		if err != nil {
			t.Fatalf("%q: parse: %v", c.sql, err)
		}
		err = Check(tree, false)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%q: refused (%v), want allowed", c.sql, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%q: got %v, want refusal containing %q", c.sql, err, c.refused)
		}
		// allow_unqualified_writes lifts the write guard, never the
		// transaction or COPY rules.
		err = Check(tree, true)
		if (strings.HasPrefix(c.refused, "transaction") || strings.HasPrefix(c.refused, "COPY")) != (err != nil) {
			t.Errorf("%q with allow_unqualified_writes: got %v", c.sql, err)
		}
	}
}

func TestParseSplitsAndReportsSyntaxErrors(t *testing.T) {
	stmts, _, err := Parse("select 1;\n  select 'é'; update t set a = 1 where b")
	if err != nil {
		t.Fatal(err)
	}
	want := []Statement{{SQL: "select 1", Offset: 0, Kind: "select"}, {SQL: "select 'é'", Offset: 12, Kind: "select"}, {SQL: "update t set a = 1 where b", Offset: 24, Kind: "update"}}
	if len(stmts) != len(want) {
		t.Fatalf("got %d statements: %+v", len(stmts), stmts)
	}
	for i := range want {
		if stmts[i] != want[i] {
			t.Errorf("statement %d: got %+v, want %+v", i, stmts[i], want[i])
		}
	}
	_, _, err = Parse("select 1; selec 2")
	var e *Error
	if !errors.As(err, &e) || e.SQLState != "42601" || e.Position != 11 || e.Msg != `syntax error at or near "selec"` {
		t.Fatalf("got %#v", err)
	}
	if got := e.Error(); got != `syntax error at or near "selec" at character 11 (SQLSTATE 42601)` {
		t.Errorf("message %q", got)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]Request{
		`invalid field "query": must not be empty`:                           {SQL: "  \n"},
		`invalid field "query": 20001 characters is over the limit of 20000`: {SQL: strings.Repeat("é", 20001)},
		`invalid field "max_rows": must not be negative`:                     {SQL: "select 1", MaxRows: -1},
		"read_only and allow_unqualified_writes cannot be used together":     {SQL: "select 1", ReadOnly: true, AllowUnqualifiedWrites: true},
	}
	for want, r := range cases {
		if err := r.Validate(); err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	ok := Request{SQL: strings.Repeat("é", 20000), MaxRows: 5000}
	if err := ok.Validate(); err != nil {
		t.Errorf("20,000 characters: %v", err)
	}
}
