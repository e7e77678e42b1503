// Package mcpserver is `capydb mcp`: a Model Context Protocol server (the
// official go-sdk) whose tools call the CapyDB /v1 API through pkg/capydb
// with the API key it was given, so an agent can do exactly what that key
// allows and nothing more. API errors come back as tool errors, never as
// protocol errors or crashes.
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/capydb/capydb/pkg/capydb"
)

// Waits are bounded so a tool call always answers: create_project polls for
// up to 5 minutes (PRODUCT.md §23.4), and capydb_wait_job at most as long.
const (
	maxWait     = 5 * time.Minute
	defaultWait = 2 * time.Minute
)

// Options tune New.
type Options struct {
	// LoginPending, when set and answering non-empty, is the message a tool
	// error carries on a 401 (e.g. the device-login URL still to approve).
	LoginPending func() string
}

// New returns the MCP server with every capydb_ tool registered on c.
func New(c *capydb.Client, version string, opts ...Options) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "capydb", Title: "CapyDB", Version: version}, &mcp.ServerOptions{
		Instructions: "Tools for CapyDB, managed PostgreSQL: projects (one database each), preview databases " +
			"(short-lived copies for testing), SQL, schema, backups, jobs, metrics and logs. " +
			"Use previews to try changes; restores only ever go into a preview. " +
			"Every call acts with the configured API key and its scopes.",
	})
	t := &tools{c: c}
	for _, o := range opts {
		if o.LoginPending != nil {
			t.loginPending = o.LoginPending
		}
	}
	t.addProjectTools(s)
	t.addPreviewTools(s)
	t.addDataTools(s)
	return s
}

// ServeStdio runs the server on stdin/stdout until the client disconnects.
func ServeStdio(ctx context.Context, s *mcp.Server) error {
	return s.Run(ctx, &mcp.StdioTransport{})
}

// Handler serves the Streamable HTTP transport.
func Handler(s *mcp.Server) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// CheckLoopback refuses listen addresses that are not on a loopback
// interface: the server acts with its key for whoever reaches it.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: the MCP server listens on loopback only (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

type tools struct {
	c            *capydb.Client
	loginPending func() string
}

// bytesResponse is every generated response (client-response-bytes-function).
type bytesResponse interface{ Bytes() []byte }

// reply turns an API answer into the tool's result: the response JSON as
// structured content, or a tool error a model can act on.
func (t *tools) reply(r bytesResponse, err error) (*mcp.CallToolResult, any, error) {
	if err != nil {
		return nil, nil, t.toolError(err)
	}
	return nil, json.RawMessage(r.Bytes()), nil
}

// toolError explains an API error in words that say what to do next.
func (t *tools) toolError(err error) error {
	var re *capydb.ResponseError
	if !errors.As(err, &re) {
		var jf *capydb.JobFailedError
		if errors.As(err, &jf) {
			return jf
		}
		return fmt.Errorf("could not reach the CapyDB API: %v", err)
	}
	msg := re.Message
	switch {
	case strings.Contains(msg, "subscription is required") || strings.Contains(msg, "organization billing is"):
		return fmt.Errorf("no active plan: %s", msg)
	case re.StatusCode == 401 && t.loginPending != nil && t.loginPending() != "":
		return errors.New(t.loginPending())
	case re.StatusCode == 401:
		return fmt.Errorf("the CapyDB API key is invalid, revoked or expired (401: %s); set CAPYDB_API_KEY or run `capydb login`", msg)
	case re.StatusCode == 403:
		return fmt.Errorf("the CapyDB API key may not do this (403: %s); use a key with the needed scope", msg)
	case re.StatusCode == 404:
		return fmt.Errorf("not found (404: %s); list the resources to find a valid id", msg)
	case re.StatusCode == 428:
		return fmt.Errorf("an approval token is required (428: %s); ask a person to approve this in CapyDB", msg)
	}
	return fmt.Errorf("CapyDB API answered %d: %s", re.StatusCode, msg)
}

// waitFor waits for a 202's job (bounded) and returns the job's JSON next to
// what the mutation answered.
func (t *tools) waitFor(ctx context.Context, accepted []byte, seconds int) (*mcp.CallToolResult, any, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(accepted, &body); err != nil {
		return nil, nil, fmt.Errorf("unexpected answer: %s", accepted)
	}
	var job struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body["job"], &job)
	if job.ID == "" {
		return nil, json.RawMessage(accepted), nil
	}
	d := defaultWait
	if seconds > 0 {
		d = min(time.Duration(seconds)*time.Second, maxWait)
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done, err := t.c.WaitJob(wctx, job.ID)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// Still running: say so and hand back the job id to wait on.
		body["note"], _ = json.Marshal(fmt.Sprintf("job %s is still running after %s; call capydb_wait_job with job_id %q", job.ID, d, job.ID))
		out, _ := json.Marshal(body)
		return nil, json.RawMessage(out), nil
	}
	if err != nil {
		return nil, nil, t.toolError(err)
	}
	body["job"], _ = json.Marshal(done)
	out, _ := json.Marshal(body)
	return nil, json.RawMessage(out), nil
}

func ptr[T any](v T) *T { return &v }

// optional is nil for the zero value, so absent arguments stay absent.
func optional[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

var (
	yes = ptr(true)
	no  = ptr(false)
)

// Annotations for the three kinds of tool.
func readOnly(title string) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, ReadOnlyHint: true, OpenWorldHint: no}
}

func additive(title string, idempotent bool) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, DestructiveHint: no, IdempotentHint: idempotent, OpenWorldHint: no}
}

func destructive(title string) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, DestructiveHint: yes, OpenWorldHint: no}
}

// jobRef is a 202-shaped body naming only a job, for capydb_wait_job.
func jobRef(id string) []byte {
	b, _ := json.Marshal(map[string]any{"job": map[string]string{"id": id}})
	return b
}
