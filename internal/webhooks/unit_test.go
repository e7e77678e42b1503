package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/webhooks"
)

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"project.ready"}`)
	secret := "whsec_" + "abcdefghijklmnopqrstuvwxyz012345"
	at := time.Unix(1760000000, 0)
	sig := webhooks.Sign(secret, at, body)
	// The documented construction, by hand.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("1760000000." + string(body)))
	if want := "t=1760000000,v1=" + hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Fatalf("Sign = %s, want %s", sig, want)
	}
	if err := webhooks.Verify(secret, sig, body, 5*time.Minute, at.Add(4*time.Minute)); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	cases := []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		want                 error
	}{
		{"wrong secret", secret + "x", sig, body, at, webhooks.ErrSignatureMismatch},
		{"tampered body", secret, sig, append([]byte(nil), append(body, ' ')...), at, webhooks.ErrSignatureMismatch},
		{"too old", secret, sig, body, at.Add(6 * time.Minute), webhooks.ErrTimestampTolerance},
		{"from the future", secret, sig, body, at.Add(-6 * time.Minute), webhooks.ErrTimestampTolerance},
		{"no v1", secret, "t=1760000000", body, at, webhooks.ErrBadSignatureHeader},
		{"garbage", secret, "nonsense", body, at, webhooks.ErrBadSignatureHeader},
	}
	for _, c := range cases {
		if err := webhooks.Verify(c.secret, c.header, c.body, 5*time.Minute, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestBuildEnvelope(t *testing.T) {
	at := time.Date(2026, 6, 10, 8, 0, 0, 123456789, time.FixedZone("x", 3600))
	b, err := webhooks.BuildEnvelope("evt_1", "preview.ready", "org_1", at, []byte(`{"project_id":"prj_1","n":12345678901234567}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_1","type":"preview.ready","created_at":"2026-06-10T07:00:00.123Z","data":{"n":12345678901234567,"organization_id":"org_1","project_id":"prj_1"}}`
	if string(b) != want {
		t.Fatalf("envelope\n got %s\nwant %s", b, want)
	}
	b, _ = webhooks.BuildEnvelope("evt_2", "job.failed", "org_1", at, []byte(`{"organization_id":"org_1"}`))
	var env struct{ Data map[string]any }
	_ = json.Unmarshal(b, &env)
	if len(env.Data) != 1 {
		t.Fatalf("organization_id duplicated or lost: %s", b)
	}
}

func TestHealth(t *testing.T) {
	failed, delivered := store.DeliveryFailed, store.DeliveryDelivered
	cases := []struct {
		e    store.WebhookEndpoint
		want string
	}{
		{store.WebhookEndpoint{IsActive: true}, "healthy"},
		{store.WebhookEndpoint{IsActive: true, LastFinishedState: &delivered}, "healthy"},
		{store.WebhookEndpoint{IsActive: true, LastFinishedState: &failed}, "failing"},
		{store.WebhookEndpoint{IsActive: true, LastFinishedState: &delivered, PendingFailing: true}, "failing"},
		{store.WebhookEndpoint{IsActive: false, LastFinishedState: &failed}, "disabled"},
	}
	for i, c := range cases {
		if got := webhooks.Health(&c.e); got != c.want {
			t.Errorf("case %d: %s, want %s", i, got, c.want)
		}
	}
}

func TestCheckEventTypes(t *testing.T) {
	got, err := webhooks.CheckEventTypes([]string{"project.ready", "job.failed", "project.ready"})
	if err != nil || fmt.Sprint(got) != "[project.ready job.failed]" {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := webhooks.CheckEventTypes(nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty: %#v %v", got, err)
	}
	for _, bad := range []string{"webhook.test", "project.created", ""} {
		if _, err := webhooks.CheckEventTypes([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// CheckURL: https only (http too in insecure mode), public hosts only, and
// messages that name the problem.
func TestCheckURL(t *testing.T) {
	res := &fakeResolver{seq: map[string][]string{
		"hooks.example.com": {"93.184.216.34"}, "internal.example.com": {"10.0.0.5"}, "localhost": {"127.0.0.1"},
	}, calls: map[string]int{}}
	s := &webhooks.Service{Guard: &netguard.Guard{Resolver: res}}
	ctx := context.Background()
	if u, err := s.CheckURL(ctx, "  HTTPS://hooks.example.com/in?x=1#frag "); err != nil || u != "https://hooks.example.com/in?x=1" {
		t.Fatalf("good URL: %q %v", u, err)
	}
	for raw, want := range map[string]string{
		"http://hooks.example.com/":           "url must use https",
		"ftp://hooks.example.com/":            "url must use https",
		"hooks.example.com/x":                 "url must use https",
		"https://internal.example.com/":       "host is not allowed",
		"https://127.0.0.1/":                  "host is not allowed",
		"https://[::1]:8443/":                 "host is not allowed",
		"https://10.1.2.3/":                   "host is not allowed",
		"https://172.20.0.1/":                 "host is not allowed",
		"https://192.168.0.10/":               "host is not allowed",
		"https://169.254.169.254/latest/":     "host is not allowed",
		"https://[fd00:ec2::254]/":            "host is not allowed",
		"https://100.64.0.1/":                 "host is not allowed",
		"https://[fc00::1]/":                  "host is not allowed",
		"https://localhost/":                  "host is not allowed",
		"https://metadata.google.internal/":   "host is not allowed",
		"https://printer.local/":              "host is not allowed",
		"https://0.0.0.0/":                    "host is not allowed",
		"https://[::ffff:127.0.0.1]/":         "host is not allowed",
		"https:///path":                       "url must name a host",
		"":                                    "url is required",
		"https://nxdomain.example.com/":       "url host nxdomain.example.com cannot be resolved",
		"https://hooks.example.com:99999/":    "url has an invalid port",
		"https://hooks.example.com/%zz":       "url is not a valid URL",
		"https://hooks.example.com:0/":        "url has an invalid port",
		"https://user@127.0.0.1@evil.example": "url host evil.example cannot be resolved", // the real host is checked
	} {
		_, err := s.CheckURL(ctx, raw)
		if err == nil || err.Error() != want {
			t.Errorf("CheckURL(%q) = %v, want %q", raw, err, want)
		}
	}
	insecure := &webhooks.Service{Guard: &netguard.Guard{Resolver: res, AllowPrivate: true}, AllowInsecure: true}
	for _, ok := range []string{"http://127.0.0.1:8080/hook", "http://localhost/x", "https://internal.example.com/"} {
		if _, err := insecure.CheckURL(ctx, ok); err != nil {
			t.Errorf("insecure mode refused %s: %v", ok, err)
		}
	}
	if _, err := insecure.CheckURL(ctx, "http://169.254.169.254/"); err == nil || err.Error() != "host is not allowed" {
		t.Errorf("insecure mode allowed the metadata address: %v", err)
	}
	if _, err := insecure.CheckURL(ctx, "ftp://x.example.com/"); err == nil || err.Error() != "url must use http or https" {
		t.Errorf("insecure mode scheme: %v", err)
	}
}
