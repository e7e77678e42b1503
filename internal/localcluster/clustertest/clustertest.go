// Package clustertest starts one real embedded cluster (postgres + pgbouncer)
// per test binary, for tests of packages that need a real Postgres.
//
// Typical use:
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := clustertest.Shared(t)
//		conn, err := pgx.Connect(ctx, c.AdminDSN())
//		…
//	}
//
// Eventually(t, timeout, what, cond) is the one poll-until helper for every
// package. Tests of the control database take their own migrated copy with
// storetest.ControlDB(t, maxConns) and may then run with t.Parallel.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster"
)

var (
	mu        sync.Mutex
	shared    *localcluster.Cluster
	sharedErr error
	started   bool
)

// StartForMain starts a fresh cluster in a new temp dir (on /dev/shm when
// it has at least 1 GiB free, or under $CAPYDB_TEST_TMPDIR) on three random free
// ports (all explicit), with Fast=true and a logger that prints WARN and
// above to stderr. stop stops the cluster and removes the dir. The cluster
// (or the error) is also what Shared returns afterwards.
func StartForMain() (c *localcluster.Cluster, stop func(), err error) {
	mu.Lock()
	defer mu.Unlock()
	c, stop, err = start()
	shared, sharedErr, started = c, err, true
	return c, stop, err
}

// Main is a complete TestMain: start the cluster, run the tests, stop it,
// exit. If startup fails the tests still run and Shared fails each of them
// with the startup error.
func Main(m *testing.M) {
	_, stop, err := StartForMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

// Shared returns the package's cluster, failing tb if it could not start.
// Without a StartForMain in TestMain it starts one on first use; that
// cluster's processes die with the test binary, but its temp dir is left
// behind, so prefer StartForMain/Main.
func Shared(tb testing.TB) *localcluster.Cluster {
	tb.Helper()
	mu.Lock()
	if !started {
		shared, _, sharedErr = start()
		started = true
	}
	c, err := shared, sharedErr
	mu.Unlock()
	if err != nil {
		tb.Fatalf("clustertest: the test cluster did not start: %v", err)
	}
	return c
}

// StartWith starts a cluster of its own (not the shared one) like
// StartForMain, with mod applied to its Config (e.g. WAL archiving).
func StartWith(mod func(*localcluster.Config)) (*localcluster.Cluster, func(), error) {
	return startWith(mod)
}

func start() (*localcluster.Cluster, func(), error) { return startWith(nil) }

func startWith(mod func(*localcluster.Config)) (*localcluster.Cluster, func(), error) {
	dir, err := os.MkdirTemp(baseTempDir(), "capydb-test-")
	if err != nil {
		if dir, err = os.MkdirTemp("", "capydb-test-"); err != nil {
			return nil, nil, err
		}
	}
	// The postgres user must be able to enter the dir when tests run as root.
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var c *localcluster.Cluster
	// Random ports can be taken by another test binary between picking and
	// binding; pick again then (the data dir is reused, so no second initdb).
	for attempt := 1; ; attempt++ {
		ports, perr := freePorts(3)
		if perr != nil {
			err = perr
			break
		}
		cfg := localcluster.Config{
			DataDir:    dir,
			DirectPort: ports[0], DirectPortExplicit: true,
			PooledPort: ports[1], PooledPortExplicit: true,
			SessionPort: ports[2], SessionPortExplicit: true,
			Fast:   true,
			Logger: logger,
		}
		if mod != nil {
			mod(&cfg)
		}
		c, err = localcluster.Start(ctx, cfg)
		if err == nil || attempt == 3 || !portProblem(err) {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "clustertest: stopping the cluster:", err)
			}
			os.RemoveAll(dir)
		})
	}
	return c, stop, nil
}

// baseTempDir prefers $CAPYDB_TEST_TMPDIR, then /dev/shm when it has room:
// a fresh cluster creates ~1,000 files, and on tmpfs that is several times
// faster than on a disk (0.4 s vs 1.3 s for initdb on the reference VM).
func baseTempDir() string {
	if d := os.Getenv("CAPYDB_TEST_TMPDIR"); d != "" {
		return d
	}
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && st.Bavail*uint64(st.Bsize) >= 1<<30 {
		return "/dev/shm"
	}
	return "" // os.TempDir()
}

func portProblem(err error) bool {
	return errors.Is(err, localcluster.ErrPortInUse) ||
		strings.Contains(err.Error(), "could not bind") ||
		strings.Contains(err.Error(), "Address already in use")
}

// freePorts returns n distinct ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
