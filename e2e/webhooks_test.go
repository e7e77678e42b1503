package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// hookHit is one request the test receiver got.
type hookHit struct {
	Endpoint  string // receiver path name
	Delivery  string
	Event     string
	EventID   string
	Data      map[string]any
	UserAgent string
	Sig       string
	Body      []byte
	Valid     bool // signature verified with the receiver's current secret
	Status    int  // what the receiver answered
}

// hookReceiver is a real HTTP receiver: it verifies every signature the way
// docs/webhooks.md tells users to, and records what it got.
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	secrets map[string]string // endpoint name → secret it verifies with
	failN   map[string]int    // endpoint name → answer 500 to this many more valid requests
	hits    []hookHit
}

func newHookReceiver(t *testing.T) *hookReceiver { return newHookReceiverOn(t, "127.0.0.1") }

// newHookReceiverOn listens on addr, e.g. the bridge address a server in a
// network namespace reaches the test at.
func newHookReceiverOn(t *testing.T, addr string) *hookReceiver {
	r := &hookReceiver{secrets: map[string]string{}, failN: map[string]int{}}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Listener.Close()
	r.srv.Listener = l
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) url(name string) string { return r.srv.URL + "/hooks/" + name }

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	name := strings.TrimPrefix(req.URL.Path, "/hooks/")
	body, _ := io.ReadAll(req.Body)
	h := hookHit{Endpoint: name, Delivery: req.Header.Get("X-CapyDB-Delivery"), Event: req.Header.Get("X-CapyDB-Event"),
		UserAgent: req.UserAgent(), Sig: req.Header.Get("X-CapyDB-Signature"), Body: body}
	var env struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	h.EventID, h.Data = env.ID, env.Data
	r.mu.Lock()
	defer r.mu.Unlock()
	h.Valid = verifySignature(r.secrets[name], h.Sig, body, time.Now()) && env.Type == h.Event &&
		req.Header.Get("Content-Type") == "application/json"
	switch {
	case !h.Valid:
		h.Status = http.StatusUnauthorized
	case r.failN[name] > 0:
		r.failN[name]--
		h.Status = http.StatusInternalServerError
	default:
		h.Status = http.StatusOK
	}
	r.hits = append(r.hits, h)
	w.WriteHeader(h.Status)
}

// verifySignature is the recipe of docs/webhooks.md, written out by hand.
func verifySignature(secret, header string, body []byte, now time.Time) bool {
	var ts, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secret == "" {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	return hmac.Equal([]byte(v1), []byte(hex.EncodeToString(m.Sum(nil))))
}

func (r *hookReceiver) setSecret(name, secret string) {
	r.mu.Lock()
	r.secrets[name] = secret
	r.mu.Unlock()
}

func (r *hookReceiver) failNext(name string, n int) {
	r.mu.Lock()
	r.failN[name] = n
	r.mu.Unlock()
}

// of returns the hits of one endpoint, optionally filtered.
func (r *hookReceiver) of(name string, keep func(hookHit) bool) []hookHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hookHit
	for _, h := range r.hits {
		if h.Endpoint == name && (keep == nil || keep(h)) {
			out = append(out, h)
		}
	}
	return out
}

func ok2xx(h hookHit) bool { return h.Status == http.StatusOK }

// outboxEvents lists the catalogue events of the outbox created at or after since.
func (s *server) outboxEvents(t *testing.T, since time.Time) map[string]string {
	t.Helper()
	rows, err := s.admin("capydb_control").Query(context.Background(), `SELECT id, type FROM events
		WHERE created_at >= $1 AND type = ANY($2) ORDER BY created_at`, since, []string{"job.completed", "job.failed",
		"project.ready", "project.deleted", "backup.completed", "preview.ready", "preview.deleted", "import.completed",
		"restore.completed", "credentials.rotated", "alert.triggered", "alert.resolved"})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			t.Fatal(err)
		}
		out[id] = typ
	}
	return out
}

func (s *server) orgID(t *testing.T) string {
	t.Helper()
	return s.must(200, "GET", "/v1/me", nil).str("organization", "id")
}

// keyWith mints a key of the default organization directly in the control DB.
func (s *server) keyWith(t *testing.T, scopes []string, projectID string) string {
	t.Helper()
	plain, hash, prefix := auth.NewKey()
	var pid any
	if projectID != "" {
		pid = projectID
	}
	if _, err := s.admin("capydb_control").Exec(context.Background(), `INSERT INTO api_keys (id, organization_id, name, key_hash, key_prefix, scopes, project_id)
		VALUES ($1, $2, 'limited', $3, $4, $5, $6)`, ids.New("key_"), s.orgID(t), hash, prefix, scopes, pid); err != nil {
		t.Fatal(err)
	}
	return plain
}

// TestWebhooks: endpoints are managed through the API, every lifecycle
// event in the outbox reaches each subscribed endpoint exactly once, signed;
// unsubscribed and inactive endpoints get nothing; retries, test, redeliver,
// secret rotation, validation, tenancy and health behave as documented.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--webhooks-allow-insecure", "--webhooks-retry-base", "150ms", "--workers", "1")
	rcv := newHookReceiver(t)
	org := s.orgID(t)
	base := "/v1/organizations/" + org + "/webhook-endpoints"

	create := func(name string, body map[string]any) (map[string]any, string) {
		t.Helper()
		body["url"] = rcv.url(name)
		r := s.must(201, "POST", base, body)
		secret := r.str("plaintext_secret")
		if !strings.HasPrefix(secret, "whsec_") || len(secret) < len("whsec_")+32 || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("create %s: %s", name, r.Raw)
		}
		rcv.setSecret(name, secret)
		return r.get("webhook_endpoint").(map[string]any), secret
	}
	all, allSecret := create("all", map[string]any{"description": "everything"})
	ready, _ := create("ready", map[string]any{"event_types": []string{"project.ready"}})
	off, _ := create("off", map[string]any{"is_active": false})
	since := time.Now().Add(-time.Second) // endpoints exist from here on
	if !strings.HasPrefix(all["id"].(string), "whe_") || all["organization_id"] != org || all["url"] != rcv.url("all") ||
		all["description"] != "everything" || fmt.Sprint(all["event_types"]) != "[]" || all["is_active"] != true ||
		all["health"] != "healthy" || all["created_at"] == nil || all["updated_at"] == nil {
		t.Fatalf("created endpoint: %v", all)
	}
	if fmt.Sprint(ready["event_types"]) != "[project.ready]" || off["is_active"] != false || off["health"] != "disabled" {
		t.Fatalf("created endpoints: %v / %v", ready, off)
	}
	list := s.must(200, "GET", base, nil)
	eps := list.get("webhook_endpoints").([]any)
	if len(eps) != 3 || eps[0].(map[string]any)["id"] != all["id"] || eps[2].(map[string]any)["id"] != off["id"] ||
		strings.Contains(string(list.Raw), "whsec_") {
		t.Fatalf("list: %s", list.Raw)
	}
	// The secret is encrypted at rest.
	var enc []byte
	if err := s.admin("capydb_control").QueryRow(context.Background(), `SELECT secret_enc FROM webhook_endpoints WHERE id = $1`,
		all["id"]).Scan(&enc); err != nil || len(enc) == 0 || strings.Contains(string(enc), allSecret) || strings.Contains(string(enc), "whsec_") {
		t.Fatalf("secret at rest: %q %v", enc, err)
	}

	// Lifecycle: provision, rotate, a failed provision, delete.
	p := s.createProject(map[string]any{"name": "hooked", "environment": "non_production"})
	pid := p["id"].(string)
	projectKey := s.keyWith(t, []string{"projects:read", "projects:write"}, pid)
	if r := s.call("GET", base, projectKey, nil); r.Status != 403 {
		t.Fatalf("project-scoped key listing endpoints: %d %s", r.Status, r.Raw)
	}
	rot := s.must(202, "POST", "/v1/projects/"+pid+"/credentials/rotate", nil)
	s.waitJob(rot.str("job", "id"))
	failedJob := s.failOneProvision(t, pid, "doomed").str("job", "id")
	del := s.must(202, "DELETE", "/v1/projects/"+pid, nil)
	s.waitJob(del.str("job", "id"))

	outbox := s.outboxEvents(t, since)
	types := map[string]bool{}
	for _, typ := range outbox {
		types[typ] = true
	}
	for _, want := range []string{"job.completed", "job.failed", "project.ready", "credentials.rotated", "project.deleted"} {
		if !types[want] {
			t.Fatalf("no %s event in the outbox: %v", want, outbox)
		}
	}
	readyEvents := 0
	for _, typ := range outbox {
		if typ == "project.ready" {
			readyEvents++
		}
	}
	clustertest.Eventually(t, 30*time.Second, "every event at every subscribed endpoint", func() bool {
		return len(rcv.of("all", ok2xx)) >= len(outbox) && len(rcv.of("ready", ok2xx)) >= readyEvents
	})
	time.Sleep(500 * time.Millisecond) // nothing more may come
	got := map[string]int{}
	for _, h := range rcv.of("all", nil) {
		if !h.Valid || h.Status != 200 || h.UserAgent != "capydb-webhooks/1.0" || !strings.HasPrefix(h.Delivery, "whd_") {
			t.Fatalf("delivery to all: %+v", h)
		}
		if outbox[h.EventID] != h.Event {
			t.Fatalf("delivered %s %s is not in the outbox", h.Event, h.EventID)
		}
		if h.Data["organization_id"] != org {
			t.Fatalf("%s data without organization_id: %v", h.Event, h.Data)
		}
		got[h.EventID]++
	}
	if len(got) != len(outbox) {
		t.Fatalf("all-events endpoint got %d distinct events, outbox has %d", len(got), len(outbox))
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("event %s (%s) delivered %d times", id, outbox[id], n)
		}
	}
	for _, h := range rcv.of("all", nil) {
		if h.Event == "job.failed" && h.Data["job_id"] == failedJob && h.Data["error"] == nil {
			t.Fatalf("job.failed without error: %v", h.Data)
		}
		if h.Event == "project.ready" && (h.Data["project_id"] == nil || h.Data["job_id"] == nil) {
			t.Fatalf("project.ready data: %v", h.Data)
		}
	}
	readyHits := rcv.of("ready", nil)
	if len(readyHits) != readyEvents {
		t.Fatalf("project.ready-only endpoint got %d requests for %d project.ready events", len(readyHits), readyEvents)
	}
	for _, h := range readyHits {
		if h.Event != "project.ready" || !h.Valid {
			t.Fatalf("unsubscribed event sent: %+v", h)
		}
	}
	if n := len(rcv.of("off", nil)); n != 0 {
		t.Fatalf("inactive endpoint got %d deliveries", n)
	}

	// Deliveries, newest first, with the exact envelope and limit rules.
	allID := all["id"].(string)
	dl := s.must(200, "GET", base+"/"+allID+"/deliveries", nil).get("deliveries").([]any)
	if len(dl) != min(len(outbox), 25) {
		t.Fatalf("default limit: %d deliveries", len(dl))
	}
	d0 := dl[0].(map[string]any)
	if d0["state"] != "delivered" || d0["attempts"] != float64(1) || d0["max_attempts"] != float64(8) ||
		d0["response_status"] != float64(200) || d0["endpoint_id"] != allID || d0["organization_id"] != org ||
		d0["delivered_at"] == nil || d0["next_attempt_at"] != nil || !strings.HasPrefix(d0["event_id"].(string), "evt_") {
		t.Fatalf("delivery: %v", d0)
	}
	if pl := d0["payload"].(map[string]any); pl["id"] != d0["event_id"] || pl["type"] != d0["event_type"] || pl["data"] == nil || pl["created_at"] == nil {
		t.Fatalf("payload: %v", pl)
	}
	if dl[0].(map[string]any)["created_at"].(string) < dl[len(dl)-1].(map[string]any)["created_at"].(string) {
		t.Fatal("deliveries are not newest first")
	}
	if n := len(s.must(200, "GET", base+"/"+allID+"/deliveries?limit=2", nil).get("deliveries").([]any)); n != 2 {
		t.Fatalf("limit=2: %d", n)
	}
	if n := len(s.must(200, "GET", base+"/"+allID+"/deliveries?limit=1000", nil).get("deliveries").([]any)); n != min(len(outbox), 100) {
		t.Fatalf("limit=1000: %d", n)
	}
	for _, q := range []string{"-1", "abc"} {
		if r := s.call("GET", base+"/"+allID+"/deliveries?limit="+q, s.key, nil); r.Status != 400 || !strings.Contains(r.str("error"), "limit") {
			t.Fatalf("limit=%s: %d %s", q, r.Status, r.Raw)
		}
	}

	// A receiver that fails three times then succeeds: one success, attempts 4.
	rcv.failNext("all", 3)
	tr := s.must(201, "POST", base+"/"+allID+"/deliveries/"+d0["id"].(string)+"/redeliver", nil)
	rd := tr.get("delivery").(map[string]any)
	if rd["id"] == d0["id"] || rd["event_id"] != d0["event_id"] || rd["attempts"] != float64(0) || rd["max_attempts"] != float64(8) || rd["state"] != "pending" {
		t.Fatalf("redeliver: %s", tr.Raw)
	}
	var final map[string]any
	clustertest.Eventually(t, 20*time.Second, "redelivery after three failures", func() bool {
		for _, x := range s.must(200, "GET", base+"/"+allID+"/deliveries?limit=100", nil).get("deliveries").([]any) {
			if d := x.(map[string]any); d["id"] == rd["id"] && d["state"] == "delivered" {
				final = d
				return true
			}
		}
		return false
	})
	attemptsSeen := rcv.of("all", func(h hookHit) bool { return h.Delivery == rd["id"] })
	successes := rcv.of("all", func(h hookHit) bool { return h.Delivery == rd["id"] && h.Status == 200 })
	if final["attempts"] != float64(4) || len(attemptsSeen) != 4 || len(successes) != 1 || final["response_status"] != float64(200) ||
		final["last_error"] != nil || successes[0].EventID != d0["event_id"] {
		t.Fatalf("retried delivery: %v; %d requests, %d successes", final, len(attemptsSeen), len(successes))
	}
	if o := s.must(200, "GET", base+"/"+allID+"/deliveries?limit=100", nil); !strings.Contains(string(o.Raw), `"id":"`+d0["id"].(string)+`"`) {
		t.Fatal("the original delivery is gone after a redelivery")
	}

	// Test route: one attempt, webhook.test, even to an inactive endpoint; empty bodies accepted.
	offID := off["id"].(string)
	for _, body := range []any{nil, "", map[string]any{}} {
		r := s.must(201, "POST", base+"/"+offID+"/test", body)
		td := r.get("delivery").(map[string]any)
		if td["event_type"] != "webhook.test" || td["max_attempts"] != float64(1) || td["state"] != "pending" {
			t.Fatalf("test delivery: %s", r.Raw)
		}
	}
	if r := s.call("POST", base+"/"+offID+"/test", s.key, map[string]any{"x": 1}); r.Status != 400 || !strings.Contains(r.str("error"), "x") {
		t.Fatalf("unknown field on test: %d %s", r.Status, r.Raw)
	}
	clustertest.Eventually(t, 10*time.Second, "test deliveries", func() bool { return len(rcv.of("off", ok2xx)) == 3 })
	for _, h := range rcv.of("off", nil) {
		if h.Event != "webhook.test" || h.Data["webhook_endpoint_id"] != offID || !h.Valid {
			t.Fatalf("test delivery: %+v", h)
		}
	}
	if r := s.call("POST", base+"/"+offID+"/deliveries/"+d0["id"].(string)+"/redeliver", s.key, nil); r.Status != 404 {
		t.Fatalf("redeliver another endpoint's delivery: %d", r.Status)
	}
	offDeliveries := s.must(200, "GET", base+"/"+offID+"/deliveries", nil).get("deliveries").([]any)
	if r := s.call("POST", base+"/"+offID+"/deliveries/"+offDeliveries[0].(map[string]any)["id"].(string)+"/redeliver", s.key, nil); r.Status != 409 {
		t.Fatalf("redeliver to an inactive endpoint: %d %s", r.Status, r.Raw)
	}
	if r := s.call("POST", base+"/"+allID+"/deliveries/whd_nope/redeliver", s.key, nil); r.Status != 404 || r.str("error") != "webhook delivery not found" {
		t.Fatalf("unknown delivery: %d %s", r.Status, r.Raw)
	}

	// Rotation: the old secret stops validating at once.
	rs := s.must(200, "POST", base+"/"+allID+"/rotate-secret", nil)
	newSecret := rs.str("plaintext_secret")
	if !strings.HasPrefix(newSecret, "whsec_") || newSecret == allSecret || rs.str("webhook_endpoint", "id") != allID {
		t.Fatalf("rotate: %s", rs.Raw)
	}
	before := len(rcv.of("all", nil))
	td := s.must(201, "POST", base+"/"+allID+"/test", nil).get("delivery").(map[string]any)
	clustertest.Eventually(t, 10*time.Second, "delivery after rotation", func() bool { return len(rcv.of("all", nil)) > before })
	h := rcv.of("all", func(h hookHit) bool { return h.Delivery == td["id"] })[0]
	if h.Valid || h.Status != 401 || !verifySignature(newSecret, h.Sig, h.Body, time.Now()) || verifySignature(allSecret, h.Sig, h.Body, time.Now()) {
		t.Fatalf("after rotation: valid with old secret %v, with new %v", h.Valid, verifySignature(newSecret, h.Sig, h.Body, time.Now()))
	}
	clustertest.Eventually(t, 10*time.Second, "test delivery failed", func() bool {
		for _, x := range s.must(200, "GET", base+"/"+allID+"/deliveries", nil).get("deliveries").([]any) {
			if d := x.(map[string]any); d["id"] == td["id"] {
				return d["state"] == "failed" && d["attempts"] == float64(1) && d["response_status"] == float64(401) &&
					d["last_error"] == "receiver answered HTTP 401"
			}
		}
		return false
	})
	if hl := s.must(200, "GET", base, nil).get("webhook_endpoints").([]any)[0].(map[string]any); hl["health"] != "failing" {
		t.Fatalf("health after a failed delivery: %v", hl["health"])
	}
	rcv.setSecret("all", newSecret)

	// PATCH: validation, and only the given fields change.
	patch := func(id string, body any) response { return s.call("PATCH", base+"/"+id, s.key, body) }
	for body, want := range map[string]string{
		`{"event_types":["bogus"]}`:                          `unknown event type "bogus"`,
		`{"event_types":["webhook.test"]}`:                   "webhook.test cannot be subscribed to",
		`{"description":"` + strings.Repeat("d", 501) + `"}`: "description must be at most 500 characters",
		`{"url":"ftp://x.example.com"}`:                      "url must use http or https",
		`{"url":"http://169.254.169.254/latest"}`:            "host is not allowed",
		`{"colour":"red"}`:                                   `unknown field "colour"`,
		`{"is_active":"yes"}`:                                "is_active",
	} {
		if r := patch(allID, body); r.Status != 400 || !strings.Contains(r.str("error"), want) {
			t.Errorf("PATCH %s: %d %s, want 400 containing %q", body, r.Status, r.Raw, want)
		}
	}
	if r := s.call("POST", base, s.key, map[string]any{"url": rcv.url("x"), "event_types": []string{"project.ready", "nope"}}); r.Status != 400 || !strings.Contains(r.str("error"), `"nope"`) {
		t.Fatalf("create with an unknown event type: %d %s", r.Status, r.Raw)
	}
	pr := patch(allID, map[string]any{"event_types": []string{"project.deleted"}, "is_active": false})
	if pr.Status != 200 || fmt.Sprint(pr.get("webhook_endpoint", "event_types")) != "[project.deleted]" ||
		pr.get("webhook_endpoint", "is_active") != false || pr.str("webhook_endpoint", "health") != "disabled" ||
		pr.str("webhook_endpoint", "description") != "everything" || pr.str("webhook_endpoint", "url") != rcv.url("all") {
		t.Fatalf("PATCH: %d %s", pr.Status, pr.Raw)
	}
	pr = patch(allID, map[string]any{"event_types": []string{}, "is_active": true, "description": ""})
	if pr.Status != 200 || fmt.Sprint(pr.get("webhook_endpoint", "event_types")) != "[]" || pr.get("webhook_endpoint", "description") != nil {
		t.Fatalf("PATCH back to all events: %s", pr.Raw)
	}

	// Access: scopes, project keys, other organizations.
	readOnly := s.keyWith(t, []string{"organizations:read"}, "")
	if r := s.call("GET", base, readOnly, nil); r.Status != 200 {
		t.Fatalf("organizations:read list: %d", r.Status)
	}
	if r := s.call("POST", base, readOnly, map[string]any{"url": rcv.url("x")}); r.Status != 403 {
		t.Fatalf("create without organizations:write: %d", r.Status)
	}
	if r := s.call("GET", base, s.keyWith(t, []string{"projects:read"}, ""), nil); r.Status != 403 {
		t.Fatalf("list without organizations:read: %d", r.Status)
	}
	other := s.otherOrgKey(t)
	for _, c := range []struct{ method, path string }{
		{"GET", base}, {"PATCH", base + "/" + allID}, {"DELETE", base + "/" + allID}, {"POST", base + "/" + allID + "/test"},
		{"POST", base + "/" + allID + "/rotate-secret"}, {"GET", base + "/" + allID + "/deliveries"},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"is_active": false}
		}
		if r := s.call(c.method, c.path, other, body); r.Status != 404 {
			t.Fatalf("other organization %s %s: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	otherOrg := s.call("GET", "/v1/me", other, nil).str("organization", "id")
	if r := s.call("PATCH", "/v1/organizations/"+otherOrg+"/webhook-endpoints/"+allID, other, map[string]any{"is_active": false}); r.Status != 404 {
		t.Fatalf("other organization through its own path: %d", r.Status)
	}
	if r := s.call("GET", "/v1/organizations/default/webhook-endpoints", s.key, nil); r.Status != 200 {
		t.Fatalf("organization slug in the path: %d", r.Status)
	}

	// Audit trail of the changes.
	var actions []string
	rows, err := s.admin("capydb_control").Query(context.Background(), `SELECT DISTINCT action FROM audit_events WHERE action LIKE 'webhook_endpoint.%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	rows.Close()
	if fmt.Sprint(actions) != "[webhook_endpoint.created webhook_endpoint.secret_rotated webhook_endpoint.updated]" {
		t.Fatalf("audit actions: %v", actions)
	}

	// Delete: gone from the list, its routes 404.
	if r := s.must(200, "DELETE", base+"/"+allID, nil); r.get("deleted") != true {
		t.Fatalf("delete: %s", r.Raw)
	}
	if r := s.call("GET", base+"/"+allID+"/deliveries", s.key, nil); r.Status != 404 || r.str("error") != "webhook endpoint not found" {
		t.Fatalf("deliveries of a deleted endpoint: %d %s", r.Status, r.Raw)
	}
	if r := s.call("DELETE", base+"/"+allID, s.key, nil); r.Status != 404 {
		t.Fatalf("second delete: %d", r.Status)
	}
	if n := len(s.must(200, "GET", base, nil).get("webhook_endpoints").([]any)); n != 2 {
		t.Fatalf("%d endpoints after delete", n)
	}
}

// TestWebhookSurvivesKill: SIGKILL between two attempts of a delivery; after
// a restart on the same data dir the delivery still succeeds, once.
func TestWebhookSurvivesKill(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--webhooks-allow-insecure", "--webhooks-retry-base", "4s")
	rcv := newHookReceiver(t)
	base := "/v1/organizations/" + s.orgID(t) + "/webhook-endpoints"
	r := s.must(201, "POST", base, map[string]any{"url": rcv.url("a"), "event_types": []string{"project.ready"}})
	id := r.str("webhook_endpoint", "id")
	rcv.setSecret("a", r.str("plaintext_secret"))
	rcv.failNext("a", 1)
	s.createProject(map[string]any{"name": "killme", "environment": "non_production"})
	var delivery map[string]any
	clustertest.Eventually(t, 10*time.Second, "first failed attempt", func() bool {
		dl := s.must(200, "GET", base+"/"+id+"/deliveries", nil).get("deliveries").([]any)
		if len(dl) == 1 && dl[0].(map[string]any)["attempts"] == float64(1) && dl[0].(map[string]any)["state"] == "pending" &&
			dl[0].(map[string]any)["last_error"] != nil {
			delivery = dl[0].(map[string]any)
			return true
		}
		return false
	})
	s.kill()
	if n := len(rcv.of("a", nil)); n != 1 {
		t.Fatalf("%d requests before the kill", n)
	}

	s2 := startServer(t, s.dataDir, s.directPort, s.pooledPort, "--webhooks-allow-insecure", "--webhooks-retry-base", "4s")
	clustertest.Eventually(t, 30*time.Second, "delivery after restart", func() bool { return len(rcv.of("a", ok2xx)) == 1 })
	time.Sleep(300 * time.Millisecond)
	hits := rcv.of("a", nil)
	if len(hits) != 2 || hits[1].Delivery != delivery["id"] || !hits[1].Valid || hits[1].Event != "project.ready" {
		t.Fatalf("after restart: %+v", hits)
	}
	var d map[string]any
	clustertest.Eventually(t, 10*time.Second, "delivery recorded", func() bool {
		d = s2.must(200, "GET", base+"/"+id+"/deliveries", nil).get("deliveries").([]any)[0].(map[string]any)
		return d["state"] == "delivered"
	})
	if d["attempts"] != float64(2) || d["id"] != delivery["id"] {
		t.Fatalf("delivery after restart: %v", d)
	}
}

// TestWebhookSSRF: without --webhooks-allow-insecure, receiver URLs must be
// https and public; a public https URL is accepted.
func TestWebhookSSRF(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	base := "/v1/organizations/" + s.orgID(t) + "/webhook-endpoints"
	for raw, want := range map[string]string{
		"http://93.184.216.34/hook":                        "url must use https",
		"https://127.0.0.1/hook":                           "host is not allowed",
		"https://localhost:8443/hook":                      "host is not allowed",
		"https://[::1]/hook":                               "host is not allowed",
		"https://10.0.0.8/hook":                            "host is not allowed",
		"https://172.16.5.4/hook":                          "host is not allowed",
		"https://192.168.1.20/hook":                        "host is not allowed",
		"https://100.64.0.1/hook":                          "host is not allowed",
		"https://169.254.169.254/latest/meta-data/":        "host is not allowed",
		"https://[fd00:ec2::254]/":                         "host is not allowed",
		"https://[fc00::1]/":                               "host is not allowed",
		"https://[fe80::1]/":                               "host is not allowed",
		"https://0.0.0.0/":                                 "host is not allowed",
		"https://224.0.0.1/":                               "host is not allowed",
		"https://[::ffff:10.0.0.1]/":                       "host is not allowed",
		"https://metadata.google.internal/computeMetadata": "host is not allowed",
		"https://printer.local/":                           "host is not allowed",
		"https://2130706433/":                              "host is not allowed",
		"https://":                                         "url must name a host",
	} {
		r := s.call("POST", base, s.key, map[string]any{"url": raw})
		if r.Status != 400 || r.str("error") != want {
			t.Errorf("create %s: %d %s, want 400 %q", raw, r.Status, r.Raw, want)
		}
	}
	r := s.must(201, "POST", base, map[string]any{"url": "https://93.184.216.34/hooks/capydb"})
	id := r.str("webhook_endpoint", "id")
	if p := s.call("PATCH", base+"/"+id, s.key, map[string]any{"url": "https://10.1.1.1/"}); p.Status != 400 || p.str("error") != "host is not allowed" {
		t.Fatalf("PATCH to a private address: %d %s", p.Status, p.Raw)
	}
	if p := s.call("PATCH", base+"/"+id, s.key, map[string]any{"url": "http://93.184.216.34/"}); p.Status != 400 || p.str("error") != "url must use https" {
		t.Fatalf("PATCH to http: %d %s", p.Status, p.Raw)
	}
	if got := s.must(200, "GET", base, nil).get("webhook_endpoints").([]any)[0].(map[string]any)["url"]; got != "https://93.184.216.34/hooks/capydb" {
		t.Fatalf("url changed by a refused PATCH: %v", got)
	}
}
