package integrations

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The example of Svix's own libraries' tests and docs ("Verifying webhooks
// manually"): this secret, id, timestamp and payload sign to this value.
func TestSvixPublishedExample(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	h := SvixHeaders{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: "1614265330",
		Signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	if err := VerifySvix(secret, h, body, at.Add(time.Minute)); err != nil {
		t.Fatalf("published example rejected: %v", err)
	}
	// Several signatures in one header: any may match (key rotation).
	h2 := h
	h2.Signature = "v1,bm90LXRoZS1zaWduYXR1cmU= " + h.Signature
	if err := VerifySvix(secret, h2, body, at); err != nil {
		t.Fatalf("second signature not tried: %v", err)
	}
	bad := map[string]func() (SvixHeaders, []byte, time.Time){
		"one byte changed": func() (SvixHeaders, []byte, time.Time) { return h, []byte(`{"test": 2432232315}`), at },
		"other id":         func() (SvixHeaders, []byte, time.Time) { x := h; x.ID += "x"; return x, body, at },
		"replayed late":    func() (SvixHeaders, []byte, time.Time) { return h, body, at.Add(5*time.Minute + time.Second) },
		"from the future":  func() (SvixHeaders, []byte, time.Time) { return h, body, at.Add(-6 * time.Minute) },
		"no signature":     func() (SvixHeaders, []byte, time.Time) { x := h; x.Signature = ""; return x, body, at },
		"v2 scheme": func() (SvixHeaders, []byte, time.Time) {
			x := h
			x.Signature = "v2," + h.Signature[3:]
			return x, body, at
		},
	}
	for name, f := range bad {
		hh, b, now := f()
		if err := VerifySvix(secret, hh, b, now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: got %v, want ErrSignature", name, err)
		}
	}
	if _, err := SvixKey("sk_test_x"); err == nil {
		t.Error("a non-whsec secret was accepted")
	}
}

func TestSharedSecret(t *testing.T) {
	for _, ok := range []string{"s3cret", "Bearer s3cret", "bearer  s3cret "} {
		if err := VerifySharedSecret("s3cret", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Bearer ", "s3cre", "s3cretx", "Basic s3cret"} {
		if err := VerifySharedSecret("s3cret", bad); !errors.Is(err, ErrSignature) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHexHMACs(t *testing.T) {
	body := []byte(`{"event":"user.created"}`)
	// RFC 2104 style known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
	if got := HexHMAC(false, "key", []byte("The quick brown fox jumps over the lazy dog")); got != "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Fatalf("HMAC-SHA256 = %s", got)
	}
	if got := HexHMAC(true, "key", []byte("The quick brown fox jumps over the lazy dog")); got != "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9" {
		t.Fatalf("HMAC-SHA1 = %s", got)
	}
	sig := HexHMAC(false, "k", body)
	if err := VerifyBetterAuth("k", sig, body); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBetterAuth("k", strings.ToUpper(sig), body); err != nil {
		t.Fatalf("upper-case hex: %v", err)
	}
	for _, bad := range []string{"", "zz", sig[:10], HexHMAC(true, "k", body)} {
		if err := VerifyBetterAuth("k", bad, body); !errors.Is(err, ErrSignature) {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := VerifyVercel("k", HexHMAC(true, "k", body), body); err != nil {
		t.Fatal(err)
	}
	if err := VerifyVercel("k", HexHMAC(true, "k", body), append(body, ' ')); !errors.Is(err, ErrSignature) {
		t.Fatal("altered body accepted")
	}
}

func TestNetlifyJWS(t *testing.T) {
	body := []byte(`{"id":"dep1","branch":"feature/x","context":"branch-deploy"}`)
	sig := SignNetlify("hooksecret", body)
	if err := VerifyNetlify("hooksecret", sig, body); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][2]string{
		"wrong secret": {"other", sig}, "missing": {"hooksecret", ""}, "garbage": {"hooksecret", "a.b.c"},
	} {
		if err := VerifyNetlify(c[0], c[1], body); !errors.Is(err, ErrSignature) {
			t.Errorf("%s accepted", name)
		}
	}
	if err := VerifyNetlify("hooksecret", sig, append(body, ' ')); !errors.Is(err, ErrSignature) {
		t.Error("altered body accepted")
	}
}
