package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogLine is a postgres_logs row.
type LogLine struct {
	ID        int64
	ClusterID string
	Database  *string
	LoggedAt  time.Time
	Severity  string
	SQLState  *string
	PID       *int
	Username  *string
	Message   string
}

// LogPosition reads where a cluster's collector stopped ("" and 0: never ran).
func LogPosition(ctx context.Context, db DB, clusterID string) (string, int64, error) {
	var file string
	var off int64
	err := db.QueryRow(ctx, `SELECT file, "offset" FROM postgres_log_positions WHERE cluster_id = $1`, clusterID).Scan(&file, &off)
	if err == pgx.ErrNoRows {
		return "", 0, nil
	}
	return file, off, err
}

// StoreLogLines writes lines and the position after them in one transaction.
func StoreLogLines(ctx context.Context, tx pgx.Tx, clusterID string, lines []*LogLine, file string, offset int64) error {
	if len(lines) > 0 {
		// One INSERT of arrays, not COPY: a node's login is subject to
		// row-level security, which COPY FROM does not support.
		n := len(lines)
		dbs, states, users := make([]*string, n), make([]*string, n), make([]*string, n)
		sev, msgs, at, pids := make([]string, n), make([]string, n), make([]time.Time, n), make([]*int, n)
		for i, l := range lines {
			dbs[i], at[i], sev[i], states[i], pids[i], users[i], msgs[i] = l.Database, l.LoggedAt, l.Severity, l.SQLState, l.PID, l.Username, l.Message
		}
		if _, err := tx.Exec(ctx, `INSERT INTO postgres_logs (cluster_id, database, logged_at, severity, sqlstate, pid, username, message)
			SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[])`,
			clusterID, dbs, at, sev, states, pids, users, msgs); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO postgres_log_positions (cluster_id, file, "offset") VALUES ($1, $2, $3)
		ON CONFLICT (cluster_id) DO UPDATE SET file = EXCLUDED.file, "offset" = EXCLUDED."offset"`, clusterID, file, offset)
	return err
}

// LogQuery selects a database's lines.
type LogQuery struct {
	ClusterID, Database string
	AfterID             int64     // tail mode: lines after this id
	BeforeID            int64     // search paging (newest first): lines before this id; 0 = none
	Since, Until        time.Time // zero = unbounded
	Severities          []string  // empty = all
	Substring           string    // case-insensitive; "" = any
	SQLStates           []string  // five-character codes
	SQLClasses          []string  // two-character classes
	Limit               int
	NewestFirst         bool
}

// QueryLogLines returns a database's lines; never a line of another
// database nor one without a database.
func QueryLogLines(ctx context.Context, db DB, q LogQuery) ([]*LogLine, error) {
	order := "ASC"
	if q.NewestFirst {
		order = "DESC"
	}
	var since, until *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	if !q.Until.IsZero() {
		until = &q.Until
	}
	rows, err := db.Query(ctx, `SELECT id, cluster_id, database, logged_at, severity, sqlstate, pid, username, message
		FROM postgres_logs
		WHERE cluster_id = $1 AND database = $2 AND id > $3 AND ($4 = 0 OR id < $4)
		  AND ($5::timestamptz IS NULL OR logged_at >= $5) AND ($6::timestamptz IS NULL OR logged_at <= $6)
		  AND (coalesce(cardinality($7::text[]), 0) = 0 OR severity = ANY($7))
		  AND ($8 = '' OR strpos(lower(message), lower($8)) > 0)
		  AND ((coalesce(cardinality($9::text[]), 0) = 0 AND coalesce(cardinality($10::text[]), 0) = 0)
		       OR sqlstate = ANY($9) OR left(sqlstate, 2) = ANY($10))
		ORDER BY id `+order+` LIMIT $11`,
		q.ClusterID, q.Database, q.AfterID, q.BeforeID, since, until, q.Severities, q.Substring,
		q.SQLStates, q.SQLClasses, q.Limit)
	return collect(rows, err, func(r pgx.Row) (*LogLine, error) {
		l := &LogLine{}
		err := r.Scan(&l.ID, &l.ClusterID, &l.Database, &l.LoggedAt, &l.Severity, &l.SQLState, &l.PID, &l.Username, &l.Message)
		return l, err
	})
}

// PruneLogLines deletes lines older than cutoff in batches.
func PruneLogLines(ctx context.Context, db DB, cutoff time.Time, batch int) (int64, error) {
	var total int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM postgres_logs WHERE id = ANY (ARRAY(
			SELECT id FROM postgres_logs WHERE logged_at < $1 LIMIT $2))`, cutoff, batch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
