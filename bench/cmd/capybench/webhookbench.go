package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/ids"
)

// Webhook benchmark settings (flags of their own, so main.go stays untouched).
var (
	webhookEndpoints = flag.Int("webhook-endpoints", 10, "endpoints subscribed to every event in the webhooks benchmark")
	webhookBurst     = flag.Int("webhook-burst", 2000, "events committed at once for the webhooks throughput run")
	webhookSingle    = flag.Int("webhook-single", 200, "events committed one at a time (each waits for its deliveries) for the latency run")
	webhookRate      = flag.Int("webhook-rate", 100, "events per second in the paced webhooks run")
	webhookPacedFor  = flag.Duration("webhook-paced-for", 10*time.Second, "duration of the paced webhooks run")
	webhookProjects  = flag.Int("webhook-projects", 20, "projects provisioned for the lifecycle latency (project.ready → receipt)")
)

// WebhookRun is one way of committing state changes, and what the receiver saw.
type WebhookRun struct {
	Name   string `json:"name"`
	Events int    `json:"events"`
	// Deliveries = events × endpoints, all of which arrived.
	Deliveries int `json:"deliveries"`
	// First state-change commit → last receipt.
	WallS          float64 `json:"wall_s"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	// Receipt − COMMIT (sent) of the state change, per delivery.
	Latency Dist `json:"latency"`
	// Deliveries that arrived more than once (at-least-once slack; 0 expected).
	Duplicates    int    `json:"duplicates"`
	BadSignatures int    `json:"bad_signatures"`
	Notes         string `json:"notes,omitempty"`
}

// WebhookResult is bench/results/webhooks.json.
type WebhookResult struct {
	Meta      Meta          `json:"meta"`
	Endpoints int           `json:"endpoints"`
	Receiver  string        `json:"receiver"`
	Runs      []*WebhookRun `json:"runs"`
}

// hookSink is the local receiver: it verifies each signature and records
// when each (event, endpoint) arrived.
type hookSink struct {
	srv     *http.Server
	url     string
	mu      sync.Mutex
	secrets map[string]string // endpoint index → secret
	got     map[string]time.Time
	dups    int
	bad     int
	wake    chan struct{}
}

func startSink() (*hookSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	k := &hookSink{secrets: map[string]string{}, got: map[string]time.Time{}, wake: make(chan struct{}, 1),
		url: "http://" + l.Addr().String()}
	k.srv = &http.Server{Handler: k, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = k.srv.Serve(l) }()
	registerCleanup(func() { _ = k.srv.Close() })
	return k, nil
}

func (k *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	ep := strings.TrimPrefix(r.URL.Path, "/e/")
	body, _ := io.ReadAll(r.Body)
	var env struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &env)
	k.mu.Lock()
	ok := verifyHook(k.secrets[ep], r.Header.Get("X-CapyDB-Signature"), body)
	key := env.ID + "|" + ep
	switch {
	case !ok:
		k.bad++
	case !k.got[key].IsZero():
		k.dups++
	default:
		k.got[key] = at
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func verifyHook(secret, header string, body []byte) bool {
	var ts, v1 string
	for _, p := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(p, "=")
		if k == "t" {
			ts = v
		} else if k == "v1" {
			v1 = v
		}
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || secret == "" {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	return hmac.Equal([]byte(v1), []byte(hex.EncodeToString(m.Sum(nil))))
}

// waitAll waits until every event has arrived at every endpoint. The
// receiver only counts (sink is reset before each run), so the handlers are
// not held up; the full check runs once the count is reached.
func (k *hookSink) waitAll(ctx context.Context, events []string, endpoints int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	want := len(events) * endpoints
	for {
		k.mu.Lock()
		n := len(k.got)
		k.mu.Unlock()
		if n >= want {
			k.mu.Lock()
			missing := 0
			for _, e := range events {
				for i := range endpoints {
					if k.got[e+"|"+strconv.Itoa(i)].IsZero() {
						missing++
					}
				}
			}
			k.mu.Unlock()
			if missing == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d deliveries did not arrive within %s", max(want-n, 0), want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-k.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// measure builds a run from commit times and the receipts.
func (k *hookSink) measure(name string, commits map[string]time.Time, endpoints int) *WebhookRun {
	k.mu.Lock()
	defer k.mu.Unlock()
	run := &WebhookRun{Name: name, Events: len(commits), Duplicates: k.dups, BadSignatures: k.bad}
	var first, last time.Time
	var lat []float64
	for id, c := range commits {
		if first.IsZero() || c.Before(first) {
			first = c
		}
		for i := range endpoints {
			at := k.got[id+"|"+strconv.Itoa(i)]
			if at.IsZero() {
				continue
			}
			run.Deliveries++
			lat = append(lat, ms(at.Sub(c)))
			if at.After(last) {
				last = at
			}
		}
	}
	run.Latency = summarize(lat)
	run.WallS = round3(last.Sub(first).Seconds())
	if run.WallS > 0 {
		run.DeliveriesPerS = round3(float64(run.Deliveries) / run.WallS)
	}
	return run
}

func (k *hookSink) reset() {
	k.mu.Lock()
	k.got, k.dups, k.bad = map[string]time.Time{}, 0, 0
	k.mu.Unlock()
}

// runWebhooks measures delivery throughput and latency to a local receiver
// with N endpoints subscribed to every event.
func runWebhooks(ctx context.Context, o *options) (*WebhookResult, error) {
	if *webhookEndpoints < 1 || *webhookBurst < 1 || *webhookSingle < 1 || *webhookRate < 1 {
		return nil, errors.New("webhook counts must be positive")
	}
	res := &WebhookResult{Meta: newMeta(o), Endpoints: *webhookEndpoints,
		Receiver: "net/http server on 127.0.0.1 in the benchmark process; verifies every signature, answers 204"}
	res.Meta.Benchmark = "webhooks"
	// The receiver is on loopback: the server must allow private addresses;
	// and the lifecycle run polls jobs faster than the API's rate limit.
	env := map[string]string{"CAPYDB_WEBHOOKS_ALLOW_INSECURE": "true", "CAPYDB_RATE_LIMIT_API": "off"}
	saved := map[string]*string{}
	for k, v := range env {
		if old, ok := os.LookupEnv(k); ok {
			saved[k] = &old
		} else {
			saved[k] = nil
		}
		os.Setenv(k, v)
	}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "webhooks")
	for k, v := range saved {
		if v != nil {
			os.Setenv(k, *v)
		} else {
			os.Unsetenv(k)
		}
	}
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	c := NewClient(srv)
	var me struct {
		Organization struct {
			ID string `json:"id"`
		} `json:"organization"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/me", nil, &me); err != nil {
		return nil, err
	}
	org := me.Organization.ID
	sink, err := startSink()
	if err != nil {
		return nil, err
	}
	for i := range *webhookEndpoints {
		var out struct {
			Secret string `json:"plaintext_secret"`
		}
		if err := c.do(ctx, http.MethodPost, "/v1/organizations/"+org+"/webhook-endpoints",
			map[string]any{"url": sink.url + "/e/" + strconv.Itoa(i), "description": "capybench"}, &out); err != nil {
			return nil, err
		}
		sink.secrets[strconv.Itoa(i)] = out.Secret
	}
	dsn, err := srv.AdminDSNFor("capydb_control")
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	n := *webhookEndpoints

	// insert commits events (one transaction per batch) and records when
	// each COMMIT was sent: the state change cannot be seen before, so
	// receipt − that time is an upper bound of the delivery latency.
	insert := func(count, batch int, commits map[string]time.Time) ([]string, error) {
		var all []string
		for done := 0; done < count; {
			m := min(batch, count-done)
			evIDs := make([]string, m)
			for i := range evIDs {
				evIDs[i] = ids.New("evt_")
			}
			tx, err := pool.Begin(ctx)
			if err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO events (id, organization_id, type, data)
				SELECT id, $2, 'job.completed', jsonb_build_object('job_id', 'job_bench', 'job_type', 'bench.noop', 'state', 'completed')
				FROM unnest($1::text[]) AS id`, evIDs, org); err != nil {
				_ = tx.Rollback(ctx)
				return nil, fmt.Errorf("while inserting events: %w", err)
			}
			at := time.Now()
			if err := tx.Commit(ctx); err != nil {
				return nil, fmt.Errorf("while committing events: %w", err)
			}
			for _, id := range evIDs {
				commits[id] = at
			}
			all = append(all, evIDs...)
			done += m
		}
		return all, nil
	}

	// 1. One event at a time: the pipeline's latency without a queue (after
	// 20 uncounted events that warm up connections and caches).
	logf("webhooks: %d single events × %d endpoints", *webhookSingle, n)
	for range 20 {
		evs, err := insert(1, 1, map[string]time.Time{})
		if err != nil {
			return nil, err
		}
		if err := sink.waitAll(ctx, evs, n, 30*time.Second); err != nil {
			return nil, err
		}
	}
	sink.reset()
	single := map[string]time.Time{}
	for range *webhookSingle {
		evs, err := insert(1, 1, single)
		if err != nil {
			return nil, err
		}
		if err := sink.waitAll(ctx, evs, n, 30*time.Second); err != nil {
			return nil, err
		}
	}
	r := sink.measure("single", single, n)
	r.DeliveriesPerS, r.WallS = 0, 0 // paced by the benchmark itself
	r.Notes = "one event per transaction; the next is committed after all its deliveries arrived (20 uncounted warm-up events first)"
	res.Runs = append(res.Runs, r)
	logf("webhooks: single p50 %s p99 %s", fmtMs(r.Latency.P50), fmtMs(r.Latency.P99))

	// 2. A burst: throughput while draining a backlog.
	logf("webhooks: burst of %d events × %d endpoints", *webhookBurst, n)
	sink.reset()
	burst := map[string]time.Time{}
	evs, err := insert(*webhookBurst, 100, burst)
	if err != nil {
		return nil, err
	}
	if err := sink.waitAll(ctx, evs, n, 10*time.Minute); err != nil {
		return nil, err
	}
	r = sink.measure("burst", burst, n)
	r.Notes = "events committed back to back in transactions of 100; latency includes waiting behind the backlog"
	res.Runs = append(res.Runs, r)
	logf("webhooks: burst %.0f deliveries/s, p50 %s p99 %s", r.DeliveriesPerS, fmtMs(r.Latency.P50), fmtMs(r.Latency.P99))

	// 3. Paced: a steady stream of state changes.
	logf("webhooks: %d events/s for %s × %d endpoints", *webhookRate, *webhookPacedFor, n)
	sink.reset()
	paced := map[string]time.Time{}
	var pacedIDs []string
	tick := time.NewTicker(time.Second / time.Duration(*webhookRate))
	end := time.Now().Add(*webhookPacedFor)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
		evs, err := insert(1, 1, paced)
		if err != nil {
			tick.Stop()
			return nil, err
		}
		pacedIDs = append(pacedIDs, evs...)
	}
	tick.Stop()
	if err := sink.waitAll(ctx, pacedIDs, n, 5*time.Minute); err != nil {
		return nil, err
	}
	r = sink.measure("paced", paced, n)
	r.Notes = fmt.Sprintf("target %d events/s (one transaction each)", *webhookRate)
	res.Runs = append(res.Runs, r)
	logf("webhooks: paced p50 %s p99 %s", fmtMs(r.Latency.P50), fmtMs(r.Latency.P99))

	// 4. Real state changes: provisioning's completion transaction writes
	// project.ready; latency from that transaction's start to receipt.
	if *webhookProjects > 0 {
		logf("webhooks: %d projects provisioned one after another", *webhookProjects)
		sink.reset()
		var readyIDs []string
		lifecycle := map[string]time.Time{}
		for i := range *webhookProjects {
			pid, job, err := c.CreateProject(ctx, fmt.Sprintf("hook-bench-%d-%s", i, o.runID))
			if err != nil {
				return nil, err
			}
			if _, _, err := c.WaitJob(ctx, job.ID, 10*time.Millisecond, 2*time.Minute); err != nil {
				return nil, err
			}
			var id string
			var created time.Time
			if err := pool.QueryRow(ctx, `SELECT id, created_at FROM events WHERE type = 'project.ready' AND data->>'project_id' = $1`,
				pid).Scan(&id, &created); err != nil {
				return nil, fmt.Errorf("project.ready of %s: %w", pid, err)
			}
			lifecycle[id] = created
			readyIDs = append(readyIDs, id)
			if err := sink.waitAll(ctx, []string{id}, n, 30*time.Second); err != nil {
				return nil, err
			}
		}
		r = sink.measure("lifecycle", lifecycle, n)
		r.DeliveriesPerS, r.WallS = 0, 0 // paced by provisioning, not by delivery
		r.Notes = "project.ready of real provisions; latency from the completion transaction's start (events.created_at) to receipt"
		res.Runs = append(res.Runs, r)
		logf("webhooks: project.ready → receipt p50 %s p99 %s", fmtMs(r.Latency.P50), fmtMs(r.Latency.P99))
	}
	res.Meta.finish()
	return res, nil
}

// appendWebhookSummary adds the webhooks section to summary.md when
// webhooks.json exists (writeSummary knows the other benchmarks).
func appendWebhookSummary(dir string) {
	res, ok := loadResult[WebhookResult](dir, "webhooks.json")
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Webhooks (%s)\n\n", res.Meta.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%d endpoints subscribed to every event, one local receiver (%s). Latency = receipt − the moment the COMMIT of the state change that wrote the event was sent (lifecycle: − start of the provisioning's completion transaction).\n\n", res.Endpoints, res.Receiver)
	b.WriteString("| Run | Events | Deliveries | Deliveries/s | Latency p50 | p90 | p99 | max | Duplicates |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Runs {
		rate := "—"
		if r.DeliveriesPerS > 0 {
			rate = fmt.Sprintf("%.0f", r.DeliveriesPerS)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s | %d |\n", r.Name, r.Events, r.Deliveries, rate,
			fmtMs(r.Latency.P50), fmtMs(r.Latency.P90), fmtMs(r.Latency.P99), fmtMs(r.Latency.Max), r.Duplicates)
	}
	b.WriteString("\n")
	for _, r := range res.Runs {
		fmt.Fprintf(&b, "- %s: %s.\n", r.Name, r.Notes)
	}
	f, err := os.OpenFile(filepath.Join(dir, "summary.md"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		logf("error: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(b.String())
}
