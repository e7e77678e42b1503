package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// DensitySample is one project of the density run.
type DensitySample struct {
	StartMs float64 `json:"start_ms"` // POST sent, since the first POST
	DoneMs  float64 `json:"done_ms"`  // completion observed, since the first POST
	RunMs   float64 `json:"run_ms"`   // server started_at → completed_at
	Err     string  `json:"error,omitempty"`
}

// DensityBucket is a slice of consecutive completions.
type DensityBucket struct {
	From         int     `json:"from"` // completion rank, 1-based
	To           int     `json:"to"`
	ProjectsPerS float64 `json:"projects_per_s"`
	RunP50Ms     float64 `json:"server_run_p50_ms"`
	LatencyP50   float64 `json:"latency_p50_ms"`
}

// DensityResult is bench/results/density.json.
type DensityResult struct {
	Meta              Meta               `json:"meta"`
	N                 int                `json:"n"`
	Concurrency       int                `json:"concurrency"`
	PollInterval      string             `json:"poll_interval"`
	DataFS            string             `json:"data_fs"`
	FreeDiskGiBBefore float64            `json:"free_disk_gib_before"`
	WallS             float64            `json:"wall_s"`        // first POST → last completion observed
	ServerWallS       float64            `json:"server_wall_s"` // first job created_at → last completed_at
	ProjectsPerS      float64            `json:"projects_per_s"`
	Latency           Dist               `json:"latency"` // POST sent → completion observed
	ServerRun         Dist               `json:"server_run"`
	Buckets           []DensityBucket    `json:"buckets"`
	Errors            int                `json:"errors"`
	FirstErrors       []string           `json:"first_errors,omitempty"`
	CPU               CPUUse             `json:"cpu"`
	MemoryIdle        Memory             `json:"memory_at_0_projects"`
	Memory            Memory             `json:"memory_at_n_projects"`
	DiskIdleMiB       float64            `json:"disk_at_0_projects_mib"`
	DiskMiB           float64            `json:"disk_at_n_projects_mib"`
	DiskByDirMiB      map[string]float64 `json:"disk_by_dir_mib"`
	DiskPerProjectMiB float64            `json:"disk_per_project_mib"`
	LastProjectOK     bool               `json:"last_project_connects"`
	SyncProbe         *SyncProbe         `json:"sync_probe_at_n,omitempty"`
	Polls             int                `json:"polls_total"`
	AbortedLogins     int                `json:"aborted_server_logins"`
	CreateDBAtN       []StrategyResult   `json:"create_database_at_n,omitempty"`
	IdleAt0           IdleUse            `json:"idle_at_0_projects"`
	IdleAtN           IdleUse            `json:"idle_at_n_projects"`
	Activity          Activity           `json:"cluster_activity"`
	// pg_stat_bgwriter deltas over the run: who wrote dirty buffers out and
	// how many checkpoints were requested (WAL volume) vs timed.
	BGWriter      map[string]int64 `json:"bgwriter"`
	TopStatements []Statement      `json:"top_statements,omitempty"`
	Targets       []Target         `json:"targets"`
	Samples       []DensitySample  `json:"samples"`
}

func runDensity(ctx context.Context, o *options) (*DensityResult, error) {
	res := &DensityResult{Meta: newMeta(o), N: o.densityN, Concurrency: o.densityConc, PollInterval: o.densityPoll.String()}
	free, err := freeBytes(o.tmpBase)
	if err != nil {
		return nil, fmt.Errorf("checking free disk on %s: %w", o.tmpBase, err)
	}
	need := uint64(o.densityN)*8<<20 + 1<<30
	res.FreeDiskGiBBefore = round3(float64(free) / (1 << 30))
	if free < need {
		return nil, fmt.Errorf("density: %d projects need about %.1f GiB free under %s (≈ 8 MiB per database + 1 GiB), only %.1f GiB free; "+
			"free some space, pass -tmpdir on a bigger disk, or lower -density-n",
			o.densityN, float64(need)/(1<<30), o.tmpBase, float64(free)/(1<<30))
	}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "density")
	if err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.Stop()
	res.DataFS = fsType(srv.Root)
	cl := NewClient(srv)
	logf("density: server %s (pid %d), %.1f GiB free on %s", srv.URL, srv.Pid(), res.FreeDiskGiBBefore, res.DataFS)
	adminDSN, err := srv.AdminDSNFor("postgres")
	if err != nil {
		return nil, err
	}
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster as capydb_admin: %w", err)
	}
	defer admin.Close(context.Background())
	pss := true
	if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		pss = false
	}
	time.Sleep(time.Second) // let startup settle before the idle snapshot
	res.MemoryIdle = memoryOf(srv.Pid())
	res.DiskIdleMiB = diskUsage(srv.DataDir)
	res.IdleAt0 = measureIdle(ctx, srv.Pid(), o.nproc, o.idleWindow, srv.DataDir)
	if pss {
		_, _ = admin.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	}
	act0 := dbActivity(ctx, admin)
	bg0 := bgwriterStats(ctx, admin)

	n := o.densityN
	samples := make([]DensitySample, n)
	lat := make([]float64, 0, n)
	var mu sync.Mutex
	var firstCreated, lastCompleted time.Time
	var lastProject string
	before := snapCPU(srv.Pid())
	t0 := time.Now()
	progressEvery := max(n/10, 1)
	var completed int
	err = forEach(ctx, n, o.densityConc, func(ctx context.Context, i int) error {
		start := time.Now()
		s := DensitySample{StartMs: round3(ms(start.Sub(t0)))}
		pid, job, err := cl.CreateProject(ctx, fmt.Sprintf("density %05d %s", i, o.runID))
		var done Job
		var polls int
		if err == nil {
			done, polls, err = cl.WaitJob(ctx, job.ID, o.densityPoll, o.jobTimeout)
		}
		end := time.Now()
		s.DoneMs = round3(ms(end.Sub(t0)))
		mu.Lock()
		defer mu.Unlock()
		res.Polls += polls
		if err != nil {
			s.Err = err.Error()
			res.Errors++
			if len(res.FirstErrors) < 5 {
				res.FirstErrors = append(res.FirstErrors, s.Err)
			}
		} else {
			lat = append(lat, ms(end.Sub(start)))
			if done.StartedAt != nil && done.CompletedAt != nil {
				s.RunMs = round3(ms(done.CompletedAt.Sub(*done.StartedAt)))
				if firstCreated.IsZero() || done.CreatedAt.Before(firstCreated) {
					firstCreated = done.CreatedAt
				}
				if done.CompletedAt.After(lastCompleted) {
					lastCompleted = *done.CompletedAt
				}
			}
			lastProject = pid
		}
		samples[i] = s
		completed++
		if completed%progressEvery == 0 {
			logf("density: %d/%d projects, %.1f/s so far", completed, n, float64(completed)/time.Since(t0).Seconds())
		}
		return ctx.Err()
	})
	wall := time.Since(t0)
	res.CPU = cpuBetween(before, snapCPU(srv.Pid()), o.nproc)
	if err != nil {
		srv.KeepLog = true
		return nil, err
	}
	res.Activity = activityBetween(act0, dbActivity(ctx, admin))
	res.BGWriter = map[string]int64{}
	for k, v := range bgwriterStats(ctx, admin) {
		res.BGWriter[k] = v - bg0[k]
	}
	if pss {
		res.TopStatements = topStatements(ctx, admin, 12)
	}
	if res.Errors > 0 {
		srv.KeepLog = true
	}
	if res.Errors == n {
		return nil, fmt.Errorf("every provisioning failed; first error: %s", res.FirstErrors[0])
	}
	res.Samples = samples
	res.WallS = round3(wall.Seconds())
	res.ProjectsPerS = round3(float64(n-res.Errors) / wall.Seconds())
	if !lastCompleted.IsZero() {
		res.ServerWallS = round3(lastCompleted.Sub(firstCreated).Seconds())
	}
	res.Latency = summarize(lat)
	var runs []float64
	for _, s := range samples {
		if s.Err == "" {
			runs = append(runs, s.RunMs)
		}
	}
	res.ServerRun = summarize(runs)
	res.Buckets = buckets(samples, max(n/10, 1))
	logf("density: %d projects in %.1f s = %.1f projects/s (%d errors)", n-res.Errors, res.WallS, res.ProjectsPerS, res.Errors)

	time.Sleep(time.Second)
	res.Memory = memoryOf(srv.Pid())
	res.DiskMiB = diskUsage(srv.DataDir)
	res.DiskByDirMiB = map[string]float64{
		"pg/base":   diskUsage(filepath.Join(srv.DataDir, "pg", "base")),
		"pg/pg_wal": diskUsage(filepath.Join(srv.DataDir, "pg", "pg_wal")),
	}
	if n > 0 {
		res.DiskPerProjectMiB = round3((res.DiskMiB - res.DiskIdleMiB) / float64(n-res.Errors))
	}
	logf("density: server RSS %.1f MiB; children %d processes, RSS %.1f MiB (PSS %.1f MiB); data dir %.0f MiB",
		res.Memory.ServerRSSMiB, res.Memory.Children.Processes, res.Memory.Children.RSSMiB, res.Memory.Children.PSSMiB, res.DiskMiB)

	if lastProject != "" {
		if conns, err := cl.Connections(ctx, lastProject); err == nil {
			_, _, e1 := connectSelect1(ctx, conns.DirectURL, false)
			_, _, e2 := connectSelect1(ctx, conns.PooledURL, true)
			res.LastProjectOK = e1 == nil && e2 == nil
			if !res.LastProjectOK {
				logf("density: the last project does not answer: direct %v, pooled %v", e1, e2)
			}
		}
	}
	res.AbortedLogins = srv.CountLog(abortedLogin)
	res.IdleAtN = measureIdle(ctx, srv.Pid(), o.nproc, o.idleWindow, srv.DataDir)
	if o.strategyN > 0 {
		if st, err := createDatabaseStrategies(ctx, admin, srv.Pid(), min(o.strategyN, 5), "WAL_LOG"); err == nil {
			res.CreateDBAtN = st
		}
	}
	logf("density: idle CPU over %s: at 0 projects postgres %.2f core-s (%d autovacuum workers), at %d projects postgres %.2f core-s (%d autovacuum workers)",
		o.idleWindow, res.IdleAt0.CPU.Ours["postgres"], res.IdleAt0.AutovacuumWorkers, n, res.IdleAtN.CPU.Ours["postgres"], res.IdleAtN.AutovacuumWorkers)
	if p, err := syncProbe(ctx, srv, admin, 10); err == nil {
		res.SyncProbe = p
	} else {
		logf("density: pooler sync probe failed: %v", err)
	}
	res.Targets = []Target{{
		Name:  "density ≥ 20 projects/s",
		Value: fmt.Sprintf("%.1f/s", res.ProjectsPerS),
		Pass:  res.ProjectsPerS >= 20 && res.Errors == 0,
	}}
	res.Meta.finish()
	return res, nil
}

// buckets splits completions, in completion order, into groups of size.
func buckets(samples []DensitySample, size int) []DensityBucket {
	ok := make([]DensitySample, 0, len(samples))
	for _, s := range samples {
		if s.Err == "" {
			ok = append(ok, s)
		}
	}
	slices.SortFunc(ok, func(a, b DensitySample) int {
		switch {
		case a.DoneMs < b.DoneMs:
			return -1
		case a.DoneMs > b.DoneMs:
			return 1
		}
		return 0
	})
	var out []DensityBucket
	prevEnd := 0.0
	for from := 0; from < len(ok); from += size {
		to := min(from+size, len(ok))
		part := ok[from:to]
		end := part[len(part)-1].DoneMs
		b := DensityBucket{From: from + 1, To: to}
		if span := end - prevEnd; span > 0 {
			b.ProjectsPerS = round3(float64(len(part)) / (span / 1000))
		}
		b.RunP50Ms = summarize(field(part, func(s DensitySample) float64 { return s.RunMs })).P50
		b.LatencyP50 = summarize(field(part, func(s DensitySample) float64 { return s.DoneMs - s.StartMs })).P50
		out = append(out, b)
		prevEnd = end
	}
	return out
}

// IdleUse is the CPU the server and its cluster use with no client activity.
type IdleUse struct {
	CPU CPUUse `json:"cpu"`
	// Distinct "autovacuum worker" processes seen (sampled every 50 ms).
	AutovacuumWorkers int `json:"autovacuum_workers_seen"`
}

func measureIdle(ctx context.Context, serverPid, nproc int, d time.Duration, dataDir string) IdleUse {
	seen := map[int]bool{}
	postmaster := 0
	if b, err := os.ReadFile(filepath.Join(dataDir, "pg", "postmaster.pid")); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		postmaster, _ = strconv.Atoi(strings.TrimSpace(line))
	}
	before := snapCPU(serverPid)
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil && postmaster > 0 {
		// Autovacuum workers are the postmaster's children; reading only
		// those keeps the sampling itself cheap.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", postmaster, postmaster))
		if err != nil {
			break
		}
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if pid == 0 || seen[pid] {
				continue
			}
			if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(c), "autovacuum worker") {
				seen[pid] = true
			}
		}
		_ = sleepCtx(ctx, 50*time.Millisecond)
	}
	if postmaster == 0 {
		_ = sleepCtx(ctx, d)
	}
	return IdleUse{CPU: cpuBetween(before, snapCPU(serverPid), nproc), AutovacuumWorkers: len(seen)}
}

// dbActivity sums pg_stat_database sessions and commits by database kind.
func dbActivity(ctx context.Context, admin *pgx.Conn) map[string][2]int64 {
	out := map[string][2]int64{}
	rows, err := admin.Query(ctx, `
		SELECT CASE WHEN datname IS NULL THEN 'shared'
		            WHEN datname IN ('capydb_control', 'postgres') THEN datname ELSE 'tenants' END,
		       sum(sessions)::bigint, sum(xact_commit)::bigint
		FROM pg_stat_database GROUP BY 1`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var s, x int64
		if rows.Scan(&k, &s, &x) == nil {
			out[k] = [2]int64{s, x}
		}
	}
	return out
}

// Activity is what the cluster did during the run, per database kind.
type Activity struct {
	Sessions map[string]int64 `json:"new_sessions"`
	Commits  map[string]int64 `json:"commits"`
}

func activityBetween(a, b map[string][2]int64) Activity {
	act := Activity{Sessions: map[string]int64{}, Commits: map[string]int64{}}
	for k, v := range b {
		act.Sessions[k] = v[0] - a[k][0]
		act.Commits[k] = v[1] - a[k][1]
	}
	return act
}

func bgwriterStats(ctx context.Context, admin *pgx.Conn) map[string]int64 {
	out := map[string]int64{}
	var a, b, c, d, e, f, g int64
	if err := admin.QueryRow(ctx, `SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean,
		buffers_backend, buffers_backend_fsync, buffers_alloc FROM pg_stat_bgwriter`).Scan(&a, &b, &c, &d, &e, &f, &g); err != nil {
		return out
	}
	out["checkpoints_timed"], out["checkpoints_req"], out["buffers_checkpoint"], out["buffers_clean"] = a, b, c, d
	out["buffers_backend"], out["buffers_backend_fsync"], out["buffers_alloc"] = e, f, g
	return out
}
