// Package fleet tests a control plane and a `capydb node` as separate hosts
// (network namespaces on one machine): placement, URLs, TLS across hosts,
// cordon and the node credential's confinement. It needs root.
package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "capydb-fleet-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "capydb")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/capydb")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building capydb failed:", err)
		os.Exit(1)
	}
	// The binary runs as root inside the namespaces and starts postgres as
	// the postgres user, which must reach it.
	_ = os.Chmod(dir, 0o755)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a capydb process in a namespace; its output is kept for failures.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.logs.String()
	return s[max(0, len(s)-6000):]
}

// start runs capydb args in host's namespace and waits for a stdout line
// starting with marker; it returns that line's rest.
func start(t *testing.T, h *hosts, host, marker string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{cmd: h.command(host, binary, args...), done: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if rest, ok := strings.CutPrefix(line, marker); ok {
				select {
				case found <- strings.TrimSpace(rest):
				default:
				}
			}
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %s output:\n%s", host, args[0], p.output())
		}
	})
	select {
	case v := <-found:
		return p, v
	case <-p.done:
		t.Fatalf("capydb %s on %s exited during start:\n%s", args[0], host, p.output())
	case <-time.After(120 * time.Second):
		t.Fatalf("capydb %s on %s did not start in time:\n%s", args[0], host, p.output())
	}
	return nil, ""
}

// api is the control plane's HTTP API as the bootstrap admin key sees it.
type api struct {
	t   *testing.T
	url string
	key string
}

func (a *api) call(method, path string, body any) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	} else {
		out["raw"] = string(raw)
	}
	return resp.StatusCode, out
}

func (a *api) must(status int, method, path string, body any) map[string]any {
	a.t.Helper()
	got, out := a.call(method, path, body)
	if got != status {
		a.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, out)
	}
	return out
}

func field(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, _ := cur.(map[string]any)
		cur = mm[p]
	}
	return cur
}

func str(m map[string]any, path ...string) string {
	s, _ := field(m, path...).(string)
	return s
}

// waitJob waits for a job to finish and fails unless it completed.
func (a *api) waitJob(id string) {
	a.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		j := a.must(200, "GET", "/v1/jobs/"+id, nil)
		switch str(j, "job", "state") {
		case "completed":
			return
		case "failed":
			a.t.Fatalf("job %s failed: %v", id, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.t.Fatalf("job %s did not finish in time", id)
}

// clusters returns GET /v1/clusters by name.
func (a *api) clusters() map[string]map[string]any {
	a.t.Helper()
	out := map[string]map[string]any{}
	for _, c := range field(a.must(200, "GET", "/v1/clusters", nil), "clusters").([]any) {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// psql runs one query with psql in host's namespace (a separate client
// host) and returns its unaligned output.
func psql(t *testing.T, h *hosts, host, url, sql string) string {
	t.Helper()
	out, err := h.command(host, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url).CombinedOutput()
	if err != nil {
		t.Fatalf("psql on %s to %s: %v: %s", host, redact(url), err, out)
	}
	return strings.TrimSpace(string(out))
}

func redact(url string) string {
	if i := strings.Index(url, "@"); i > 0 {
		if j := strings.LastIndex(url[:i], ":"); j > 0 {
			return url[:j+1] + "***" + url[i:]
		}
	}
	return url
}

func connectNode(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting with the node's credential: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// startControlPlane runs capydb server (with its embedded cluster) on host
// "cp" and returns its API as the bootstrap admin key sees it.
func startControlPlane(t *testing.T, h *hosts, cpDir string, common []string) *api {
	t.Helper()
	_, apiURL := start(t, h, "cp", "API:", append([]string{"server", "--data-dir", cpDir,
		"--listen", h.addr["cp"] + ":8080", "--public-host", h.addr["cp"], "--pitr=false", "--rate-limit-api", "off"}, common...)...)
	key, err := os.ReadFile(filepath.Join(cpDir, "bootstrap-admin-key"))
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, url: apiURL, key: strings.TrimSpace(string(key))}
}
