package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuer is a local OIDC issuer: it serves a JWKS (whose keys the test can
// rotate) and signs tokens.
type issuer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	fetches atomic.Int32
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newIssuer(t *testing.T) *issuer {
	is := &issuer{t: t}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys"})
		case "/keys":
			is.fetches.Add(1)
			is.mu.Lock()
			defer is.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": is.keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) publish(jwks ...map[string]any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append(is.keys, jwks...)
}

func rsaJWK(t *testing.T, kid string) (*rsa.PrivateKey, map[string]any) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string) (*ecdsa.PrivateKey, map[string]any) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	return k, map[string]any{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
		"x": b64(pad(k.X.Bytes())), "y": b64(pad(k.Y.Bytes()))}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDCVerify(t *testing.T) {
	is := newIssuer(t)
	rk, rj := rsaJWK(t, "rsa-1")
	ek, ej := ecJWK(t, "ec-1")
	is.publish(rj, ej)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const iss, aud = "https://clerk.example.test", "capydb"
	o, err := NewOIDC(ctx, OIDCConfig{Issuer: iss, JWKSURL: is.srv.URL + "/keys", Audience: aud, RefreshUnknownKID: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "aud": aud, "sub": "user_1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"org_id": "org_clerk_1", "org_role": "org:admin", "org_slug": "acme"}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}

	// RS256 with the flat claim form.
	c, err := o.Verify(ctx, sign(t, jwt.SigningMethodRS256, rk, "rsa-1", base()))
	if err != nil || c.Subject != "user_1" || c.OrgID != "org_clerk_1" || c.OrgSlug != "acme" || !c.IsAdmin() {
		t.Fatalf("RS256 flat claims: %+v %v", c, err)
	}
	// ES256 with the compact o: {id, rol, slg} form, a member.
	compact := with("org_id", nil)
	delete(compact, "org_role")
	delete(compact, "org_slug")
	compact["o"] = map[string]any{"id": "org_clerk_2", "rol": "member", "slg": "beta"}
	c, err = o.Verify(ctx, sign(t, jwt.SigningMethodES256, ek, "ec-1", compact))
	if err != nil || c.OrgID != "org_clerk_2" || c.OrgRole != "member" || c.OrgSlug != "beta" || c.IsAdmin() {
		t.Fatalf("ES256 compact claims: %+v %v", c, err)
	}
	// Compact admin role is "admin" without the org: prefix.
	compact["o"] = map[string]any{"id": "org_clerk_2", "rol": "admin"}
	if c, err = o.Verify(ctx, sign(t, jwt.SigningMethodES256, ek, "ec-1", compact)); err != nil || !c.IsAdmin() {
		t.Fatalf("compact admin: %+v %v", c, err)
	}
	// 30 seconds past exp is within the 60 s clock skew.
	if _, err := o.Verify(ctx, sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("exp", now.Add(-30*time.Second).Unix()))); err != nil {
		t.Fatalf("token within clock skew refused: %v", err)
	}
	// A token without an organization verifies; the authenticator refuses it (403).
	noOrg := with("org_id", nil)
	if c, err := o.Verify(ctx, sign(t, jwt.SigningMethodRS256, rk, "rsa-1", noOrg)); err != nil || c.OrgID != "" {
		t.Fatalf("token without organization: %+v %v", c, err)
	}

	otherRSA, _ := rsaJWK(t, "rsa-1")
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, base())
	hs.Header["kid"] = "rsa-1"
	hsToken, _ := hs.SignedString([]byte("shared-secret"))
	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, base()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	good := sign(t, jwt.SigningMethodRS256, rk, "rsa-1", base())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64([]byte(`{"iss":"`+iss+`","aud":"`+aud+`","sub":"attacker","exp":9999999999,"org_id":"org_clerk_1","org_role":"org:admin"}`)) + "." + parts[2]

	for name, c := range map[string]struct {
		token, want string
	}{
		"wrong issuer":       {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("iss", "https://evil.example.test")), "wrong issuer"},
		"wrong audience":     {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("aud", "someone-else")), "wrong audience"},
		"no audience":        {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("aud", nil)), "missing a required claim"},
		"expired":            {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("exp", now.Add(-2*time.Minute).Unix())), "expired"},
		"no exp":             {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("exp", nil)), "missing a required claim"},
		"not yet valid":      {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("nbf", now.Add(5*time.Minute).Unix())), "not valid yet"},
		"issued in future":   {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("iat", now.Add(5*time.Minute).Unix())), "issued in the future"},
		"bad signature":      {sign(t, jwt.SigningMethodRS256, otherRSA, "rsa-1", base()), "signature is invalid"},
		"tampered payload":   {tampered, "signature is invalid"},
		"unknown kid":        {sign(t, jwt.SigningMethodRS256, rk, "rsa-unknown", base()), "unknown key"},
		"HS256 (alg swap)":   {hsToken, "invalid"},
		"alg none":           {noneToken, "invalid"},
		"no subject":         {sign(t, jwt.SigningMethodRS256, rk, "rsa-1", with("sub", nil)), "no subject"},
		"garbage":            {"aaa.bbb.ccc", "malformed"},
		"ES256 key, RS kid":  {sign(t, jwt.SigningMethodES256, ek, "rsa-1", base()), "unknown key"},
		"RS256 key, EC kid ": {sign(t, jwt.SigningMethodRS256, rk, "ec-1", base()), "unknown key"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := o.Verify(ctx, c.token)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to mention %q", err, c.want)
			}
		})
	}
	// The key set is cached: all of the above needed one fetch (plus the one
	// refresh an unknown kid is allowed).
	if n := is.fetches.Load(); n > 2 {
		t.Fatalf("JWKS fetched %d times; it must be cached", n)
	}
}

// TestOIDCKeyRotation: a token signed with a key published after start is
// accepted (the unknown kid triggers one refresh); further unknown kids do
// not wait for the refresh limiter.
func TestOIDCKeyRotation(t *testing.T) {
	is := newIssuer(t)
	k1, j1 := rsaJWK(t, "k1")
	is.publish(j1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Discovery: no JWKS URL given, so it comes from the issuer's document.
	o, err := NewOIDC(ctx, OIDCConfig{Issuer: is.srv.URL, RefreshUnknownKID: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if o.JWKSURL() != is.srv.URL+"/keys" {
		t.Fatalf("discovered JWKS %q", o.JWKSURL())
	}
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": is.srv.URL, "sub": "u", "exp": time.Now().Add(time.Minute).Unix(), "org_id": "o"}
	}
	if _, err := o.Verify(ctx, sign(t, jwt.SigningMethodRS256, k1, "k1", claims())); err != nil {
		t.Fatal(err)
	}
	k2, j2 := ecJWK(t, "k2")
	is.publish(j2)
	if _, err := o.Verify(ctx, sign(t, jwt.SigningMethodES256, k2, "k2", claims())); err != nil {
		t.Fatalf("rotated key refused: %v", err)
	}
	start := time.Now()
	if _, err := o.Verify(ctx, sign(t, jwt.SigningMethodES256, k2, "k3", claims())); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("an unknown kid blocked for %s", d)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{"a.b.c": true, "a.b.": true, "a..c": false, "a.b": false, "capy_live_x": false, "a.b.c.d": false} {
		if LooksLikeJWT(s) != want {
			t.Errorf("LooksLikeJWT(%q) = %v", s, !want)
		}
	}
}
