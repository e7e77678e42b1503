package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// tryTemplateCopy clones with CREATE DATABASE … TEMPLATE when the source has
// no sessions. New connections to the source wait (they do not fail) while
// the copy holds its lock; one that slipped in before the lock makes CREATE
// DATABASE fail, and the caller falls back to a snapshot copy.
func (c *Cluster) tryTemplateCopy(ctx context.Context, p BuildParams, forced bool, st *steps) (bool, int64, error) {
	var sessions, prepared int
	// A client that just disconnected is still listed while its backend
	// exits: give such sessions a moment before settling for a snapshot copy.
	for i := 0; i < 5; i++ {
		// Autovacuum workers do not count: CREATE DATABASE stops them itself
		// (they are common right after a bulk load, when a clone is likely).
		if err := c.admin.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM pg_stat_activity WHERE datname = $1
				   AND backend_type IS DISTINCT FROM 'autovacuum worker'),
				(SELECT count(*) FROM pg_prepared_xacts WHERE database = $1)`, p.Source).Scan(&sessions, &prepared); err != nil {
			return false, 0, err
		}
		if sessions+prepared == 0 {
			break
		}
		time.Sleep(40 * time.Millisecond)
	}
	if sessions+prepared > 0 {
		if forced {
			return false, 0, fmt.Errorf("source database %s has %d sessions; a template copy needs none", p.Source, sessions+prepared)
		}
		return false, 0, nil
	}
	st.lap("wait_idle")
	var total int64
	_ = c.admin.QueryRow(ctx, `SELECT pg_database_size($1)`, p.Source).Scan(&total)
	p.Progress(CloneProgress{Phase: PhaseCopying, BytesTotal: total})
	st.lap("source_size")
	_, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+
		` TEMPLATE `+ident(p.Source)+` STRATEGY `+c.clone.TemplateStrategy)
	st.lap("create_database")
	if err == nil {
		return true, total, nil
	}
	var pgErr *pgconn.PgError
	if !forced && errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use: a session arrived
		p.Log.Info("template clone raced with a new session; using a snapshot copy", "source", p.Source)
		return false, 0, c.DropDatabaseIfOwned(ctx, p.Target, p.Owner)
	}
	return false, 0, fmt.Errorf("while copying %s with a template copy: %w", p.Source, err)
}
