package observe_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/observe"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env is a real cluster, a dataplane handle on it and a control database
// holding one organization, cluster row and project whose database is a
// real tenant database.
type env struct {
	t      testing.TB
	lc     *localcluster.Cluster
	dp     *dataplane.Cluster
	st     *store.Store
	org    *store.Organization
	prj    *store.Project
	role   string
	secret string
	sfx    string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := ctxT(t)
	lc := clustertest.Shared(t)
	dp, err := dataplane.Open(ctx, dataplane.Config{ID: ids.New("cl_"), DSNFor: lc.AdminDSNFor, Pooler: lc, MaxConns: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dp.Close)
	if err := dp.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, lc: lc, dp: dp, st: storetest.ControlDB(t, 4)}
	e.org = &store.Organization{ID: ids.New("org_"), Name: "Obs", Slug: "obs", BillingPlan: "vibe"}
	if err := store.InsertOrganization(ctx, e.st.Pool, e.org); err != nil {
		t.Fatal(err)
	}
	c := &store.Cluster{ID: dp.ID, Name: "local", Provider: "embedded", Region: "local", PublicHost: "127.0.0.1",
		DirectPort: lc.DirectPort(), PooledPort: lc.PooledPort(), PostgresVersion: "15", State: "active"}
	if err := store.UpsertClusterByName(ctx, e.st.Pool, c); err != nil {
		t.Fatal(err)
	}
	sfx := strings.ToLower(ids.RandomBase62(8))
	e.sfx = sfx
	db, role := "obsdb_"+sfx, "obsu_"+sfx
	e.role, e.secret = role, ids.RandomBase62(32)
	if err := dp.CreateTenant(ctx, dataplane.Tenant{Database: db, Role: role, Password: e.secret,
		ConnectionLimit: 40, StatementTimeout: "0", IdleTransactionTimeout: "60s"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = dp.Admin().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db)
		_ = dp.DropTenant(ctx, db, role)
	})
	e.prj = &store.Project{ID: ids.New("prj_"), OrganizationID: e.org.ID, ClusterID: c.ID, Name: "obs", Slug: "obs",
		Environment: "production", State: store.ProjectReady, PostgresVersion: "15", DatabaseName: db,
		OwnerRole: role, RoleName: role, PasswordEnc: []byte("x")}
	if err := store.InsertProject(ctx, e.st.Pool, e.prj); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Pool.Exec(ctx, `UPDATE projects SET provisioned = true WHERE id = $1`, e.prj.ID); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect opens a tenant session on the project database.
func (e *env) connect() *pgx.Conn {
	e.t.Helper()
	u := url.URL{Scheme: "postgres", User: url.UserPassword(e.role, e.secret),
		Host: fmt.Sprintf("127.0.0.1:%d", e.lc.DirectPort()), Path: "/" + e.prj.DatabaseName, RawQuery: "sslmode=require"}
	c, err := pgx.Connect(ctxT(e.t), u.String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(ctxT(t), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestNextHysteresis walks the PRODUCT.md §17.3 table.
func TestNextHysteresis(t *testing.T) {
	for _, c := range []struct {
		cur  string
		pct  float64
		want string
	}{
		{"", 79.99, ""}, {"", 80, "warning"}, {"", 94.9, "warning"}, {"", 95, "critical"}, {"", 130, "critical"},
		{"warning", 79, "warning"}, {"warning", 75, "warning"}, {"warning", 74.99, ""}, {"warning", 95, "critical"},
		{"critical", 94, "critical"}, {"critical", 90, "critical"}, {"critical", 89.99, "warning"},
		{"critical", 76, "warning"}, {"critical", 74, ""},
	} {
		if got := observe.Next(c.cur, c.pct); got != c.want {
			t.Errorf("Next(%q, %v) = %q, want %q", c.cur, c.pct, got, c.want)
		}
	}
	if got := observe.Flags(85, 91); strings.Join(got, ",") != "database_size_over_90_percent,connections_over_80_percent" {
		t.Errorf("Flags(85, 91) = %v", got)
	}
	if got := observe.Flags(10, 100); strings.Join(got, ",") != "database_size_over_95_percent" {
		t.Errorf("Flags(10, 100) = %v", got)
	}
}

// TestLiveStats: connections, a sleeping query with its wait event and a
// slow statement in the top 10 are measured on a real workload.
func TestLiveStats(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	const n = 4
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = e.connect()
	}
	// The tenant could not create pg_stat_statements itself (untrusted);
	// the test plays the managed extension route.
	admin, err := pgx.Connect(ctx, e.lc.AdminDSNFor(e.prj.DatabaseName))
	if err != nil {
		t.Fatal(err)
	}
	exec(t, admin, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	admin.Close(ctx)
	exec(t, conns[0], `SELECT pg_sleep(0.3), 'obs_slow_marker'`)
	exec(t, conns[0], `CREATE TABLE IF NOT EXISTS quick (a int)`)
	exec(t, conns[0], `ALTER ROLE CURRENT_USER PASSWORD 'hunter2-should-not-leak'`)
	sleeping := make(chan error, 1)
	go func() {
		_, err := conns[1].Exec(context.Background(), `SELECT pg_sleep(3), 'obs_sleep_marker'`)
		sleeping <- err
	}()
	clustertest.Eventually(t, 10*time.Second, "the sleeping query is active", func() (bool, error) {
		st, err := e.dp.LiveStats(ctx, e.prj.DatabaseName)
		if err != nil {
			return false, err
		}
		for _, q := range st.Active {
			if strings.Contains(q.Query, "obs_sleep_marker") {
				if q.WaitEvent == nil {
					return false, nil // sampled before it started sleeping
				}
				if q.State != "active" || *q.WaitEvent != "PgSleep" || q.Username != e.role {
					return false, fmt.Errorf("sleeping query sampled as %+v", q)
				}
				return true, nil
			}
		}
		return false, nil
	})
	st, err := e.dp.LiveStats(ctx, e.prj.DatabaseName)
	if err != nil {
		t.Fatal(err)
	}
	// The superuser session that created the extension may linger a moment.
	clustertest.Eventually(t, 5*time.Second, fmt.Sprintf("%d connections", n), func() (bool, error) {
		st, err := e.dp.LiveStats(ctx, e.prj.DatabaseName)
		if err != nil {
			return false, err
		}
		if st.Connections < n {
			return false, fmt.Errorf("connections = %d, want %d", st.Connections, n)
		}
		return st.Connections == n, nil
	})
	if st.SizeBytes < 1<<20 {
		t.Errorf("size = %d bytes, want a real database size", st.SizeBytes)
	}
	if !st.StatsEnabled || len(st.Slow) == 0 || !strings.Contains(st.Slow[0].Query, "pg_sleep") {
		t.Fatalf("slow statements (enabled %v): %+v", st.StatsEnabled, st.Slow)
	}
	if s := st.Slow[0]; s.Calls != 1 || s.MeanTimeMs < 300 || s.TotalTimeMs < 300 {
		t.Errorf("slow statement measured as %+v", s)
	}
	for _, s := range st.Slow {
		if strings.Contains(s.Query, "capydb-observe") {
			t.Errorf("CapyDB's own statement is listed: %q", s.Query)
		}
		if strings.Contains(s.Query, "hunter2") {
			t.Errorf("a password reached the slow statements: %q", s.Query)
		}
	}
	if err := <-sleeping; err != nil {
		t.Fatal(err)
	}
}

func limits(storage int64, conns int) func(string) plan.Limits {
	return func(string) plan.Limits {
		return plan.Limits{Name: "vibe", MaxConnections: conns, StorageLimitBytes: storage, MaxPreviews: 1}
	}
}

// TestSamplerDeltas: the second round's values are those of the interval
// (rollbacks, dead tuples), not since the server started.
func TestSamplerDeltas(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	s := observe.NewSampler(observe.Config{Store: e.st, Clusters: func() map[string]*dataplane.Cluster {
		return map[string]*dataplane.Cluster{e.dp.ID: e.dp}
	}, Limits: limits(1<<40, 40)}, bgsvcConfig())
	c := e.connect()
	exec(t, c, `CREATE TABLE t (a int)`)
	for range 5 {
		exec(t, c, `BEGIN; INSERT INTO t VALUES (1); ROLLBACK`)
	}
	// pg_stat_database is flushed by backends at most every second.
	time.Sleep(1500 * time.Millisecond)
	exec(t, c, `SELECT 1`)
	t0 := time.Now().UTC().Truncate(time.Second)
	if n, err := s.Round(ctx, t0); err != nil || n != 1 {
		t.Fatalf("first round: %d, %v", n, err)
	}
	// In the interval: 4 rollbacks, 7 commits, 3 updated rows.
	for range 4 {
		exec(t, c, `BEGIN; INSERT INTO t VALUES (1); ROLLBACK`)
	}
	exec(t, c, `INSERT INTO t SELECT generate_series(1, 3)`)
	for range 4 {
		exec(t, c, `SELECT 1`)
	}
	exec(t, c, `UPDATE t SET a = 2`)
	// pg_stat_database is flushed by backends at most every second.
	time.Sleep(1500 * time.Millisecond)
	exec(t, c, `SELECT 1`)
	if n, err := s.Round(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("second round: %d, %v", n, err)
	}
	hist, err := store.HistorySamples(ctx, e.st.Pool, e.prj.ID, t0.Add(-time.Hour), 1000)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %d samples, %v", len(hist), err)
	}
	first, second := hist[0], hist[1]
	if first.RollbackRatio != 0 || first.Deadlocks != 0 || first.DeadTuples != 0 {
		t.Errorf("first sample has interval values without an interval: %+v", first)
	}
	if second.RollbackRatio < 0.3 || second.RollbackRatio > 4.0/11 {
		t.Errorf("rollback ratio in the interval = %v, want 4/11 (fewer with background commits)", second.RollbackRatio)
	}
	if second.DeadTuples != 3 {
		t.Errorf("dead tuples in the interval = %d, want 3 (one UPDATE of 3 rows)", second.DeadTuples)
	}
	if second.Connections != 1 || second.ConnectionLimit != 40 || second.CacheHitRatio <= 0 || second.CacheHitRatio > 1 {
		t.Errorf("second sample: %+v", second)
	}
}

// TestHistoryBuckets: more than 1,000 samples are averaged into buckets of
// neighbours, oldest first.
func TestHistoryBuckets(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	t0 := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Minute)
	var ss []*store.Sample
	for i := range 2500 {
		ss = append(ss, &store.Sample{ProjectID: e.prj.ID, SampledAt: t0.Add(time.Duration(i) * time.Minute),
			Connections: i % 3, ConnectionLimit: 15, DatabaseSizeBytes: int64(i), StorageLimitBytes: 100,
			CacheHitRatio: 1})
	}
	if err := e.st.InTx(ctx, func(tx pgx.Tx) error { return store.InsertSamples(ctx, tx, ss) }); err != nil {
		t.Fatal(err)
	}
	hist, err := store.HistorySamples(ctx, e.st.Pool, e.prj.ID, t0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// 2,500 samples in buckets of 3: 834 buckets, the last holding one.
	if len(hist) != 834 {
		t.Fatalf("%d buckets, want 834", len(hist))
	}
	if b := hist[1]; !b.SampledAt.Equal(t0.Add(3*time.Minute)) || b.DatabaseSizeBytes != 4 || b.Connections != 1 {
		t.Errorf("bucket 1 = %+v, want the average of samples 3-5 (size 4, connections 1)", b)
	}
	if last := hist[len(hist)-1]; last.DatabaseSizeBytes != 2499 {
		t.Errorf("last bucket size = %d", last.DatabaseSizeBytes)
	}
	for i := 1; i < len(hist); i++ {
		if !hist[i].SampledAt.After(hist[i-1].SampledAt) {
			t.Fatalf("buckets out of order at %d", i)
		}
	}
	// Pruning in batches removes everything older than the cutoff.
	n, err := store.PruneSamples(ctx, e.st.Pool, t0.Add(2000*time.Minute), 300)
	if err != nil || n != 2000 {
		t.Fatalf("pruned %d, %v; want 2000", n, err)
	}
	if hist, _ := store.HistorySamples(ctx, e.st.Pool, e.prj.ID, t0, 1000); len(hist) != 500 {
		t.Errorf("%d samples after pruning, want 500", len(hist))
	}
}
