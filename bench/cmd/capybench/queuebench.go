package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

const noopType = "bench.noop"

// PickupRun is sequential single jobs: each waits for the previous one.
type PickupRun struct {
	Workers     int `json:"workers"`
	Concurrency int `json:"concurrency_per_worker"`
	N           int `json:"n"`
	// Handler start − COMMIT answered (the caller's view of "enqueued").
	FromCommit Dist `json:"from_commit"`
	// Handler start − COMMIT sent (upper bound; includes the commit itself).
	FromCommitSent Dist `json:"from_commit_sent"`
	// Handler start − payload "t" (taken before BEGIN; includes INSERT and COMMIT).
	FromEnqueueStart Dist `json:"from_enqueue_start"`
	// COMMIT answered → state completed seen by a LISTENing client.
	CommitToCompleted Dist      `json:"commit_to_completed"`
	SamplesMs         []float64 `json:"from_commit_samples_ms"`
}

// ThroughputRun is a batch of no-op jobs.
type ThroughputRun struct {
	Mode        string  `json:"mode"` // "live": enqueue while workers run; "backlog": enqueue first, then start workers
	Workers     int     `json:"workers"`
	Concurrency int     `json:"concurrency_per_worker"`
	Jobs        int     `json:"jobs"`
	BatchSize   int     `json:"batch_size"`
	EnqueueS    float64 `json:"enqueue_s"`
	EnqueuePerS float64 `json:"enqueue_per_s"`
	// Live: first BEGIN → last completion seen. Backlog: workers started → last completion seen.
	WallS float64 `json:"wall_s"`
	// Same span from the control DB's timestamps (first created_at/started_at → last completed_at).
	ServerWallS float64     `json:"server_wall_s"`
	JobsPerS    float64     `json:"jobs_per_s"`
	PerWorker   map[int]int `json:"jobs_per_worker"`
	Failed      int         `json:"failed"`
	CPU         CPUUse      `json:"cpu"`
	// Statements pg_stat_statements saw during the run (all databases).
	TopStatements []Statement `json:"top_statements,omitempty"`
}

// QueueResult is bench/results/queue.json.
type QueueResult struct {
	Meta       Meta             `json:"meta"`
	Cluster    string           `json:"cluster"`
	Settings   string           `json:"postgres_settings"`
	Pickup     []*PickupRun     `json:"pickup"`
	Throughput []*ThroughputRun `json:"throughput"`
	Targets    []Target         `json:"targets"`
}

type handlerLog struct {
	mu     sync.Mutex
	starts map[string]time.Time
	by     map[int]int
}

func (h *handlerLog) reset() {
	h.mu.Lock()
	h.starts, h.by = map[string]time.Time{}, map[int]int{}
	h.mu.Unlock()
}

func (h *handlerLog) start(id string, worker int, t time.Time) {
	h.mu.Lock()
	if _, ok := h.starts[id]; !ok {
		h.starts[id] = t
	}
	h.by[worker]++
	h.mu.Unlock()
}

func (h *handlerLog) get(id string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.starts[id]
	return t, ok
}

type queueEnv struct {
	dsn   string
	st    *store.Store // enqueue side
	log   *slog.Logger
	hlog  *handlerLog
	nproc int
}

func runQueue(ctx context.Context, o *options) (*QueueResult, error) {
	res := &QueueResult{Meta: newMeta(o)}
	var c *localcluster.Cluster
	var stop func()
	var err error
	if o.queueDurable {
		res.Cluster = "localcluster, durable settings (fsync on), data dir under " + o.tmpBase
		c, stop, err = startDurableCluster(ctx, o.tmpBase)
	} else {
		res.Cluster = "clustertest.StartForMain (Fast: fsync and full_page_writes off; tmpfs when /dev/shm has room)"
		c, stop, err = clustertest.StartForMain()
	}
	if err != nil {
		return nil, fmt.Errorf("starting the cluster: %w", err)
	}
	registerCleanup(stop)
	defer stop()

	admin, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.Background())
	_ = admin.QueryRow(ctx, `SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
		WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers','data_directory')`).Scan(&res.Settings)
	pss := true
	if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		pss = false
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE capybench_queue`); err != nil {
		return nil, fmt.Errorf("creating the queue database: %w", err)
	}
	env := &queueEnv{dsn: c.AdminDSNFor("capybench_queue"), hlog: &handlerLog{}, nproc: o.nproc,
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	env.st, err = store.Open(ctx, env.dsn, 10)
	if err != nil {
		return nil, err
	}
	defer func() {
		env.st.Close()
		time.Sleep(300 * time.Millisecond) // let pools finish closing before the cluster stops
	}()
	if err := env.st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating: %w", err)
	}
	logf("queue: cluster up (%s)", res.Settings)

	for _, workers := range []int{1, 4} {
		if err := env.truncate(ctx); err != nil {
			return nil, err
		}
		pr, err := env.pickup(ctx, workers, 10, o.pickupN)
		if err != nil {
			return nil, fmt.Errorf("pickup with %d workers: %w", workers, err)
		}
		logf("queue: pickup %d worker(s)×10: p50 %.2f ms p99 %.2f ms (from commit)", workers, pr.FromCommit.P50, pr.FromCommit.P99)
		res.Pickup = append(res.Pickup, pr)
		for _, mode := range []string{"live", "backlog"} {
			if err := env.truncate(ctx); err != nil {
				return nil, err
			}
			if pss {
				_, _ = admin.Exec(ctx, `SELECT pg_stat_statements_reset()`)
			}
			tr, err := env.throughput(ctx, mode, workers, 10, o.queueJobs, o.queueBatch)
			if err != nil {
				return nil, fmt.Errorf("throughput (%s) with %d workers: %w", mode, workers, err)
			}
			if pss {
				tr.TopStatements = topStatements(ctx, admin, 8)
			}
			logf("queue: %s %d worker(s)×10: %d jobs in %.2f s = %.0f jobs/s (enqueue %.0f/s)",
				mode, workers, tr.Jobs, tr.WallS, tr.JobsPerS, tr.EnqueuePerS)
			res.Throughput = append(res.Throughput, tr)
		}
	}
	p := res.Pickup[0]
	res.Targets = []Target{{Name: "queue pickup p50 < 5 ms (1 worker)", Value: fmt.Sprintf("%.2f ms", p.FromCommit.P50), Pass: p.FromCommit.P50 < 5}}
	if len(res.Pickup) > 1 {
		p4 := res.Pickup[1]
		res.Targets = append(res.Targets, Target{Name: "queue pickup p50 < 5 ms (4 workers)", Value: fmt.Sprintf("%.2f ms", p4.FromCommit.P50), Pass: p4.FromCommit.P50 < 5})
	}
	res.Meta.finish()
	return res, nil
}

func (e *queueEnv) truncate(ctx context.Context) error {
	_, err := e.st.Pool.Exec(ctx, `TRUNCATE jobs, events`)
	return err
}

// startWorkers runs n workers, each with its own pool (like n server
// processes: Workers+20 connections each). stop waits for them.
func (e *queueEnv) startWorkers(ctx context.Context, n, conc int) (stop func(), err error) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var stores []*store.Store
	stop = func() {
		cancel()
		wg.Wait()
		for _, s := range stores {
			s.Close()
		}
	}
	for w := range n {
		st, err := store.Open(ctx, e.dsn, int32(conc+20))
		if err != nil {
			stop()
			return nil, err
		}
		stores = append(stores, st)
		handler := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, _ *queue.Reporter) (any, error) {
			e.hlog.start(j.ID, w, time.Now())
			return nil, nil
		})
		// No ":" in the id: Run's dead-worker reclaim parses "<host>:<pid>".
		wk := queue.NewWorker(st.Pool, queue.Config{WorkerID: fmt.Sprintf("capybench-w%d", w), Concurrency: conc, Logger: e.log},
			map[string]queue.Handler{noopType: handler})
		wg.Add(1)
		go func() { defer wg.Done(); _ = wk.Run(wctx) }()
	}
	// Let every worker open its LISTEN connection before timing anything.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var listeners int
		if err := e.st.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&listeners); err != nil {
			stop()
			return nil, err
		}
		if listeners >= n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("only %d of %d workers listening after 10 s", listeners, n)
		}
		_ = sleepCtx(ctx, 10*time.Millisecond)
	}
	return stop, nil
}

func (e *queueEnv) pickup(ctx context.Context, workers, conc, n int) (*PickupRun, error) {
	e.hlog.reset()
	stop, err := e.startWorkers(ctx, workers, conc)
	if err != nil {
		return nil, err
	}
	defer stop()
	lc, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		return nil, err
	}
	defer lc.Close(context.Background())
	if _, err := lc.Exec(ctx, `LISTEN capydb_jobs`); err != nil {
		return nil, err
	}
	pr := &PickupRun{Workers: workers, Concurrency: conc, N: n}
	var fromCommit, fromSent, fromStart, roundTrip []float64
	for i := range n {
		id := fmt.Sprintf("job_benchpickup%d_%05d", workers, i)
		tStart := time.Now()
		tx, err := e.st.Pool.Begin(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{ID: id, Type: noopType, OrganizationID: "org_bench",
			Payload: map[string]any{"t": tStart.UnixNano()}}); err != nil {
			tx.Rollback(ctx)
			return nil, err
		}
		tSent := time.Now()
		if err := tx.Commit(ctx); err != nil {
			return nil, err
		}
		tCommit := time.Now()
		tDone, err := waitCompleted(ctx, lc, id, 10*time.Second)
		if err != nil {
			return nil, err
		}
		hs, ok := e.hlog.get(id)
		if !ok {
			return nil, fmt.Errorf("job %s completed but its handler start was not recorded", id)
		}
		fromCommit = append(fromCommit, ms(hs.Sub(tCommit)))
		fromSent = append(fromSent, ms(hs.Sub(tSent)))
		fromStart = append(fromStart, ms(hs.Sub(tStart)))
		roundTrip = append(roundTrip, ms(tDone.Sub(tCommit)))
	}
	pr.FromCommit, pr.FromCommitSent, pr.FromEnqueueStart = summarize(fromCommit), summarize(fromSent), summarize(fromStart)
	pr.CommitToCompleted = summarize(roundTrip)
	for _, v := range fromCommit {
		pr.SamplesMs = append(pr.SamplesMs, round3(v))
	}
	return pr, nil
}

// waitCompleted checks the job's state after every notification on the
// jobs channel (the completion transaction sends one).
func waitCompleted(ctx context.Context, lc *pgx.Conn, id string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var state string
		if err := lc.QueryRow(ctx, `SELECT state FROM jobs WHERE id = $1`, id).Scan(&state); err != nil {
			return time.Time{}, err
		}
		switch state {
		case queue.StateCompleted:
			return time.Now(), nil
		case queue.StateFailed:
			return time.Time{}, fmt.Errorf("job %s failed", id)
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		_, err := lc.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("job %s not completed after %s (state %s)", id, timeout, state)
			}
			return time.Time{}, err
		}
	}
}

func (e *queueEnv) enqueueBatches(ctx context.Context, prefix string, jobs, batch int) error {
	for b := 0; b < jobs; b += batch {
		err := pgx.BeginFunc(ctx, e.st.Pool, func(tx pgx.Tx) error {
			for i := b; i < min(b+batch, jobs); i++ {
				if _, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{ID: fmt.Sprintf("%s_%05d", prefix, i), Type: noopType,
					OrganizationID: "org_bench", Payload: map[string]any{"t": time.Now().UnixNano()}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *queueEnv) throughput(ctx context.Context, mode string, workers, conc, jobs, batch int) (*ThroughputRun, error) {
	e.hlog.reset()
	tr := &ThroughputRun{Mode: mode, Workers: workers, Concurrency: conc, Jobs: jobs, BatchSize: batch}
	prefix := fmt.Sprintf("job_bench%s%d", mode, workers)
	var stop func()
	var err error
	before := snapCPU(0)
	var t0 time.Time
	if mode == "live" {
		if stop, err = e.startWorkers(ctx, workers, conc); err != nil {
			return nil, err
		}
		before = snapCPU(0)
		t0 = time.Now()
		if err := e.enqueueBatches(ctx, prefix, jobs, batch); err != nil {
			stop()
			return nil, err
		}
		tr.EnqueueS = round3(time.Since(t0).Seconds())
	} else {
		te := time.Now()
		if err := e.enqueueBatches(ctx, prefix, jobs, batch); err != nil {
			return nil, err
		}
		tr.EnqueueS = round3(time.Since(te).Seconds())
		before = snapCPU(0)
		t0 = time.Now()
		if stop, err = e.startWorkers(ctx, workers, conc); err != nil {
			return nil, err
		}
	}
	defer stop()
	tr.EnqueuePerS = round3(float64(jobs) / tr.EnqueueS)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var done, failed int
		if err := e.st.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'failed')
			FROM jobs WHERE type = $1`, noopType).Scan(&done, &failed); err != nil {
			return nil, err
		}
		if done+failed >= jobs {
			tr.Failed = failed
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d jobs finished after 10 minutes", done+failed, jobs)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
	wall := time.Since(t0)
	tr.CPU = cpuBetween(before, snapCPU(0), e.nproc)
	tr.WallS = round3(wall.Seconds())
	tr.JobsPerS = round3(float64(jobs) / wall.Seconds())
	var first, last time.Time
	col := "created_at"
	if mode == "backlog" {
		col = "started_at"
	}
	if err := e.st.Pool.QueryRow(ctx, `SELECT min(`+col+`), max(completed_at) FROM jobs WHERE type = $1`, noopType).Scan(&first, &last); err == nil {
		tr.ServerWallS = round3(last.Sub(first).Seconds())
	}
	e.hlog.mu.Lock()
	tr.PerWorker = map[int]int{}
	for k, v := range e.hlog.by {
		tr.PerWorker[k] = v
	}
	e.hlog.mu.Unlock()
	return tr, nil
}

// startDurableCluster is clustertest's start with production settings on disk.
func startDurableCluster(ctx context.Context, base string) (*localcluster.Cluster, func(), error) {
	dir, err := os.MkdirTemp(base, "capybench-queue-")
	if err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := localcluster.Start(sctx, localcluster.Config{
		DataDir: dir + "/data", DirectPort: ports[0], DirectPortExplicit: true, PooledPort: ports[1], PooledPortExplicit: true,
		SessionPort: ports[2], SessionPortExplicit: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = c.Stop(sctx)
			os.RemoveAll(dir)
		})
	}, nil
}
