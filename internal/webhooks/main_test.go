package webhooks_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
	"github.com/capydb/capydb/internal/webhooks"
)

// One real Postgres cluster for the package; every test gets its own database.
func TestMain(m *testing.M) { clustertest.Main(m) }

type env struct {
	st  *store.Store
	box *secretbox.Box
	svc *webhooks.Service
	org string
}

// newEnv gives the test its own migrated control database (see
// storetest.ControlDB) with one organization.
func newEnv(t *testing.T) *env {
	t.Helper()
	st := storetest.ControlDB(t, 40)
	key := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, box: box, org: newOrg(t, st)}
	e.svc = &webhooks.Service{Store: st, Box: box, AllowInsecure: true, Guard: &netguard.Guard{AllowPrivate: true}}
	return e
}

func newOrg(t *testing.T, st *store.Store) string {
	t.Helper()
	o := &store.Organization{ID: ids.New("org_"), Name: "T", Slug: "t-" + strings.ToLower(ids.RandomBase62(8)), BillingPlan: "business"}
	if err := store.InsertOrganization(context.Background(), st.Pool, o); err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// fastConfig has short waits so retries finish within a test.
func fastConfig(t *testing.T, id string) webhooks.Config {
	return webhooks.Config{
		WorkerID: id, RetryBase: 20 * time.Millisecond, RetryMax: time.Second, PollInterval: 50 * time.Millisecond,
		Timeout: 2 * time.Second, Guard: &netguard.Guard{AllowPrivate: true}, Logger: clustertest.Logger(t),
	}
}

// startDispatcher runs a dispatcher on its own pool until the test ends.
func startDispatcher(t *testing.T, e *env, cfg webhooks.Config) (stop func()) {
	t.Helper()
	d, err := webhooks.NewDispatcher(e.st.Pool, e.box, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("dispatcher %s did not stop", cfg.WorkerID)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// hit is one request a receiver got.
type hit struct {
	Delivery, Event, Signature, UserAgent, ContentType string
	Body                                               []byte
	Envelope                                           webhooks.Envelope
	At                                                 time.Time
}

// receiver records requests and answers with respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	respond func(h hit, n int) int
}

func newReceiver(t *testing.T, respond func(h hit, n int) int) *receiver {
	r := &receiver{respond: respond}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		h := hit{Delivery: req.Header.Get("X-CapyDB-Delivery"), Event: req.Header.Get("X-CapyDB-Event"),
			Signature: req.Header.Get("X-CapyDB-Signature"), UserAgent: req.UserAgent(),
			ContentType: req.Header.Get("Content-Type"), Body: body, At: time.Now()}
		_ = json.Unmarshal(body, &h.Envelope)
		r.mu.Lock()
		r.hits = append(r.hits, h)
		n := len(r.hits)
		r.mu.Unlock()
		status := 200
		if r.respond != nil {
			status = r.respond(h, n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hits)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// endpoint creates an endpoint through the service and returns it with its secret.
func (e *env) endpoint(t *testing.T, org, url string, types []string, active bool) (*store.WebhookEndpoint, string) {
	t.Helper()
	in := webhooks.EndpointInput{URL: &url, IsActive: &active}
	if types != nil {
		in.EventTypes = &types
	}
	ep, secret, err := e.svc.Create(ctxT(t), org, in, webhooks.Actor{Kind: "system"})
	if err != nil {
		t.Fatalf("creating endpoint %s: %v", url, err)
	}
	return ep, secret
}

func (e *env) event(t *testing.T, org, typ string, data map[string]any) string {
	t.Helper()
	id := ids.New("evt_")
	if err := store.InsertEvent(ctxT(t), e.st.Pool, id, org, typ, data); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) deliveries(t *testing.T, endpointID string) []*store.WebhookDelivery {
	t.Helper()
	ds, err := store.ListWebhookDeliveries(ctxT(t), e.st.Pool, endpointID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func (e *env) delivery(t *testing.T, org, endpointID, id string) *store.WebhookDelivery {
	t.Helper()
	d, err := store.GetWebhookDelivery(ctxT(t), e.st.Pool, org, endpointID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deliverTo creates one active endpoint for r in e.org and starts dispatcher
// d1 with fastConfig changed by tweak; it returns the endpoint and its secret.
func (e *env) deliverTo(t *testing.T, r *receiver, tweak func(*webhooks.Config)) (*store.WebhookEndpoint, string) {
	t.Helper()
	ep, secret := e.endpoint(t, e.org, r.URL, nil, true)
	cfg := fastConfig(t, "d1")
	tweak(&cfg)
	startDispatcher(t, e, cfg)
	return ep, secret
}

// failingEndpoint is deliverTo with a receiver that answers every request
// with status.
func (e *env) failingEndpoint(t *testing.T, status int, tweak func(*webhooks.Config)) (*receiver, *store.WebhookEndpoint) {
	t.Helper()
	r := newReceiver(t, func(hit, int) int { return status })
	ep, _ := e.deliverTo(t, r, tweak)
	return r, ep
}

// waitOnlyDelivery waits until the endpoint has exactly one delivery, in
// state, and returns it.
func (e *env) waitOnlyDelivery(t *testing.T, endpointID, state string) *store.WebhookDelivery {
	t.Helper()
	var d *store.WebhookDelivery
	clustertest.Eventually(t, 10*time.Second, "a single "+state+" delivery", func() bool {
		ds := e.deliveries(t, endpointID)
		if len(ds) == 1 && ds[0].State == state {
			d = ds[0]
			return true
		}
		return false
	})
	return d
}
