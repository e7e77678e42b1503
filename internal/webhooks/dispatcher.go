package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
)

// Config tunes a Dispatcher. Zero values get defaults.
type Config struct {
	WorkerID     string        // written into claimed_by; default "<hostname>:<pid>"
	Concurrency  int           // attempts in flight in this process; default 32
	PerEndpoint  int           // attempts in flight per endpoint in this process; default 4
	Timeout      time.Duration // per attempt; default 10s
	RetryBase    time.Duration // wait before the 2nd attempt; doubles after; default 30s
	RetryMax     time.Duration // cap on one wait; default 1h
	MaxAttempts  int           // per delivery from the outbox; default 8
	PollInterval time.Duration // fallback when no NOTIFY arrives; default 1s
	Retention    time.Duration // deliveries are deleted after; default 30 days
	FanOutBatch  int           // events fanned out per transaction; default 500
	// Guard checks every connection's address (DNS rebinding); required.
	Guard  *netguard.Guard
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.WorkerID == "" {
		c.WorkerID = bgsvc.WorkerID()
	}
	bgsvc.Default(&c.Concurrency, 32)
	bgsvc.Default(&c.PerEndpoint, 4)
	bgsvc.Default(&c.Timeout, 10*time.Second)
	bgsvc.Default(&c.RetryBase, 30*time.Second)
	bgsvc.Default(&c.RetryMax, time.Hour)
	bgsvc.Default(&c.MaxAttempts, MaxAttempts)
	bgsvc.Default(&c.PollInterval, time.Second)
	bgsvc.Default(&c.Retention, 30*24*time.Hour)
	bgsvc.Default(&c.FanOutBatch, 500)
	if c.Guard == nil {
		c.Guard = &netguard.Guard{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Dispatcher fans outbox events out to endpoints and sends the deliveries.
type Dispatcher struct {
	pool   *pgxpool.Pool
	box    *secretbox.Box
	cfg    Config
	log    *slog.Logger
	client *http.Client
	wake   bgsvc.Wake // new events, tests or redeliveries
	freed  bgsvc.Wake // an attempt finished

	// TestSignals may be armed by tests before Run.
	TestSignals TestSignals

	mu       sync.Mutex
	inflight map[string]int // endpoint id → attempts in flight here
	total    int
}

// NewDispatcher builds a dispatcher on the control database that pool
// reaches. It opens a small pool of its own whose sessions commit without
// waiting for the WAL flush: what the dispatcher writes can be lost only if
// Postgres itself crashes, and that loss is harmless under at-least-once
// delivery (a fan-out is redone, an attempt re-sent), while visibility to
// other servers is immediate, so claims still never overlap.
func NewDispatcher(pool *pgxpool.Pool, box *secretbox.Box, cfg Config) (*Dispatcher, error) {
	cfg.defaults()
	pcfg := pool.Config()
	pcfg.MaxConns = 8
	pcfg.MinConns = 0
	if pcfg.ConnConfig.RuntimeParams == nil {
		pcfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	// The deliveries table swings from empty to a large backlog in seconds,
	// faster than autovacuum's statistics: a generic plan cached while it was
	// small (e.g. a scan of the pending index instead of the primary key) turns
	// a one-row update into a scan of the backlog. Plan each execution.
	pcfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	own, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("while opening the webhook dispatcher's pool: %w", err)
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect to addresses the guard never saw
		DialContext:           cfg.Guard.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   cfg.PerEndpoint,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Dispatcher{
		pool: own, box: box, cfg: cfg,
		log: cfg.Logger.With("component", "webhooks", "worker_id", cfg.WorkerID),
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A 3xx is a failed attempt: following it would go to a URL nobody checked.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake:     bgsvc.NewWake(),
		freed:    bgsvc.NewWake(),
		inflight: map[string]int{},
	}, nil
}

// TestSignals are events a test can arm and wait for instead of polling
// (bgsvc.Signal); they are never armed in production.
type TestSignals struct {
	// Listening fires when the dispatcher's LISTEN took effect.
	Listening bgsvc.Signal[struct{}]
	// AttemptDone fires with the delivery id after an attempt was recorded
	// (or released, when shutting down).
	AttemptDone bgsvc.Signal[string]
}

// Wake makes the dispatcher look for new events and due deliveries now.
func (d *Dispatcher) Wake() { d.wake.Signal() }

// Run fans out and delivers until ctx is cancelled, then waits for the
// attempts in flight to end and closes the dispatcher's pool.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.pool.Close()
	var bg sync.WaitGroup
	bg.Add(2)
	n := &bgsvc.Notifier{Pool: d.pool, Channel: store.WebhooksChannel, Wake: d.wake, Log: d.log,
		Listening: &d.TestSignals.Listening}
	go func() { defer bg.Done(); n.Run(ctx) }()
	go func() { defer bg.Done(); d.pruneLoop(ctx) }()
	var attempts sync.WaitGroup
	timer := time.NewTimer(d.cfg.PollInterval)
	defer timer.Stop()
	// A NOTIFY means new events (or tests, redeliveries); a finished attempt
	// only frees a slot; the timer also sweeps abandoned claims.
	fanOut, sweep := true, true
	for {
		if fanOut {
			if err := d.fanOutAll(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("fanning out events failed", "error", err)
			}
		}
		if sweep {
			if err := d.failAbandoned(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("failing abandoned deliveries failed", "error", err)
			}
		}
		full := false
		for ctx.Err() == nil {
			claimed, err := d.claim(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("claiming deliveries failed", "error", err)
				}
				break
			}
			if claimed == nil {
				break
			}
			if len(claimed) == 0 { // no free slot: a finishing attempt wakes us
				full = true
				break
			}
			for _, c := range claimed {
				attempts.Add(1)
				go func() {
					defer attempts.Done()
					d.attempt(ctx, c)
				}()
			}
		}
		wait := d.cfg.PollInterval
		if !full {
			wait = d.untilNextDue(ctx)
		}
		timer.Reset(wait)
		fanOut, sweep = false, false
		select {
		case <-ctx.Done():
			attempts.Wait()
			bg.Wait()
			return nil
		case <-d.wake:
			fanOut = true
		case <-d.freed:
		case <-timer.C:
			fanOut, sweep = true, true
		}
	}
}

// untilNextDue is how long to sleep: until the earliest pending delivery is
// due, at most the poll interval.
func (d *Dispatcher) untilNextDue(ctx context.Context) time.Duration {
	wait := d.cfg.PollInterval
	next, err := store.NextWebhookDue(ctx, d.pool)
	if err != nil || next == nil {
		return wait
	}
	if until := time.Until(*next); until > 0 && until < wait {
		wait = until + time.Millisecond
	}
	return wait
}

// fanOutAll turns every outbox event not yet fanned out into deliveries.
func (d *Dispatcher) fanOutAll(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := d.fanOut(ctx)
		if err != nil {
			return err
		}
		if n < d.cfg.FanOutBatch {
			return nil
		}
	}
	return nil
}

// fanOut handles one batch of events in one transaction: the deliveries and
// the event's dispatched mark commit together, so a crash repeats the batch
// and the unique index drops the repeats.
func (d *Dispatcher) fanOut(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		events, err := store.ClaimUndispatchedEvents(ctx, tx, d.cfg.FanOutBatch)
		if err != nil || len(events) == 0 {
			return err
		}
		n = len(events)
		var orgs, evtIDs []string
		seen := map[string]bool{}
		for _, e := range events {
			evtIDs = append(evtIDs, e.ID)
			if !seen[e.OrganizationID] {
				seen[e.OrganizationID] = true
				orgs = append(orgs, e.OrganizationID)
			}
		}
		eps, err := store.ActiveWebhookEndpoints(ctx, tx, orgs)
		if err != nil {
			return err
		}
		byOrg := map[string][]*store.WebhookEndpoint{}
		for _, ep := range eps {
			byOrg[ep.OrganizationID] = append(byOrg[ep.OrganizationID], ep)
		}
		var ds []*store.WebhookDelivery
		for _, e := range events {
			if !InCatalogue(e.Type) {
				continue
			}
			var payload []byte
			for _, ep := range byOrg[e.OrganizationID] {
				// An endpoint receives what happens after it was created.
				if !Subscribed(ep.EventTypes, e.Type) || ep.CreatedAt.After(e.CreatedAt) {
					continue
				}
				if payload == nil {
					if payload, err = BuildEnvelope(e.ID, e.Type, e.OrganizationID, e.CreatedAt, e.Data); err != nil {
						d.log.Error("skipping an event whose data cannot be read", "event_id", e.ID, "error", err)
						break
					}
				}
				ds = append(ds, &store.WebhookDelivery{ID: ids.New("whd_"), OrganizationID: e.OrganizationID,
					EndpointID: ep.ID, EventID: e.ID, EventType: e.Type, Payload: payload, MaxAttempts: d.cfg.MaxAttempts})
			}
		}
		if err := store.InsertFanOutDeliveries(ctx, tx, ds); err != nil {
			return err
		}
		return store.MarkEventsDispatched(ctx, tx, evtIDs)
	})
	return n, err
}

// failAbandoned fails deliveries whose last attempt was claimed by a server
// that never reported back (it died mid-attempt) once the lease has passed.
func (d *Dispatcher) failAbandoned(ctx context.Context) error {
	_, err := store.FailAbandonedDeliveries(ctx, d.pool)
	return err
}

// claim starts attempts on due deliveries, as many as the free slots allow
// and never more than PerEndpoint in flight for one endpoint. It returns nil
// when nothing is due and an empty slice when there is no free slot.
func (d *Dispatcher) claim(ctx context.Context) ([]*store.ClaimedDelivery, error) {
	d.mu.Lock()
	free := d.cfg.Concurrency - d.total
	inflight := make(map[string]int, len(d.inflight))
	for ep, n := range d.inflight {
		inflight[ep] = n
	}
	d.mu.Unlock()
	if free <= 0 {
		return []*store.ClaimedDelivery{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A shutdown must not cut a claim short: cancelling only stops this
	// side from waiting, while Postgres may still run the statement it
	// already received and commit the claim (under load, even after an
	// interrupted attempt was released), leaving deliveries claimed that no
	// attempt sends or releases and that count an attempt when the lease
	// ends. So the claim runs to its end, and whatever it claimed goes to
	// attempts, which hand it back at once when shutting down.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	// The lease outlives the attempt's timeout, so no other server takes
	// the delivery while this one may still be sending it.
	claimed, err := store.ClaimDueDeliveries(cctx, d.pool, store.ClaimParams{WorkerID: d.cfg.WorkerID,
		Lease: d.cfg.Timeout + 10*time.Second, Max: free, PerEndpoint: d.cfg.PerEndpoint, InFlight: inflight})
	if err != nil || len(claimed) == 0 {
		return nil, err
	}
	d.mu.Lock()
	for _, c := range claimed {
		d.inflight[c.EndpointID]++
		d.total++
	}
	d.mu.Unlock()
	return claimed, nil
}

// claimTimeout bounds one claim, which a shutdown does not cancel.
const claimTimeout = 10 * time.Second

// attempt sends one claimed delivery and records the outcome; when shutting
// down (before or during the send) it releases the claim instead.
func (d *Dispatcher) attempt(ctx context.Context, c *store.ClaimedDelivery) {
	defer func() {
		d.mu.Lock()
		if d.inflight[c.EndpointID]--; d.inflight[c.EndpointID] <= 0 {
			delete(d.inflight, c.EndpointID)
		}
		d.total--
		d.mu.Unlock()
		d.freed.Signal()
		d.TestSignals.AttemptDone.Send(c.ID)
	}()
	log := d.log.With("delivery_id", c.ID, "endpoint_id", c.EndpointID, "event_type", c.EventType, "attempt", c.Attempts)
	// Claimed as the dispatcher was stopping: nothing is sent.
	interrupted := ctx.Err() != nil
	var status int
	var sendErr error
	if !interrupted {
		status, sendErr = d.send(ctx, c)
		interrupted = ctx.Err() != nil && sendErr != nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if interrupted {
		// Shutting down cut the attempt short: it does not count, and the
		// delivery is due again at once for whichever server runs next.
		if err := store.ReleaseDeliveryAttempt(rctx, d.pool, c.ID, c.Attempts, d.cfg.WorkerID); err != nil {
			log.Warn("releasing an interrupted delivery failed; it is retried after its lease", "error", err)
		}
		return
	}
	o := store.AttemptOutcome{Delivered: sendErr == nil, ResponseStatus: status}
	if sendErr != nil {
		o.Error = sendErr.Error()
		o.RetryIn = bgsvc.Backoff(d.cfg.RetryBase, d.cfg.RetryMax, c.Failures+1)
	}
	ok, err := store.FinishDeliveryAttempt(rctx, d.pool, c.ID, c.Attempts, d.cfg.WorkerID, o)
	switch {
	case err != nil:
		log.Error("recording a webhook attempt failed; it is retried after its lease", "error", err)
	case !ok:
		log.Warn("webhook attempt finished after its claim was taken over; not recorded")
	case sendErr != nil:
		log.Info("webhook attempt failed", "error", o.Error, "status", status, "final", c.Attempts >= c.MaxAttempts)
	default:
		log.Debug("webhook delivered", "status", status)
	}
}

// send posts the envelope, signed now with the endpoint's current secret.
// It returns the HTTP status (0 without a response) and why the attempt
// failed (nil on any 2xx).
func (d *Dispatcher) send(ctx context.Context, c *store.ClaimedDelivery) (int, error) {
	secret, err := d.box.Open(c.SecretEnc)
	if err != nil {
		return 0, errors.New("the endpoint's signing secret cannot be decrypted (was CAPYDB_SECRET_KEY changed?)")
	}
	body := []byte(c.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("invalid endpoint url: %s", scrubURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEvent, c.EventType)
	req.Header.Set(HeaderDelivery, c.ID)
	req.Header.Set(HeaderSignature, Sign(string(secret), time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, describeSendError(err, d.cfg.Timeout)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, fmt.Errorf("receiver answered HTTP %d (redirects are not followed)", resp.StatusCode)
	}
	return resp.StatusCode, fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
}

// describeSendError explains a failed request without the URL (which may
// carry a token of the receiver's).
func describeSendError(err error, timeout time.Duration) error {
	if errors.Is(err, netguard.ErrNotAllowed) {
		return netguard.ErrNotAllowed
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	return errors.New(scrubURLError(err))
}

func scrubURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return strings.TrimSpace(msg)
}

// pruneLoop deletes deliveries older than the retention, hourly.
func (d *Dispatcher) pruneLoop(ctx context.Context) {
	bgsvc.Every(ctx, time.Hour, func(ctx context.Context) {
		if n, err := store.PruneWebhookDeliveries(ctx, d.pool, time.Now().Add(-d.cfg.Retention)); err != nil && ctx.Err() == nil {
			d.log.Warn("pruning old webhook deliveries failed", "error", err)
		} else if n > 0 {
			d.log.Info("pruned old webhook deliveries", "count", n)
		}
	})
}

// Status reports the webhook_delivery component of GET /status: degraded
// when deliveries have been due for more than two minutes.
func Status(ctx context.Context, db store.DB) (status, message string) {
	n, err := store.OverdueWebhookDeliveries(ctx, db, 2*time.Minute)
	switch {
	case err != nil:
		return "degraded", "webhook deliveries cannot be read"
	case n > 0:
		return "degraded", fmt.Sprintf("%d webhook deliveries waiting for more than 2 minutes", n)
	}
	return "operational", ""
}
