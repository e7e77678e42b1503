package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a `capydb server` subprocess on a throwaway data dir.
type Server struct {
	Bin        string
	Root       string // temp dir; removed by Stop
	DataDir    string // Root/data
	URL        string
	Key        string
	DirectPort int
	PooledPort int
	LogPath    string
	// KeepLog copies the server log next to the temp dir when it is removed.
	KeepLog bool

	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	logFile *os.File
	once    sync.Once
	extra   []string // more server flags
}

// serverLogLevel is the servers' --log-level (-server-log-level).
var serverLogLevel = "warn"

// freePorts reserves n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// StartServer launches bin with a fresh data dir under base and waits until
// /readyz answers 200. A port taken between picking and binding is retried.
func StartServer(ctx context.Context, bin, base, label string, extra ...string) (*Server, error) {
	for attempt := 1; ; attempt++ {
		s, err := startServerOnce(ctx, bin, base, label, extra)
		if err == nil || attempt == 3 || ctx.Err() != nil ||
			!(strings.Contains(err.Error(), "in use") || strings.Contains(err.Error(), "could not bind")) {
			return s, err
		}
		fmt.Fprintf(os.Stderr, "capybench: a port was taken while the server started; retrying (%v)\n", firstLine(err.Error()))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func startServerOnce(ctx context.Context, bin, base, label string, extra []string) (*Server, error) {
	root, err := os.MkdirTemp(base, "capybench-"+label+"-")
	if err != nil {
		return nil, fmt.Errorf("while creating the server temp dir: %w", err)
	}
	// As root the cluster runs as the postgres user, which must traverse it.
	if err := os.Chmod(root, 0o711); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	s := &Server{Bin: bin, Root: root, DataDir: filepath.Join(root, "data"), LogPath: filepath.Join(root, "server.log"),
		exited: make(chan struct{}), extra: extra}
	registerCleanup(func() { s.Stop() })
	if err := s.start(ctx); err != nil {
		tail := s.logTail(30)
		s.Stop()
		if tail != "" {
			return nil, fmt.Errorf("%w\n--- last lines of the server log ---\n%s", err, tail)
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	s.DirectPort, s.PooledPort = ports[1], ports[2]
	s.logFile, err = os.Create(s.LogPath)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.Bin, "server", "--data-dir", s.DataDir,
		"--listen", "127.0.0.1:"+strconv.Itoa(ports[0]),
		"--direct-port", strconv.Itoa(s.DirectPort), "--pooled-port", strconv.Itoa(s.PooledPort),
		"--session-port", strconv.Itoa(ports[3]),
		"--log-format", "json", "--log-level", serverLogLevel,
		// The benchmark polls jobs every 2 ms from one address; the API's
		// per-client rate limit would answer 429 to that.
		"--rate-limit-api", "off")
	s.cmd.Args = append(s.cmd.Args, s.extra...)
	s.cmd.Env = os.Environ()
	s.cmd.Stderr = s.logFile
	// Own process group: a Ctrl-C on the terminal reaches only capybench,
	// which then stops the server in order. Pdeathsig covers capybench
	// dying without running its cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("while starting %s: %w", s.Bin, err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()

	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		var closed bool
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.logFile, "stdout: "+redactKey(line))
			if u, ok := strings.CutPrefix(line, "  API:"); ok {
				s.URL = strings.TrimSpace(u)
			}
			if k, ok := strings.CutPrefix(line, "  Admin key:"); ok {
				if f := strings.Fields(k); len(f) > 0 && strings.HasPrefix(f[0], "capy_") {
					s.Key = f[0]
				}
			}
			if s.URL != "" && strings.TrimSpace(line) == "" && !closed {
				closed = true
				close(banner)
			}
		}
		if !closed {
			close(banner)
		}
	}()

	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	select {
	case <-banner:
	case <-s.exited:
		return fmt.Errorf("capydb server exited during startup: %v", s.exitErr)
	case <-startCtx.Done():
		return fmt.Errorf("capydb server did not print its banner within 3 minutes: %w", startCtx.Err())
	}
	if s.URL == "" {
		return errors.New("capydb server printed no API URL")
	}
	if s.Key == "" {
		b, err := os.ReadFile(filepath.Join(s.DataDir, "bootstrap-admin-key"))
		if err != nil {
			return fmt.Errorf("no admin key in the banner nor in the data dir: %w", err)
		}
		s.Key = strings.TrimSpace(string(b))
	}
	for {
		req, _ := http.NewRequestWithContext(startCtx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("capydb server exited during startup: %v", s.exitErr)
		case <-startCtx.Done():
			return fmt.Errorf("capydb server not ready within 3 minutes: %w", startCtx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func redactKey(line string) string {
	if i := strings.Index(line, "capy_"); i >= 0 {
		j := strings.IndexAny(line[i:], " \t")
		if j < 0 {
			j = len(line) - i
		}
		return line[:i] + "capy_…" + line[i+j:]
	}
	return line
}

// Pid is the server process id.
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// AdminDSNFor is the cluster superuser DSN for db on the direct port.
func (s *Server) AdminDSNFor(db string) (string, error) { return s.adminURL(s.DirectPort, db, "") }

// ConsoleDSN is pgbouncer's admin console (simple protocol only).
func (s *Server) ConsoleDSN() (string, error) {
	return s.adminURL(s.PooledPort, "pgbouncer", "&default_query_exec_mode=simple_protocol")
}

func (s *Server) adminURL(port int, db, extra string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "admin-password"))
	if err != nil {
		return "", fmt.Errorf("while reading the cluster admin password: %w", err)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("capydb_admin", strings.TrimSpace(string(b))),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + db,
		RawQuery: "sslmode=require&connect_timeout=10" + extra,
	}
	return u.String(), nil
}

// Stop sends SIGTERM, waits up to 90 s (then kills the server and its
// postgres and pgbouncer), and removes the temp dir.
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(90 * time.Second):
				fmt.Fprintln(os.Stderr, "capybench: server did not stop within 90 s; killing it")
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				killPidFile(filepath.Join(s.DataDir, "pg", "postmaster.pid"), syscall.SIGQUIT)
				killPidFile(filepath.Join(s.DataDir, "pgbouncer", "pgbouncer.pid"), syscall.SIGKILL)
				select {
				case <-s.exited:
				case <-time.After(10 * time.Second):
				}
			}
		}
		if s.logFile != nil {
			s.logFile.Close()
		}
		if s.KeepLog {
			kept := s.Root + ".server.log"
			if b, err := os.ReadFile(s.LogPath); err == nil && os.WriteFile(kept, b, 0o644) == nil {
				fmt.Fprintf(os.Stderr, "capybench: server log kept in %s\n", kept)
			}
		}
		if s.Root != "" {
			if err := os.RemoveAll(s.Root); err != nil {
				fmt.Fprintf(os.Stderr, "capybench: removing %s: %v\n", s.Root, err)
			}
		}
	})
}

func killPidFile(path string, sig syscall.Signal) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 1 {
		_ = syscall.Kill(pid, sig)
	}
}

// CountLog counts server log lines containing substr.
func (s *Server) CountLog(substr string) int {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), substr)
}

// abortedLogin is what postgres logs when pgbouncer gives up a server
// login half way through SCRAM (it then retries after server_login_retry).
const abortedLogin = "expected SASL response"

func (s *Server) logTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- API client ----

// Client talks to the server's HTTP API.
type Client struct {
	base string
	key  string
	http *http.Client
}

func NewClient(s *Server) *Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	return &Client{base: s.URL, key: s.Key, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w", method, path, &APIError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// Job is the part of the wire job we use.
type Job struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	Error       *string    `json:"error"`
	ClaimedAt   *time.Time `json:"claimed_at"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

// CreateProject posts a non-production project.
func (c *Client) CreateProject(ctx context.Context, name string) (projectID string, job Job, err error) {
	var out struct {
		Project struct {
			ID string `json:"id"`
		} `json:"project"`
		Job Job `json:"job"`
	}
	err = c.do(ctx, http.MethodPost, "/v1/projects", map[string]any{"name": name, "environment": "non_production"}, &out)
	if err == nil && (out.Project.ID == "" || out.Job.ID == "") {
		err = fmt.Errorf("POST /v1/projects: answer without project or job id")
	}
	return out.Project.ID, out.Job, err
}

// GetJob reads a job.
func (c *Client) GetJob(ctx context.Context, id string) (Job, error) {
	var out struct {
		Job Job `json:"job"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+id, nil, &out)
	return out.Job, err
}

// WaitJob polls a job every interval until it is terminal. It returns the
// completed job, or an error if the job failed or the timeout passed.
func (c *Client) WaitJob(ctx context.Context, id string, interval, timeout time.Duration) (Job, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	polls := 0
	for {
		j, err := c.GetJob(ctx, id)
		polls++
		if err != nil {
			if ctx.Err() != nil {
				return j, polls, fmt.Errorf("job %s: not finished after %s", id, timeout)
			}
			return j, polls, err
		}
		switch j.State {
		case "completed":
			return j, polls, nil
		case "failed":
			msg := ""
			if j.Error != nil {
				msg = *j.Error
			}
			return j, polls, fmt.Errorf("job %s (%s) failed: %s", id, j.Type, msg)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return j, polls, fmt.Errorf("job %s: still %s after %s", id, j.State, timeout)
		}
	}
}

// Connections are a project's URLs.
type Connections struct {
	Username  string `json:"username"`
	DirectURL string `json:"direct_url"`
	PooledURL string `json:"pooled_url"`
}

func (c *Client) Connections(ctx context.Context, projectID string) (Connections, error) {
	var out struct {
		Connections Connections `json:"connections"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/projects/"+projectID+"/connections", nil, &out)
	if err == nil && (out.Connections.DirectURL == "" || out.Connections.PooledURL == "") {
		err = fmt.Errorf("project %s: connections without URLs", projectID)
	}
	return out.Connections, err
}

// DeleteProject queues a project's deletion.
func (c *Client) DeleteProject(ctx context.Context, projectID string) (Job, error) {
	var out struct {
		Job Job `json:"job"`
	}
	err := c.do(ctx, http.MethodDelete, "/v1/projects/"+projectID, nil, &out)
	return out.Job, err
}
