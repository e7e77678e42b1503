package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/netrules"
	"github.com/capydb/capydb/internal/store"
)

// BanConfig tunes the ban watcher of one cluster (docs/network.md).
type BanConfig struct {
	ClusterID string
	Threshold int           // failed logins that ban; default 10
	Window    time.Duration // counted within; default 5m
	Duration  time.Duration // ban length; default 30m
	Sweep     time.Duration // how often expired bans are lifted; default min(30s, Duration/4), at least 1s
	Log       *slog.Logger
}

// AuthFailure is a failed password login (SQLSTATE 28P01) seen in a log.
type AuthFailure struct {
	Database string
	Addr     netip.Addr
}

type banKey struct {
	db   string
	addr netip.Addr
}

// BanWatcher counts failed logins per (database, address) and bans an
// address from the database's project once Threshold failures fall within
// Window. The host's own addresses are never counted.
type BanWatcher struct {
	s      *Service
	cfg    BanConfig
	ch     chan AuthFailure
	counts map[banKey][]time.Time
}

// NewBanWatcher fills cfg's defaults.
func NewBanWatcher(s *Service, cfg BanConfig) *BanWatcher {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 10
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 30 * time.Minute
	}
	if cfg.Sweep <= 0 {
		// Short bans (tests, strict operators) are lifted close to on time.
		cfg.Sweep = min(30*time.Second, max(cfg.Duration/4, time.Second))
	}
	if cfg.Log == nil {
		cfg.Log = s.Log
	}
	return &BanWatcher{s: s, cfg: cfg, ch: make(chan AuthFailure, 4096), counts: map[banKey][]time.Time{}}
}

// Observe hands a failure to the watcher without blocking the log reader;
// when the queue is full the failure is dropped.
func (w *BanWatcher) Observe(f AuthFailure) {
	select {
	case w.ch <- f:
	default:
	}
}

// Run counts failures and lifts expired bans until ctx ends.
func (w *BanWatcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-w.ch:
			w.count(ctx, f)
		case <-t.C:
			w.sweep(ctx)
		}
	}
}

func (w *BanWatcher) count(ctx context.Context, f AuthFailure) {
	addr := f.Addr.Unmap()
	if !addr.IsValid() || netrules.IsHost(addr) || !netrules.SafeDatabase(f.Database) {
		return
	}
	k := banKey{f.Database, addr}
	now := time.Now()
	recent := w.counts[k][:0]
	for _, at := range w.counts[k] {
		if now.Sub(at) < w.cfg.Window {
			recent = append(recent, at)
		}
	}
	recent = append(recent, now)
	if len(recent) < w.cfg.Threshold {
		w.counts[k] = recent
		return
	}
	delete(w.counts, k)
	projectID, err := store.ProjectIDByDatabase(ctx, w.s.Store.Pool, w.cfg.ClusterID, f.Database)
	if errors.Is(err, store.ErrNotFound) {
		return // not a project's or preview's database (e.g. a name that does not exist)
	}
	if err == nil {
		// The ban is listed only once both HBA files refuse the address.
		err = w.s.Store.InTx(ctx, func(tx pgx.Tx) error {
			if err := store.InsertBan(ctx, tx, projectID, addr, len(recent), now.Add(w.cfg.Duration)); err != nil {
				return err
			}
			return w.s.applyNetwork(ctx, tx, w.cfg.ClusterID)
		})
	}
	if err != nil {
		w.cfg.Log.Error("could not ban an address after failed logins", "project_id", projectID, "address", addr, "error", err)
		return
	}
	w.cfg.Log.Warn("banned an address after repeated failed logins", "project_id", projectID, "address", addr,
		"failures", len(recent), "until", now.Add(w.cfg.Duration).UTC().Format(time.RFC3339))
}

// sweep lifts expired bans and forgets stale counters.
func (w *BanWatcher) sweep(ctx context.Context) {
	now := time.Now()
	for k, ts := range w.counts {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= w.cfg.Window {
			delete(w.counts, k)
		}
	}
	clusters, err := store.DeleteExpiredBans(ctx, w.s.Store.Pool)
	if err != nil {
		w.cfg.Log.Error("could not lift expired bans", "error", err)
		return
	}
	for _, id := range clusters {
		if id != w.cfg.ClusterID {
			continue
		}
		if err := w.s.ApplyNetwork(ctx, id); err != nil {
			w.cfg.Log.Error("could not lift expired bans", "cluster_id", id, "error", err)
		}
	}
}
