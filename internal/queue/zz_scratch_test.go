package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/queue"
)

func TestZZNullPayload(t *testing.T) {
	st := newDB(t)
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) { return nil, nil })
	startWorker(t, st.Pool, fastConfig(t, "np"), map[string]queue.Handler{"np": h})
	type P struct{ A int }
	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: "np", Payload: (*P)(nil), MaxAttempts: 2})
	g := waitJobState(t, st.Pool, j.ID, 10*time.Second, "completed", "failed")
	if g.State != "completed" || g.Attempts != 1 || string(g.Payload) != "null" {
		t.Fatalf("state %s attempts %d payload %s", g.State, g.Attempts, g.Payload)
	}
}

func TestZZDoubleRun(t *testing.T) {
	st := newDB(t)
	var cur, maxc atomic.Int32
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		c := cur.Add(1)
		defer cur.Add(-1)
		if c > maxc.Load() {
			maxc.Store(c)
		}
		time.Sleep(2500 * time.Millisecond)
		return nil, nil
	})
	cfg := fastConfig(t, "dr")
	cfg.LeaseDuration = time.Second
	cfg.HeartbeatInterval = 0 // default
	startWorker(t, st.Pool, cfg, map[string]queue.Handler{"dr": h})
	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: "dr", LockedResource: "project:X"})
	g := waitJobState(t, st.Pool, j.ID, 20*time.Second, "completed", "failed")
	if g.State != "completed" || g.Attempts != 1 || maxc.Load() != 1 {
		t.Fatalf("state %s attempts %d max concurrent %d", g.State, g.Attempts, maxc.Load())
	}
}

func TestZZSubMillisecondBackoff(t *testing.T) {
	st := newDB(t)
	var n atomic.Int32
	h := queue.HandlerFunc(func(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
		if n.Add(1) == 1 {
			return nil, context.DeadlineExceeded
		}
		return nil, nil
	})
	cfg := fastConfig(t, "us")
	cfg.BackoffBase = 500 * time.Microsecond
	startWorker(t, st.Pool, cfg, map[string]queue.Handler{"us": h})
	j := enqueue(t, st.Pool, queue.EnqueueParams{Type: "us"})
	g := waitJobState(t, st.Pool, j.ID, 10*time.Second, "completed", "failed")
	if g.State != "completed" || g.Attempts != 2 {
		t.Fatalf("state %s attempts %d error %q", g.State, g.Attempts, deref(g.Error))
	}
}
