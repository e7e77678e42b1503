package queue_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
)

// One real Postgres (+pgBouncer) cluster for the whole package; every test
// gets its own database in it.
func TestMain(m *testing.M) { clustertest.Main(m) }

// testOrg is the organization every test job belongs to (jobs.organization_id
// has no foreign key, so no organizations row is needed).
const testOrg = "org_queuetest"

// newDB gives the test its own migrated control database (copied from the
// package's template, dropped at cleanup) with the hook_markers table used
// by the Finisher tests.
func newDB(t *testing.T) *store.Store {
	t.Helper()
	st := storetest.ControlDB(t, 40)
	if _, err := st.Pool.Exec(ctxT(t), `CREATE TABLE hook_markers (
		job_id text NOT NULL, hook text NOT NULL, detail text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return st
}

// parallelDB marks the test parallel and gives it its own database (newDB).
// Tests that measure sub-second timings use newDB alone and stay serial.
func parallelDB(t *testing.T) *store.Store {
	t.Helper()
	t.Parallel()
	return newDB(t)
}

// openPool opens an extra pool on the same database (for workers that must
// not share a pool).
func openPool(t *testing.T, st *store.Store) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := st.Pool.Config()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// fastConfig is a Config with short durations so the package runs quickly.
func fastConfig(t *testing.T, id string) queue.Config {
	return queue.Config{
		WorkerID:          id,
		Concurrency:       4,
		LeaseDuration:     5 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond,
		PollInterval:      20 * time.Millisecond,
		ReapInterval:      100 * time.Millisecond,
		BackoffBase:       50 * time.Millisecond,
		BackoffMax:        2 * time.Second,
		Logger:            clustertest.Logger(t),
	}
}

// runningWorker is a Worker whose Run loop is going in a goroutine.
type runningWorker struct {
	*queue.Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startWorker runs a worker until stop (or the end of the test).
func startWorker(t *testing.T, pool *pgxpool.Pool, cfg queue.Config, handlers map[string]queue.Handler) *runningWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{Worker: queue.NewWorker(pool, cfg, handlers), cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- rw.Run(ctx) }()
	t.Cleanup(func() { rw.stop(t) })
	return rw
}

// stop cancels Run and waits for it (and so for its running jobs) to return.
func (rw *runningWorker) stop(t *testing.T) {
	t.Helper()
	rw.once.Do(func() {
		rw.cancel()
		select {
		case rw.err = <-rw.done:
		case <-time.After(20 * time.Second):
			t.Errorf("worker %s did not stop within 20s", rw.ID())
			return
		}
		if rw.err != nil {
			t.Errorf("worker %s: Run returned %v", rw.ID(), rw.err)
		}
	})
}

// exited reports whether Run has returned on its own.
func (rw *runningWorker) exited() bool {
	select {
	case err := <-rw.done:
		rw.done <- err
		return true
	default:
		return false
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func getJob(t *testing.T, db store.DB, id string) *queue.Job {
	t.Helper()
	j, err := queue.GetAny(ctxT(t), db, id)
	if err != nil {
		t.Fatalf("reading job %s: %v", id, err)
	}
	return j
}

// waitJobState waits until the job reaches one of the given states and returns it.
func waitJobState(t *testing.T, db store.DB, id string, timeout time.Duration, states ...string) *queue.Job {
	t.Helper()
	var j *queue.Job
	clustertest.Eventually(t, timeout, "job "+id+" to reach "+strings.Join(states, "/"), func() (bool, error) {
		var err error
		j, err = queue.GetAny(context.Background(), db, id)
		if err != nil {
			return false, err
		}
		for _, s := range states {
			if j.State == s {
				return true, nil
			}
		}
		return false, nil
	})
	return j
}

func enqueue(t *testing.T, db store.DB, p queue.EnqueueParams) *queue.Job {
	t.Helper()
	if p.OrganizationID == "" {
		p.OrganizationID = testOrg
	}
	j, err := queue.Enqueue(ctxT(t), db, p)
	if err != nil {
		t.Fatalf("enqueueing %s: %v", p.Type, err)
	}
	if j.State != queue.StatePending || j.Attempts != 0 || j.Type != p.Type {
		t.Fatalf("enqueued job = state %q attempts %d type %q", j.State, j.Attempts, j.Type)
	}
	return j
}

// jobEvent is an outbox row's data for a job.
type jobEvent struct {
	JobID   string `json:"job_id"`
	JobType string `json:"job_type"`
	State   string `json:"state"`
	OrgID   string `json:"organization_id"`
	Error   string `json:"error"`
}

// jobEvents returns the events of type typ about job id.
func jobEvents(t *testing.T, db store.DB, typ, id string) []jobEvent {
	t.Helper()
	rows, err := db.Query(ctxT(t), `SELECT organization_id, data FROM events WHERE type = $1 AND data->>'job_id' = $2 ORDER BY created_at, id`, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		org  string
		data []byte
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.org, &x.data)
	})
	if err != nil {
		t.Fatal(err)
	}
	out := []jobEvent{}
	for _, r := range rs {
		var e jobEvent
		if err := json.Unmarshal(r.data, &e); err != nil {
			t.Fatal(err)
		}
		if r.org != e.OrgID {
			t.Errorf("event organization_id %q but data.organization_id %q", r.org, e.OrgID)
		}
		out = append(out, e)
	}
	return out
}

// markers returns the hook_markers rows of a job as "hook: detail".
func markers(t *testing.T, db store.DB, id string) []string {
	t.Helper()
	rows, err := db.Query(ctxT(t), `SELECT hook || ': ' || detail FROM hook_markers WHERE job_id = $1 ORDER BY hook`, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// warmPool opens n connections in the pool so later queries do not pay for
// connection setup.
func warmPool(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := ctxT(t)
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	if idle := pool.Stat().IdleConns(); idle < int32(n) {
		t.Fatalf("pool has %d idle connections after warming, want >= %d", idle, n)
	}
}
