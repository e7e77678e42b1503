package queue_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// cutProxy forwards TCP connections to the test's Postgres and can cut
// them all, and refuse new ones, for a while: a control-database outage as
// a worker sees a Patroni failover (connections die, new ones fail).
type cutProxy struct {
	ln     net.Listener
	target func() (net.Conn, error)
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, pool *pgxpool.Pool) (*cutProxy, *pgxpool.Config) {
	t.Helper()
	cfg := pool.Config().Copy()
	host, port := cfg.ConnConfig.Host, cfg.ConnConfig.Port
	network, addr := "tcp", net.JoinHostPort(host, fmt.Sprint(port))
	if strings.HasPrefix(host, "/") {
		network, addr = "unix", filepath.Join(host, fmt.Sprintf(".s.PGSQL.%d", port))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]bool{},
		target: func() (net.Conn, error) { return net.DialTimeout(network, addr, 3*time.Second) }}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	cfg.ConnConfig.Host = "127.0.0.1"
	cfg.ConnConfig.Port = uint16(ln.Addr().(*net.TCPAddr).Port)
	cfg.ConnConfig.Fallbacks = nil // TLSConfig (and its ServerName) stays the real server's
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	return p, cfg
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	s, err := p.target()
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[s] = true
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

// cut closes every open connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// outageConfig is fastConfig with one job at a time and a lease short
// enough to run out during the test's outage.
func outageConfig(t *testing.T, id string) queue.Config {
	cfg := fastConfig(t, id)
	cfg.Concurrency = 1
	cfg.LeaseDuration = 2 * time.Second
	cfg.HeartbeatInterval = 400 * time.Millisecond
	return cfg
}

// TestLeaseOutlivesControlOutage: a control-database outage longer than the
// lease neither hands a job that is still running out again (its worker
// renews the lease when the database is back, before anyone reaps it) nor
// keeps a job whose worker died during the outage from being reclaimed.
func TestLeaseOutlivesControlOutage(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ = "test.outage"
	proxy, cfg := newCutProxy(t, st.Pool)
	release := make(chan struct{})
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, _ *queue.Reporter) (any, error) {
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	pool := func() *pgxpool.Pool {
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	running := func(id, by string) {
		clustertest.Eventually(t, 20*time.Second, id+" running on "+by, func() (bool, error) {
			j, err := queue.GetAny(ctx, st.Pool, id)
			return err == nil && j.State == queue.StateRunning && deref(j.ClaimedBy) == by, err
		})
	}
	startWorker(t, pool(), outageConfig(t, "survivor"), map[string]queue.Handler{typ: h})
	kept := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	running(kept.ID, "survivor")
	doomed := startWorker(t, pool(), outageConfig(t, "doomed"), map[string]queue.Handler{typ: h})
	orphan := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	running(orphan.ID, "doomed")

	proxy.cut()
	doomed.stop(t) // dies during the outage, leaving its job running
	time.Sleep(3 * time.Second)
	var expired bool
	if err := st.Pool.QueryRow(ctx, `SELECT bool_and(lease_expires_at < now()) FROM jobs WHERE id IN ($1, $2)`,
		kept.ID, orphan.ID).Scan(&expired); err != nil || !expired {
		t.Fatalf("both leases should have run out during the outage: %v %v", expired, err)
	}
	proxy.restore()

	// The dead worker's job is reclaimed; the survivor's is not.
	clustertest.Eventually(t, 20*time.Second, "the orphan reclaimed", func() (bool, error) {
		j, err := queue.GetAny(ctx, st.Pool, orphan.ID)
		return err == nil && j.State == queue.StatePending && j.Attempts == 1, err
	})
	if j := getJob(t, st.Pool, kept.ID); j.State != queue.StateRunning || j.Attempts != 1 ||
		j.LeaseExpiresAt == nil || !j.LeaseExpiresAt.After(time.Now()) {
		t.Fatalf("the survivor's job after the outage: state %s attempt %d lease %v", j.State, j.Attempts, j.LeaseExpiresAt)
	}
	close(release)
	if j := waitJobState(t, st.Pool, kept.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed); j.State != queue.StateCompleted || j.Attempts != 1 {
		t.Fatalf("the survivor's job: %s after %d attempts", j.State, j.Attempts)
	}
	if j := waitJobState(t, st.Pool, orphan.ID, 20*time.Second, queue.StateCompleted, queue.StateFailed); j.State != queue.StateCompleted || j.Attempts != 2 {
		t.Fatalf("the orphan: %s after %d attempts", j.State, j.Attempts)
	}
}

// TestHandlerResumesAfterControlOutage: a handler whose statement the
// outage cut off is resumed in the same attempt once the control database
// answers, instead of failing the attempt and running again as attempt 2.
func TestHandlerResumesAfterControlOutage(t *testing.T) {
	st := parallelDB(t)
	ctx := ctxT(t)
	const typ = "test.cutoff"
	proxy, cfg := newCutProxy(t, st.Pool)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var runs atomic.Int32
	cutOff := make(chan error, 1)
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		if runs.Add(1) > 1 {
			return "resumed", rep.Progress(ctx, map[string]any{"phase": "resumed"})
		}
		proxy.cut()
		err := rep.Progress(ctx, map[string]any{"phase": "cut off"})
		cutOff <- err
		go func() { time.Sleep(time.Second); proxy.restore() }()
		return nil, fmt.Errorf("recording progress: %w", err)
	})
	startWorker(t, pool, outageConfig(t, "resumer"), map[string]queue.Handler{typ: h})
	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: typ, MaxAttempts: 3})
	select {
	case err := <-cutOff:
		if !store.Unavailable(err) {
			t.Fatalf("the cut-off statement failed with %v, want an unavailable-database error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never ran")
	}
	got := waitJobState(t, st.Pool, j.ID, 30*time.Second, queue.StateCompleted, queue.StateFailed)
	if got.State != queue.StateCompleted || got.Attempts != 1 || runs.Load() != 2 {
		t.Fatalf("job %s after %d attempts, handler ran %d times; want completed on attempt 1 after one resume",
			got.State, got.Attempts, runs.Load())
	}
}
