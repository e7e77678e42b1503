package main

// perf (issue 23): provisioning from a warm pool against the bare-SQL
// floor of the same run, a c=20 burst of 100 creates with a pool of 100,
// thousands of concurrent clients on one project's pooled URL, and
// GET /v1/projects/{id} against a bare net/http + pgx handler doing the same
// key lookup and row read, with the same load generator.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
)

// PerfResult is perf.json.
type PerfResult struct {
	Meta
	WarmPool      int             `json:"warm_pool"`
	WarmFillS     float64         `json:"warm_fill_s"` // time to fill the pool from empty
	Floor         FloorResult     `json:"floor"`
	WarmC1        *ProvisionPhase `json:"warm_c1"`
	Burst         *ProvisionPhase `json:"burst_c20"`
	RatioP50      float64         `json:"ratio_p50"`
	AbortedLogins int             `json:"aborted_server_logins"`
	Pooled        *PooledResult   `json:"pooled,omitempty"`
	API           *APIResult      `json:"api,omitempty"`
	Targets       []Target        `json:"targets"`
	Notes         []string        `json:"notes,omitempty"`
}

func runPerf(ctx context.Context, o *options) (*PerfResult, error) {
	res := &PerfResult{Meta: newMeta(o), WarmPool: o.perfPool}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "perf", "--warm-pool", fmt.Sprint(o.perfPool))
	if err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.Stop()
	cl := NewClient(srv)
	dsn, err := srv.AdminDSNFor("postgres")
	if err != nil {
		return nil, err
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.Background())

	t0 := time.Now()
	if err := waitWarm(ctx, admin, o.perfPool); err != nil {
		return nil, err
	}
	res.WarmFillS = round3(time.Since(t0).Seconds())
	logf("perf: warm pool of %d filled in %.1f s", o.perfPool, res.WarmFillS)

	// c=1: each project right after one floor step (same background load).
	n := min(o.provisionN, o.perfPool)
	floor, err := newFloor(admin, n)
	if err != nil {
		return nil, err
	}
	aborted0 := srv.CountLog(abortedLogin)
	logf("perf: warm c=1, %d projects, each after one bare-SQL floor step", n)
	if res.WarmC1, err = provisionPhase(ctx, cl, o, "warm-c1", n, 1, srv.Pid(), floor.Step); err != nil {
		return nil, err
	}
	// The floor's databases are dropped at the end: DROP DATABASE waits
	// for a checkpoint, which after 200 new databases takes a while.
	res.Floor = FloorResult{N: len(floor.total), Mode: "interleaved", Total: summarize(floor.total), SQL: floor.sql}
	defer func() {
		if _, err := floor.Finish(context.WithoutCancel(ctx), "interleaved"); err != nil {
			logf("perf: %v", err)
		}
	}()
	if res.Floor.Total.P50 > 0 {
		res.RatioP50 = round3(res.WarmC1.Total.P50 / res.Floor.Total.P50)
	}
	logf("perf: warm c=1 p50 %.1f ms (floor %.1f ms, %.2f×), p99 %.1f ms", res.WarmC1.Total.P50, res.Floor.Total.P50, res.RatioP50, res.WarmC1.Total.P99)

	if err := waitWarm(ctx, admin, o.perfPool); err != nil {
		return nil, err
	}
	burst := min(100, o.perfPool)
	logf("perf: burst of %d creates at c=20 with a full pool of %d", burst, o.perfPool)
	if res.Burst, err = provisionPhase(ctx, cl, o, "burst", burst, 20, srv.Pid(), nil); err != nil {
		return nil, err
	}
	res.AbortedLogins = srv.CountLog(abortedLogin) - aborted0
	logf("perf: burst p50 %.1f ms p99 %.1f ms, %d errors, %d server logins abandoned", res.Burst.Total.P50, res.Burst.Total.P99, res.Burst.Errors, res.AbortedLogins)

	// A project of the burst serves the pooled and the API measurements.
	var pid string
	for _, s := range res.Burst.Samples {
		if s.Err == "" && s.ProjectID != "" {
			pid = s.ProjectID
			break
		}
	}
	if pid == "" {
		return nil, fmt.Errorf("no project of the burst is usable")
	}
	if o.pooledClients > 0 {
		conns, err := cl.Connections(ctx, pid)
		if err != nil {
			return nil, err
		}
		var limit int
		_ = admin.QueryRow(ctx, `SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, conns.Username).Scan(&limit)
		logf("perf: %d pooled clients for %s (role connection limit %d)", o.pooledClients, o.pooledDuration, limit)
		res.Pooled = pooledScale(ctx, conns.PooledURL, o.pooledClients, o.pooledDuration)
		res.Pooled.ConnLimit = limit
		logf("perf: pooled: %d connected (%d connect errors), %d transactions, %d errors, p99 %.1f ms",
			res.Pooled.Connected, res.Pooled.ConnectErrors, res.Pooled.Transactions, res.Pooled.TxErrors, res.Pooled.Latency.P99)
	}
	ctrl, err := srv.AdminDSNFor("capydb_control")
	if err != nil {
		return nil, err
	}
	if res.API, err = apiVsBare(ctx, srv, ctrl, pid, o.apiDuration); err != nil {
		return nil, err
	}
	logf("perf: API %.0f req/s vs bare %.0f req/s (%.0f%%); list p99 %.1f ms at %d projects",
		res.API.APIRate, res.API.BareRate, res.API.Ratio*100, res.API.List.P99, res.API.Projects)

	res.Targets = []Target{
		{Name: "warm provision p50 (c=1) ≤ 0.5× bare-SQL floor p50", Value: fmt.Sprintf("%.2f×", res.RatioP50), Pass: res.RatioP50 > 0 && res.RatioP50 <= 0.5 && res.WarmC1.Errors == 0},
		{Name: fmt.Sprintf("burst of %d at c=20, pool of %d: p99 ≤ 500 ms", burst, o.perfPool), Value: fmt.Sprintf("%.0f ms", res.Burst.Total.P99), Pass: res.Burst.Total.P99 <= 500 && res.Burst.Errors == 0},
		{Name: "server logins abandoned by pgBouncer (c=1 and c=20)", Value: fmt.Sprint(res.AbortedLogins), Pass: res.AbortedLogins == 0},
		{Name: "API GET /v1/projects/{id} ≥ 50% of bare net/http + pgx", Value: fmt.Sprintf("%.0f%%", res.API.Ratio*100), Pass: res.API.Ratio >= 0.5},
		{Name: fmt.Sprintf("GET /v1/projects p99 ≤ 20 ms (at %d projects)", res.API.Projects), Value: fmt.Sprintf("%.1f ms", res.API.List.P99), Pass: res.API.List.P99 <= 20},
	}
	if p := res.Pooled; p != nil {
		res.Targets = append(res.Targets, Target{Name: fmt.Sprintf("%d pooled clients, 1 transaction/s each for %s: 0 errors", o.pooledClients, o.pooledDuration),
			Value: fmt.Sprintf("%d connect + %d transaction errors, p99 %.1f ms", p.ConnectErrors, p.TxErrors, p.Latency.P99),
			Pass:  p.ConnectErrors == 0 && p.TxErrors == 0 && p.Connected == o.pooledClients})
	}
	for _, ph := range []*ProvisionPhase{res.WarmC1, res.Burst} {
		ph.Samples = nil // the distributions are kept; 130 sample rows are not
	}
	res.Meta.finish()
	return res, nil
}

// waitWarm waits until the pool holds want claimable entries.
func waitWarm(ctx context.Context, admin *pgx.Conn, want int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 'capydb\_warm\_%'
			AND shobj_description(oid, 'pg_database') LIKE 'capydb warm %'`).Scan(&n); err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the warm pool holds %d of %d after 10 minutes", n, want)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// PooledResult is the pooled-scale run.
type PooledResult struct {
	Clients       int      `json:"clients"`
	DurationS     float64  `json:"duration_s"`
	ConnLimit     int      `json:"role_connection_limit"`
	Connected     int      `json:"connected"`
	ConnectErrors int      `json:"connect_errors"`
	ConnectS      float64  `json:"connect_all_s"`
	Transactions  int64    `json:"transactions"`
	TxErrors      int64    `json:"tx_errors"`
	FirstErrors   []string `json:"first_errors,omitempty"`
	Latency       Dist     `json:"tx_latency_ms"`
}

// pooledScale opens clients connections to url (50 logins at a time), then
// each runs BEGIN; SELECT 1; COMMIT once a second for dur.
func pooledScale(ctx context.Context, url string, clients int, dur time.Duration) *PooledResult {
	res := &PooledResult{Clients: clients, DurationS: dur.Seconds()}
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		if len(res.FirstErrors) < 5 {
			res.FirstErrors = append(res.FirstErrors, err.Error())
		}
		mu.Unlock()
	}
	conns := make([]*pgconn.PgConn, clients)
	t0 := time.Now()
	_ = forEach(ctx, clients, 50, func(ctx context.Context, i int) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := pgconn.Connect(cctx, url)
		if err != nil {
			mu.Lock()
			res.ConnectErrors++
			mu.Unlock()
			fail(err)
			return nil
		}
		conns[i] = c
		return nil
	})
	res.ConnectS = round3(time.Since(t0).Seconds())
	lat := make([][]float64, clients)
	var txs, txErrs atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(dur)
	for i, c := range conns {
		if c == nil {
			continue
		}
		res.Connected++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close(context.Background())
			next := time.Now().Add(time.Duration(rand.Int64N(int64(time.Second))))
			for {
				if next.After(end) || ctx.Err() != nil {
					return
				}
				time.Sleep(time.Until(next))
				next = next.Add(time.Second)
				qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				start := time.Now()
				_, err := c.Exec(qctx, "BEGIN; SELECT 1; COMMIT").ReadAll()
				cancel()
				txs.Add(1)
				if err != nil {
					txErrs.Add(1)
					fail(err)
					return
				}
				lat[i] = append(lat[i], ms(time.Since(start)))
			}
		}()
	}
	wg.Wait()
	var all []float64
	for _, l := range lat {
		all = append(all, l...)
	}
	res.Transactions, res.TxErrors = txs.Load(), txErrs.Load()
	res.Latency = summarize(all)
	return res
}

// APIResult compares the API with a bare handler doing the same reads.
type APIResult struct {
	Concurrency int     `json:"concurrency"`
	RoundS      float64 `json:"round_s"`
	APIRate     float64 `json:"api_req_per_s"`
	BareRate    float64 `json:"bare_req_per_s"`
	Ratio       float64 `json:"ratio"`
	APILatency  Dist    `json:"api_latency_ms"`
	BareLatency Dist    `json:"bare_latency_ms"`
	Errors      int64   `json:"errors"`
	Projects    int     `json:"projects"`
	List        Dist    `json:"list_latency_ms"`
}

// apiVsBare loads GET /v1/projects/{id} and a bare net/http + pgx handler
// (API key by SHA-256, then the project row, JSON-encoded) in alternating
// rounds with one load generator, then times GET /v1/projects?limit=100 (the first page; the list
// at 1,000 projects is -only list).
func apiVsBare(ctx context.Context, srv *Server, controlDSN, pid string, round time.Duration) (*APIResult, error) {
	pool, err := pgxpool.New(ctx, controlDSN)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		k, err := store.GetAPIKeyByHash(r.Context(), pool, auth.HashKey(key))
		if err != nil {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		p, err := store.GetProject(r.Context(), pool, k.OrganizationID, r.PathValue("id"))
		if err != nil {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"project": p})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bare := &http.Server{Handler: mux}
	go bare.Serve(l) //nolint:errcheck
	defer bare.Close()

	res := &APIResult{Concurrency: 16, RoundS: round.Seconds()}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	load := func(url string) (float64, []float64) {
		var mu sync.Mutex
		var lats []float64
		var n atomic.Int64
		end := time.Now().Add(round)
		var wg sync.WaitGroup
		for range res.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []float64
				for time.Now().Before(end) && ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					req.Header.Set("Authorization", "Bearer "+srv.Key)
					start := time.Now()
					resp, err := client.Do(req)
					if err == nil {
						var sink json.RawMessage
						err = json.NewDecoder(resp.Body).Decode(&sink)
						resp.Body.Close()
						if err == nil && resp.StatusCode != 200 {
							err = fmt.Errorf("HTTP %d", resp.StatusCode)
						}
					}
					if err != nil {
						atomic.AddInt64(&res.Errors, 1)
						continue
					}
					mine = append(mine, ms(time.Since(start)))
					n.Add(1)
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return float64(n.Load()) / round.Seconds(), lats
	}
	apiURL := srv.URL + "/v1/projects/" + pid
	bareURL := "http://" + l.Addr().String() + "/v1/projects/" + pid
	load(apiURL) // warm both paths (pools, TLS sessions, caches)
	load(bareURL)
	var apiLat, bareLat []float64
	var apiRate, bareRate float64
	for range 2 {
		r, l := load(apiURL)
		apiRate, apiLat = apiRate+r/2, append(apiLat, l...)
		r, l = load(bareURL)
		bareRate, bareLat = bareRate+r/2, append(bareLat, l...)
	}
	res.APIRate, res.BareRate = round3(apiRate), round3(bareRate)
	if bareRate > 0 {
		res.Ratio = round3(apiRate / bareRate)
	}
	res.APILatency, res.BareLatency = summarize(apiLat), summarize(bareLat)
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM projects WHERE deleted_at IS NULL`).Scan(&res.Projects); err != nil {
		return nil, err
	}
	var list []float64
	for range 200 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/projects?limit=100", nil)
		req.Header.Set("Authorization", "Bearer "+srv.Key)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		var sink json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&sink)
		resp.Body.Close()
		list = append(list, ms(time.Since(start)))
	}
	res.List = summarize(list)
	return res, nil
}

func appendPerfSummary(dir string) {
	res, ok := loadResult[PerfResult](dir, "perf.json")
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Performance wave: warm pool, pooled scale, API (%s)\n\n", res.Meta.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Server with `--warm-pool %d` (filled from empty in %.1f s). Bare-SQL floor interleaved with the c=1 phase.\n\n", res.WarmPool, res.WarmFillS)
	b.WriteString("| Measurement | p50 | p99 | floor p50 / p99 |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| provision c=1, pool warm (%d) | %.1f ms | %.1f ms | %.1f / %.1f ms |\n", res.WarmC1.N, res.WarmC1.Total.P50, res.WarmC1.Total.P99, res.Floor.Total.P50, res.Floor.Total.P99)
	fmt.Fprintf(&b, "| ↳ server: claimed → completed | %.1f ms | %.1f ms | |\n", res.WarmC1.ServerRun.P50, res.WarmC1.ServerRun.P99)
	fmt.Fprintf(&b, "| provision burst c=20 (%d), pool %d | %.1f ms | %.1f ms | |\n", res.Burst.N, res.WarmPool, res.Burst.Total.P50, res.Burst.Total.P99)
	fmt.Fprintf(&b, "| ↳ server: claimed → completed | %.1f ms | %.1f ms | |\n", res.Burst.ServerRun.P50, res.Burst.ServerRun.P99)
	if p := res.Pooled; p != nil {
		fmt.Fprintf(&b, "| %d pooled clients, BEGIN; SELECT 1; COMMIT every second for %.0f s (%d transactions) | %.2f ms | %.2f ms | |\n",
			p.Clients, p.DurationS, p.Transactions, p.Latency.P50, p.Latency.P99)
	}
	if a := res.API; a != nil {
		fmt.Fprintf(&b, "| GET /v1/projects/{id}, c=%d: %.0f req/s vs bare net/http + pgx %.0f req/s | %.2f ms | %.2f ms | bare %.2f / %.2f ms |\n",
			a.Concurrency, a.APIRate, a.BareRate, a.APILatency.P50, a.APILatency.P99, a.BareLatency.P50, a.BareLatency.P99)
		fmt.Fprintf(&b, "| GET /v1/projects (first page) at %d projects | %.2f ms | %.2f ms | |\n", a.Projects, a.List.P50, a.List.P99)
	}
	b.WriteString("\n")
	for _, t := range res.Targets {
		fmt.Fprintf(&b, "- %s %s: %s\n", passMark(t.Pass), t.Name, t.Value)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	f, err := os.OpenFile(filepath.Join(dir, "summary.md"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		logf("error: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(b.String())
}
