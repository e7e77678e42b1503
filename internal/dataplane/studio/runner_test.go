package studio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

var tenantSeq atomic.Int64

// tenant creates a login role owning a fresh database, as provisioning
// does, and returns its DSN and a superuser connection to that database.
func tenant(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	c := clustertest.Shared(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("studio_t%d_%d", time.Now().UnixNano()%1e6, tenantSeq.Add(1))
	for _, sql := range []string{
		"CREATE ROLE " + name + " LOGIN PASSWORD 'pw_" + name + "' NOSUPERUSER NOCREATEDB NOCREATEROLE",
		"CREATE DATABASE " + name + " OWNER " + name,
		"REVOKE CONNECT ON DATABASE " + name + " FROM PUBLIC",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(c.AdminDSNFor(name))
	u.User = url.UserPassword(name, "pw_"+name)
	su, err := pgx.Connect(ctx, c.AdminDSNFor(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })
	return u.String(), su
}

// run runs one request on a fresh pool and decodes the rows.
func run(t *testing.T, pools *Pools, dsn string, r *Runner, req Request) (*Result, []map[string]any, error) {
	t.Helper()
	var res *Result
	err := pools.With(context.Background(), dsn, func(c *pgconn.PgConn) (bool, error) {
		var ok bool
		var err error
		res, ok, err = r.Run(context.Background(), c, req)
		return ok, err
	})
	if err != nil {
		return nil, nil, err
	}
	rows := decodeRows(t, res)
	return res, rows, nil
}

func decodeRows(t *testing.T, res *Result) []map[string]any {
	var rows []map[string]any
	for _, raw := range res.Rows {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("row %s is not JSON: %v", raw, err)
		}
		rows = append(rows, m)
	}
	return rows
}

func mustRun(t *testing.T, pools *Pools, dsn string, req Request) (*Result, []map[string]any) {
	t.Helper()
	res, rows, err := run(t, pools, dsn, &Runner{}, req)
	if err != nil {
		t.Fatalf("%q: %v", req.SQL, err)
	}
	return res, rows
}

func wantError(t *testing.T, err error, state, msgPart string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an SQL error %s", err, state)
	}
	if e.SQLState != state || !strings.Contains(e.Error(), msgPart) {
		t.Fatalf("got %q (SQLSTATE %s), want SQLSTATE %s containing %q", e.Error(), e.SQLState, state, msgPart)
	}
	return e
}

func TestValueEncoding(t *testing.T) {
	dsn, _ := tenant(t)
	pools := NewPools()
	defer pools.Close()
	mustRun(t, pools, dsn, Request{SQL: `CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE DOMAIN big AS bigint;
		CREATE TABLE v (id int PRIMARY KEY, m mood, ms mood[], b big)`})
	res, rows := mustRun(t, pools, dsn, Request{SQL: `SET TimeZone = 'Asia/Kolkata';
		SELECT 1::int2 AS i2, 2147483647::int4 AS i4, 9007199254740991::int8 AS small8, 9007199254740993::int8 AS big8,
		-9007199254740993::int8 AS neg8, 1.10::numeric AS num, 12345678901234567890.000000000001 AS longnum,
		1.5::float8 AS f8, 'NaN'::float8 AS nan, '-Infinity'::float4 AS ninf, true AS t, false AS f,
		'{"a": [1, 2.5, null], "b": "x"}'::json AS j, '{"z": 1}'::jsonb AS jb, '"str"'::jsonb AS jstr,
		'2024-01-02 03:04:05.123456+02'::timestamptz AS tstz, 'infinity'::timestamptz AS tinf,
		'2024-01-02 03:04:05.5'::timestamp AS ts, '2024-02-29'::date AS d, '13:14:15'::time AS tm,
		'\xdeadbeef'::bytea AS bin, '{{1,2},{3,NULL}}'::int[] AS arr2, ARRAY['a,b', 'say "hi"', NULL, 'back\slash', ''] AS tarr,
		ARRAY[9007199254740993, 1]::int8[] AS barr, ARRAY[1.50]::numeric[] AS narr, ARRAY['2024-01-01 00:00:00+00']::timestamptz[] AS tsarr,
		ARRAY['{"k": true}']::jsonb[] AS jarr, 'ok'::mood AS enum, ARRAY['ok','sad']::mood[] AS enumarr, 7::big AS dom,
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '1 day 02:00:00'::interval AS iv, NULL::text AS nul,
		'[1,5)'::int4range AS rng, 1 AS dup, 2 AS dup, 'line1' || chr(10) || 'tab' || chr(9) || 'é€' AS esc`})
	wantCols := "i2 i4 small8 big8 neg8 num longnum f8 nan ninf t f j jb jstr tstz tinf ts d tm bin arr2 tarr barr narr tsarr jarr enum enumarr dom u iv nul rng dup dup_2 esc"
	if got := strings.Join(res.Columns, " "); got != wantCols {
		t.Fatalf("columns %q", got)
	}
	if res.RowCount != 1 || res.Truncated || len(rows) != 1 {
		t.Fatalf("row_count %d truncated %v rows %d", res.RowCount, res.Truncated, len(rows))
	}
	// The raw row keeps column order; compare it exactly.
	want := `{"i2":1,"i4":2147483647,"small8":9007199254740991,"big8":"9007199254740993","neg8":"-9007199254740993",` +
		`"num":"1.10","longnum":"12345678901234567890.000000000001","f8":1.5,"nan":"NaN","ninf":"-Infinity","t":true,"f":false,` +
		`"j":{"a": [1, 2.5, null], "b": "x"},"jb":{"z": 1},"jstr":"str",` +
		`"tstz":"2024-01-02T01:04:05.123456Z","tinf":"infinity","ts":"2024-01-02T03:04:05.5","d":"2024-02-29","tm":"13:14:15",` +
		`"bin":"\\xdeadbeef","arr2":[[1,2],[3,null]],"tarr":["a,b","say \"hi\"",null,"back\\slash",""],` +
		`"barr":["9007199254740993",1],"narr":["1.50"],"tsarr":["2024-01-01T00:00:00Z"],"jarr":[{"k": true}],` +
		`"enum":"ok","enumarr":["ok","sad"],"dom":7,"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","iv":"1 day 02:00:00",` +
		`"nul":null,"rng":"[1,5)","dup":1,"dup_2":2,"esc":"line1\ntab\té€"}`
	if string(res.Rows[0]) != want {
		t.Errorf("row\n got %s\nwant %s", res.Rows[0], want)
	}
	// Every row is valid JSON as a whole response too.
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

func TestStatementsTransactionAndRowCap(t *testing.T) {
	dsn, su := tenant(t)
	ctx := context.Background()
	pools := NewPools()
	defer pools.Close()
	res, rows := mustRun(t, pools, dsn, Request{SQL: "CREATE TABLE t (id int PRIMARY KEY, a text); INSERT INTO t SELECT g, 'r' || g FROM generate_series(1, 5) g; SELECT id, a FROM t ORDER BY id DESC"})
	if len(rows) != 5 || rows[0]["id"] != json.Number("5") || rows[0]["a"] != "r5" || res.RowCount != 5 || res.Truncated {
		t.Fatalf("last statement's result: %+v %v", rows, res.RowCount)
	}
	if strings.Join(res.Kinds, ",") != "create,insert,select" {
		t.Errorf("kinds %v", res.Kinds)
	}
	res, _ = mustRun(t, pools, dsn, Request{SQL: "UPDATE t SET a = 'u' WHERE id <= 3"})
	if res.RowCount != 3 || len(res.Columns) != 0 || len(res.Rows) != 0 {
		t.Fatalf("update: %+v", res)
	}
	var n int
	if err := su.QueryRow(ctx, "SELECT count(*) FROM t WHERE a = 'u'").Scan(&n); err != nil || n != 3 {
		t.Fatalf("committed update: %d %v", n, err)
	}

	// A failing statement rolls back the ones before it: no partial state.
	_, _, err := run(t, pools, dsn, &Runner{}, Request{SQL: "INSERT INTO t VALUES (100, 'x');\nSELECT * FROM missing"})
	wantError(t, err, "42P01", `relation "missing" does not exist at character 48 (SQLSTATE 42P01)`)
	if err := su.QueryRow(ctx, "SELECT count(*) FROM t WHERE id = 100").Scan(&n); err != nil || n != 0 {
		t.Fatalf("insert of a failed request is visible: %d %v", n, err)
	}

	// Row cap: default 200, max 1000, truncated only when more rows existed.
	for _, c := range []struct{ maxRows, total, want int }{{0, 5000, 200}, {0, 200, 200}, {5000, 5000, 1000}, {1000, 1000, 1000}, {3, 4, 3}} {
		res, rows := mustRun(t, pools, dsn, Request{SQL: fmt.Sprintf("SELECT g FROM generate_series(1, %d) g", c.total), MaxRows: c.maxRows})
		if len(rows) != c.want || res.RowCount != int64(c.want) || res.Truncated != (c.total > c.want) {
			t.Errorf("max_rows %d of %d: %d rows, row_count %d, truncated %v", c.maxRows, c.total, len(rows), res.RowCount, res.Truncated)
		}
		if rows[len(rows)-1]["g"] != json.Number(fmt.Sprint(c.want)) {
			t.Errorf("last row %v", rows[len(rows)-1])
		}
	}
	// A huge result is never read whole: the portal stops at the cap (the
	// join streams 10^9 rows; reading them all would take minutes).
	start := time.Now()
	res, _ = mustRun(t, pools, dsn, Request{SQL: "SELECT a, b FROM generate_series(1, 1000) a, generate_series(1, 1000) b, generate_series(1, 1000) c", MaxRows: 10})
	if !res.Truncated || len(res.Rows) != 10 || time.Since(start) > 2*time.Second {
		t.Errorf("50M rows: truncated %v after %s", res.Truncated, time.Since(start))
	}

	// Errors keep Postgres's message, SQLSTATE and position.
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "SELECT 1; SELECT * FROM t WHERE nope = 1"})
	wantError(t, err, "42703", `column "nope" does not exist at character 33`)
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "SELECT 1;\nselec 2"})
	wantError(t, err, "42601", `syntax error at or near "selec" at character 11`)
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "SELECT $1"})
	if err == nil || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("parameter: %v", err)
	}
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "DELETE FROM t"})
	if err == nil || err.Error() != "refusing DELETE without a WHERE clause; set allow_unqualified_writes to run it" {
		t.Errorf("guard: %v", err)
	}
	res, _ = mustRun(t, pools, dsn, Request{SQL: "DELETE FROM t", AllowUnqualifiedWrites: true})
	if res.RowCount != 5 {
		t.Errorf("allowed delete: %d", res.RowCount)
	}
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "  -- only a comment\n;"})
	if err == nil || err.Error() != `invalid field "query": contains no statement` {
		t.Errorf("comment only: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	dsn, su := tenant(t)
	ctx := context.Background()
	pools := NewPools()
	defer pools.Close()
	mustRun(t, pools, dsn, Request{SQL: "CREATE TABLE t (id int)"})
	for _, sql := range []string{
		"INSERT INTO t VALUES (1)",
		"SET TRANSACTION READ WRITE; INSERT INTO t VALUES (1)",
		"SET transaction_read_only = off; INSERT INTO t VALUES (1)",
		"SET default_transaction_read_only = off; INSERT INTO t VALUES (1)",
	} {
		_, _, err := run(t, pools, dsn, &Runner{}, Request{SQL: sql, ReadOnly: true})
		var e *Error
		if !errors.As(err, &e) || (e.SQLState != "25006" && e.SQLState != "25001") {
			t.Errorf("%q read-only: got %v", sql, err)
		}
	}
	var n int
	if err := su.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("read-only requests wrote %d rows (%v)", n, err)
	}
	_, rows := mustRun(t, pools, dsn, Request{SQL: "SELECT count(*) AS n FROM t", ReadOnly: true})
	if rows[0]["n"] != json.Number("0") {
		t.Errorf("read-only select: %v", rows)
	}
}

// TestCannotEscape proves that a statement cannot leave the request's
// transaction, role, time limit or session.
func TestCannotEscape(t *testing.T) {
	dsn, su := tenant(t)
	ctx := context.Background()
	pools := NewPools()
	defer pools.Close()
	var login string
	if err := su.QueryRow(ctx, "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").Scan(&login); err != nil {
		t.Fatal(err)
	}
	mustRun(t, pools, dsn, Request{SQL: "CREATE TABLE t (id int)"})

	// RESET ROLE lands on the tenant's own login: there is nothing above it.
	_, rows := mustRun(t, pools, dsn, Request{SQL: "RESET ROLE; SELECT current_user AS cu, session_user AS su, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super"})
	if rows[0]["cu"] != login || rows[0]["su"] != login || rows[0]["super"] != false {
		t.Fatalf("after RESET ROLE: %v (login %s)", rows, login)
	}
	// SET ROLE / SESSION AUTHORIZATION to the superuser are refused.
	for _, sql := range []string{"SET ROLE postgres", "SET ROLE " + clustertest.Shared(t).AdminUser(), "SET SESSION AUTHORIZATION " + clustertest.Shared(t).AdminUser()} {
		_, _, err := run(t, pools, dsn, &Runner{}, Request{SQL: sql + "; SELECT 1"})
		var e *Error
		if !errors.As(err, &e) || (e.SQLState != "42501" && e.SQLState != "22023" && e.SQLState != "42704") {
			t.Errorf("%q: got %v", sql, err)
		}
	}
	// COMMIT is refused before anything runs, so the INSERT after it never
	// escapes; so is a COMMIT inside DO (Postgres refuses it in a block).
	_, _, err := run(t, pools, dsn, &Runner{}, Request{SQL: "INSERT INTO t VALUES (1); COMMIT; INSERT INTO t VALUES (2)"})
	if err == nil || !strings.Contains(err.Error(), "transaction control") {
		t.Errorf("COMMIT: %v", err)
	}
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "INSERT INTO t VALUES (3); DO $$BEGIN COMMIT; END$$; INSERT INTO t VALUES (4)"})
	wantError(t, err, "2D000", "invalid transaction termination")
	// Server files and programs are Postgres's to refuse: the login holds
	// no pg_read_server_files and is no superuser.
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "COPY t FROM '/etc/passwd'"})
	wantError(t, err, "42501", "pg_read_server_files")
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "COPY t TO PROGRAM 'id'"})
	wantError(t, err, "42501", "pg_execute_server_program")
	var n int
	if err := su.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows escaped the transaction: %d %v", n, err)
	}
	// SET statement_timeout = 0 does not lift the limit: the request deadline
	// cancels the statement anyway.
	start := time.Now()
	_, _, err = run(t, pools, dsn, &Runner{Timeout: time.Second}, Request{SQL: "SET statement_timeout = 0; SELECT pg_sleep(20)"})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("statement_timeout = 0: %v after %s", err, time.Since(start))
	}
	// Postgres's own statement_timeout is the same limit (408, not 400).
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "SET LOCAL statement_timeout = 200; SELECT pg_sleep(20)"})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("statement_timeout fired by Postgres: %v", err)
	}
	_, _, err = run(t, pools, dsn, &Runner{Timeout: time.Second}, Request{SQL: "SELECT pg_sleep(20)"})
	if !errors.Is(err, ErrTimeout) || (&Runner{Timeout: time.Second}).TimeoutMessage() != "statement timed out after 1s" {
		t.Fatalf("timeout: %v", err)
	}
	// Session state does not outlive a request on a pooled session.
	pools1 := &Pools{pools: map[[32]byte]*entry{}, MaxConns: 1}
	defer pools1.Close()
	mustRun(t, pools1, dsn, Request{SQL: "SET search_path = nowhere; SET ROLE NONE; CREATE TEMP TABLE tt (x int); SELECT pg_advisory_lock(42); PREPARE q AS SELECT 1; LISTEN ch; SELECT 1"})
	_, rows = mustRun(t, pools1, dsn, Request{SQL: "SELECT current_setting('search_path') AS sp, (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory') AS locks, (SELECT count(*) FROM pg_prepared_statements) AS prepared, to_regclass('pg_temp.tt') IS NULL AS no_temp"})
	if rows[0]["sp"] == "nowhere" || rows[0]["locks"] != json.Number("0") || rows[0]["prepared"] != json.Number("1") || rows[0]["no_temp"] != true {
		t.Errorf("session state leaked: %v", rows[0])
	}
}

// TestDisconnectCancels proves a client that goes away stops its statement:
// the backend leaves pg_stat_activity's active list at once.
func TestDisconnectCancels(t *testing.T) {
	dsn, su := tenant(t)
	pools := NewPools()
	defer pools.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
			_, ok, err := (&Runner{}).Run(ctx, c, Request{SQL: "SELECT pg_sleep(60) AS marker_disconnect"})
			return ok, err
		})
	}()
	active := func() int {
		var n int
		if err := su.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%marker_disconnect%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	clustertest.Eventually(t, 10*time.Second, "the statement runs", func() bool { return active() == 1 })
	start := time.Now()
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// pg_sleep(60): stopping well before that proves the cancel; the 15 s
	// bound leaves room for make test's load.
	clustertest.Eventually(t, 15*time.Second, "the backend stops the statement", func() bool { return active() == 0 })
	if time.Since(start) > 15*time.Second {
		t.Fatalf("cancel took %s", time.Since(start))
	}
}

func TestHugeValueIsBounded(t *testing.T) {
	dsn, _ := tenant(t)
	pools := NewPools()
	defer pools.Close()
	res, rows := mustRun(t, pools, dsn, Request{SQL: "SELECT repeat('x', 50 * 1024 * 1024) AS big, 1 AS n FROM generate_series(1, 3)"})
	size := 0
	for _, r := range res.Rows {
		size += len(r)
	}
	if !res.ValuesCut || size > 4*(maxValueBytes+200) || len(rows) != 3 || rows[0]["n"] != json.Number("1") {
		t.Fatalf("cut %v, %d bytes, %d rows", res.ValuesCut, size, len(rows))
	}
	if s := rows[0]["big"].(string); !strings.HasSuffix(s, "… [value cut: 52428800 bytes]") || len(s) < maxValueBytes {
		t.Errorf("cut value ends %q", s[len(s)-40:])
	}
	// Many rows of 1 MiB values stop at the response budget.
	res, rows = mustRun(t, pools, dsn, Request{SQL: "SELECT repeat('y', 1024 * 1024 - 10) AS v FROM generate_series(1, 50)", MaxRows: 50})
	if !res.Truncated || len(rows) > maxResultBytes/(1<<20)+1 {
		t.Errorf("budget: %d rows, truncated %v", len(rows), res.Truncated)
	}
	// A row above the wire limit fails cleanly, and the pool recovers.
	_, _, err := run(t, pools, dsn, &Runner{}, Request{SQL: "SELECT repeat('z', 70 * 1024 * 1024)"})
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("70 MiB row: %v", err)
	}
	_, _, err = run(t, pools, dsn, &Runner{}, Request{SQL: "SELECT repeat('z', 70 * 1024 * 1024); SELECT 1"})
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("70 MiB row in an earlier statement: %v", err)
	}
	_, rows = mustRun(t, pools, dsn, Request{SQL: "SELECT 2 AS two"})
	if rows[0]["two"] != json.Number("2") {
		t.Fatal(rows)
	}
}

func TestTablesAndRows(t *testing.T) {
	dsn, _ := tenant(t)
	pools := NewPools()
	defer pools.Close()
	mustRun(t, pools, dsn, Request{SQL: `CREATE SCHEMA "Shop"; CREATE TABLE "Shop"."Order" (b int, a int, v text, PRIMARY KEY (a, b));
		INSERT INTO "Shop"."Order" SELECT g % 3, g / 3, 'v' || g FROM generate_series(0, 29) g; ANALYZE "Shop"."Order";
		CREATE VIEW public.vw AS SELECT 1 AS x; CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS x;
		CREATE TABLE public.p (id int) PARTITION BY RANGE (id); CREATE TABLE public.nopk (x int)`})
	ctx := context.Background()
	var tables []Table
	err := pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		var err error
		tables, err = ListTables(ctx, c)
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tb := range tables {
		est := "-"
		if tb.EstimatedRows != nil {
			est = fmt.Sprint(*tb.EstimatedRows)
		}
		got = append(got, tb.Schema+"."+tb.Table+":"+tb.Type+":"+est)
	}
	want := "Shop.Order:table:30 public.mv:materialized_view:- public.nopk:table:- public.p:partitioned_table:- public.vw:view:-"
	if strings.Join(got, " ") != want {
		t.Errorf("tables\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	page := func(schema, table string, offset, limit int) (*Result, []map[string]any) {
		var res *Result
		err := pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
			sql, err := RowsQuery(ctx, c, schema, table, offset)
			if err != nil {
				return true, err
			}
			var ok bool
			res, ok, err = (&Runner{}).Run(ctx, c, Request{SQL: sql, MaxRows: limit, ReadOnly: true})
			return ok, err
		})
		if err != nil {
			t.Fatalf("%s.%s: %v", schema, table, err)
		}
		return res, decodeRows(t, res)
	}
	res, rows := page("Shop", "Order", 0, 4)
	if strings.Join(res.Columns, ",") != "b,a,v" || len(rows) != 4 || !res.Truncated {
		t.Fatalf("first page: %v %v", res.Columns, rows)
	}
	// primary key order is (a, b)
	if rows[0]["v"] != "v0" || rows[1]["v"] != "v1" || rows[3]["v"] != "v3" {
		t.Errorf("order: %v", rows)
	}
	res, rows = page("Shop", "Order", 28, 4)
	if len(rows) != 2 || res.Truncated || rows[1]["v"] != "v29" {
		t.Errorf("last page: %v truncated %v", rows, res.Truncated)
	}
	err = pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		_, err := RowsQuery(ctx, c, "shop", "Order", 0) // names are exact, not case-folded
		return true, err
	})
	if !errors.Is(err, ErrNoTable) {
		t.Errorf("unknown table: %v", err)
	}
}
