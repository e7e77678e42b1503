package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/webhooks"
)

// Fan-out sends each catalogue event once to every active subscribed
// endpoint of its organization, signed, with the documented headers.
func TestFanOutAndDeliver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := newOrg(t, e.st)
	rAll, rReady, rOff, rOther := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	all, secretAll := e.endpoint(t, e.org, rAll.URL+"/hook?token=abc", nil, true)
	ready, secretReady := e.endpoint(t, e.org, rReady.URL, []string{"project.ready"}, true)
	e.endpoint(t, e.org, rOff.URL, nil, false)
	e.endpoint(t, other, rOther.URL, nil, true)
	if !strings.HasPrefix(secretAll, "whsec_") || len(secretAll) != len("whsec_")+32 || secretAll == secretReady {
		t.Fatalf("secrets: %q %q", secretAll, secretReady)
	}

	e1 := e.event(t, e.org, "project.ready", map[string]any{"project_id": "prj_1", "job_id": "job_1"})
	e2 := e.event(t, e.org, "job.completed", map[string]any{"job_id": "job_1", "organization_id": e.org})
	e.event(t, e.org, "something.internal", map[string]any{"x": 1}) // not in the catalogue: never sent
	startDispatcher(t, e, fastConfig(t, "d1"))
	e3 := e.event(t, e.org, "credentials.rotated", map[string]any{"project_id": "prj_1"})

	clustertest.Eventually(t, 10*time.Second, "deliveries", func() bool { return rAll.count() == 3 && rReady.count() == 1 })
	time.Sleep(300 * time.Millisecond) // nothing more may arrive
	if rAll.count() != 3 || rReady.count() != 1 || rOff.count() != 0 || rOther.count() != 0 {
		t.Fatalf("hits: all %d, ready-only %d, inactive %d, other org %d", rAll.count(), rReady.count(), rOff.count(), rOther.count())
	}
	got := map[string]string{}
	for _, h := range rAll.all() {
		if err := webhooks.Verify(secretAll, h.Signature, h.Body, 5*time.Minute, time.Now()); err != nil {
			t.Errorf("signature of %s: %v", h.Event, err)
		}
		if h.UserAgent != "capydb-webhooks/1.0" || h.ContentType != "application/json" || !strings.HasPrefix(h.Delivery, "whd_") ||
			h.Event != h.Envelope.Type {
			t.Errorf("headers: %+v", h)
		}
		var data map[string]any
		_ = json.Unmarshal(h.Envelope.Data, &data)
		if data["organization_id"] != e.org {
			t.Errorf("%s data without organization_id: %s", h.Event, h.Envelope.Data)
		}
		if _, err := time.Parse(time.RFC3339, h.Envelope.CreatedAt); err != nil || !strings.HasSuffix(h.Envelope.CreatedAt, "Z") {
			t.Errorf("created_at %q", h.Envelope.CreatedAt)
		}
		got[h.Envelope.ID] = h.Event
	}
	if got[e1] != "project.ready" || got[e2] != "job.completed" || got[e3] != "credentials.rotated" {
		t.Fatalf("events delivered: %v", got)
	}
	if h := rReady.all()[0]; h.Envelope.ID != e1 || webhooks.Verify(secretReady, h.Signature, h.Body, time.Minute, time.Now()) != nil ||
		webhooks.Verify(secretAll, h.Signature, h.Body, time.Minute, time.Now()) == nil {
		t.Fatalf("project.ready-only endpoint got %+v", h)
	}
	// The receiver answers before the dispatcher records the answer: under
	// load the last record can trail the last request.
	clustertest.Eventually(t, 10*time.Second, "deliveries recorded", func() bool {
		for _, d := range e.deliveries(t, all.ID) {
			if d.State == store.DeliveryPending {
				return false
			}
		}
		return true
	})
	for _, d := range e.deliveries(t, all.ID) {
		if d.State != store.DeliveryDelivered || d.Attempts != 1 || d.ResponseStatus == nil || *d.ResponseStatus != 200 ||
			d.DeliveredAt == nil || d.MaxAttempts != 8 {
			t.Errorf("delivery %s: %+v", d.ID, d)
		}
	}
	if ds := e.deliveries(t, ready.ID); len(ds) != 1 {
		t.Fatalf("ready-only endpoint has %d deliveries", len(ds))
	}
	var undispatched int
	_ = e.st.Pool.QueryRow(ctxT(t), `SELECT count(*) FROM events WHERE webhooks_dispatched_at IS NULL`).Scan(&undispatched)
	if undispatched != 0 {
		t.Fatalf("%d events not marked dispatched", undispatched)
	}
}

// Several dispatchers on one control database never send a delivery twice.
func TestDispatchersNeverDoubleSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, nil)
	const endpoints, events = 3, 150
	for range endpoints {
		e.endpoint(t, e.org, r.URL, nil, true)
	}
	for i := range 3 {
		startDispatcher(t, e, fastConfig(t, fmt.Sprintf("d%d", i)))
	}
	for i := range events {
		e.event(t, e.org, "job.completed", map[string]any{"job_id": fmt.Sprint(i)})
	}
	clustertest.Eventually(t, 30*time.Second, "all deliveries", func() bool { return r.count() >= endpoints*events })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	pairs := map[string]int{}
	for _, h := range r.all() {
		seen[h.Delivery]++
		pairs[h.Envelope.ID]++
	}
	if r.count() != endpoints*events || len(seen) != endpoints*events || len(pairs) != events {
		t.Fatalf("%d requests, %d distinct deliveries, %d distinct events; want %d, %d, %d",
			r.count(), len(seen), len(pairs), endpoints*events, endpoints*events, events)
	}
	for id, n := range pairs {
		if n != endpoints {
			t.Fatalf("event %s sent %d times, want %d", id, n, endpoints)
		}
	}
}

// A receiver that fails three times then succeeds: one success, attempts 4,
// each retry after a growing wait, each attempt freshly signed.
func TestRetryThenSuccess(t *testing.T) {
	// Not parallel: it measures sub-second timings, which other tests' load would blur.
	e := newEnv(t)
	r := newReceiver(t, func(_ hit, n int) int {
		if n <= 3 {
			return 503
		}
		return 204
	})
	ep, secret := e.deliverTo(t, r, func(cfg *webhooks.Config) { cfg.RetryBase = 100 * time.Millisecond })
	e.event(t, e.org, "project.ready", map[string]any{"project_id": "prj_1"})
	clustertest.Eventually(t, 15*time.Second, "the fourth attempt", func() bool { return r.count() >= 4 })
	time.Sleep(300 * time.Millisecond)
	hits := r.all()
	if len(hits) != 4 {
		t.Fatalf("%d requests, want 4", len(hits))
	}
	for i, h := range hits {
		if h.Delivery != hits[0].Delivery || string(h.Body) != string(hits[0].Body) {
			t.Fatalf("attempt %d is not the same delivery/body", i+1)
		}
		if err := webhooks.Verify(secret, h.Signature, h.Body, time.Minute, time.Now()); err != nil {
			t.Fatalf("attempt %d signature: %v", i+1, err)
		}
	}
	// Waits of base·2^(k−1) with ±20 % jitter: 100, 200, 400 ms.
	for k, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		// Never early; how late depends on the machine's load (make test
		// runs packages side by side), so the ceiling is generous.
		if gap := hits[k+1].At.Sub(hits[k].At); gap < want*8/10 || gap > want+3*time.Second {
			t.Errorf("wait before attempt %d: %s, want about %s", k+2, gap, want)
		}
	}
	ds := e.deliveries(t, ep.ID)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[0]
	if d.State != store.DeliveryDelivered || d.Attempts != 4 || d.Failures != 3 || *d.ResponseStatus != 204 ||
		d.LastError != nil || d.NextAttemptAt != nil {
		t.Fatalf("delivery: state %s attempts %d failures %d status %v error %v next %v", d.State, d.Attempts, d.Failures,
			deref(d.ResponseStatus), deref(d.LastError), d.NextAttemptAt)
	}
	if got := health(t, e, ep.ID); got != "healthy" {
		t.Fatalf("health after success: %s", got)
	}
}

// After the last attempt a delivery is failed with the last status and error,
// and its endpoint is failing.
func TestAttemptsExhausted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, ep := e.failingEndpoint(t, 500, func(cfg *webhooks.Config) { cfg.MaxAttempts = 3 })
	e.event(t, e.org, "project.ready", map[string]any{})
	d := e.waitOnlyDelivery(t, ep.ID, store.DeliveryFailed)
	if d.Attempts != 3 || r.count() != 3 || deref(d.ResponseStatus) != 500 || deref(d.LastError) != "receiver answered HTTP 500" ||
		d.NextAttemptAt != nil || d.FinishedAt == nil {
		t.Fatalf("failed delivery: attempts %d hits %d status %v error %q", d.Attempts, r.count(), deref(d.ResponseStatus), deref(d.LastError))
	}
	if got := health(t, e, ep.ID); got != "failing" {
		t.Fatalf("health: %s", got)
	}
}

// Health: a pending delivery with three failed attempts already makes an
// endpoint failing; inactive endpoints are disabled.
func TestHealthWhilePending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, ep := e.failingEndpoint(t, 502, func(cfg *webhooks.Config) { cfg.RetryBase, cfg.RetryMax = 50*time.Millisecond, time.Hour })
	e.event(t, e.org, "project.ready", map[string]any{})
	clustertest.Eventually(t, 10*time.Second, "two failed attempts", func() bool { return r.count() >= 2 })
	if got := health(t, e, ep.ID); got != "healthy" {
		t.Fatalf("health after %d failures: %s", r.count(), got)
	}
	clustertest.Eventually(t, 10*time.Second, "three failed attempts", func() bool { return health(t, e, ep.ID) == "failing" })
	if d := e.deliveries(t, ep.ID)[0]; d.State != store.DeliveryPending || d.Failures < 3 {
		t.Fatalf("delivery: %s, %d failures", d.State, d.Failures)
	}
	off := false
	if _, err := e.svc.Update(ctxT(t), e.org, ep.ID, webhooks.EndpointInput{IsActive: &off}, webhooks.Actor{}); err != nil {
		t.Fatal(err)
	}
	if got := health(t, e, ep.ID); got != "disabled" {
		t.Fatalf("inactive endpoint health: %s", got)
	}
}

func health(t *testing.T, e *env, id string) string {
	t.Helper()
	ep, err := store.GetWebhookEndpoint(ctxT(t), e.st.Pool, e.org, id)
	if err != nil {
		t.Fatal(err)
	}
	return webhooks.Health(ep)
}

// A rotated secret signs every later attempt, retries of older deliveries
// included; the old one stops validating at once.
func TestRotateSecretSignsRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var first sync.Once
	rotated := make(chan string, 1)
	r := newReceiver(t, func(_ hit, n int) int {
		if n == 1 {
			return 500
		}
		return 200
	})
	ep, oldSecret := e.deliverTo(t, r, func(cfg *webhooks.Config) { cfg.RetryBase = 500 * time.Millisecond })
	e.event(t, e.org, "project.ready", map[string]any{})
	clustertest.Eventually(t, 10*time.Second, "first attempt", func() bool { return r.count() == 1 })
	first.Do(func() {
		_, s, err := e.svc.RotateSecret(ctxT(t), e.org, ep.ID, webhooks.Actor{})
		if err != nil {
			t.Fatal(err)
		}
		rotated <- s
	})
	newSecret := <-rotated
	clustertest.Eventually(t, 10*time.Second, "retry", func() bool { return r.count() == 2 })
	h := r.all()
	if webhooks.Verify(oldSecret, h[0].Signature, h[0].Body, time.Minute, time.Now()) != nil {
		t.Fatal("first attempt not signed with the old secret")
	}
	if err := webhooks.Verify(newSecret, h[1].Signature, h[1].Body, time.Minute, time.Now()); err != nil {
		t.Fatalf("retry after rotation: %v", err)
	}
	if err := webhooks.Verify(oldSecret, h[1].Signature, h[1].Body, time.Minute, time.Now()); !errors.Is(err, webhooks.ErrSignatureMismatch) {
		t.Fatalf("old secret still validates the retry: %v", err)
	}
}

// Redirects are not followed: a 3xx is a failed attempt.
func TestRedirectIsFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := newReceiver(t, nil)
	r := newReceiver(t, func(hit, int) int { return 0 })
	r.Config.Handler = http.RedirectHandler(target.URL, http.StatusFound)
	ep, _ := e.deliverTo(t, r, func(cfg *webhooks.Config) { cfg.MaxAttempts = 1 })
	e.event(t, e.org, "project.ready", map[string]any{})
	d := e.waitOnlyDelivery(t, ep.ID, store.DeliveryFailed)
	if deref(d.ResponseStatus) != 302 || !strings.Contains(deref(d.LastError), "redirects are not followed") || target.count() != 0 {
		t.Fatalf("redirect: status %v error %q, target hits %d", deref(d.ResponseStatus), deref(d.LastError), target.count())
	}
}

// A slow receiver does not hold up another endpoint's deliveries, and never
// has more than PerEndpoint attempts in flight.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t, nil)
	e.endpoint(t, e.org, slow.URL, nil, true)
	e.endpoint(t, e.org, fast.URL, nil, true)
	cfg := fastConfig(t, "d1")
	cfg.Concurrency, cfg.PerEndpoint, cfg.Timeout = 8, 4, 20*time.Second
	startDispatcher(t, e, cfg)
	for i := range 20 {
		e.event(t, e.org, "job.completed", map[string]any{"job_id": fmt.Sprint(i)})
	}
	clustertest.Eventually(t, 5*time.Second, "all 20 deliveries to the fast receiver", func() bool { return fast.count() == 20 })
	if p := peak.Load(); p != 4 {
		t.Fatalf("slow receiver had %d attempts in flight at most, want exactly the bound 4", p)
	}
}

// fakeResolver answers a sequence per name (rebinding).
type fakeResolver struct {
	mu    sync.Mutex
	seq   map[string][]string
	calls map[string]int
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.seq[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(f.calls[host], len(s)-1)
	f.calls[host]++
	return []netip.Addr{netip.MustParseAddr(s[i])}, nil
}

// A name that was public when saved but points at loopback when the
// delivery connects is refused at connect time; nothing reaches loopback.
func TestRebindingRefusedAtConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.URL, "http://"))
	res := &fakeResolver{seq: map[string][]string{"hooks.rebind.example": {"93.184.216.34", "127.0.0.1"}}, calls: map[string]int{}}
	guard := &netguard.Guard{Resolver: res}
	e.svc = &webhooks.Service{Store: e.st, Box: e.box, Guard: guard, AllowInsecure: true} // http for the test receiver
	ep, _ := e.endpoint(t, e.org, "http://hooks.rebind.example:"+port+"/hook", nil, true)
	cfg := fastConfig(t, "d1")
	cfg.Guard, cfg.MaxAttempts = guard, 1
	startDispatcher(t, e, cfg)
	e.event(t, e.org, "project.ready", map[string]any{})
	d := e.waitOnlyDelivery(t, ep.ID, store.DeliveryFailed)
	if deref(d.LastError) != "host is not allowed" || r.count() != 0 || d.ResponseStatus != nil {
		t.Fatalf("rebinding: error %q, status %v, receiver hits %d", deref(d.LastError), deref(d.ResponseStatus), r.count())
	}
	// And saving a private address is refused outright.
	private := "http://127.0.0.1:" + port
	if _, _, err := e.svc.Create(ctxT(t), e.org, webhooks.EndpointInput{URL: &private}, webhooks.Actor{}); err == nil || err.Error() != "host is not allowed" {
		t.Fatalf("saving a loopback URL: %v", err)
	}
}

// Tests go to inactive endpoints too, with one attempt; redeliveries get a
// new id and the original envelope; deleting an endpoint cancels pending work.
func TestTestRedeliverDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var failAll atomic.Bool
	r := newReceiver(t, func(h hit, _ int) int {
		if h.Event == "webhook.test" || failAll.Load() {
			return 500
		}
		return 200
	})
	ep, _ := e.endpoint(t, e.org, r.URL, nil, false)
	startDispatcher(t, e, fastConfig(t, "d1"))
	td, err := e.svc.Test(ctxT(t), e.org, ep.ID)
	if err != nil || td.MaxAttempts != 1 || td.State != "pending" || td.EventType != "webhook.test" {
		t.Fatalf("test delivery: %+v %v", td, err)
	}
	clustertest.Eventually(t, 10*time.Second, "test delivery", func() bool { return e.delivery(t, e.org, ep.ID, td.ID).State == store.DeliveryFailed })
	if got := e.delivery(t, e.org, ep.ID, td.ID); got.Attempts != 1 || r.count() != 1 || r.all()[0].Delivery != td.ID {
		t.Fatalf("test delivery: attempts %d, hits %d", got.Attempts, r.count())
	}
	var data map[string]string
	_ = json.Unmarshal(r.all()[0].Envelope.Data, &data)
	if data["webhook_endpoint_id"] != ep.ID || data["organization_id"] != e.org {
		t.Fatalf("test event data: %v", data)
	}
	// Redeliver needs an active endpoint.
	if _, err := e.svc.Redeliver(ctxT(t), e.org, ep.ID, td.ID); domainerr.KindOf(err) != domainerr.Conflict {
		t.Fatalf("redeliver to an inactive endpoint: %v", err)
	}
	on := true
	if _, err := e.svc.Update(ctxT(t), e.org, ep.ID, webhooks.EndpointInput{IsActive: &on}, webhooks.Actor{}); err != nil {
		t.Fatal(err)
	}
	e.event(t, e.org, "project.deleted", map[string]any{})
	clustertest.Eventually(t, 10*time.Second, "event delivery", func() bool { return r.count() == 2 })
	orig := r.all()[1]
	ds := e.deliveries(t, ep.ID)
	rd, err := e.svc.Redeliver(ctxT(t), e.org, ep.ID, ds[0].ID)
	if err != nil || rd.ID == ds[0].ID || rd.MaxAttempts != 8 || rd.Attempts != 0 || rd.EventID != ds[0].EventID {
		t.Fatalf("redeliver: %+v %v", rd, err)
	}
	clustertest.Eventually(t, 10*time.Second, "redelivery", func() bool { return r.count() == 3 })
	again := r.all()[2]
	if again.Delivery != rd.ID || string(again.Body) != string(orig.Body) || again.Envelope.ID != orig.Envelope.ID {
		t.Fatalf("redelivery sent %s %s, original %s", again.Delivery, again.Body, orig.Body)
	}
	if o := e.delivery(t, e.org, ep.ID, ds[0].ID); o.State != store.DeliveryDelivered || o.Attempts != 1 {
		t.Fatalf("original changed: %+v", o)
	}

	// Delete cancels what is pending.
	failAll.Store(true)
	e.event(t, e.org, "project.ready", map[string]any{})
	clustertest.Eventually(t, 10*time.Second, "failing attempt", func() bool { return r.count() == 4 })
	if err := e.svc.Delete(ctxT(t), e.org, ep.ID, webhooks.Actor{}); err != nil {
		t.Fatal(err)
	}
	atDelete := r.count()
	var n int
	_ = e.st.Pool.QueryRow(ctxT(t), `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, ep.ID).Scan(&n)
	time.Sleep(500 * time.Millisecond) // retries would come every 20-320 ms
	if n != 0 || r.count() > atDelete+1 {
		t.Fatalf("after delete: %d deliveries left, %d hits after the delete", n, r.count()-atDelete)
	}
}

// An attempt whose server died is retried once its lease passes; a last
// attempt whose server died ends failed.
func TestAbandonedClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, nil)
	ep, _ := e.endpoint(t, e.org, r.URL, nil, true)
	ctx := ctxT(t)
	e.event(t, e.org, "project.ready", map[string]any{})
	e.event(t, e.org, "project.deleted", map[string]any{})
	// Deliver both once, then rewind them below as if a dead server held them.
	stop := startDispatcher(t, e, fastConfig(t, "d1"))
	clustertest.Eventually(t, 10*time.Second, "fan-out", func() bool { return r.count() == 2 })
	stop()
	ds := e.deliveries(t, ep.ID)
	// Pretend a dead server claimed them: one mid-retry, one on its last attempt.
	if _, err := e.st.Pool.Exec(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 2, claimed_by = 'dead:1',
		next_attempt_at = now() - interval '1 second', delivered_at = NULL, finished_at = NULL WHERE id = $1`, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Pool.Exec(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 8, claimed_by = 'dead:1',
		next_attempt_at = now() - interval '1 second', delivered_at = NULL, finished_at = NULL WHERE id = $1`, ds[1].ID); err != nil {
		t.Fatal(err)
	}
	startDispatcher(t, e, fastConfig(t, "d2"))
	clustertest.Eventually(t, 10*time.Second, "recovery", func() bool {
		return e.delivery(t, e.org, ep.ID, ds[0].ID).State == store.DeliveryDelivered &&
			e.delivery(t, e.org, ep.ID, ds[1].ID).State == store.DeliveryFailed
	})
	if d := e.delivery(t, e.org, ep.ID, ds[0].ID); d.Attempts != 3 || deref(d.ClaimedBy) != "" {
		t.Fatalf("retried delivery: attempts %d claimed_by %v", d.Attempts, deref(d.ClaimedBy))
	}
	if d := e.delivery(t, e.org, ep.ID, ds[1].ID); d.Attempts != 8 || !strings.Contains(deref(d.LastError), "stopped") {
		t.Fatalf("abandoned last attempt: attempts %d error %q", d.Attempts, deref(d.LastError))
	}
	if r.count() != 3 {
		t.Fatalf("hits: %d, want 3 (2 first deliveries + 1 retry)", r.count())
	}
}

// Stopping a dispatcher mid-attempt gives the attempt back: it does not
// count, and another server sends it at once.
func TestShutdownReleasesAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 10)
	hold := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) == 1 {
			started <- struct{}{}
			select {
			case <-hold:
			case <-req.Context().Done():
			}
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	ep, _ := e.endpoint(t, e.org, srv.URL, nil, true)
	stop := startDispatcher(t, e, fastConfig(t, "d1"))
	e.event(t, e.org, "project.ready", map[string]any{})
	<-started
	stop()
	d := e.deliveries(t, ep.ID)[0]
	if d.State != store.DeliveryPending || d.Attempts != 0 || d.ClaimedBy != nil || d.NextAttemptAt == nil || time.Until(*d.NextAttemptAt) > 0 {
		t.Fatalf("after shutdown: %+v", d)
	}
	startDispatcher(t, e, fastConfig(t, "d2"))
	clustertest.Eventually(t, 10*time.Second, "delivery by the next server", func() bool {
		return e.delivery(t, e.org, ep.ID, d.ID).State == store.DeliveryDelivered
	})
	if got := e.delivery(t, e.org, ep.ID, d.ID); got.Attempts != 1 {
		t.Fatalf("attempts: %d", got.Attempts)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
