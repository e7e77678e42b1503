// Package observe turns cluster statistics into what owners see: live
// metrics, the sampled history, usage alerts with hysteresis
// (docs/observability.md). The statistics themselves are read by dataplane.
package observe

import (
	"fmt"
	"math"
	"time"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/store"
)

// Percent is used/limit in percent (0 when there is no limit).
func Percent(used, limit int64) float64 {
	if limit <= 0 {
		return 0
	}
	return math.Round(float64(used)*10000/float64(limit)) / 100
}

// Flags are the derived alert flags of live metrics: per gauge, the highest
// of 80, 90 and 95 % crossed (API.md §4.13).
func Flags(connPct, storagePct float64) []string {
	out := []string{}
	for _, g := range []struct {
		name string
		pct  float64
	}{{"database_size", storagePct}, {"connections", connPct}} {
		for _, t := range []float64{95, 90, 80} {
			if g.pct >= t {
				out = append(out, fmt.Sprintf("%s_over_%d_percent", g.name, int(t)))
				break
			}
		}
	}
	return out
}

// delta is cur-prev for a cumulative counter; a counter that went down was
// reset (stats reset, crash recovery), so the interval counts from zero.
func delta(cur, prev int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func ratio(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// ComputeSample makes one history point from a database's counters now and
// its counters at the previous round (nil: first round, so the interval
// values are zero rather than everything since the server started).
func ComputeSample(projectID string, at time.Time, cur *dataplane.DatabaseCounters, prev *store.RawCounters,
	connLimit int, storageLimit int64) *store.Sample {
	s := &store.Sample{
		ProjectID: projectID, SampledAt: at, Connections: cur.Connections, ConnectionLimit: connLimit,
		ActiveQueries: cur.Active, BlockedQueries: cur.Blocked, DatabaseSizeBytes: cur.SizeBytes,
		StorageLimitBytes: storageLimit, CacheHitRatio: 1,
		Raw: store.RawCounters{XactCommit: cur.XactCommit, XactRollback: cur.XactRollback, BlksHit: cur.BlksHit,
			BlksRead: cur.BlksRead, Deadlocks: cur.Deadlocks, TupDead: cur.TupDead, StmtCalls: cur.StmtCalls,
			StmtTimeMs: cur.StmtTimeMs},
	}
	if prev == nil {
		return s
	}
	commits, rollbacks := delta(cur.XactCommit, prev.XactCommit), delta(cur.XactRollback, prev.XactRollback)
	s.RollbackRatio = ratio(rollbacks, commits+rollbacks)
	hit, read := delta(cur.BlksHit, prev.BlksHit), delta(cur.BlksRead, prev.BlksRead)
	if hit+read > 0 {
		s.CacheHitRatio = ratio(hit, hit+read)
	}
	s.Deadlocks = delta(cur.Deadlocks, prev.Deadlocks)
	s.DeadTuples = delta(cur.TupDead, prev.TupDead)
	// pg_stat_statements sums shrink when entries are evicted: then the
	// interval is not measurable and the average stays 0.
	if calls := cur.StmtCalls - prev.StmtCalls; calls > 0 && cur.StmtTimeMs >= prev.StmtTimeMs {
		s.AvgQueryMs = (cur.StmtTimeMs - prev.StmtTimeMs) / float64(calls)
	}
	return s
}
