// Package apiclient is the typed HTTP client of the CapyDB API used by the
// capydb CLI. It talks only HTTP (API.md) and implements the client side of
// the wire contract: bearer auth, the User-Agent, per-request timeouts, GET
// retries, and {"error": "..."} bodies turned into typed errors.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// DefaultTimeout is the per-request timeout unless CAPYDB_HTTP_TIMEOUT says otherwise.
const DefaultTimeout = 30 * time.Second

// DefaultDelays are the waits before each GET attempt: three attempts in all,
// waiting 0 s, 1 s and 3 s (API.md §1.9).
var DefaultDelays = []time.Duration{0, time.Second, 3 * time.Second}

// Client calls one CapyDB server.
type Client struct {
	// BaseURL is the API base without a trailing slash; request paths
	// (always /v1/... or /status) are appended to it.
	BaseURL string
	// APIKey is sent as a bearer token when not empty.
	APIKey    string
	UserAgent string
	HTTP      *http.Client
	// Delays are the waits before each GET attempt; len(Delays) is the
	// number of attempts. Other methods are sent exactly once.
	Delays []time.Duration
	// Sleep waits between attempts (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client for baseURL. version is the CLI's build version; its
// first word goes into the User-Agent (capydb-cli/<version>).
func New(baseURL, apiKey, version string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{
		BaseURL:   strings.TrimRight(baseURL, "/"),
		APIKey:    apiKey,
		UserAgent: UserAgent(version),
		HTTP:      &http.Client{Timeout: timeout},
		Delays:    DefaultDelays,
		Sleep:     bgsvc.Sleep,
	}
}

// UserAgent is capydb-cli/<first word of version>, or capydb-cli/dev.
func UserAgent(version string) string {
	v := "dev"
	if f := strings.Fields(version); len(f) > 0 {
		v = f[0]
	}
	return "capydb-cli/" + v
}

// Error is an answer from the server with a non-2xx status.
type Error struct {
	Status  int
	Message string
	// Server is the base URL that answered, so a message can name it.
	Server string
}

func (e *Error) Error() string { return e.Message }

// ServerOf returns the base URL of the server an API or network error in
// err's chain came from, or "".
func ServerOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Server
	}
	var ne *NetworkError
	if errors.As(err, &ne) {
		return ne.Base
	}
	return ""
}

// StatusOf returns the HTTP status of an API error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// NetworkError is a request that never got an HTTP answer (or whose answer
// could not be read), after any retries.
type NetworkError struct {
	Base string
	Err  error
}

func (e *NetworkError) Error() string {
	var ue *url.Error
	msg := e.Err.Error()
	if errors.As(e.Err, &ue) {
		msg = ue.Err.Error()
	}
	var ne net.Error
	if errors.As(e.Err, &ne) && ne.Timeout() {
		msg = "request timed out (raise CAPYDB_HTTP_TIMEOUT for slow links)"
	}
	return fmt.Sprintf("cannot reach %s: %s", e.Base, msg)
}

func (e *NetworkError) Unwrap() error { return e.Err }

// Request is one API call.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	// Body is JSON-encoded when not nil; nil sends no body at all.
	Body   any
	Header map[string]string
	// NoAuth sends no Authorization even when a key is configured
	// (device-login start and poll).
	NoAuth bool
}

// Response is what a call returned besides its decoded body.
type Response struct {
	Status int
	Header http.Header
}

// Do sends req and decodes a 2xx JSON answer into out (when out is not nil).
// GET requests are retried on network errors, body read errors and 5xx.
func (c *Client) Do(ctx context.Context, req Request, out any) (*Response, error) {
	var payload []byte
	if req.Body != nil {
		b, err := json.Marshal(req.Body)
		if err != nil {
			return nil, fmt.Errorf("while encoding the request: %w", err)
		}
		payload = b
	}
	attempts := 1
	delays := []time.Duration{0}
	if req.Method == http.MethodGet && len(c.Delays) > 0 {
		attempts, delays = len(c.Delays), c.Delays
	}
	sleep := c.Sleep
	if sleep == nil {
		sleep = bgsvc.Sleep
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		if err := sleep(ctx, delays[i]); err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, err
		}
		resp, body, err := c.once(ctx, req, payload)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = &NetworkError{Base: c.BaseURL, Err: err}
			continue
		}
		meta := &Response{Status: resp.StatusCode, Header: resp.Header}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out != nil && len(bytes.TrimSpace(body)) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return meta, fmt.Errorf("unexpected answer from %s %s: %v", req.Method, req.Path, err)
				}
			}
			return meta, nil
		}
		ae := apiError(resp.StatusCode, body)
		ae.Server = c.BaseURL
		lastErr = ae
		if resp.StatusCode < 500 {
			return meta, lastErr
		}
	}
	return nil, lastErr
}

func (c *Client) once(ctx context.Context, req Request, payload []byte) (*http.Response, []byte, error) {
	u := c.BaseURL + req.Path
	if len(req.Query) > 0 {
		u += "?" + req.Query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.UserAgent)
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.APIKey != "" && !req.NoAuth {
		hr.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("while reading the answer: %w", err)
	}
	return resp, body, nil
}

// apiError turns an error answer into *Error: the server's message, or
// "HTTP <status>: <first 500 characters>" for a body that is not ours.
func apiError(status int, body []byte) *Error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &Error{Status: status, Message: e.Error}
	}
	text := strings.TrimSpace(string(body))
	if r := []rune(text); len(r) > 500 {
		text = string(r[:500])
	}
	if text == "" {
		text = http.StatusText(status)
	}
	return &Error{Status: status, Message: fmt.Sprintf("HTTP %d: %s", status, text)}
}

// get is a GET decoded into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path, Query: q}, out)
	return err
}

// send is a non-GET call with an optional body.
func (c *Client) send(ctx context.Context, method, path string, body, out any) error {
	_, err := c.Do(ctx, Request{Method: method, Path: path, Body: body}, out)
	return err
}

// seg escapes one path segment (ids are URL-safe, but a typo must not
// change the route).
func seg(s string) string { return url.PathEscape(s) }
