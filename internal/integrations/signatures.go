// Package integrations speaks to third-party platforms: it verifies the
// signatures of their inbound webhooks (Clerk via Svix, Auth0, Better Auth,
// Vercel, Netlify) and calls their HTTP APIs (Clerk users, Vercel and
// Netlify environment variables and hooks) through clients whose base URL
// is configurable, so tests point them at the stand-ins of integrationstest.
package integrations

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Vercel signs webhooks with HMAC-SHA1
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrSignature is a missing, malformed, wrong or replayed signature: the
// receivers answer 401 and write nothing.
var ErrSignature = errors.New("invalid webhook signature")

func sigErr(msg string) error { return fmt.Errorf("%w: %s", ErrSignature, msg) }

// SvixTolerance is how far a Svix timestamp may be from now (either way).
const SvixTolerance = 5 * time.Minute

// SvixHeaders are the three headers Svix (Clerk's webhook sender) sends.
type SvixHeaders struct {
	ID, Timestamp, Signature string
}

// SvixKey decodes a whsec_ secret into its HMAC key; an error means the
// secret is not a Svix signing secret.
func SvixKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok || b64 == "" {
		return nil, errors.New("a Svix signing secret starts with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("the part of the signing secret after whsec_ is not base64")
	}
	return key, nil
}

// SignSvix returns the v1 signature of body (the scheme of VerifySvix).
func SignSvix(key []byte, id, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifySvix checks a Svix-signed delivery (docs.svix.com, "Verifying
// webhooks manually"): the signed content is "<svix-id>.<svix-timestamp>.<body>",
// HMAC-SHA256 keyed with the base64-decoded part of the whsec_ secret; the
// svix-signature header holds space-separated "v1,<base64>" entries, any of
// which may match; the timestamp must be within SvixTolerance of now.
func VerifySvix(secret string, h SvixHeaders, body []byte, now time.Time) error {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return sigErr("svix-id, svix-timestamp and svix-signature are required")
	}
	key, err := SvixKey(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return sigErr("svix-timestamp is not a number")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > SvixTolerance || d < -SvixTolerance {
		return sigErr("svix-timestamp is outside the 5-minute tolerance")
	}
	want := SignSvix(key, h.ID, h.Timestamp, body)
	for _, sig := range strings.Fields(h.Signature) {
		if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			return nil
		}
	}
	return sigErr("no svix-signature matches")
}

// VerifySharedSecret checks Auth0's Authorization header: the shared secret
// itself, with or without a "Bearer " prefix, compared in constant time.
func VerifySharedSecret(secret, authorization string) error {
	got := strings.TrimSpace(authorization)
	if len(got) > 7 && strings.EqualFold(got[:7], "bearer ") {
		got = strings.TrimSpace(got[7:])
	}
	if got == "" {
		return sigErr("Authorization is required")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return sigErr("Authorization does not match the shared secret")
	}
	return nil
}

// HexHMAC is the lower-case hex HMAC of body with secret (SHA-256, or SHA-1 for Vercel).
func HexHMAC(sha1Hash bool, secret string, body []byte) string {
	h := sha256.New
	if sha1Hash {
		h = sha1.New
	}
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func verifyHex(sha1Hash bool, secret, header string, body []byte, name string) error {
	got, err := hex.DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) == 0 {
		return sigErr(name + " is missing or not hex")
	}
	want, _ := hex.DecodeString(HexHMAC(sha1Hash, secret, body))
	if !hmac.Equal(got, want) {
		return sigErr(name + " does not match")
	}
	return nil
}

// VerifyBetterAuth checks X-Better-Auth-Signature: the hex HMAC-SHA256 of
// the raw body with the shared secret.
func VerifyBetterAuth(secret, header string, body []byte) error {
	return verifyHex(false, secret, header, body, "X-Better-Auth-Signature")
}

// VerifyVercel checks x-vercel-signature: the hex HMAC-SHA1 of the raw body
// with the webhook's secret (vercel.com/docs/webhooks, "Securing webhooks").
func VerifyVercel(secret, header string, body []byte) error {
	return verifyHex(true, secret, header, body, "x-vercel-signature")
}

// VerifyNetlify checks X-Webhook-Signature (docs.netlify.com, "Deploy
// notifications", JWS secret token): an HS256 JWS signed with the hook's
// secret whose sha256 claim is the hex SHA-256 of the body and whose iss is
// netlify.
func VerifyNetlify(secret, header string, body []byte) error {
	if header == "" {
		return sigErr("X-Webhook-Signature is required")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(header, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("netlify"))
	if err != nil {
		return sigErr("X-Webhook-Signature is not a valid JWS: " + err.Error())
	}
	sum := sha256.Sum256(body)
	got, _ := claims["sha256"].(string)
	if subtle.ConstantTimeCompare([]byte(got), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return sigErr("the sha256 claim does not match the body")
	}
	return nil
}

// SignNetlify makes the X-Webhook-Signature of body (the stand-ins and tests).
func SignNetlify(secret string, body []byte) string {
	sum := sha256.Sum256(body)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "netlify", "sha256": hex.EncodeToString(sum[:])})
	s, _ := t.SignedString([]byte(secret))
	return s
}
