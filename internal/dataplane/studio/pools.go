package studio

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pools keeps a small connection pool per tenant login, so a request does
// not pay for a connection and SCRAM authentication. Sessions are the
// tenant's own login: they count against its connection limit, so pools
// are tiny and idle sessions close after a minute.
type Pools struct {
	mu    sync.Mutex
	pools map[[32]byte]*entry
	// MaxConns per login (default 2).
	MaxConns int32
	// IdleTime before an idle session (and an unused pool) is closed.
	IdleTime time.Duration
}

type entry struct {
	pool *pgxpool.Pool
	used time.Time
}

// NewPools returns an empty cache.
func NewPools() *Pools { return &Pools{pools: map[[32]byte]*entry{}} }

// With runs fn on a session of dsn. fn reports whether the session is
// still clean; an unclean one is closed instead of reused.
func (p *Pools) With(ctx context.Context, dsn string, fn func(*pgconn.PgConn) (reusable bool, err error)) error {
	pool, err := p.pool(ctx, dsn)
	if err != nil {
		return err
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	reusable, err := fn(c.Conn().PgConn())
	if !reusable {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Conn().Close(cctx)
		cancel()
	}
	c.Release()
	return err
}

func (p *Pools) pool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	key := sha256.Sum256([]byte(dsn))
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	idle := p.IdleTime
	if idle <= 0 {
		idle = time.Minute
	}
	for k, e := range p.pools {
		if k != key && now.Sub(e.used) > 5*idle {
			e.pool.Close()
			delete(p.pools, k)
		}
	}
	if e, ok := p.pools[key]; ok {
		e.used = now
		return e.pool, nil
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = p.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 2
	}
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = idle
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.ConnConfig.RuntimeParams["application_name"] = "capydb studio"
	// The runner uses the wire protocol directly; no statement cache.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	// A request may leave session state behind (SET, SET ROLE, temporary
	// tables, prepared statements, advisory locks, LISTEN): every released
	// session is reset before it goes back to the pool. pgxpool runs this in
	// a goroutine, so the reset is not on the request's path; a session whose
	// reset fails is closed.
	cfg.AfterRelease = func(c *pgx.Conn) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.PgConn().Exec(ctx, "DISCARD ALL").ReadAll()
		return err == nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p.pools[key] = &entry{pool: pool, used: now}
	return pool, nil
}

// Close closes every pool.
func (p *Pools) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.pools {
		e.pool.Close()
		delete(p.pools, k)
	}
}
