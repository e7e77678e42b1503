// Package patronitest starts a real highly available control database for
// tests: one etcd member and a Patroni pair (a primary and a synchronous
// standby) of PostgreSQL, each on its own host (a network namespace with its
// own address, internal/netnstest), the way an operator runs CapyDB's
// control database in production (docs/ha-control-database.md). The members
// replicate over the bridge, and a member can be cut off the network.
//
// It needs root (namespaces; Patroni then runs as the postgres user).
package patronitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/netnstest"
)

// Scope is the Patroni cluster name the harness uses.
const Scope = "capydb-control"

// Ports every member uses on its own address (each is its own host).
const (
	PGPort   = 5432
	APIPort  = 8008
	etcdPort = 2379
	etcdPeer = 2380
)

// Pair is a running etcd + two Patroni members, each on its own host.
type Pair struct {
	t        testing.TB
	dir      string
	password string
	etcd     *proc
	Members  []*Member
	// Net holds the hosts: "etcd", "m1", "m2" and the callers' extra hosts.
	Net *netnstest.Net
}

// Member is one Patroni-managed Postgres.
type Member struct {
	Name     string
	Host     *netnstest.Host
	dataDir  string
	confPath string
	proc     *proc
}

type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func (pr *proc) logs() string {
	b, _ := os.ReadFile(pr.logPath)
	return string(b)
}

// Start makes the hosts etcd, m1, m2 and one per name in clients (for the
// caller's own processes, e.g. a capydb server), starts etcd and two Patroni
// members and waits until one leads and the other streams from it as the
// synchronous standby. It fails the test (never skips) when it is not root
// or patroni or etcd is missing: scripts/ensure-deps.sh installs them.
func Start(t testing.TB, clients ...string) *Pair {
	t.Helper()
	network := netnstest.New(t, "run etcd and each Patroni member as a separate host",
		append([]string{"etcd", "m1", "m2"}, clients...)...)
	for _, bin := range []string{"patroni", "etcd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (Debian packages patroni and etcd-server; make deps installs them): %v", bin, err)
		}
	}
	binDir := localcluster.BinDir()
	if binDir == "" {
		t.Fatal("no PostgreSQL server binaries found (make deps installs them)")
	}
	dir, err := os.MkdirTemp("", "capydb-patroni-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Pair{t: t, dir: dir, password: "pw-" + strconv.FormatInt(time.Now().UnixNano(), 36), Net: network}
	t.Cleanup(p.stop)
	owner := postgresOwner(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	eh := network.Host("etcd")
	etcdURL := func(port int) string { return fmt.Sprintf("http://%s:%d", eh.Addr, port) }
	p.etcd = p.start("etcd", eh, nil, "etcd", "--name", "e1", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL(etcdPort), "--advertise-client-urls", etcdURL(etcdPort),
		"--listen-peer-urls", etcdURL(etcdPeer), "--initial-advertise-peer-urls", etcdURL(etcdPeer),
		"--initial-cluster", "e1="+etcdURL(etcdPeer),
		"--enable-v2=true")

	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("m%d", i)
		m := &Member{Name: name, Host: network.Host(name)}
		mdir := filepath.Join(dir, m.Name)
		if err := os.MkdirAll(mdir, 0o700); err != nil {
			t.Fatal(err)
		}
		m.dataDir = filepath.Join(mdir, "pg")
		m.confPath = filepath.Join(mdir, "patroni.yml")
		conf := p.config(m, mdir, binDir, fmt.Sprintf("%s:%d", eh.Addr, etcdPort))
		if err := os.WriteFile(m.confPath, conf, 0o600); err != nil {
			t.Fatal(err)
		}
		chownTree(t, mdir, owner)
		p.Members = append(p.Members, m)
	}
	for i, m := range p.Members {
		m.proc = p.start(m.Name, m.Host, owner, "patroni", m.confPath)
		if i == 0 {
			// The first member bootstraps alone, so it is the leader.
			p.WaitLeader(90 * time.Second)
		}
	}
	// A slow, shared CI machine needed more than 2 minutes once.
	p.WaitStreaming(240 * time.Second)
	return p
}

// config renders a member's patroni.yml (JSON is YAML).
func (p *Pair) config(m *Member, mdir, binDir, etcd string) []byte {
	local := func(port int) string { return fmt.Sprintf("%s:%d", m.Host.Addr, port) }
	c := map[string]any{
		"scope": Scope,
		"name":  m.Name,
		"log":   map[string]any{"level": "INFO"},
		"restapi": map[string]any{
			"listen": local(APIPort), "connect_address": local(APIPort),
		},
		"etcd": map[string]any{"host": etcd},
		"bootstrap": map[string]any{
			"dcs": map[string]any{
				// Patroni's minimums: a failover within ~ttl seconds.
				"ttl": 20, "loop_wait": 2, "retry_timeout": 5,
				"maximum_lag_on_failover": 1 << 20,
				// A commit is acknowledged only once the standby has it, so a
				// failover loses no acknowledged write.
				"synchronous_mode": true,
				"postgresql": map[string]any{
					"use_pg_rewind": true,
					"parameters": map[string]any{
						"wal_level": "replica", "hot_standby": "on", "max_connections": 100,
						"max_wal_senders": 10, "max_replication_slots": 10, "wal_log_hints": "on",
					},
				},
			},
			"initdb": []any{map[string]any{"encoding": "UTF8"}, map[string]any{"locale": "C"}},
			"pg_hba": []string{
				"local all all trust",
				// The members replicate, and clients connect, over the bridge.
				"host replication replicator " + p.Net.CIDR() + " scram-sha-256",
				"host all all " + p.Net.CIDR() + " scram-sha-256",
			},
		},
		"postgresql": map[string]any{
			"listen": local(PGPort), "connect_address": local(PGPort),
			"data_dir": m.dataDir, "bin_dir": binDir,
			"pgpass": filepath.Join(mdir, "pgpass"),
			"authentication": map[string]any{
				"superuser":   map[string]any{"username": "postgres", "password": p.password},
				"replication": map[string]any{"username": "replicator", "password": p.password},
				"rewind":      map[string]any{"username": "postgres", "password": p.password},
			},
			"parameters": map[string]any{
				"unix_socket_directories": mdir,
				"password_encryption":     "scram-sha-256",
			},
		},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// SuperuserURL connects to the current leader as the superuser.
func (p *Pair) SuperuserURL(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=5",
		p.password, p.hosts(), db)
}

// hosts lists every member, so libpq/pgx finds the writable one.
func (p *Pair) hosts() string {
	var hs []string
	for _, m := range p.Members {
		hs = append(hs, fmt.Sprintf("%s:%d", m.Host.Addr, PGPort))
	}
	return strings.Join(hs, ",")
}

// CreateControlDatabase creates a login and its database on the leader and
// returns the multi-host URL CapyDB's --database-url takes.
func (p *Pair) CreateControlDatabase(ctx context.Context, role, password, db string) string {
	p.t.Helper()
	conn, err := pgx.Connect(ctx, p.SuperuserURL("postgres"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s", pgx.Identifier{role}.Sanitize(), quoteLiteral(password)),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{db}.Sanitize(), pgx.Identifier{role}.Sanitize()),
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			p.t.Fatal(err)
		}
	}
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&target_session_attrs=read-write", role, password, p.hosts(), db)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// memberState is Patroni's GET /patroni answer, the part we read.
type memberState struct {
	State string `json:"state"`
	Role  string `json:"role"`
}

func (m *Member) apiURL(path string) string {
	return fmt.Sprintf("http://%s:%d%s", m.Host.Addr, APIPort, path)
}

func (m *Member) state() (*memberState, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(m.apiURL("/patroni"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s memberState
	return &s, json.NewDecoder(resp.Body).Decode(&s)
}

// Leader is the member that is running as primary, or nil.
func (p *Pair) Leader() *Member {
	for _, m := range p.Members {
		if m.proc == nil || m.proc.exited() {
			continue
		}
		if s, err := m.state(); err == nil && s.State == "running" && (s.Role == "master" || s.Role == "primary") {
			return m
		}
	}
	return nil
}

// Other is the member that is not m.
func (p *Pair) Other(m *Member) *Member {
	if p.Members[0] == m {
		return p.Members[1]
	}
	return p.Members[0]
}

// WaitLeader waits until a member leads and returns it.
func (p *Pair) WaitLeader(timeout time.Duration) *Member {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := p.Leader(); l != nil {
			return l
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("no Patroni leader within %s\n%s", timeout, p.Logs())
	return nil
}

// WaitStreaming waits until Patroni names a synchronous standby in its
// cluster view (the DCS sync key), which a switchover and a lossless failover
// need, and that standby streams.
func (p *Pair) WaitStreaming(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := p.Leader(); l != nil {
			if c, err := l.cluster(); err == nil {
				for _, m := range c.Members {
					if m.Role == "sync_standby" && (m.State == "streaming" || m.State == "running") {
						return
					}
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.t.Fatalf("no synchronous standby streaming within %s\n%s", timeout, p.Logs())
}

// clusterView is Patroni's GET /cluster answer, the part we read.
type clusterView struct {
	Members []struct {
		Name  string `json:"name"`
		Role  string `json:"role"`
		State string `json:"state"`
	} `json:"members"`
}

func (m *Member) cluster() (*clusterView, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(m.apiURL("/cluster"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var c clusterView
	return &c, json.NewDecoder(resp.Body).Decode(&c)
}

// Switchover asks Patroni for a planned switchover to the other member.
func (p *Pair) Switchover(from *Member) {
	p.t.Helper()
	to := p.Other(from)
	body, _ := json.Marshal(map[string]string{"leader": from.Name, "candidate": to.Name})
	resp, err := http.Post(from.apiURL("/switchover"), "application/json", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		p.t.Fatalf("switchover %s -> %s: %s %s", from.Name, to.Name, resp.Status, b.String())
	}
}

// Crash kills a member the way a lost host dies: Patroni and its postmaster
// with SIGKILL, no demotion, its leader key left to expire in etcd.
func (p *Pair) Crash(m *Member) {
	p.t.Helper()
	pid := postmasterPID(m.dataDir)
	_ = m.proc.cmd.Process.Signal(syscall.SIGKILL)
	<-m.proc.done
	killPostmaster(pid)
}

// killPostmaster SIGKILLs a postmaster (Patroni starts it in its own
// session) and waits for it to be gone; its backends exit after it.
func killPostmaster(pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart starts a crashed member again; Patroni rewinds it and it rejoins as
// a standby.
func (p *Pair) Restart(m *Member) {
	m.proc = p.start(m.Name, m.Host, postgresOwner(p.t), "patroni", m.confPath)
}

// Cut takes m's host off the network (its link to the bridge goes down):
// it keeps running but reaches neither etcd nor the other member, and no
// client reaches it. Patroni on it demotes its Postgres once it cannot
// renew the leader key; the other member takes over after the key's TTL.
func (p *Pair) Cut(m *Member) { m.Host.Cut() }

// Reconnect puts m's host back on the network; Patroni rejoins it as a
// standby (pg_rewind when it wrote past the new leader's timeline switch).
func (p *Pair) Reconnect(m *Member) { m.Host.Reconnect() }

func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Logs returns the tail of every process's output, for failure messages.
func (p *Pair) Logs() string {
	var b strings.Builder
	if p.etcd != nil {
		fmt.Fprintf(&b, "--- etcd\n%s\n", tail(p.etcd.logs(), 2000))
	}
	for _, m := range p.Members {
		if m.proc != nil {
			fmt.Fprintf(&b, "--- %s\n%s\n", m.Name, tail(m.proc.logs(), 4000))
		}
	}
	return b.String()
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

func (p *Pair) stop() {
	for _, m := range p.Members {
		if m.proc != nil && !m.proc.exited() {
			_ = m.proc.cmd.Process.Signal(syscall.SIGKILL)
			<-m.proc.done
		}
		killPostmaster(postmasterPID(m.dataDir))
	}
	if p.etcd != nil && !p.etcd.exited() {
		_ = p.etcd.cmd.Process.Signal(syscall.SIGKILL)
		<-p.etcd.done
	}
	if !p.t.Failed() {
		os.RemoveAll(p.dir)
	} else {
		p.t.Logf("Patroni harness kept in %s", p.dir)
	}
}

// start runs bin on host, as owner when it is set (setpriv inside the
// namespace: entering one needs root).
func (p *Pair) start(name string, host *netnstest.Host, owner *syscall.Credential, bin string, args ...string) *proc {
	p.t.Helper()
	// Output goes to a file, not a pipe: the postmaster Patroni starts
	// inherits it and outlives Patroni, and a pipe would keep Wait waiting.
	logPath := filepath.Join(p.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logFile.Close()
	_ = os.Chmod(logPath, 0o666)
	cmd := host.Command(bin, args...)
	if owner != nil {
		cmd = host.CommandAs("postgres", bin, args...)
	}
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "HOME="+p.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	pr := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(pr.done) }()
	return pr
}

func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// postgresOwner is the account Patroni (and so postgres) runs as when the
// test runs as root: postgres refuses root.
func postgresOwner(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root needs the postgres system user (Debian's postgresql package creates it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func chownTree(t testing.TB, dir string, owner *syscall.Credential) {
	if owner == nil {
		return
	}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(owner.Uid), int(owner.Gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}
