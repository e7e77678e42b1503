package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/scram"
)

// The warm pool hides CREATE DATABASE from a provision's wait: databases
// made ahead of time from the template, each owned by a role of the same
// name, that a provision claims in one transaction by renaming both and
// giving the role its login, password, limit and timeouts.
//
// An entry is unclaimable until its comment names the template it was made
// from (warmGeneration): it is owned by a NOLOGIN role, CONNECT is revoked
// from PUBLIC, it allows no connections at all, and no pgBouncer file
// lists it. A claim is one transaction,
// so a crash mid-claim rolls it back and the entry stays in the pool; two
// claimers never get the same entry (an advisory lock per entry, which the
// refiller's drops take too). Entries made from an older template (its OID
// or its default extensions changed) are dropped and rebuilt.

// WarmPrefix names warm entries: the database and its owner role.
const WarmPrefix = "capydb_warm_"

// warmGeneration is the SQL value a ready entry's comment carries: the
// template's OID and its note (the default extensions it was made with).
const warmGeneration = `(SELECT 'capydb warm ' OPERATOR(pg_catalog.||) t.oid::pg_catalog.text OPERATOR(pg_catalog.||) ' '
	OPERATOR(pg_catalog.||) coalesce(pg_catalog.shobj_description(t.oid, 'pg_database'), '')
	FROM pg_catalog.pg_database t WHERE t.datname OPERATOR(pg_catalog.=) 'capydb_template')`

// WarmPool keeps Size ready entries on a cluster.
type WarmPool struct {
	c    *Cluster
	size int
	log  *slog.Logger
	wake chan struct{}
	// lastClaim (unix nanos) holds refills back while provisions arrive:
	// a CREATE DATABASE beside a burst would slow the burst down.
	lastClaim atomic.Int64
	// Quiet is how long after the last claim refilling waits.
	Quiet time.Duration
	// Interval is how often the pool is checked without a wake-up.
	Interval time.Duration
}

// EnableWarmPool makes provisions on c claim warm entries; Run keeps the
// pool filled. size 0 empties the pool and turns claiming off.
func (c *Cluster) EnableWarmPool(size int, log *slog.Logger) *WarmPool {
	if log == nil {
		log = slog.Default()
	}
	w := &WarmPool{c: c, size: max(size, 0), log: log.With("component", "warm-pool"), wake: make(chan struct{}, 1),
		Quiet: time.Second, Interval: 10 * time.Second}
	if size > 0 {
		c.warm = w
	}
	return w
}

// Run refills the pool until ctx ends.
func (w *WarmPool) Run(ctx context.Context) error {
	for {
		wait := w.Interval
		ready, err := w.sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			w.log.Warn("could not check the warm pool", "error", err)
		case ready < w.size:
			if quiet := time.Since(time.Unix(0, w.lastClaim.Load())); quiet < w.Quiet {
				wait = w.Quiet - quiet
				break
			}
			if err := w.fillOne(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("could not make a warm database", "error", err)
			} else {
				wait = 0
			}
		}
		if wait == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-time.After(wait):
		}
	}
}

func (w *WarmPool) claimed() {
	w.lastClaim.Store(time.Now().UnixNano())
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// warmEntry is one database of the pool as the sweep sees it.
type warmEntry struct {
	name  string
	ready bool // made from the current template
	hasDB bool // false: a role whose fill stopped before its database
}

// sweep drops entries of an older template, leftovers of fills that
// stopped half-way (crash) and entries beyond the size; it reports how
// many ready entries remain. An entry someone holds (a fill or a claim
// under way) is left alone.
func (w *WarmPool) sweep(ctx context.Context) (int, error) {
	rows, err := w.c.admin.Query(ctx, `
		SELECT r.rolname::text, d.oid IS NOT NULL,
		       coalesce(pg_catalog.shobj_description(d.oid, 'pg_database') OPERATOR(pg_catalog.=) `+warmGeneration+`, false)
		FROM pg_catalog.pg_roles r
		LEFT JOIN pg_catalog.pg_database d ON d.datname OPERATOR(pg_catalog.=) r.rolname
		WHERE r.rolname LIKE 'capydb\_warm\_%'
		UNION ALL
		SELECT d.datname::text, true, false FROM pg_catalog.pg_database d
		WHERE d.datname LIKE 'capydb\_warm\_%'
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) d.datname)
		ORDER BY 1`)
	if err != nil {
		return 0, err
	}
	var entries []warmEntry
	var e warmEntry
	if _, err := pgx.ForEachRow(rows, []any{&e.name, &e.hasDB, &e.ready}, func() error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		return 0, err
	}
	ready := 0
	for _, e := range entries {
		if e.ready && ready < w.size {
			ready++
			continue
		}
		if err := w.drop(ctx, e.name); err != nil {
			return ready, err
		}
	}
	return ready, nil
}

// drop removes one entry unless someone holds it.
func (w *WarmPool) drop(ctx context.Context, name string) error {
	conn, err := w.c.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1))`, name).Scan(&got); err != nil || !got {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1))`, name) //nolint:errcheck
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(name)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("while dropping warm database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `DROP ROLE IF EXISTS `+ident(name)); err != nil {
		return fmt.Errorf("while dropping warm role %s: %w", name, err)
	}
	return nil
}

// fillOne makes one entry: the role, the database from the template, the
// trusted default extensions handed to the role (as CreateTenant does),
// CONNECT revoked, and last the comment that makes it claimable.
func (w *WarmPool) fillOne(ctx context.Context) error {
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	name := WarmPrefix + hex.EncodeToString(buf)
	conn, err := w.c.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1))`, name); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1))`, name) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE ROLE `+ident(name)+` NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident(name)+` OWNER `+ident(name)+` TEMPLATE `+ident(TemplateDatabase)); err != nil {
		return err
	}
	if err := w.c.adoptExtensions(ctx, name, name, ""); err != nil {
		return err
	}
	// Closed to connections until claimed: autovacuum then leaves it alone
	// (a worker inside would hold up the claim's RENAME for up to 5 s).
	if _, err := conn.Exec(ctx, `REVOKE ALL ON DATABASE `+ident(name)+` FROM PUBLIC`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+ident(name)+` WITH ALLOW_CONNECTIONS false`); err != nil {
		return err
	}
	// COMMENT takes no expression: read the generation first. A template
	// change in between makes the entry stale, and the next sweep drops it.
	var gen string
	if err := conn.QueryRow(ctx, `SELECT `+warmGeneration).Scan(&gen); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `COMMENT ON DATABASE `+ident(name)+` IS `+literal(gen))
	return err
}

// errWarmEmpty is raised by the claim block when no entry is ready.
const warmEmptyState = "P0002"

// claimWarm turns a ready entry into t's database and role in one
// transaction, in two round trips (the block, then COMMIT). It reports
// false when the pool has no ready entry. The caller has checked that
// neither t.Role nor t.Database exists.
func (c *Cluster) claimWarm(ctx context.Context, t Tenant) (bool, error) {
	verifier, err := scram.Verifier(t.Password)
	if err != nil {
		return false, err
	}
	conn, err := c.admin.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	// The names only enter the block as quoted literals; the entry's
	// name comes from pg_database. OFFSET 0 keeps the lock call from being
	// evaluated on entries that are not ready.
	// The candidate list is read with the statement's snapshot: an entry
	// another claim has just renamed (and unlocked, by committing) still
	// shows there, so the entry is looked up again, with a new snapshot,
	// once its lock is held.
	sql := `BEGIN; DO $capydb$ DECLARE w text; BEGIN
		FOR i IN 1..50 LOOP
		  SELECT e.datname INTO w FROM (
		    SELECT d.datname FROM pg_catalog.pg_database d
		    WHERE d.datname LIKE 'capydb\_warm\_%'
		      AND pg_catalog.shobj_description(d.oid, 'pg_database') OPERATOR(pg_catalog.=) ` + warmGeneration + `
		    ORDER BY d.datname OFFSET 0) e
		  WHERE pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext(e.datname)) LIMIT 1;
		  EXIT WHEN w IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_database d
		    WHERE d.datname OPERATOR(pg_catalog.=) w
		      AND pg_catalog.shobj_description(d.oid, 'pg_database') OPERATOR(pg_catalog.=) ` + warmGeneration + `);
		  w := NULL;
		END LOOP;
		IF w IS NULL THEN RAISE EXCEPTION 'capydb: the warm pool is empty' USING ERRCODE = '` + warmEmptyState + `'; END IF;
		EXECUTE pg_catalog.format('ALTER DATABASE %I RENAME TO %I', w, ` + literal(t.Database) + `);
		EXECUTE pg_catalog.format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS true', ` + literal(t.Database) + `);
		EXECUTE pg_catalog.format('ALTER ROLE %I RENAME TO %I', w, ` + literal(t.Role) + `);
		END $capydb$;
		COMMENT ON DATABASE ` + ident(t.Database) + ` IS NULL;
		ALTER ROLE ` + ident(t.Role) + fmt.Sprintf(` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT %d PASSWORD `, t.ConnectionLimit) + literal(verifier) + `;
		ALTER ROLE ` + ident(t.Role) + ` SET statement_timeout = ` + literal(t.StatementTimeout) + `;
		ALTER ROLE ` + ident(t.Role) + ` SET idle_in_transaction_session_timeout = ` + literal(t.IdleTransactionTimeout)
	if _, err := conn.Exec(ctx, sql); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == warmEmptyState {
			return false, nil
		}
		return false, fmt.Errorf("while claiming a warm database for %s: %w", t.Database, err)
	}
	c.crashPoint("warm-claim")
	if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		return false, fmt.Errorf("while claiming a warm database for %s: %w", t.Database, err)
	}
	c.warm.claimed()
	return true, nil
}

// crashPoint kills the process at a named point when a test asked for it
// (--unsafe-crash-at); a no-op otherwise.
func (c *Cluster) crashPoint(name string) {
	if c.crashAt != nil {
		c.crashAt(name)
	}
}
