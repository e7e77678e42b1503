package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DropDatabaseIfOwned drops db (terminating its sessions) when it does not
// exist or owner owns it; a database owned by anyone else is never touched.
func (c *Cluster) DropDatabaseIfOwned(ctx context.Context, db, owner string) error {
	dropped, err := c.dropIfOwned(ctx, db, owner)
	if err != nil || !dropped {
		return err
	}
	// A database that existed may be listed in the pooler's configuration
	// (a scratch or build target a sync saw): it must not outlive the drop.
	return c.SyncPooler(ctx)
}

// dropIfOwned is DropDatabaseIfOwned without the pooler sync, for callers
// that sync once afterwards anyway.
func (c *Cluster) dropIfOwned(ctx context.Context, db, owner string) (bool, error) {
	var actual string
	err := c.admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, db).Scan(&actual)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if actual != owner {
		return false, &ForeignObjectError{Msg: fmt.Sprintf("database %s already exists and belongs to %s", db, actual)}
	}
	if _, err := c.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(db)+` WITH (FORCE)`); err != nil {
		return false, fmt.Errorf("while dropping database %s: %w", db, err)
	}
	return true, nil
}

// SwapDatabase puts next in place of main: main's sessions are ended, main
// becomes old, next becomes main, old is dropped. All three must belong to
// owner. RecoverSwap first undoes a swap an earlier attempt left halfway.
func (c *Cluster) SwapDatabase(ctx context.Context, main, next, old, owner string) error {
	if err := c.RecoverSwap(ctx, main, old, owner); err != nil {
		return err
	}
	exists, err := c.DatabaseExists(ctx, main)
	if err != nil {
		return err
	}
	if exists {
		// No new sessions may start on main while it is renamed.
		if _, err := c.admin.Exec(ctx, `ALTER DATABASE `+ident(main)+` ALLOW_CONNECTIONS false`); err != nil {
			return fmt.Errorf("while closing database %s: %w", main, err)
		}
		if err := c.reconnect(ctx, main); err != nil {
			return err
		}
		if _, err := c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, main); err != nil {
			return err
		}
		if err := c.renameWhenIdle(ctx, main, old); err != nil {
			return err
		}
	}
	if err := c.renameWhenIdle(ctx, next, main); err != nil {
		return err
	}
	if _, err := c.dropIfOwned(ctx, old, owner); err != nil {
		return err
	}
	// main keeps its name (and pooler line, if it has one); a line next or
	// old may have got is dropped by the deferred sync, without a RELOAD
	// on a preview's build.
	c.syncPoolerLater()
	return c.reconnect(ctx, main)
}

// renameWhenIdle renames a database, waiting briefly for terminated
// sessions to finish exiting.
func (c *Cluster) renameWhenIdle(ctx context.Context, from, to string) error {
	var err error
	for i := 0; i < 50; i++ {
		_, err = c.admin.Exec(ctx, `ALTER DATABASE `+ident(from)+` RENAME TO `+ident(to))
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			break
		}
		_, _ = c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, from)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("while renaming database %s to %s: %w", from, to, err)
	}
	return nil
}

// RecoverSwap repairs what an interrupted SwapDatabase left: when main is
// missing but old exists, old goes back to being main; when both exist the
// swap had finished and old is dropped. main always accepts connections
// afterwards.
func (c *Cluster) RecoverSwap(ctx context.Context, main, old, owner string) error {
	mainExists, err := c.DatabaseExists(ctx, main)
	if err != nil {
		return err
	}
	oldExists, err := c.DatabaseExists(ctx, old)
	if err != nil {
		return err
	}
	switch {
	case !mainExists && oldExists:
		if err := c.renameWhenIdle(ctx, old, main); err != nil {
			return err
		}
		mainExists = true
	case mainExists && oldExists:
		if err := c.DropDatabaseIfOwned(ctx, old, owner); err != nil {
			return err
		}
	}
	if mainExists {
		if _, err := c.admin.Exec(ctx, `ALTER DATABASE `+ident(main)+` ALLOW_CONNECTIONS true`); err != nil {
			return fmt.Errorf("while reopening database %s: %w", main, err)
		}
	}
	return nil
}
