// Package e2e drives a real `capydb server` process (embedded Postgres and
// pgBouncer included) through its HTTP API, the way a user with curl and psql
// would, and checks the results on the database itself.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/netnstest"
	"github.com/jackc/pgx/v5"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "capydb-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "capydb")
	build := exec.Command("go", "build", "-o", binary, "../cmd/capydb")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building capydb failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Every test starts its own server (own data dir, cluster, ports, and HOME
// for the CLI), shares nothing else, and so runs with t.Parallel.

// server is a running capydb server process.
type server struct {
	t          testing.TB
	cmd        *exec.Cmd
	dataDir    string
	url        string
	key        string
	directPort int
	pooledPort int
	// sessionPort is the session-mode pgBouncer's, kept per data dir.
	sessionPort int
	logs        *bytes.Buffer
	done        chan struct{}
}

// handedOut holds the ports freePort gave out: tests run in parallel, and
// the kernel may offer a just-closed port again before its server binds it.
var handedOut sync.Map

// sessionPorts remembers the --session-port given to each data dir, so a
// restarted server keeps its session URL.
var sessionPorts sync.Map

func freePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, taken := handedOut.LoadOrStore(port, true); !taken {
			return port
		}
	}
}

// startServer starts capydb on dataDir (fresh temp dir when empty) with
// explicit free ports, and waits for /readyz.
func startServer(t testing.TB, dataDir string, directPort, pooledPort int, extra ...string) *server {
	t.Helper()
	return startServerVia(t, nil, dataDir, directPort, pooledPort, extra...)
}

// startServerOn starts capydb server on host, a separate network namespace:
// its API listens on, and its connection URLs name, the host's address, and
// everything it reaches (the control database, webhook receivers) is across
// the bridge.
func startServerOn(t testing.TB, host *netnstest.Host, extra ...string) *server {
	t.Helper()
	return startServerVia(t, []string{"ip", "netns", "exec", host.NS}, "", 0, 0,
		append([]string{"--listen", host.Addr + ":0", "--public-host", host.Addr}, extra...)...)
}

// startServerVia is startServer with the binary run through wrap (e.g. ip
// netns exec NS, which execs it: signals still reach the server itself).
// Later flags win, so extra can override the defaults.
func startServerVia(t testing.TB, wrap []string, dataDir string, directPort, pooledPort int, extra ...string) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = filepath.Join(t.TempDir(), "data")
	}
	if directPort == 0 {
		directPort, pooledPort = freePort(t), freePort(t)
	}
	sp, _ := sessionPorts.LoadOrStore(dataDir, freePort(t))
	s := &server{t: t, dataDir: dataDir, directPort: directPort, pooledPort: pooledPort, sessionPort: sp.(int),
		logs: &bytes.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary, "server", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--direct-port", fmt.Sprint(directPort), "--pooled-port", fmt.Sprint(pooledPort),
		"--session-port", fmt.Sprint(s.sessionPort),
		"--log-format", "json", "--log-level", "info", "--unsafe-no-fsync",
		// Tests poll jobs fast; access_test.go turns the API bucket back on where it tests it.
		"--rate-limit-api", "off",
		// Integration tests deliver webhooks faster than providers do.
		"--rate-limit-integrations", "off",
		// WAL archiving and base backups only where a test asks for them (--pitr).
		"--pitr=false",
		// One warm database: provisions take the claim path, refills cost little CPU.
		"--warm-pool", "1")
	s.cmd.Args = append(s.cmd.Args, extra...)
	if len(wrap) > 0 {
		s.cmd = exec.Command(wrap[0], append(wrap[1:], s.cmd.Args...)...)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{buf: s.logs}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if u, ok := strings.CutPrefix(line, "API:"); ok {
				urlCh <- strings.TrimSpace(u)
			}
		}
	}()
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	select {
	case s.url = <-urlCh:
	case <-s.done:
		t.Fatalf("capydb server exited during start:\n%s", s.logs.String())
	case <-time.After(90 * time.Second):
		s.kill()
		t.Fatalf("capydb server did not start in time:\n%s", s.logs.String())
	}
	key, err := os.ReadFile(filepath.Join(dataDir, "bootstrap-admin-key"))
	if err != nil {
		t.Fatal(err)
	}
	s.key = strings.TrimSpace(string(key))
	clustertest.Eventually(t, 30*time.Second, "readyz", func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	t.Cleanup(s.stop)
	// A server that died under a failing test explains why in its last lines.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		select {
		case <-s.done:
			logs := s.logs.String()
			t.Logf("capydb server exited on its own; its last output:\n%s", logs[max(0, len(logs)-8000):])
		case <-time.After(2 * time.Second):
		}
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.kill()
	}
}

// kill sends SIGKILL (a crash) and waits for the process to be gone.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

type lockedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// response is a decoded API answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r response) str(path ...string) string {
	v := r.get(path...)
	s, _ := v.(string)
	return s
}

func (r response) get(path ...string) any {
	var cur any = r.Body
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// call sends a request with the given API key ("" = none).
func (s *server) call(method, path, key string, body any) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkAnswer(s.t, method, path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			s.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	return out
}

// must asserts the status and returns the response.
func (s *server) must(status int, method, path string, body any) response {
	s.t.Helper()
	r := s.call(method, path, s.key, body)
	if r.Status != status {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Raw)
	}
	return r
}

// waitJob polls a job until it is terminal and returns it.
func (s *server) waitJob(id string) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := s.must(200, "GET", "/v1/jobs/"+id, nil)
		job := r.get("job").(map[string]any)
		if st := job["state"]; st == "completed" || st == "failed" {
			return job
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("job %s did not finish in time", id)
	return nil
}

// createProject creates a project and waits for it to be ready.
func (s *server) createProject(body map[string]any) (project map[string]any) {
	s.t.Helper()
	r := s.must(202, "POST", "/v1/projects", body)
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" {
		s.t.Fatalf("provisioning failed: %v", job)
	}
	return s.must(200, "GET", "/v1/projects/"+r.str("project", "id"), nil).get("project").(map[string]any)
}

// adminDSN is the embedded cluster's superuser login for database db on
// port (the direct port, or the --read-replica standby's).
func (s *server) adminDSN(port int, db string) string {
	s.t.Helper()
	pw, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		s.t.Fatal(err)
	}
	return fmt.Sprintf("postgres://capydb_admin:%s@127.0.0.1:%d/%s?sslmode=require", strings.TrimSpace(string(pw)), port, db)
}

// admin connects to a database of the embedded cluster as its superuser.
func (s *server) admin(db string) *pgx.Conn {
	s.t.Helper()
	conn, err := pgx.Connect(context.Background(), s.adminDSN(s.directPort, db))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// connect opens a session on a URL we handed out; pooled URLs need the
// simple protocol (transaction pooling).
func connect(url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// query runs a one-value query on a URL.
func query[T any](t testing.TB, url, sql string) T {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(url), err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s on %s: %v", sql, redact(url), err)
	}
	return v
}

func redact(url string) string {
	if at := strings.Index(url, "@"); at > 0 {
		if c := strings.LastIndex(url[:at], ":"); c > 0 {
			return url[:c+1] + "***" + url[at:]
		}
	}
	return url
}

func (s *server) rawPost(path, contentType, body string) int {
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s *server) rawGet(path, header, value string) int {
	req, _ := http.NewRequest("GET", s.url+path, nil)
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// rawGet2 sends two different keys in Authorization and X-API-Key.
func (s *server) rawGet2(path, bearer, xkey string) int {
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("X-API-Key", xkey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
