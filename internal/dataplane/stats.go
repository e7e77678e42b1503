package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/scrub"
)

// Statistics read for observability (docs/observability.md). Everything here
// runs on the admin pool in the "postgres" database and reads cluster-wide
// views filtered by the project's database name: no tenant code ever runs.
// CapyDB's own agents are left out of the tenant's numbers.

// notAgent filters pg_stat_activity rows of CapyDB's agents.
const notAgent = `coalesce(a.usename, '') NOT LIKE 'capydb\_agent\_%'`

// ActiveQuery is one non-idle session of a database.
type ActiveQuery struct {
	PID           int
	Username      string
	State         string
	Query         string
	Duration      time.Duration
	WaitEventType *string
	WaitEvent     *string
}

// SlowQuery is one pg_stat_statements entry of a database.
type SlowQuery struct {
	QueryID         int64
	Query           string
	Calls           int64
	Rows            int64
	MeanTimeMs      float64
	TotalTimeMs     float64
	JITTimeMs       float64
	SharedBlksHit   int64
	SharedBlksRead  int64
	TempBlksRead    int64
	TempBlksWritten int64
}

// LiveStats is what GET …/observability measures.
type LiveStats struct {
	Connections  int
	SizeBytes    int64
	Active       []ActiveQuery
	StatsEnabled bool // pg_stat_statements exists in the database
	Slow         []SlowQuery
}

// ErrNoDatabase is returned when the database does not exist on the cluster.
var ErrNoDatabase = errors.New("the database does not exist")

// queryScrubber hides credential patterns (PASSWORD '…', URLs with
// passwords) in statement texts before they leave the server.
var queryScrubber = scrub.Default()

// maxActive bounds the active queries returned (API.md §4.13).
const maxActive = 50

// LiveStats measures db now. Whether pg_stat_statements is enabled in db is
// read by an agent (the only way into the database's own catalog); the
// statements themselves come from the cluster-wide view in "postgres".
func (c *Cluster) LiveStats(ctx context.Context, db string) (*LiveStats, error) {
	out := &LiveStats{Active: []ActiveQuery{}, Slow: []SlowQuery{}}
	err := c.admin.QueryRow(ctx, `SELECT pg_catalog.pg_database_size(d.oid),
		(SELECT count(*) FROM pg_catalog.pg_stat_activity a
		  WHERE a.datid OPERATOR(pg_catalog.=) d.oid AND a.backend_type OPERATOR(pg_catalog.=) 'client backend' AND `+notAgent+`)
		FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1`, db).Scan(&out.SizeBytes, &out.Connections)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoDatabase
	}
	if err != nil {
		return nil, err
	}
	rows, err := c.admin.Query(ctx, `SELECT a.pid, coalesce(a.usename, ''), coalesce(a.state, ''), coalesce(a.query, ''),
		(extract(epoch FROM pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) coalesce(a.query_start, a.backend_start)) OPERATOR(pg_catalog.*) 1000)::bigint,
		a.wait_event_type, a.wait_event
		FROM pg_catalog.pg_stat_activity a
		WHERE a.datname OPERATOR(pg_catalog.=) $1 AND a.backend_type OPERATOR(pg_catalog.=) 'client backend'
		  AND a.state IS DISTINCT FROM 'idle' AND `+notAgent+`
		ORDER BY a.query_start NULLS LAST LIMIT $2`, db, maxActive)
	if err != nil {
		return nil, err
	}
	var q ActiveQuery
	var ms int64
	if _, err := pgx.ForEachRow(rows, []any{&q.PID, &q.Username, &q.State, &q.Query, &ms, &q.WaitEventType, &q.WaitEvent}, func() error {
		q.Duration = time.Duration(ms) * time.Millisecond
		q.Query = queryScrubber.String(q.Query)
		out.Active = append(out.Active, q)
		return nil
	}); err != nil {
		return nil, err
	}
	if out.StatsEnabled, err = c.statsEnabled(ctx, db); err != nil {
		return nil, err
	}
	if out.StatsEnabled {
		if out.Slow, err = c.slowQueries(ctx, db); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// statsEnabledTTL is how long whether a database has pg_stat_statements is
// remembered: each check creates and drops an agent, and dashboards poll.
const statsEnabledTTL = 30 * time.Second

type enabledAt struct {
	enabled bool
	at      time.Time
}

// statsEnabled is hasExtension(db, pg_stat_statements), remembered briefly.
func (c *Cluster) statsEnabled(ctx context.Context, db string) (bool, error) {
	c.statsMu.Lock()
	if e, ok := c.statsEnabledCache[db]; ok && time.Since(e.at) < statsEnabledTTL {
		c.statsMu.Unlock()
		return e.enabled, nil
	}
	c.statsMu.Unlock()
	ok, err := c.hasExtension(ctx, db, "pg_stat_statements")
	if err != nil {
		return false, err
	}
	c.statsMu.Lock()
	if c.statsEnabledCache == nil || len(c.statsEnabledCache) > 10000 {
		c.statsEnabledCache = map[string]enabledAt{}
	}
	c.statsEnabledCache[db] = enabledAt{ok, time.Now()}
	c.statsMu.Unlock()
	return ok, nil
}

// hasExtension reads db's pg_extension as an agent of its owner.
func (c *Cluster) hasExtension(ctx context.Context, db, ext string) (bool, error) {
	a, err := c.agentForDatabase(ctx, db)
	if err != nil {
		return false, err
	}
	defer a.close(ctx) //nolint:errcheck
	conn, err := a.connect(ctx, db, "capydb-observe")
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ok bool
	err = conn.QueryRow(ctx, `/* capydb-observe */ SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
		WHERE extname OPERATOR(pg_catalog.=) $1)`, ext).Scan(&ok)
	return ok, err
}

// statementsView makes pg_stat_statements readable in "postgres" (the
// library is preloaded; the view needs the extension in the database that
// reads it). Failure leaves statements unmeasured.
func (c *Cluster) statementsView(ctx context.Context) bool {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if !c.statsReady {
		_, err := c.admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public`)
		c.statsReady = err == nil
	}
	return c.statsReady
}

func (c *Cluster) slowQueries(ctx context.Context, db string) ([]SlowQuery, error) {
	out := []SlowQuery{}
	if !c.statementsView(ctx) {
		return out, nil
	}
	rows, err := c.admin.Query(ctx, `SELECT s.queryid, s.query, s.calls, s.rows, s.mean_exec_time, s.total_exec_time,
		s.jit_generation_time + s.jit_inlining_time + s.jit_optimization_time + s.jit_emission_time,
		s.shared_blks_hit, s.shared_blks_read, s.temp_blks_read, s.temp_blks_written
		FROM public.pg_stat_statements(true) s
		JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.dbid
		LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.userid
		WHERE d.datname OPERATOR(pg_catalog.=) $1 AND coalesce(r.rolname, '') NOT LIKE 'capydb\_agent\_%'
		  AND s.query IS NOT NULL AND s.query NOT LIKE '/* capydb-observe */%'
		ORDER BY s.mean_exec_time DESC LIMIT 10`, db)
	if err != nil {
		return nil, fmt.Errorf("while reading pg_stat_statements: %w", err)
	}
	var s SlowQuery
	_, err = pgx.ForEachRow(rows, []any{&s.QueryID, &s.Query, &s.Calls, &s.Rows, &s.MeanTimeMs, &s.TotalTimeMs, &s.JITTimeMs,
		&s.SharedBlksHit, &s.SharedBlksRead, &s.TempBlksRead, &s.TempBlksWritten}, func() error {
		s.Query = queryScrubber.String(s.Query)
		out = append(out, s)
		return nil
	})
	return out, err
}

// DatabaseCounters are one database's gauges and cumulative counters, read
// for every database of a cluster in one query by the sampler.
type DatabaseCounters struct {
	Connections  int
	Active       int
	Blocked      int // waiting on a lock
	SizeBytes    int64
	XactCommit   int64
	XactRollback int64
	BlksHit      int64
	BlksRead     int64
	Deadlocks    int64
	TupDead      int64 // rows updated or deleted: each leaves a dead tuple
	StmtCalls    int64
	StmtTimeMs   float64
}

// SampleDatabases reads the counters of dbs (those present on the cluster)
// in one catalog query, plus one over pg_stat_statements when readable.
func (c *Cluster) SampleDatabases(ctx context.Context, dbs []string) (map[string]*DatabaseCounters, error) {
	out := make(map[string]*DatabaseCounters, len(dbs))
	rows, err := c.admin.Query(ctx, `WITH act AS (
		  SELECT a.datid, count(*) AS conns,
		    count(*) FILTER (WHERE a.state OPERATOR(pg_catalog.=) 'active') AS active,
		    count(*) FILTER (WHERE a.wait_event_type OPERATOR(pg_catalog.=) 'Lock') AS blocked
		  FROM pg_catalog.pg_stat_activity a
		  WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend' AND `+notAgent+`
		  GROUP BY a.datid)
		SELECT d.datname, coalesce(act.conns, 0), coalesce(act.active, 0), coalesce(act.blocked, 0),
		  pg_catalog.pg_database_size(d.oid), s.xact_commit, s.xact_rollback, s.blks_hit, s.blks_read,
		  s.deadlocks, s.tup_updated OPERATOR(pg_catalog.+) s.tup_deleted
		FROM pg_catalog.pg_database d
		JOIN pg_catalog.pg_stat_database s ON s.datid OPERATOR(pg_catalog.=) d.oid
		LEFT JOIN act ON act.datid OPERATOR(pg_catalog.=) d.oid
		WHERE d.datname OPERATOR(pg_catalog.=) ANY ($1::text[])`, dbs)
	if err != nil {
		return nil, err
	}
	var name string
	var dc DatabaseCounters
	if _, err := pgx.ForEachRow(rows, []any{&name, &dc.Connections, &dc.Active, &dc.Blocked, &dc.SizeBytes,
		&dc.XactCommit, &dc.XactRollback, &dc.BlksHit, &dc.BlksRead, &dc.Deadlocks, &dc.TupDead}, func() error {
		cp := dc
		out[name] = &cp
		return nil
	}); err != nil {
		return nil, err
	}
	if !c.statementsView(ctx) {
		return out, nil
	}
	rows, err = c.admin.Query(ctx, `SELECT d.datname, sum(s.calls)::bigint, sum(s.total_exec_time)
		FROM public.pg_stat_statements(false) s
		JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.dbid
		WHERE d.datname OPERATOR(pg_catalog.=) ANY ($1::text[]) GROUP BY d.datname`, dbs)
	if err != nil {
		return out, nil // statements unmeasured, the rest stands
	}
	var calls int64
	var ms float64
	_, err = pgx.ForEachRow(rows, []any{&name, &calls, &ms}, func() error {
		if dc := out[name]; dc != nil {
			dc.StmtCalls, dc.StmtTimeMs = calls, ms
		}
		return nil
	})
	return out, err
}

// statsState is the lazily created pg_stat_statements view of "postgres"
// (retried after a failure).
type statsState struct {
	statsMu           sync.Mutex
	statsReady        bool
	statsEnabledCache map[string]enabledAt // by database
}
