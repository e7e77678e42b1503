package dataplane_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

type env struct {
	t  *testing.T
	lc *localcluster.Cluster
	dp *dataplane.Cluster
}

func newEnv(t *testing.T) *env { return newEnvWith(t, dataplane.CloneOptions{}) }

func newEnvWith(t *testing.T, clone dataplane.CloneOptions) *env {
	t.Helper()
	lc := clustertest.Shared(t)
	ctx := context.Background()
	dp, err := dataplane.Open(ctx, dataplane.Config{ID: "cl_test", DSNFor: lc.AdminDSNFor, Pooler: lc, MaxConns: 10,
		ToolsDir: lc.BinDir(), Clone: clone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dp.Close)
	if err := dp.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, lc: lc, dp: dp}
}

type tenant struct {
	db, role, password string
}

func (e *env) tenant(prefix string) tenant {
	e.t.Helper()
	sfx := strings.ToLower(ids.RandomBase62(8))
	tn := tenant{db: prefix + "db_" + sfx, role: prefix + "u_" + sfx, password: ids.RandomBase62(32)}
	if err := e.dp.CreateTenant(context.Background(), dataplane.Tenant{Database: tn.db, Role: tn.role, Password: tn.password,
		ConnectionLimit: 20, StatementTimeout: "0", IdleTransactionTimeout: "60s"}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = e.dp.DropTenant(context.Background(), tn.db, tn.role) })
	return tn
}

// previewRole makes the login role a clone will belong to.
func (e *env) previewRole() tenant {
	e.t.Helper()
	sfx := strings.ToLower(ids.RandomBase62(8))
	tn := tenant{db: "pv_" + sfx, role: "pvu_" + sfx, password: ids.RandomBase62(32)}
	if err := e.dp.EnsureLoginRole(context.Background(), tn.role, tn.password, 20, "0", "60s"); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx := context.Background()
		for _, db := range []string{tn.db, tn.db + "_n", tn.db + "_o"} {
			_ = e.dp.DropDatabaseIfOwned(ctx, db, tn.role)
		}
		_ = e.dp.DropTenant(ctx, "", tn.role)
	})
	return tn
}

// connectAs opens a TLS session as a tenant role on the direct port.
func (e *env) connectAs(user, password, db string) (*pgx.Conn, error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: fmt.Sprintf("127.0.0.1:%d", e.lc.DirectPort()), Path: "/" + db, RawQuery: "sslmode=require"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, u.String())
}

func (e *env) mustConnectAs(user, password, db string) *pgx.Conn {
	e.t.Helper()
	c, err := e.connectAs(user, password, db)
	if err != nil {
		e.t.Fatalf("connect as %s to %s: %v", user, db, err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (e *env) admin(db string) *pgx.Conn {
	e.t.Helper()
	c, err := pgx.Connect(context.Background(), e.lc.AdminDSNFor(db))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%.120s: %v", sql, err)
	}
}

// schemaSQL is a schema with most kinds of objects a tenant can make, run as
// the tenant's role.
const schemaSQL = `
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.positive AS integer CHECK (VALUE > 0);
CREATE TABLE app.customers (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email text NOT NULL UNIQUE,
	mood app.mood NOT NULL DEFAULT 'ok',
	score app.positive,
	doubled integer GENERATED ALWAYS AS (score * 2) STORED,
	tags text[],
	meta jsonb,
	created timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE app.customers IS 'people who pay';
CREATE TABLE app.orders (
	id serial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES app.customers (id),
	amount numeric(10,2) NOT NULL CHECK (amount >= 0),
	note text
);
CREATE INDEX orders_customer ON app.orders (customer_id);
CREATE TABLE app.audit (id bigserial PRIMARY KEY, order_id integer, at timestamptz DEFAULT now());
CREATE FUNCTION app.log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO app.audit (order_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.log_order();
CREATE TABLE app.measurements (city text NOT NULL, at date NOT NULL, value double precision) PARTITION BY RANGE (at);
CREATE TABLE app.measurements_2024 PARTITION OF app.measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE app.measurements_2025 PARTITION OF app.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE UNLOGGED TABLE app.cache (k text PRIMARY KEY, v bytea);
CREATE TABLE app.nothing ();
CREATE SEQUENCE app.invoice_numbers START 1000;
CREATE VIEW app.big_orders AS SELECT * FROM app.orders WHERE amount > 50;
CREATE MATERIALIZED VIEW app.order_totals AS SELECT customer_id, sum(amount) AS total FROM app.orders GROUP BY customer_id;
CREATE TABLE app.events (id bigserial PRIMARY KEY, n bigint NOT NULL, payload text);
CREATE TABLE app.counter (id int PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE app.marker (label text PRIMARY KEY);
INSERT INTO app.counter VALUES (1, 0);
INSERT INTO app.customers (email, mood, score, tags, meta)
	SELECT 'c' || g || '@example.com', (ARRAY['sad','ok','happy'])[1 + g % 3]::app.mood, 1 + g % 50,
		ARRAY['t' || g % 7, 'x'], jsonb_build_object('g', g) FROM generate_series(1, 2000) g;
INSERT INTO app.orders (customer_id, amount, note)
	SELECT 1 + g % 2000, (g % 9000) / 100.0, repeat('n', g % 40) FROM generate_series(1, 20000) g;
INSERT INTO app.measurements SELECT 'c' || g % 10, date '2024-03-01' + g % 500, g / 3.0 FROM generate_series(1, 5000) g;
INSERT INTO app.cache SELECT 'k' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 300) g;
INSERT INTO app.nothing DEFAULT VALUES; INSERT INTO app.nothing DEFAULT VALUES;
SELECT setval('app.invoice_numbers', 4242);
REFRESH MATERIALIZED VIEW app.order_totals;
INSERT INTO app.events (n, payload) SELECT 0, repeat(md5(g::text), 4) FROM generate_series(1, 60000) g;
INSERT INTO app.marker VALUES ('before');
`

// source makes a project-like tenant loaded with schemaSQL and one large object.
func (e *env) source() tenant {
	e.t.Helper()
	src := e.tenant("src")
	c, err := e.connectAs(src.role, src.password, src.db)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close(context.Background())
	exec(e.t, c, schemaSQL)
	exec(e.t, c, `SELECT lo_from_bytea(0, '\x00ff10'::bytea)`)
	return src
}

// checksums returns count and md5 of every user table's rows.
func checksums(t *testing.T, c *pgx.Conn, skip ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') AND n.nspname = 'app' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		if contains(skip, n) {
			continue
		}
		var count int64
		var sum string
		if err := c.QueryRow(ctx, `SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM `+n+` t`).Scan(&count, &sum); err != nil {
			t.Fatal(err)
		}
		out[n] = fmt.Sprintf("%d/%s", count, sum)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sameMaps(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare", what)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: table %s is %q in the clone, want %q", what, k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d tables in the clone, want %d", what, len(got), len(want))
	}
}

// checkClone verifies ownership, isolation and the parts a schema dump
// does not carry by itself (sequences, materialized views, large objects).
func (e *env) checkClone(src, pv tenant) {
	t := e.t
	ctx := context.Background()
	// The preview role owns everything in its database.
	a := e.admin(pv.db)
	var foreign int
	if err := a.QueryRow(ctx, `SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
		WHERE d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND d.deptype = 'o'
		  AND r.rolname <> $1 AND NOT r.rolsuper`, pv.role).Scan(&foreign); err != nil {
		t.Fatal(err)
	}
	if foreign != 0 {
		t.Errorf("%d objects in the clone are owned by another role", foreign)
	}
	var owner, tableOwner string
	if err := a.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, pv.db).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if err := a.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'orders'`).Scan(&tableOwner); err != nil {
		t.Fatal(err)
	}
	if owner != pv.role || tableOwner != pv.role {
		t.Errorf("database owned by %s, app.orders by %s; want %s", owner, tableOwner, pv.role)
	}
	// The source still belongs to its own role.
	var srcOwner string
	if err := a.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, src.db).Scan(&srcOwner); err != nil || srcOwner != src.role {
		t.Fatalf("source database owner %q (%v), want %s", srcOwner, err, src.role)
	}

	// Roles are isolated both ways; each reaches its own database.
	if _, err := e.connectAs(pv.role, pv.password, src.db); !isPermissionDenied(err) {
		t.Errorf("preview role connecting to the project database: %v, want permission denied", err)
	}
	if _, err := e.connectAs(src.role, src.password, pv.db); !isPermissionDenied(err) {
		t.Errorf("project role connecting to the preview database: %v, want permission denied", err)
	}
	c := e.mustConnectAs(pv.role, pv.password, pv.db)

	// The preview role can use and change what it owns.
	exec(t, c, `INSERT INTO app.orders (customer_id, amount) VALUES (1, 1)`)
	var next, maxID int64
	if err := c.QueryRow(ctx, `SELECT nextval('app.invoice_numbers')`).Scan(&next); err != nil || next != 4243 {
		t.Errorf("invoice_numbers continues at %d (%v), want 4243", next, err)
	}
	if err := c.QueryRow(ctx, `SELECT max(id) FROM app.orders`).Scan(&maxID); err != nil || maxID != 20001 {
		t.Errorf("new order got id %d (%v), want 20001 (serial continues)", maxID, err)
	}
	var audits int64
	if err := c.QueryRow(ctx, `SELECT count(*) FROM app.audit WHERE order_id = 20001`).Scan(&audits); err != nil || audits != 1 {
		t.Errorf("trigger did not fire in the clone: %d (%v)", audits, err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO app.orders (customer_id, amount) VALUES (999999, 1)`); err == nil {
		t.Error("foreign key not enforced in the clone")
	}
	exec(t, c, `ALTER TABLE app.customers ADD COLUMN extra int`)
	var lo []byte
	if err := c.QueryRow(ctx, `SELECT lo_get(oid) FROM pg_largeobject_metadata LIMIT 1`).Scan(&lo); err != nil || string(lo) != "\x00\xff\x10" {
		t.Errorf("large object %x (%v)", lo, err)
	}
	var idx int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'app'`).Scan(&idx); err != nil || idx < 9 {
		t.Errorf("%d indexes in the clone (%v)", idx, err)
	}
	var comment string
	if err := c.QueryRow(ctx, `SELECT obj_description('app.customers'::regclass)`).Scan(&comment); err != nil || comment != "people who pay" {
		t.Errorf("comment %q (%v)", comment, err)
	}
	// Nobody else may connect.
	var publicConnect bool
	if err := a.QueryRow(ctx, `SELECT has_database_privilege('public', $1, 'CONNECT')`, pv.db).Scan(&publicConnect); err != nil || publicConnect {
		t.Errorf("PUBLIC may connect to the clone (%v)", err)
	}
}

func isPermissionDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

func TestCloneTemplateWhenIdle(t *testing.T) {
	e := newEnv(t)
	src := e.source()
	pv := e.previewRole()
	sc := e.mustConnectAs(src.role, src.password, src.db)
	want := checksums(t, sc)
	sc.Close(context.Background())
	// No session may be open on the source for a template copy.
	waitNoSessions(t, e, src.db)

	var phases []string
	res, err := e.dp.BuildDatabase(context.Background(), dataplane.BuildParams{Source: src.db, Target: pv.db, Owner: pv.role,
		Progress: func(p dataplane.CloneProgress) { phases = append(phases, p.Phase) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != dataplane.StrategyTemplate || res.Bytes <= 0 || res.Duration <= 0 || len(res.Unowned) != 0 {
		t.Fatalf("result %+v, want a template clone", res)
	}
	if !contains(phases, dataplane.PhaseCopying) || phases[len(phases)-1] != dataplane.PhaseFinishing {
		t.Errorf("phases %v", phases)
	}
	sameMaps(t, "template clone", want, checksums(t, e.mustConnectAs(pv.role, pv.password, pv.db)))
	e.checkClone(src, pv)
	t.Logf("template clone of %d bytes in %s", res.Bytes, res.Duration)
}

func waitNoSessions(t *testing.T, e *env, db string) {
	t.Helper()
	a := e.admin("postgres")
	for i := 0; i < 100; i++ {
		var n int
		if err := a.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sessions on %s did not end", db)
}

// TestCloneSnapshotCopyUnderLoad clones while a writer commits continuously:
// the clone is one consistent snapshot (a counter bumped in the same
// transaction as each insert matches the copied rows, and a row committed
// after the snapshot is absent), and no write on the source fails.
func TestCloneSnapshotCopyUnderLoad(t *testing.T) {
	e := newEnvWith(t, dataplane.CloneOptions{ChunkBytes: 256 << 10}) // split app.events into several block ranges
	src := e.source()
	pv := e.previewRole()
	static := []string{"app.customers", "app.measurements_2024", "app.measurements_2025", "app.cache", "app.nothing",
		"app.order_totals", "app.orders", "app.audit"}
	all := checksums(t, e.mustConnectAs(src.role, src.password, src.db))
	want := map[string]string{}
	for _, k := range static {
		want[k] = all[k]
	}

	// The writer keeps sessions open on the source, so the template path is out.
	w := e.mustConnectAs(src.role, src.password, src.db)
	ctx, stop := context.WithCancel(context.Background())
	var commits, failures atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			err := pgx.BeginFunc(context.Background(), w, func(tx pgx.Tx) error {
				var n int64
				if err := tx.QueryRow(context.Background(), `UPDATE app.counter SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n); err != nil {
					return err
				}
				_, err := tx.Exec(context.Background(), `INSERT INTO app.events (n, payload) VALUES ($1, 'w')`, n)
				return err
			})
			if err != nil {
				failures.Add(1)
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				continue
			}
			commits.Add(1)
		}
	}()
	waitCommits := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for commits.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCommits(50)

	var atSnapshot int64
	var phases sync.Map
	res, err := e.dp.BuildDatabase(context.Background(), dataplane.BuildParams{Source: src.db, Target: pv.db, Owner: pv.role,
		Workers: 3,
		Progress: func(p dataplane.CloneProgress) {
			phases.Store(p.Phase, true)
		},
		AfterSnapshot: func(ctx context.Context) error {
			atSnapshot = commits.Load()
			m := e.mustConnectAs(src.role, src.password, src.db)
			_, err := m.Exec(ctx, `INSERT INTO app.marker VALUES ('after')`)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	during := commits.Load() - atSnapshot
	waitCommits(commits.Load() + 20) // still writable after the clone
	stop()
	wg.Wait()

	if failures.Load() != 0 {
		t.Fatalf("%d writes failed on the source during the clone: %v", failures.Load(), firstErr)
	}
	if during < 5 {
		t.Errorf("only %d commits on the source while the clone ran: it was not writable", during)
	}
	if res.Strategy != dataplane.StrategySnapshotCopy || res.Tables < 10 || res.Bytes <= 0 || len(res.Unowned) != 0 {
		t.Fatalf("result %+v, want a snapshot copy", res)
	}
	for _, ph := range []string{dataplane.PhaseSchema, dataplane.PhaseCopying, dataplane.PhaseIndexes, dataplane.PhaseFinishing} {
		if _, ok := phases.Load(ph); !ok {
			t.Errorf("phase %s not reported", ph)
		}
	}

	c := e.mustConnectAs(pv.role, pv.password, pv.db)
	var counter, written, before, after int64
	if err := c.QueryRow(context.Background(), `SELECT (SELECT n FROM app.counter), (SELECT count(*) FROM app.events WHERE n > 0),
		(SELECT count(*) FROM app.marker WHERE label = 'before'), (SELECT count(*) FROM app.marker WHERE label = 'after')`).Scan(
		&counter, &written, &before, &after); err != nil {
		t.Fatal(err)
	}
	if counter != written || counter < 50 {
		t.Errorf("clone is not one snapshot: counter %d, rows written %d", counter, written)
	}
	if before != 1 || after != 0 {
		t.Errorf("markers: before %d after %d; a row committed after the snapshot must be absent", before, after)
	}
	var srcCounter int64
	if err := w.QueryRow(context.Background(), `SELECT n FROM app.counter`).Scan(&srcCounter); err != nil || srcCounter <= counter {
		t.Errorf("source counter %d, clone %d: the source should have moved on", srcCounter, counter)
	}
	got := checksums(t, c)
	for k := range got {
		if !contains(static, k) {
			delete(got, k)
		}
	}
	sameMaps(t, "snapshot copy", want, got)
	e.checkClone(src, pv)
	t.Logf("snapshot copy of %d bytes in %d tables in %s with %d commits on the source meanwhile", res.Bytes, res.Tables, res.Duration, during)
}

func TestCloneEmpty(t *testing.T) {
	e := newEnv(t)
	pv := e.previewRole()
	res, err := e.dp.BuildDatabase(context.Background(), dataplane.BuildParams{Target: pv.db, Owner: pv.role})
	if err != nil || res.Strategy != dataplane.StrategyEmpty {
		t.Fatalf("%+v %v", res, err)
	}
	c := e.mustConnectAs(pv.role, pv.password, pv.db)
	var tables int
	var exts []string
	if err := c.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
		(SELECT array_agg(extname::text ORDER BY extname) FROM pg_extension)`).Scan(&tables, &exts); err != nil {
		t.Fatal(err)
	}
	// The default extensions come from the cluster's template (pgcrypto ships with PostgreSQL).
	if tables != 0 || !contains(exts, "pgcrypto") {
		t.Errorf("empty preview has %d tables and extensions %v", tables, exts)
	}
	exec(t, c, `CREATE TABLE mine (id int)`)
}

// TestCloneFailureLeavesNothing: a clone that fails midway removes its
// partial database and leaves the source untouched and without our sessions.
func TestCloneFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	src := e.source()
	pv := e.previewRole()
	hold := e.mustConnectAs(src.role, src.password, src.db) // forces a snapshot copy
	boom := errors.New("injected failure")
	_, err := e.dp.BuildDatabase(context.Background(), dataplane.BuildParams{Source: src.db, Target: pv.db, Owner: pv.role,
		AfterSnapshot: func(context.Context) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the injected one", err)
	}
	if ok, err := e.dp.DatabaseExists(context.Background(), pv.db); err != nil || ok {
		t.Fatalf("partial database left behind (%v)", err)
	}
	var n int
	if err := hold.QueryRow(context.Background(), `SELECT count(*) FROM app.marker`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("source changed: %d (%v)", n, err)
	}
	a := e.admin("postgres")
	clustertest.Eventually(t, 5*time.Second, "the clone sessions on the source to end", func() bool {
		var clones int
		_ = a.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'capydb-clone' AND datname = $1`, src.db).Scan(&clones)
		return clones == 0
	})

	// A database of the same name that is not ours is never dropped.
	other := e.tenant("oth")
	_, err = e.dp.BuildDatabase(context.Background(), dataplane.BuildParams{Source: src.db, Target: other.db, Owner: pv.role})
	var foreign *dataplane.ForeignObjectError
	if !errors.As(err, &foreign) {
		t.Fatalf("building over a foreign database: %v", err)
	}
	if ok, _ := e.dp.DatabaseExists(context.Background(), other.db); !ok {
		t.Fatal("a foreign database was dropped")
	}
}

// TestSwapDatabase replaces a preview's database in place (reset), ending
// its sessions, and repairs a swap interrupted halfway.
func TestSwapDatabase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pv := e.previewRole()
	if _, err := e.dp.BuildDatabase(ctx, dataplane.BuildParams{Target: pv.db, Owner: pv.role}); err != nil {
		t.Fatal(err)
	}
	s := e.mustConnectAs(pv.role, pv.password, pv.db)
	exec(t, s, `CREATE TABLE old_contents (id int)`)
	if _, err := e.dp.BuildDatabase(ctx, dataplane.BuildParams{Target: pv.db + "_n", Owner: pv.role}); err != nil {
		t.Fatal(err)
	}
	if err := e.dp.SwapDatabase(ctx, pv.db, pv.db+"_n", pv.db+"_o", pv.role); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("a session on the replaced database survived the swap")
	}
	c := e.mustConnectAs(pv.role, pv.password, pv.db)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'old_contents'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("old contents still there (%d, %v)", n, err)
	}
	for _, db := range []string{pv.db + "_n", pv.db + "_o"} {
		if ok, _ := e.dp.DatabaseExists(ctx, db); ok {
			t.Errorf("%s left behind", db)
		}
	}

	// Interrupted after main was renamed away: recovery puts it back.
	c.Close(ctx)
	a := e.admin("postgres")
	exec(t, a, `ALTER DATABASE `+pgx.Identifier{pv.db}.Sanitize()+` ALLOW_CONNECTIONS false`)
	exec(t, a, `ALTER DATABASE `+pgx.Identifier{pv.db}.Sanitize()+` RENAME TO `+pgx.Identifier{pv.db + "_o"}.Sanitize())
	if err := e.dp.RecoverSwap(ctx, pv.db, pv.db+"_o", pv.role); err != nil {
		t.Fatal(err)
	}
	e.mustConnectAs(pv.role, pv.password, pv.db)
}
