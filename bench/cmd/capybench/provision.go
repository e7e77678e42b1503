package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/scram"
)

// ProvisionSample is one project: POST → job completed → both URLs answer SELECT 1.
type ProvisionSample struct {
	Index           int     `json:"i"`
	ProjectID       string  `json:"project_id"`
	JobID           string  `json:"job_id"`
	StartMs         float64 `json:"start_ms"`          // since the phase started
	TotalMs         float64 `json:"total_ms"`          // POST sent → pooled SELECT 1 answered
	PostMs          float64 `json:"post_ms"`           // POST /v1/projects round trip
	WaitMs          float64 `json:"wait_ms"`           // POST answered → "completed" observed by polling
	ConnInfoMs      float64 `json:"conninfo_ms"`       // GET /connections
	DirectMs        float64 `json:"direct_connect_ms"` // connect + SELECT 1 on the direct URL
	PooledMs        float64 `json:"pooled_connect_ms"` // connect + SELECT 1 on the pooled URL
	Polls           int     `json:"polls"`
	ConnectAttempts int     `json:"connect_attempts"` // 2 = both URLs worked the first time
	// Server-side job timestamps (control DB clock = this machine's clock).
	ServerPickupMs float64 `json:"server_pickup_ms"` // created_at → started_at (claim)
	ServerRunMs    float64 `json:"server_run_ms"`    // started_at → completed_at (handler + completion tx)
	Err            string  `json:"error,omitempty"`
}

// ProvisionPhase is one concurrency level.
type ProvisionPhase struct {
	Concurrency  int     `json:"concurrency"`
	N            int     `json:"n"`
	PollInterval string  `json:"poll_interval"`
	WallS        float64 `json:"wall_s"`
	PerSecond    float64 `json:"projects_per_s"`
	Total        Dist    `json:"total"`
	Post         Dist    `json:"post"`
	Wait         Dist    `json:"wait"`
	ConnInfo     Dist    `json:"conninfo"`
	Direct       Dist    `json:"direct_connect"`
	Pooled       Dist    `json:"pooled_connect"`
	ServerPickup Dist    `json:"server_pickup"`
	ServerRun    Dist    `json:"server_run"`
	Polls        int     `json:"polls_total"`
	Retries      int     `json:"connect_retries"`
	// Server logins pgbouncer abandoned mid-SCRAM during the phase (postgres
	// logs "expected SASL response"); each stalls a client until pgbouncer's
	// server_login_retry.
	AbortedServerLogins int               `json:"aborted_server_logins"`
	Errors              int               `json:"errors"`
	FirstErrors         []string          `json:"first_errors,omitempty"`
	CPU                 CPUUse            `json:"cpu"`
	TopStatements       []Statement       `json:"top_statements,omitempty"`
	Delete              *DeletePhase      `json:"delete,omitempty"`
	Samples             []ProvisionSample `json:"samples"`
}

// DeletePhase is the clean-up of a phase's projects through the API.
type DeletePhase struct {
	N           int      `json:"n"`
	Concurrency int      `json:"concurrency"`
	WallS       float64  `json:"wall_s"`
	Latency     Dist     `json:"latency"` // DELETE sent → job completed observed
	Errors      int      `json:"errors"`
	FirstErrors []string `json:"first_errors,omitempty"`
}

// FloorResult is the same SQL the provisioner runs, on one admin connection.
type FloorResult struct {
	N int `json:"n"`
	// "interleaved": floor i runs right before project i of the c=1 phase, so
	// both see the same background load; "before": all floor steps first.
	Mode        string          `json:"mode"`
	Total       Dist            `json:"total"`
	ByStatement map[string]Dist `json:"by_statement"`
	DropWallS   float64         `json:"drop_wall_s"`
	SQL         []string        `json:"sql"`
	SamplesMs   []float64       `json:"samples_ms"`
}

// Statement is a pg_stat_statements row.
type Statement struct {
	Database string  `json:"database"`
	Calls    int64   `json:"calls"`
	TotalMs  float64 `json:"total_ms"`
	MeanMs   float64 `json:"mean_ms"`
	Query    string  `json:"query"`
}

// SyncProbe times, from outside the server, the steps of one
// dataplane SyncPooler call at the cluster's current size.
type SyncProbe struct {
	Tenants          int     `json:"tenants"`
	UserlistBytes    int     `json:"userlist_bytes"`
	DatabasesBytes   int     `json:"databases_ini_bytes"`
	AdminConnect     Dist    `json:"admin_connect"`     // new TLS + SCRAM connection (SyncPooler opens one per call)
	CatalogQueries   Dist    `json:"catalog_queries"`   // advisory lock + pg_authid + pg_database reads + unlock
	WriteFiles       Dist    `json:"write_files_fsync"` // two files written, fsynced, renamed, dir fsynced
	ConsoleConnect   Dist    `json:"console_connect"`   // new TLS + SCRAM connection to the pgbouncer console
	Reload           Dist    `json:"reload"`            // RELOAD on that connection
	SCRAMVerifier    Dist    `json:"scram_verifier"`    // scram.Verifier (PBKDF2, 4096 rounds)
	EstimatedSyncP50 float64 `json:"estimated_sync_p50_ms"`
}

// ProvisionResult is bench/results/provision.json.
type ProvisionResult struct {
	Meta        Meta              `json:"meta"`
	N           int               `json:"n"`
	Warmup      int               `json:"warmup"`
	Floor       FloorResult       `json:"floor"`
	Phases      []*ProvisionPhase `json:"phases"`
	SyncProbe   *SyncProbe        `json:"sync_probe,omitempty"`
	Strategies  []StrategyResult  `json:"create_database_strategies,omitempty"`
	RatioP50    float64           `json:"ratio_p50_c1_over_floor"`
	Targets     []Target          `json:"targets"`
	ServerDisk  string            `json:"server_data_fs"`
	ServerNotes []string          `json:"notes"`
}

func runProvision(ctx context.Context, o *options) (*ProvisionResult, error) {
	res := &ProvisionResult{Meta: newMeta(o), N: o.provisionN, Warmup: o.warmup}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "provision", "--warm-pool", "0") // the cold path; perfbench.go measures the warm one
	if err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.Stop()
	res.ServerDisk = fsType(srv.Root)
	cl := NewClient(srv)
	logf("provision: server %s (pid %d), data dir on %s", srv.URL, srv.Pid(), res.ServerDisk)

	adminDSN, err := srv.AdminDSNFor("postgres")
	if err != nil {
		return nil, err
	}
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster as capydb_admin: %w", err)
	}
	defer admin.Close(context.Background())
	var settings string
	_ = admin.QueryRow(ctx, `SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
		WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers','max_connections','file_copy_method')`).Scan(&settings)
	res.ServerNotes = append(res.ServerNotes, "postgres settings: "+settings)
	pss := true
	if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		pss = false
		res.ServerNotes = append(res.ServerNotes, "pg_stat_statements unavailable: "+err.Error())
	}

	// Warm-up (not counted): first CREATE DATABASE, HTTP and TLS paths.
	if o.warmup > 0 {
		logf("provision: warm-up, %d projects", o.warmup)
		wu, err := provisionPhase(ctx, cl, o, "warmup", o.warmup, 1, srv.Pid(), nil)
		if err != nil {
			return nil, err
		}
		if _, err := deleteAll(ctx, cl, wu.Samples, 10); err != nil {
			return nil, err
		}
	}

	probe, err := syncProbe(ctx, srv, admin, 20)
	if err != nil {
		logf("provision: pooler sync probe failed: %v", err)
	} else {
		res.SyncProbe = probe
	}

	if o.strategyN > 0 {
		if res.Strategies, err = createDatabaseStrategies(ctx, admin, srv.Pid(), o.strategyN, "WAL_LOG", "FILE_COPY"); err != nil {
			logf("provision: CREATE DATABASE strategy comparison failed: %v", err)
		}
	}

	floor, err := newFloor(admin, o.provisionN)
	if err != nil {
		return nil, err
	}
	if o.floorMode == "before" {
		logf("provision: bare-SQL floor, %d role+database pairs on one admin connection", o.provisionN)
		for i := range o.provisionN {
			if err := floor.Step(ctx, i); err != nil {
				return nil, err
			}
		}
		if res.Floor, err = floor.Finish(ctx, "before"); err != nil {
			return nil, err
		}
		logf("provision: floor p50 %.1f ms, p99 %.1f ms", res.Floor.Total.P50, res.Floor.Total.P99)
	}

	for _, conc := range []int{1, 20} {
		if pss {
			_, _ = admin.Exec(ctx, `SELECT pg_stat_statements_reset()`)
		}
		var before func(ctx context.Context, i int) error
		if conc == 1 && o.floorMode == "interleaved" {
			before = floor.Step
			logf("provision: concurrency 1, %d projects, each right after one bare-SQL floor step (poll every %s)", o.provisionN, o.poll)
		} else {
			logf("provision: concurrency %d, %d projects (poll every %s)", conc, o.provisionN, o.poll)
		}
		aborted0 := srv.CountLog(abortedLogin)
		ph, err := provisionPhase(ctx, cl, o, fmt.Sprintf("c%d", conc), o.provisionN, conc, srv.Pid(), before)
		if err != nil {
			return nil, err
		}
		ph.AbortedServerLogins = srv.CountLog(abortedLogin) - aborted0
		if pss {
			ph.TopStatements = topStatements(ctx, admin, 12)
		}
		if before != nil {
			if res.Floor, err = floor.Finish(ctx, "interleaved"); err != nil {
				return nil, err
			}
			logf("provision: floor p50 %.1f ms, p99 %.1f ms", res.Floor.Total.P50, res.Floor.Total.P99)
		}
		logf("provision: c=%d p50 %.1f ms p90 %.1f ms p99 %.1f ms max %.1f ms (%d errors, %.1f projects/s)",
			conc, ph.Total.P50, ph.Total.P90, ph.Total.P99, ph.Total.Max, ph.Errors, ph.PerSecond)
		if ph.Errors > 0 {
			srv.KeepLog = true
			for _, e := range ph.FirstErrors {
				logf("provision: error: %s", e)
			}
		}
		logf("provision: deleting the %d projects through the API", len(ph.Samples))
		ph.Delete, err = deleteAll(ctx, cl, ph.Samples, 10)
		if err != nil {
			return nil, err
		}
		res.Phases = append(res.Phases, ph)
	}

	c1 := res.Phases[0]
	if res.Floor.Total.P50 > 0 {
		res.RatioP50 = round3(c1.Total.P50 / res.Floor.Total.P50)
	}
	res.Targets = []Target{
		{Name: "provision p50 (c=1) ≤ 2× bare-SQL floor p50", Value: fmt.Sprintf("%.2f×", res.RatioP50), Pass: res.RatioP50 > 0 && res.RatioP50 <= 2 && c1.Errors == 0},
	}
	for _, ph := range res.Phases {
		res.Targets = append(res.Targets, Target{
			Name:  fmt.Sprintf("provision p99 (c=%d) ≤ 500 ms", ph.Concurrency),
			Value: fmt.Sprintf("%.0f ms", ph.Total.P99), Pass: ph.Total.P99 <= 500 && ph.Errors == 0,
		})
	}
	res.Meta.finish()
	return res, nil
}

// provisionPhase creates n projects with conc workers, each waited to
// completion and checked on both URLs.
func provisionPhase(ctx context.Context, cl *Client, o *options, label string, n, conc, serverPid int,
	prelude func(ctx context.Context, i int) error) (*ProvisionPhase, error) {
	ph := &ProvisionPhase{Concurrency: conc, N: n, PollInterval: o.poll.String()}
	samples := make([]ProvisionSample, n)
	var mu sync.Mutex
	before := snapCPU(serverPid)
	t0 := time.Now()
	err := forEach(ctx, n, conc, func(ctx context.Context, i int) error {
		if prelude != nil {
			if err := prelude(ctx, i); err != nil {
				return err
			}
		}
		s := provisionOne(ctx, cl, o, fmt.Sprintf("bench %s %04d %s", label, i, o.runID), i, t0)
		samples[i] = s
		if s.Err != "" {
			mu.Lock()
			ph.Errors++
			if len(ph.FirstErrors) < 5 {
				ph.FirstErrors = append(ph.FirstErrors, s.Err)
			}
			mu.Unlock()
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	wall := time.Since(t0)
	ph.CPU = cpuBetween(before, snapCPU(serverPid), o.nproc)
	if err != nil {
		return nil, err
	}
	if ph.Errors == n {
		return nil, fmt.Errorf("every provisioning failed; first error: %s", ph.FirstErrors[0])
	}
	ph.Samples = samples
	ph.WallS = round3(wall.Seconds())
	ph.PerSecond = round3(float64(n) / wall.Seconds())
	ok := make([]ProvisionSample, 0, n)
	for _, s := range samples {
		ph.Polls += s.Polls
		if s.ConnectAttempts > 2 {
			ph.Retries += s.ConnectAttempts - 2
		}
		if s.Err == "" {
			ok = append(ok, s)
		}
	}
	ph.Total = summarize(field(ok, func(s ProvisionSample) float64 { return s.TotalMs }))
	ph.Post = summarize(field(ok, func(s ProvisionSample) float64 { return s.PostMs }))
	ph.Wait = summarize(field(ok, func(s ProvisionSample) float64 { return s.WaitMs }))
	ph.ConnInfo = summarize(field(ok, func(s ProvisionSample) float64 { return s.ConnInfoMs }))
	ph.Direct = summarize(field(ok, func(s ProvisionSample) float64 { return s.DirectMs }))
	ph.Pooled = summarize(field(ok, func(s ProvisionSample) float64 { return s.PooledMs }))
	ph.ServerPickup = summarize(field(ok, func(s ProvisionSample) float64 { return s.ServerPickupMs }))
	ph.ServerRun = summarize(field(ok, func(s ProvisionSample) float64 { return s.ServerRunMs }))
	return ph, nil
}

func provisionOne(ctx context.Context, cl *Client, o *options, name string, i int, t0 time.Time) (s ProvisionSample) {
	s.Index = i
	start := time.Now()
	s.StartMs = round3(ms(start.Sub(t0)))
	fail := func(step string, err error) ProvisionSample {
		s.Err = fmt.Sprintf("%s: %v", step, err)
		return s
	}
	pid, job, err := cl.CreateProject(ctx, name)
	tPost := time.Now()
	s.PostMs = round3(ms(tPost.Sub(start)))
	if err != nil {
		return fail("create", err)
	}
	s.ProjectID, s.JobID = pid, job.ID
	done, polls, err := cl.WaitJob(ctx, job.ID, o.poll, o.jobTimeout)
	tDone := time.Now()
	s.Polls = polls
	s.WaitMs = round3(ms(tDone.Sub(tPost)))
	if err != nil {
		return fail("wait", err)
	}
	if done.StartedAt != nil && done.CompletedAt != nil {
		s.ServerPickupMs = round3(ms(done.StartedAt.Sub(done.CreatedAt)))
		s.ServerRunMs = round3(ms(done.CompletedAt.Sub(*done.StartedAt)))
	}
	conns, err := cl.Connections(ctx, pid)
	tInfo := time.Now()
	s.ConnInfoMs = round3(ms(tInfo.Sub(tDone)))
	if err != nil {
		return fail("connections", err)
	}
	d, a1, err := connectSelect1(ctx, conns.DirectURL, false)
	s.DirectMs = round3(ms(d))
	if err != nil {
		return fail("direct URL", err)
	}
	p, a2, err := connectSelect1(ctx, conns.PooledURL, true)
	s.PooledMs = round3(ms(p))
	s.ConnectAttempts = a1 + a2
	if err != nil {
		return fail("pooled URL", err)
	}
	s.TotalMs = round3(ms(time.Since(start)))
	return s
}

// connectSelect1 connects and runs SELECT 1, retrying for up to 10 s (a
// retry is a finding: the URL was handed out before it worked).
func connectSelect1(ctx context.Context, url string, simple bool) (time.Duration, int, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, 0, fmt.Errorf("bad URL: %w", err)
	}
	if simple {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	attempts := 0
	for {
		attempts++
		err = func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			conn, err := pgx.ConnectConfig(cctx, cfg)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			var one int
			return conn.QueryRow(cctx, "SELECT 1").Scan(&one)
		}()
		if err == nil {
			return time.Since(start), attempts, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return time.Since(start), attempts, err
		}
		_ = sleepCtx(ctx, 5*time.Millisecond)
	}
}

// deleteAll deletes the projects of samples through the API and waits for
// every delete job.
func deleteAll(ctx context.Context, cl *Client, samples []ProvisionSample, conc int) (*DeletePhase, error) {
	var ids []string
	for _, s := range samples {
		if s.ProjectID != "" {
			ids = append(ids, s.ProjectID)
		}
	}
	dp := &DeletePhase{N: len(ids), Concurrency: conc}
	lat := make([]float64, len(ids))
	var mu sync.Mutex
	t0 := time.Now()
	err := forEach(ctx, len(ids), conc, func(ctx context.Context, i int) error {
		start := time.Now()
		err := func() error {
			j, err := cl.DeleteProject(ctx, ids[i])
			if err != nil {
				return err
			}
			_, _, err = cl.WaitJob(ctx, j.ID, 10*time.Millisecond, 5*time.Minute)
			return err
		}()
		lat[i] = ms(time.Since(start))
		if err != nil {
			mu.Lock()
			dp.Errors++
			if len(dp.FirstErrors) < 5 {
				dp.FirstErrors = append(dp.FirstErrors, fmt.Sprintf("%s: %v", ids[i], err))
			}
			mu.Unlock()
		}
		return ctx.Err()
	})
	dp.WallS = round3(time.Since(t0).Seconds())
	dp.Latency = summarize(lat)
	if err != nil {
		return dp, err
	}
	if dp.Errors > 0 {
		logf("warning: %d deletions failed; first: %s", dp.Errors, dp.FirstErrors[0])
	}
	return dp, nil
}

// floorRunner runs the provisioner's SQL on one admin connection; Step
// times one role + database, Finish drops them all.
type floorRunner struct {
	conn      *pgx.Conn
	suffix    string
	verifiers []string
	per       map[string][]float64
	total     []float64
	made      [][2]string
	sql       []string
}

var floorStatements = []string{"create_role", "create_database", "revoke_public", "alter_role_statement_timeout", "alter_role_idle_tx_timeout"}

func newFloor(conn *pgx.Conn, n int) (*floorRunner, error) {
	f := &floorRunner{conn: conn, suffix: randomHex(4), per: map[string][]float64{}}
	// The provisioner sends a SCRAM verifier, computed before its SQL.
	for range n {
		v, err := scram.Verifier(randomHex(16))
		if err != nil {
			return nil, err
		}
		f.verifiers = append(f.verifiers, v)
	}
	return f, nil
}

func (f *floorRunner) Step(ctx context.Context, i int) error {
	role := fmt.Sprintf("u_benchfloor_%s_%04d", f.suffix, i)
	db := fmt.Sprintf("db_benchfloor_%s_%04d", f.suffix, i)
	r, d := pgx.Identifier{role}.Sanitize(), pgx.Identifier{db}.Sanitize()
	v := f.verifiers[i%len(f.verifiers)]
	stmts := []string{
		`CREATE ROLE ` + r + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 60 PASSWORD '` + v + `'`,
		`CREATE DATABASE ` + d + ` OWNER ` + r + ` TEMPLATE ` + pgx.Identifier{dataplane.TemplateDatabase}.Sanitize(),
		`REVOKE ALL ON DATABASE ` + d + ` FROM PUBLIC`,
		`ALTER ROLE ` + r + ` SET statement_timeout = '0'`,
		`ALTER ROLE ` + r + ` SET idle_in_transaction_session_timeout = '120s'`,
	}
	if f.sql == nil {
		for _, st := range stmts {
			f.sql = append(f.sql, strings.Replace(st, v, "SCRAM-SHA-256$4096:…", 1))
		}
	}
	f.made = append(f.made, [2]string{role, db})
	start := time.Now()
	last := start
	for k, st := range stmts {
		if _, err := f.conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("floor %s: %w", floorStatements[k], err)
		}
		now := time.Now()
		f.per[floorStatements[k]] = append(f.per[floorStatements[k]], ms(now.Sub(last)))
		last = now
	}
	f.total = append(f.total, ms(time.Since(start)))
	return nil
}

// Finish drops what Step made and summarises.
func (f *floorRunner) Finish(ctx context.Context, mode string) (FloorResult, error) {
	fr := FloorResult{N: len(f.total), Mode: mode, ByStatement: map[string]Dist{}, SQL: f.sql, Total: summarize(f.total)}
	for _, v := range f.total {
		fr.SamplesMs = append(fr.SamplesMs, round3(v))
	}
	for _, k := range floorStatements {
		fr.ByStatement[k] = summarize(f.per[k])
	}
	t0 := time.Now()
	for _, p := range f.made {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		_, err1 := f.conn.Exec(cctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{p[1]}.Sanitize()+` WITH (FORCE)`)
		_, err2 := f.conn.Exec(cctx, `DROP ROLE IF EXISTS `+pgx.Identifier{p[0]}.Sanitize())
		cancel()
		if err := errors.Join(err1, err2); err != nil {
			return fr, fmt.Errorf("dropping the floor's %s: %w", p[1], err)
		}
	}
	f.made = nil
	fr.DropWallS = round3(time.Since(t0).Seconds())
	return fr, nil
}

func topStatements(ctx context.Context, conn *pgx.Conn, limit int) []Statement {
	// Utility statements are tracked per text; fold identifiers and literals
	// so every CREATE DATABASE is one row. The floor's own statements are left out.
	rows, err := conn.Query(ctx, `
		SELECT coalesce(d.datname, ''), sum(s.calls)::bigint, sum(s.total_exec_time), sum(s.total_exec_time) / sum(s.calls),
		       left(regexp_replace(regexp_replace(regexp_replace(s.query, '\s+', ' ', 'g'), '"[^"]*"', '"…"', 'g'), '''[^'']*''', '''…''', 'g'), 140) AS q
		FROM pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid
		WHERE s.query NOT LIKE '%benchfloor%' AND s.query NOT LIKE '%pg_stat_statements%'
		GROUP BY 1, 5 ORDER BY 3 DESC LIMIT $1`, limit)
	if err != nil {
		logf("pg_stat_statements: %v", err)
		return nil
	}
	var out []Statement
	for rows.Next() {
		var s Statement
		if err := rows.Scan(&s.Database, &s.Calls, &s.TotalMs, &s.MeanMs, &s.Query); err == nil {
			s.TotalMs, s.MeanMs = round3(s.TotalMs), round3(s.MeanMs)
			out = append(out, s)
		}
	}
	rows.Close()
	return out
}

// syncProbe repeats, reps times, the steps of a full pooler sync (the
// userlist/databases rewrite with RELOAD): a fresh admin connection, the
// advisory lock and two catalog reads, two fsynced file writes, a console
// connection and RELOAD. Provisioning no longer runs it (pgBouncer looks
// tenants up with auth_query); a plan's limits or pool settings still
// trigger one, debounced, so its cost is still worth knowing.
func syncProbe(ctx context.Context, srv *Server, admin *pgx.Conn, reps int) (*SyncProbe, error) {
	p := &SyncProbe{}
	adminDSN, err := srv.AdminDSNFor("postgres")
	if err != nil {
		return nil, err
	}
	consoleDSN, err := srv.ConsoleDSN()
	if err != nil {
		return nil, err
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE NOT datistemplate AND datname NOT IN ('postgres','capydb_control')`).Scan(&p.Tenants); err != nil {
		return nil, err
	}
	var conn, verifies, queries, files, cconn, reload []float64
	dir, err := os.MkdirTemp(srv.Root, "probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for range reps {
		t := time.Now()
		c, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			return nil, err
		}
		conn = append(conn, ms(time.Since(t)))

		t = time.Now()
		var users, dbs strings.Builder
		_, err = c.Exec(ctx, "SELECT pg_advisory_lock(hashtext('capybench.probe'))")
		if err == nil {
			err = queryInto(ctx, c, &users, `SELECT rolname, rolpassword FROM pg_authid
				WHERE rolcanlogin AND rolpassword LIKE 'SCRAM-SHA-256$%' ORDER BY rolname`)
		}
		if err == nil {
			err = queryInto(ctx, c, &dbs, `SELECT d.datname, r.rolconnlimit::text
				FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
				WHERE NOT d.datistemplate AND d.datallowconn AND d.datname <> 'postgres' AND NOT r.rolsuper
				ORDER BY d.datname`)
		}
		if err == nil {
			_, err = c.Exec(ctx, "SELECT pg_advisory_unlock(hashtext('capybench.probe'))")
		}
		queries = append(queries, ms(time.Since(t)))
		c.Close(context.Background())
		if err != nil {
			return nil, err
		}
		p.UserlistBytes, p.DatabasesBytes = users.Len(), dbs.Len()

		t = time.Now()
		if err := writeSynced(filepath.Join(dir, "userlist.txt"), users.String()); err != nil {
			return nil, err
		}
		if err := writeSynced(filepath.Join(dir, "databases.ini"), dbs.String()); err != nil {
			return nil, err
		}
		files = append(files, ms(time.Since(t)))

		t = time.Now()
		cc, err := pgx.Connect(ctx, consoleDSN)
		if err != nil {
			return nil, fmt.Errorf("pgbouncer console: %w", err)
		}
		cconn = append(cconn, ms(time.Since(t)))
		t = time.Now()
		_, err = cc.Exec(ctx, "RELOAD")
		cc.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("pgbouncer RELOAD: %w", err)
		}
		reload = append(reload, ms(time.Since(t)))

		t = time.Now()
		if _, err := scram.Verifier(randomHex(16)); err != nil {
			return nil, err
		}
		verifies = append(verifies, ms(time.Since(t)))
	}
	p.AdminConnect, p.CatalogQueries, p.WriteFiles = summarize(conn), summarize(queries), summarize(files)
	p.ConsoleConnect, p.Reload, p.SCRAMVerifier = summarize(cconn), summarize(reload), summarize(verifies)
	p.EstimatedSyncP50 = round3(p.AdminConnect.P50 + p.CatalogQueries.P50 + p.WriteFiles.P50 + p.ConsoleConnect.P50 + p.Reload.P50)
	logf("sync probe at %d tenants: admin connect %.1f ms, catalog reads %.1f ms, files+fsync %.1f ms, console connect %.1f ms, RELOAD %.1f ms (p50s; sum %.1f ms)",
		p.Tenants, p.AdminConnect.P50, p.CatalogQueries.P50, p.WriteFiles.P50, p.ConsoleConnect.P50, p.Reload.P50, p.EstimatedSyncP50)
	return p, nil
}

func queryInto(ctx context.Context, c *pgx.Conn, b *strings.Builder, sql string) error {
	rows, err := c.Query(ctx, sql)
	if err != nil {
		return err
	}
	var a, v string
	_, err = pgx.ForEachRow(rows, []any{&a, &v}, func() error {
		fmt.Fprintf(b, "%q %q\n", a, v)
		return nil
	})
	return err
}

// writeSynced mirrors localcluster's writeFileAtomic.
func writeSynced(path, content string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// forEach runs f(i) for i in [0,n) on conc goroutines; it stops handing out
// work when ctx ends or f returns an error, and returns the first error.
func forEach(ctx context.Context, n, conc int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(conc, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StrategyResult is CREATE DATABASE with one STRATEGY, timed on the admin
// connection, with the postgres CPU and WAL it cost.
type StrategyResult struct {
	Strategy        string  `json:"strategy"`
	N               int     `json:"n"`
	Latency         Dist    `json:"latency"`
	PostgresCPUMsOp float64 `json:"postgres_cpu_ms_per_op"`
	WALMiBOp        float64 `json:"wal_mib_per_op"`
}

// createDatabaseStrategies compares PG15's default WAL_LOG strategy (what
// the provisioner gets) with FILE_COPY, alternating them so both see the
// same background load.
func createDatabaseStrategies(ctx context.Context, admin *pgx.Conn, serverPid, n int, strategies ...string) ([]StrategyResult, error) {
	lat := map[string][]float64{}
	cpu := map[string]float64{}
	wal := map[string]float64{}
	var made []string
	defer func() {
		for _, db := range made {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_, _ = admin.Exec(cctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{db}.Sanitize())
			cancel()
		}
	}()
	suffix := randomHex(3)
	for i := range n {
		for _, st := range strategies {
			db := fmt.Sprintf("benchstrategy_%s_%s_%03d", strings.ToLower(st), suffix, i)
			var lsn0, lsn1 string
			if err := admin.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn0); err != nil {
				return nil, err
			}
			c0 := snapCPU(serverPid)
			t := time.Now()
			_, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{db}.Sanitize()+` TEMPLATE `+
				pgx.Identifier{dataplane.TemplateDatabase}.Sanitize()+` STRATEGY `+st)
			d := time.Since(t)
			c1 := snapCPU(serverPid)
			if err != nil {
				return nil, fmt.Errorf("CREATE DATABASE … STRATEGY %s: %w", st, err)
			}
			made = append(made, db)
			var walBytes float64
			if err := admin.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn1); err != nil {
				return nil, err
			}
			if err := admin.QueryRow(ctx, `SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8`, lsn1, lsn0).Scan(&walBytes); err != nil {
				return nil, err
			}
			lat[st] = append(lat[st], ms(d))
			cpu[st] += (c1.groups["postgres"] - c0.groups["postgres"]) / clkTck * 1000
			wal[st] += walBytes / (1 << 20)
		}
	}
	var out []StrategyResult
	for _, st := range strategies {
		out = append(out, StrategyResult{Strategy: st, N: n, Latency: summarize(lat[st]),
			PostgresCPUMsOp: round3(cpu[st] / float64(n)), WALMiBOp: round3(wal[st] / float64(n))})
		logf("provision: CREATE DATABASE STRATEGY %s: p50 %.1f ms, postgres CPU %.0f ms/op, WAL %.2f MiB/op",
			st, out[len(out)-1].Latency.P50, out[len(out)-1].PostgresCPUMsOp, out[len(out)-1].WALMiBOp)
	}
	return out, nil
}
