package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// GET /v1/ca.pem answers the PEM as is, 404 when there is none to hand
// out, 503 when it cannot be read; always without a credential.
func TestCACertRoute(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	for _, c := range []struct {
		name        string
		ca          func() ([]byte, error)
		status      int
		contentType string
		body        string
	}{
		{"generated CA", func() ([]byte, error) { return []byte(pem), nil }, 200, "application/x-pem-file", pem},
		{"operator certificate without --tls-ca", func() ([]byte, error) { return nil, nil }, 404, "application/json; charset=utf-8", ""},
		{"no embedded cluster", nil, 404, "application/json; charset=utf-8", ""},
		{"unreadable", func() ([]byte, error) { return nil, errors.New("permission denied") }, 503, "application/json; charset=utf-8", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(Deps{CACert: c.ca, Log: slog.New(slog.DiscardHandler)})
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/ca.pem", nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != c.status || rec.Header().Get("Content-Type") != c.contentType {
				t.Fatalf("%d %q: %s", rec.Code, rec.Header().Get("Content-Type"), body)
			}
			if c.status == 200 {
				if string(body) != c.body {
					t.Fatalf("body %q", body)
				}
				return
			}
			if c.status == 503 && rec.Header().Get("Retry-After") != "2" {
				t.Fatalf("503 without Retry-After: %q", rec.Header().Get("Retry-After"))
			}
			var e struct{ Error string }
			if json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("error body %q", body)
			}
		})
	}
}
