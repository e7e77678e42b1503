package drivertest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// The session-mode port keeps what a client sets up on its connection; the
// transaction-mode port hands a server connection to another client after
// every transaction. The transaction-mode halves run on a tenant whose
// pool has exactly one server connection, so the other client is
// guaranteed to get the same one and the breakage is deterministic.

func connect(t *testing.T, ctx context.Context, tg Target) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, tg.URL(nil))
	if err != nil {
		t.Fatalf("connect to port %d: %v", tg.Port, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// sessionTargets returns the session-mode target (room for 20+ clients)
// and a transaction-mode target with a single server connection.
func sessionTargets(t *testing.T, name string) (session, txOne Target) {
	t.Helper()
	c, tg := tenant(t, name)
	session = tg
	session.Port = c.SessionPort()
	// Connection limit 7: 2 pooled connections, 1 per pgbouncer.
	txOne = tenantLimit(t, c, name+"_one", 7)
	return session, txOne
}

func TestSessionModeKeepsSET(t *testing.T) {
	session, txOne := sessionTargets(t, "drv_set")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a, b := connect(t, ctx, session), connect(t, ctx, session)
	if _, err := a.Exec(ctx, "SET statement_timeout = '4321ms'"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		// Each statement is its own transaction; b's queries in between.
		if got := show(t, ctx, a, "SHOW statement_timeout"); got != "4321ms" {
			t.Fatalf("session mode, statement %d: statement_timeout %q, want 4321ms", i, got)
		}
		if got := show(t, ctx, b, "SHOW statement_timeout"); got == "4321ms" {
			t.Fatal("session mode: another client sees a's SET")
		}
	}

	// Transaction mode: a's SET stays on the server connection, which b
	// gets next (statement_timeout is not a parameter pgbouncer tracks).
	ta, tb := connect(t, ctx, txOne), connect(t, ctx, txOne)
	if _, err := ta.Exec(ctx, "SET statement_timeout = '4321ms'"); err != nil {
		t.Fatal(err)
	}
	if got := show(t, ctx, tb, "SHOW statement_timeout"); got != "4321ms" {
		t.Fatalf("transaction mode: another client saw statement_timeout %q; expected a's SET to leak (4321ms)", got)
	}
	if _, err := tb.Exec(ctx, "RESET statement_timeout"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionModeKeepsHoldCursor(t *testing.T) {
	session, txOne := sessionTargets(t, "drv_cursor")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a, b := connect(t, ctx, session), connect(t, ctx, session)
	if _, err := a.Exec(ctx, "DECLARE c CURSOR WITH HOLD FOR SELECT generate_series(1, 5)::text"); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 5; want++ {
		if _, err := b.Exec(ctx, "SELECT 1"); err != nil { // traffic in between
			t.Fatal(err)
		}
		if got := show(t, ctx, a, "FETCH 1 FROM c"); got != string(rune('0'+want)) {
			t.Fatalf("session mode: FETCH %d got %q", want, got)
		}
	}
	var pgErr *pgconn.PgError
	if _, err := b.Exec(ctx, "FETCH 1 FROM c"); !errors.As(err, &pgErr) || pgErr.Code != "34000" {
		t.Fatalf("session mode: another client fetched from a's cursor: %v", err)
	}

	// Transaction mode: the cursor lives on the shared server connection,
	// so another client reads from it.
	ta, tb := connect(t, ctx, txOne), connect(t, ctx, txOne)
	if _, err := ta.Exec(ctx, "DECLARE c CURSOR WITH HOLD FOR SELECT generate_series(1, 5)::text"); err != nil {
		t.Fatal(err)
	}
	if got := show(t, ctx, tb, "FETCH 1 FROM c"); got != "1" {
		t.Fatalf("transaction mode: another client's FETCH got %q; expected it to read a's cursor", got)
	}
	if _, err := tb.Exec(ctx, "CLOSE c"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionModeKeepsAdvisoryLock(t *testing.T) {
	session, txOne := sessionTargets(t, "drv_lock")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	try := func(conn *pgx.Conn) bool {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(4242)").Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	a, b := connect(t, ctx, session), connect(t, ctx, session)
	if !try(a) {
		t.Fatal("session mode: a could not take the free lock")
	}
	for range 5 {
		if try(b) {
			t.Fatal("session mode: b took the lock a holds")
		}
	}
	if show(t, ctx, a, "SELECT pg_advisory_unlock(4242)::text") != "true" {
		t.Fatal("session mode: a no longer held its lock")
	}
	if !try(b) {
		t.Fatal("session mode: b could not take the released lock")
	}

	// Transaction mode: the lock belongs to the server connection, so the
	// next client on it "takes" the lock a believes it holds.
	ta, tb := connect(t, ctx, txOne), connect(t, ctx, txOne)
	if !try(ta) {
		t.Fatal("transaction mode: a could not take the free lock")
	}
	if !try(tb) {
		t.Fatal("transaction mode: expected b to get a's lock on the shared server connection")
	}
	if _, err := tb.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionModeKeepsListen(t *testing.T) {
	session, txOne := sessionTargets(t, "drv_listen")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	wait := func(conn *pgx.Conn, d time.Duration) (*pgconn.Notification, error) {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return conn.WaitForNotification(wctx)
	}
	a, b := connect(t, ctx, session), connect(t, ctx, session)
	if _, err := a.Exec(ctx, "LISTEN capydb_events"); err != nil {
		t.Fatal(err)
	}
	for i, payload := range []string{"first", "second"} {
		if _, err := b.Exec(ctx, "SELECT pg_notify('capydb_events', $1)", payload); err != nil {
			t.Fatal(err)
		}
		n, err := wait(a, 10*time.Second)
		if err != nil || n.Channel != "capydb_events" || n.Payload != payload {
			t.Fatalf("session mode: notification %d: %+v %v", i, n, err)
		}
	}

	// Transaction mode: a's LISTEN stays on the server connection; the
	// notification goes to whichever client uses it next, never to a.
	ta, tb := connect(t, ctx, txOne), connect(t, ctx, txOne)
	if _, err := ta.Exec(ctx, "LISTEN capydb_events"); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Exec(ctx, "SELECT pg_notify('capydb_events', 'lost')"); err != nil {
		t.Fatal(err)
	}
	if n, err := wait(ta, 2*time.Second); err == nil {
		t.Fatalf("transaction mode: a received %+v; expected LISTEN not to work", n)
	} else if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("transaction mode: waiting for a notification: %v", err)
	}
	if _, err := tb.Exec(ctx, "UNLISTEN *"); err != nil {
		t.Fatal(err)
	}
}

// TestSessionModePgxDescribeExec: pgx's describe_exec mode prepares an
// unnamed statement in one round trip and binds it in the next; pgbouncer
// tracks only named statements, so in transaction mode the bind can run
// another client's unnamed statement (a wrong answer, no error) or find
// none. Session mode: 0 errors, 0 wrong answers.
func TestSessionModePgxDescribeExec(t *testing.T) {
	session, _ := sessionTargets(t, "drv_describe")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := Pgx(ctx, session, "describe_exec", clients, queries)
	t.Logf("pgx describe_exec through the session port: %s", r)
	if r.Queries != clients*queries || r.Errors != 0 || r.Wrong != 0 {
		t.Fatalf("pgx describe_exec through the session port: %s", r)
	}
	pooled := session
	pooled.Port = clustertest.Shared(t).PooledPort()
	r = Pgx(ctx, pooled, "describe_exec", clients, queries)
	t.Logf("pgx describe_exec through the transaction port: %s", r)
	if r.Wrong == 0 {
		t.Fatalf("pgx describe_exec through the transaction port: %s; expected wrong answers (docs/connections.md says so)", r)
	}
}

// TestOptionsInURL: `options=-c name=value` in the URL. Postgres takes any
// setting; pgbouncer (both modes) takes only the parameters it tracks per
// client (TimeZone, DateStyle, IntervalStyle, application_name,
// client_encoding, standard_conforming_strings) and refuses the rest at
// connect time.
func TestOptionsInURL(t *testing.T) {
	c, tg := tenant(t, "drv_options")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ep := range []struct {
		name string
		port int
	}{{"direct", c.DirectPort()}, {"pooled", c.PooledPort()}, {"session", c.SessionPort()}} {
		tg.Port = ep.port
		conn, err := pgx.Connect(ctx, tg.URL(url.Values{"options": {"-c TimeZone=Asia/Tokyo"}}))
		if err != nil {
			t.Fatalf("%s: options=-c TimeZone: %v", ep.name, err)
		}
		if got := show(t, ctx, conn, "SHOW TimeZone"); got != "Asia/Tokyo" {
			t.Fatalf("%s: TimeZone %q after options=-c TimeZone=Asia/Tokyo", ep.name, got)
		}
		conn.Close(ctx)

		conn, err = pgx.Connect(ctx, tg.URL(url.Values{"options": {"-c statement_timeout=5s"}}))
		if ep.name == "direct" {
			if err != nil {
				t.Fatalf("direct: options=-c statement_timeout: %v", err)
			}
			if got := show(t, ctx, conn, "SHOW statement_timeout"); got != "5s" {
				t.Fatalf("direct: statement_timeout %q", got)
			}
			conn.Close(ctx)
			continue
		}
		if err == nil {
			conn.Close(ctx)
			t.Fatalf("%s: options=-c statement_timeout was accepted; pgbouncer refuses untracked parameters", ep.name)
		}
		if !strings.Contains(err.Error(), "unsupported startup parameter in options: statement_timeout") {
			t.Fatalf("%s: options=-c statement_timeout: %v", ep.name, err)
		}
	}
}

// TestSessionModeKeepsSQLPrepare: SQL-level PREPARE/EXECUTE (psycopg2,
// hand-written SQL) is not the protocol-level kind pgbouncer 1.21+ tracks.
func TestSessionModeKeepsSQLPrepare(t *testing.T) {
	session, txOne := sessionTargets(t, "drv_sqlprep")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a, b := connect(t, ctx, session), connect(t, ctx, session)
	if _, err := a.Exec(ctx, "PREPARE add_one(int) AS SELECT ($1 + 1)::text"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if got := show(t, ctx, a, fmt.Sprintf("EXECUTE add_one(%d)", i)); got != fmt.Sprint(i+1) {
			t.Fatalf("session mode: EXECUTE add_one(%d) = %s", i, got)
		}
	}
	var pgErr *pgconn.PgError
	if _, err := b.Exec(ctx, "EXECUTE add_one(1)"); !errors.As(err, &pgErr) || pgErr.Code != "26000" {
		t.Fatalf("session mode: another client executed a's statement: %v", err)
	}

	// Transaction mode: the statement lives on the shared server
	// connection; another client runs it, and a second PREPARE collides.
	ta, tb := connect(t, ctx, txOne), connect(t, ctx, txOne)
	if _, err := ta.Exec(ctx, "PREPARE add_one(int) AS SELECT ($1 + 1)::text"); err != nil {
		t.Fatal(err)
	}
	if got := show(t, ctx, tb, "EXECUTE add_one(41)"); got != "42" {
		t.Fatalf("transaction mode: another client's EXECUTE got %q; expected it to run a's statement", got)
	}
	if _, err := tb.Exec(ctx, "PREPARE add_one(int) AS SELECT 1"); !errors.As(err, &pgErr) || pgErr.Code != "42P05" {
		t.Fatalf("transaction mode: second PREPARE: %v; expected duplicate_prepared_statement", err)
	}
	if _, err := tb.Exec(ctx, "DEALLOCATE ALL"); err != nil {
		t.Fatal(err)
	}
}
