package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/ids"
)

// Header names and values of a delivery.
const (
	HeaderEvent     = "X-CapyDB-Event"
	HeaderDelivery  = "X-CapyDB-Delivery"
	HeaderSignature = "X-CapyDB-Signature"
	UserAgent       = "capydb-webhooks/1.0"
	SecretPrefix    = "whsec_"
)

// NewSecret returns a fresh signing secret: whsec_ and 32 base62 characters.
func NewSecret() string { return SecretPrefix + ids.RandomBase62(32) }

// Sign returns the X-CapyDB-Signature value for body signed at t: the hex
// HMAC-SHA256 of "<t>.<body>" keyed with the whole secret string.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verification errors.
var (
	ErrBadSignatureHeader = errors.New("malformed signature header")
	ErrSignatureMismatch  = errors.New("signature does not match")
	ErrTimestampTolerance = errors.New("signature timestamp outside the tolerance")
)

// Verify checks a signature header the way a receiver should (docs/webhooks.md):
// t within tolerance of now, and some v1 equal, in constant time, to the
// HMAC of "<t>.<body>".
func Verify(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignatureHeader
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampTolerance
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
