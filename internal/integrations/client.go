package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Default base URLs of the providers' APIs (the server's --clerk-api-url,
// --vercel-api-url and --netlify-api-url replace them).
const (
	DefaultClerkURL   = "https://api.clerk.com"
	DefaultVercelURL  = "https://api.vercel.com"
	DefaultNetlifyURL = "https://api.netlify.com"
)

// Endpoints are the base URLs of the providers' APIs.
type Endpoints struct {
	Clerk, Vercel, Netlify string
	// HTTP is the client of every call (nil: 20-second timeout).
	HTTP *http.Client
}

func (e Endpoints) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return &http.Client{Timeout: 20 * time.Second}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return strings.TrimRight(v, "/")
}

// APIError is a provider's non-2xx answer. Its message is the provider's
// own error text, never anything we sent (no token, no URL with a password).
type APIError struct {
	Provider string
	Status   int
	Message  string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s answered %d: %s", e.Provider, e.Status, msg)
}

// Rejected reports whether the provider refused the credential or the
// named resource (a caller's mistake, not worth a retry).
func (e *APIError) Rejected() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusNotFound ||
		e.Status == http.StatusBadRequest
}

// call sends one JSON request with a bearer token and decodes a JSON answer into out.
func call(ctx context.Context, hc *http.Client, provider, method, u, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "capydb-integrations/1.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		// url.Error names the URL: ours carry no secrets (tokens travel in headers).
		return fmt.Errorf("while calling %s: %w", provider, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("while reading %s's answer: %w", provider, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Provider: provider, Status: resp.StatusCode, Message: errorMessage(raw)}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s answered something that is not the documented JSON: %w", provider, err)
	}
	return nil
}

// errorMessage picks the message out of the error bodies the three APIs
// document: Vercel {"error":{"message"}}, Netlify {"message"}, Clerk
// {"errors":[{"message","long_message"}]}.
func errorMessage(raw []byte) string {
	var e struct {
		Message string `json:"message"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
		Errors []struct {
			Message     string `json:"message"`
			LongMessage string `json:"long_message"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ""
	}
	msg := e.Message
	switch {
	case e.Error.Message != "":
		msg = e.Error.Message
	case len(e.Errors) > 0 && e.Errors[0].LongMessage != "":
		msg = e.Errors[0].LongMessage
	case len(e.Errors) > 0:
		msg = e.Errors[0].Message
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

func withQuery(u string, q url.Values) string {
	if len(q) == 0 {
		return u
	}
	return u + "?" + q.Encode()
}
