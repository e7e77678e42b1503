package observe

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/store"
)

// Defaults of the sampler (PRODUCT.md §17.2).
const (
	DefaultInterval  = time.Minute
	DefaultRetention = 30 * 24 * time.Hour
	pruneBatch       = 5000
)

// Config is what the sampler needs.
type Config struct {
	Store *store.Store
	// Clusters returns the admin handles this process can reach.
	Clusters func() map[string]*dataplane.Cluster
	// Limits returns a plan's limits (lifecycle's plan lookup; tests pass
	// small limits).
	Limits func(billingPlan string) plan.Limits
	// Retention bounds the history (0: DefaultRetention).
	Retention time.Duration
	// ReadOnly is the optional read-only switch at 100 % storage (nil: off).
	ReadOnly ReadOnlyHook
	// Mailer sends alert e-mails (nil: no SMTP configured, none sent).
	Mailer Mailer
	// Logger reports failed e-mails (nil: slog.Default()).
	Logger *slog.Logger
}

// Sampler records every project's metrics each round and evaluates the
// usage alerts from the same reading. Every server runs one; a round is led
// by one server at a time (bgsvc.TryLeadTx).
type Sampler struct {
	*bgsvc.Periodic
	cfg Config
}

// NewSampler builds the sampler service; a zero interval is DefaultInterval.
func NewSampler(cfg Config, pcfg bgsvc.PeriodicConfig) *Sampler {
	pcfg = pcfg.WithDefaults(DefaultInterval, "sampler")
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Limits == nil {
		cfg.Limits = func(name string) plan.Limits {
			if l, err := plan.Lookup(name); err == nil {
				return l
			}
			return plan.Defaults["business"]
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = pcfg.Logger
	}
	s := &Sampler{cfg: cfg}
	s.Periodic = bgsvc.NewPeriodic(pcfg, func(ctx context.Context, now time.Time) int {
		n, err := s.Round(ctx, now)
		if err != nil && ctx.Err() == nil {
			pcfg.Logger.Warn("sampling failed", "error", err)
		}
		return n
	})
	return s
}

// Round samples every project once and evaluates its alerts; it returns how
// many projects it sampled (0 when another server led the round).
func (s *Sampler) Round(ctx context.Context, now time.Time) (int, error) {
	n := 0
	var mails []pendingMail
	err := s.cfg.Store.InTx(ctx, func(tx pgx.Tx) error {
		mails = mails[:0]
		leader, err := bgsvc.TryLeadTx(ctx, tx, "capydb.sampler")
		if err != nil || !leader {
			return err
		}
		targets, err := store.SampleTargets(ctx, tx)
		if err != nil {
			return err
		}
		byCluster := map[string][]store.SampleTarget{}
		ids := make([]string, 0, len(targets))
		for _, t := range targets {
			byCluster[t.ClusterID] = append(byCluster[t.ClusterID], t)
			ids = append(ids, t.ProjectID)
		}
		prev, err := store.LatestRawCounters(ctx, tx, ids, now.Add(-time.Hour))
		if err != nil {
			return err
		}
		openList, err := store.OpenAlerts(ctx, tx, ids)
		if err != nil {
			return err
		}
		open := map[[2]string]*store.Alert{}
		for _, a := range openList {
			open[[2]string{a.ProjectID, a.Kind}] = a
		}
		clusters := s.cfg.Clusters()
		var samples []*store.Sample
		for clusterID, ts := range byCluster {
			c := clusters[clusterID]
			if c == nil {
				continue // another server's cluster
			}
			dbs := make([]string, len(ts))
			for i, t := range ts {
				dbs[i] = t.DatabaseName
			}
			counters, err := c.SampleDatabases(ctx, dbs)
			if err != nil {
				return fmt.Errorf("while sampling cluster %s: %w", clusterID, err)
			}
			for _, t := range ts {
				cur := counters[t.DatabaseName]
				if cur == nil {
					continue // being swapped or dropped right now
				}
				lim := s.cfg.Limits(t.BillingPlan)
				var p *store.RawCounters
				if r, ok := prev[t.ProjectID]; ok {
					p = &r
				}
				samples = append(samples, ComputeSample(t.ProjectID, now, cur, p, lim.MaxConnections, lim.StorageLimitBytes))
				for _, g := range []Gauge{
					{KindStorage, cur.SizeBytes, lim.StorageLimitBytes},
					{KindConnections, int64(cur.Connections), int64(lim.MaxConnections)},
				} {
					if err := evaluate(ctx, tx, now, t, g, open[[2]string{t.ProjectID, g.Kind}], s.cfg.ReadOnly, &mails); err != nil {
						return fmt.Errorf("while evaluating the %s alert of %s: %w", g.Kind, t.ProjectID, err)
					}
				}
			}
		}
		if err := store.InsertSamples(ctx, tx, samples); err != nil {
			return err
		}
		n = len(samples)
		return nil
	})
	if err != nil {
		return n, err
	}
	s.sendMails(ctx, mails)
	_, err = store.PruneSamples(ctx, s.cfg.Store.Pool, now.Add(-s.cfg.Retention), pruneBatch)
	return n, err
}

// sendMails e-mails the committed notifications; a failure is logged (the
// webhook event is the durable notification).
func (s *Sampler) sendMails(ctx context.Context, mails []pendingMail) {
	if s.cfg.Mailer == nil {
		return
	}
	for _, m := range mails {
		to, err := recipients(ctx, s.cfg.Store.Pool, m.orgID)
		if err == nil && len(to) > 0 {
			subject, body := mailText(m.typ, &m.alert)
			err = s.cfg.Mailer.Send(ctx, to, subject, body)
		}
		if err != nil {
			s.cfg.Logger.Warn("sending an alert e-mail failed", "alert_id", m.alert.ID, "error", err)
		}
	}
}
