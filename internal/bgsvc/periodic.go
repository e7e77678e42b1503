package bgsvc

import (
	"context"
	"log/slog"
	"time"
)

// PeriodicConfig is what every periodic service (reaper, scheduler,
// sampler) is configured with. Zero values get defaults (WithDefaults).
type PeriodicConfig struct {
	Interval time.Duration // between rounds; the service names its default
	Clock    Clock         // nil: the real time
	Logger   *slog.Logger  // nil: slog.Default()
}

// WithDefaults fills a zero Interval with def and a nil Logger with
// slog.Default(), and tags the logger with the service's component name.
func (c PeriodicConfig) WithDefaults(def time.Duration, component string) PeriodicConfig {
	Default(&c.Interval, def)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("component", component)
	return c
}

// Periodic is a service that runs a round at once and then every interval,
// each at one reading of its clock. The round returns how much it did (for
// the Round test signal) and logs its own trouble.
type Periodic struct {
	cfg   PeriodicConfig
	round func(ctx context.Context, now time.Time) int

	// TestSignals may be armed by tests before Run.
	TestSignals struct {
		// Round fires after each round with what the round returned.
		Round Signal[int]
	}
}

// NewPeriodic builds a periodic service; cfg should have its defaults.
func NewPeriodic(cfg PeriodicConfig, round func(ctx context.Context, now time.Time) int) *Periodic {
	return &Periodic{cfg: cfg, round: round}
}

// Run runs rounds until ctx is cancelled.
func (p *Periodic) Run(ctx context.Context) error {
	Every(ctx, p.cfg.Interval, func(ctx context.Context) {
		p.TestSignals.Round.Send(p.round(ctx, p.cfg.Clock.Now()))
	})
	return nil
}
