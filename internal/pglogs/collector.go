package pglogs

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/store"
)

// Defaults of the collector.
const (
	DefaultRetention = 7 * 24 * time.Hour
	DefaultInterval  = time.Second
	pruneEvery       = time.Minute
	pruneBatch       = 5000
)

// Config is one cluster's collector.
type Config struct {
	Store     *store.Store
	ClusterID string
	Dir       string        // the cluster's jsonlog directory
	Retention time.Duration // 0: DefaultRetention
	Interval  time.Duration // between reads when idle; 0: DefaultInterval
	Logger    *slog.Logger  // WARNING and worse entries are forwarded here
	// OnAuthFailure, when set, gets every failed password login (SQLSTATE
	// 28P01) once its batch is stored: the network ban watcher's input.
	// jsonlog escapes what clients send, so a tenant cannot forge one.
	OnAuthFailure func(database string, addr netip.Addr)
}

// Collector tails one cluster's log directory into the control database.
// The position is stored with the lines, in one transaction, so a restart
// of postgres (a new file) or of the server (the stored position) neither
// loses nor repeats a line.
type Collector struct {
	cfg       Config
	lastPrune time.Time
	lastRead  atomic.Int64 // unix nanoseconds of the last successful Step

	// TestSignals may be armed by tests before Run.
	TestSignals struct {
		// Stored fires after each batch with the number of lines stored.
		Stored bgsvc.Signal[int]
	}
}

// New builds a collector.
func New(cfg Config) *Collector {
	bgsvc.Default(&cfg.Retention, DefaultRetention)
	bgsvc.Default(&cfg.Interval, DefaultInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "postgres", "stream", "jsonlog")
	return &Collector{cfg: cfg}
}

// Run collects until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := c.Step(ctx)
		if err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("collecting the postgres log failed", "error", err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(c.cfg.Interval):
			}
		}
	}
	return nil
}

// Step reads and stores one batch; it returns how many lines it stored.
func (c *Collector) Step(ctx context.Context) (int, error) {
	n := 0
	var failures []Entry
	err := c.cfg.Store.InTx(ctx, func(tx pgx.Tx) error {
		failures = failures[:0]
		// One collector per cluster at a time.
		if ok, err := bgsvc.TryLeadTx(ctx, tx, "capydb.pglogs."+c.cfg.ClusterID); err != nil || !ok {
			return err
		}
		file, off, err := store.LogPosition(ctx, tx, c.cfg.ClusterID)
		if err != nil {
			return err
		}
		entries, pos, err := Read(c.cfg.Dir, Position{File: file, Offset: off}, ReadChunk)
		if err != nil {
			return err
		}
		if pos.File == file && pos.Offset == off {
			return nil
		}
		lines := make([]*store.LogLine, len(entries))
		for i, e := range entries {
			lines[i] = toLine(e)
			c.forward(e)
			if e.SQLState == "28P01" && e.Database != "" && e.RemoteHost != "" {
				failures = append(failures, e)
			}
		}
		n = len(lines)
		return store.StoreLogLines(ctx, tx, c.cfg.ClusterID, lines, pos.File, pos.Offset)
	})
	if err == nil && c.cfg.OnAuthFailure != nil {
		for _, e := range failures {
			if a, perr := netip.ParseAddr(e.RemoteHost); perr == nil {
				c.cfg.OnAuthFailure(e.Database, a.Unmap())
			}
		}
	}
	if err == nil {
		c.lastRead.Store(time.Now().UnixNano())
	}
	c.TestSignals.Stored.Send(n)
	if err == nil && time.Since(c.lastPrune) >= pruneEvery {
		c.lastPrune = time.Now()
		_, err = store.PruneLogLines(ctx, c.cfg.Store.Pool, time.Now().Add(-c.cfg.Retention), pruneBatch)
	}
	return n, err
}

// forward keeps postgres' warnings and errors in the server's own log, as
// when they came through stderr.
func (c *Collector) forward(e Entry) {
	lvl := slog.LevelDebug
	switch e.Severity {
	case "warning", "error", "fatal":
		lvl = slog.LevelWarn
	case "panic":
		lvl = slog.LevelError
	case "log":
		lvl = slog.LevelInfo
	}
	c.cfg.Logger.Log(context.Background(), lvl, e.Message, "severity", e.Severity, "database", e.Database,
		"user", e.User, "pid", e.PID)
}

func toLine(e Entry) *store.LogLine {
	l := &store.LogLine{LoggedAt: e.Time, Severity: e.Severity, Message: e.Message}
	// Lines of CapyDB's own maintenance logins stay out of the tenant's
	// view (kept without a database, like server lines).
	if e.Database != "" && !dataplane.IsAgentRole(e.User) {
		l.Database = &e.Database
	}
	if e.SQLState != "" {
		l.SQLState = &e.SQLState
	}
	if e.PID != 0 {
		l.PID = &e.PID
	}
	if e.User != "" {
		l.Username = &e.User
	}
	return l
}

var descReadAge = prometheus.NewDesc("capydb_log_collector_last_read_age_seconds",
	"Seconds since the postgres log collector last read its files and stored what was new (its lag bound).", nil, nil)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- descReadAge }

// Collect implements prometheus.Collector: nothing before the first read.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if at := c.lastRead.Load(); at != 0 {
		ch <- prometheus.MustNewConstMetric(descReadAge, prometheus.GaugeValue, time.Since(time.Unix(0, at)).Seconds())
	}
}
