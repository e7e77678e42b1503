package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SampleTarget is a project the sampler measures, with its organization's plan.
type SampleTarget struct {
	ProjectID      string
	OrganizationID string
	ClusterID      string
	DatabaseName   string
	BillingPlan    string
}

// SampleTargets lists every project with a live database.
func SampleTargets(ctx context.Context, db DB) ([]SampleTarget, error) {
	rows, err := db.Query(ctx, `SELECT p.id, p.organization_id, p.cluster_id, p.database_name, o.billing_plan
		FROM projects p JOIN organizations o ON o.id = p.organization_id
		WHERE p.deleted_at IS NULL AND p.provisioned AND p.state NOT IN ('provisioning', 'deleting')
		ORDER BY p.cluster_id, p.id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SampleTarget, error) {
		var t SampleTarget
		err := r.Scan(&t.ProjectID, &t.OrganizationID, &t.ClusterID, &t.DatabaseName, &t.BillingPlan)
		return t, err
	})
}

// Sample is one observability_samples row.
type Sample struct {
	ProjectID         string
	SampledAt         time.Time
	Connections       int
	ConnectionLimit   int
	ActiveQueries     int
	BlockedQueries    int
	AvgQueryMs        float64
	CacheHitRatio     float64
	RollbackRatio     float64
	Deadlocks         int64
	DeadTuples        int64
	DatabaseSizeBytes int64
	StorageLimitBytes int64
	Raw               RawCounters
}

// RawCounters are the cumulative counters a sample was computed from.
type RawCounters struct {
	XactCommit, XactRollback, BlksHit, BlksRead, Deadlocks, TupDead, StmtCalls int64
	StmtTimeMs                                                                 float64
}

// InsertSamples writes one round's samples in one batch (one round trip).
func InsertSamples(ctx context.Context, tx pgx.Tx, ss []*Sample) error {
	b := &pgx.Batch{}
	for _, s := range ss {
		b.Queue(`INSERT INTO observability_samples (project_id, sampled_at, connections,
		connection_limit, active_queries, blocked_queries, avg_query_ms, cache_hit_ratio, rollback_ratio,
		deadlocks, dead_tuples, database_size_bytes, storage_limit_bytes, raw_xact_commit, raw_xact_rollback,
		raw_blks_hit, raw_blks_read, raw_deadlocks, raw_tup_dead, raw_stmt_calls, raw_stmt_time_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
		ON CONFLICT (project_id, sampled_at) DO NOTHING`, s.ProjectID, s.SampledAt, s.Connections, s.ConnectionLimit,
			s.ActiveQueries, s.BlockedQueries, s.AvgQueryMs, s.CacheHitRatio, s.RollbackRatio, s.Deadlocks, s.DeadTuples,
			s.DatabaseSizeBytes, s.StorageLimitBytes, s.Raw.XactCommit, s.Raw.XactRollback, s.Raw.BlksHit,
			s.Raw.BlksRead, s.Raw.Deadlocks, s.Raw.TupDead, s.Raw.StmtCalls, s.Raw.StmtTimeMs)
	}
	return tx.SendBatch(ctx, b).Close()
}

// LatestRawCounters returns each project's most recent counters and when
// they were read (the previous round of the sampler), if after since.
func LatestRawCounters(ctx context.Context, db DB, projectIDs []string, since time.Time) (map[string]RawCounters, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT ON (project_id) project_id, raw_xact_commit, raw_xact_rollback,
		raw_blks_hit, raw_blks_read, raw_deadlocks, raw_tup_dead, raw_stmt_calls, raw_stmt_time_ms
		FROM observability_samples WHERE project_id = ANY($1) AND sampled_at > $2
		ORDER BY project_id, sampled_at DESC`, projectIDs, since)
	if err != nil {
		return nil, err
	}
	out := map[string]RawCounters{}
	var id string
	var r RawCounters
	_, err = pgx.ForEachRow(rows, []any{&id, &r.XactCommit, &r.XactRollback, &r.BlksHit, &r.BlksRead,
		&r.Deadlocks, &r.TupDead, &r.StmtCalls, &r.StmtTimeMs}, func() error { out[id] = r; return nil })
	return out, err
}

// HistorySamples returns a project's samples since a time, oldest first,
// averaged into at most maxBuckets buckets of neighbouring samples.
func HistorySamples(ctx context.Context, db DB, projectID string, since time.Time, maxBuckets int) ([]*Sample, error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM observability_samples WHERE project_id = $1 AND sampled_at >= $2`,
		projectID, since).Scan(&n); err != nil {
		return nil, err
	}
	per := max(1, (n+maxBuckets-1)/maxBuckets)
	rows, err := db.Query(ctx, `WITH s AS (
		  SELECT *, (row_number() OVER (ORDER BY sampled_at) - 1) / $3 AS b
		  FROM observability_samples WHERE project_id = $1 AND sampled_at >= $2)
		SELECT min(sampled_at), round(avg(connections))::int, round(avg(connection_limit))::int,
		  round(avg(active_queries))::int, round(avg(blocked_queries))::int, avg(avg_query_ms),
		  avg(cache_hit_ratio), avg(rollback_ratio), round(avg(deadlocks))::bigint, round(avg(dead_tuples))::bigint,
		  round(avg(database_size_bytes))::bigint, round(avg(storage_limit_bytes))::bigint
		FROM s GROUP BY b ORDER BY b`, projectID, since, per)
	return collect(rows, err, func(r pgx.Row) (*Sample, error) {
		s := &Sample{ProjectID: projectID}
		err := r.Scan(&s.SampledAt, &s.Connections, &s.ConnectionLimit, &s.ActiveQueries, &s.BlockedQueries,
			&s.AvgQueryMs, &s.CacheHitRatio, &s.RollbackRatio, &s.Deadlocks, &s.DeadTuples,
			&s.DatabaseSizeBytes, &s.StorageLimitBytes)
		return s, err
	})
}

// PruneSamples deletes samples older than cutoff, at most batch rows per
// statement so that no single delete holds locks for long; it returns how
// many it deleted.
func PruneSamples(ctx context.Context, db DB, cutoff time.Time, batch int) (int64, error) {
	var total int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM observability_samples WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM observability_samples WHERE sampled_at < $1 LIMIT $2))`, cutoff, batch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

// DailyStorage is one day of an organization's storage history.
type DailyStorage struct {
	Date  time.Time
	Bytes int64
}

// OrganizationStorageHistory sums, per UTC day since from, the last sample
// of each of the organization's projects that day.
func OrganizationStorageHistory(ctx context.Context, db DB, orgID string, from time.Time) (map[string]int64, error) {
	rows, err := db.Query(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), sum(size)::bigint FROM (
		  SELECT DISTINCT ON (s.project_id, date_trunc('day', s.sampled_at AT TIME ZONE 'UTC'))
		    date_trunc('day', s.sampled_at AT TIME ZONE 'UTC') AS day, s.database_size_bytes AS size
		  FROM observability_samples s JOIN projects p ON p.id = s.project_id
		  WHERE p.organization_id = $1 AND s.sampled_at >= $2
		  ORDER BY s.project_id, date_trunc('day', s.sampled_at AT TIME ZONE 'UTC'), s.sampled_at DESC) d
		GROUP BY day`, orgID, from)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var day string
	var b int64
	_, err = pgx.ForEachRow(rows, []any{&day, &b}, func() error { out[day] = b; return nil })
	return out, err
}

// ProjectUsageRow is one project of an organization's usage.
type ProjectUsageRow struct {
	Project     *Project
	Previews    int
	BackupBytes int64
}

// OrganizationUsageRows lists an organization's live projects with their
// live previews and the bytes of their retained (completed) backups.
func OrganizationUsageRows(ctx context.Context, db DB, orgID string) ([]*ProjectUsageRow, error) {
	rows, err := db.Query(ctx, `SELECT `+prefixed("p.", projectColumns)+`,
		  (SELECT count(*) FROM preview_databases v WHERE v.project_id = p.id AND v.deleted_at IS NULL AND v.state <> 'deleting'),
		  (SELECT coalesce(sum(b.size_bytes), 0)::bigint FROM backups b WHERE b.project_id = p.id AND b.state = 'completed')
		FROM projects p WHERE p.organization_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at, p.id`, orgID)
	return collect(rows, err, func(r pgx.Row) (*ProjectUsageRow, error) {
		u := &ProjectUsageRow{Project: &Project{}}
		p := u.Project
		err := r.Scan(&p.ID, &p.OrganizationID, &p.ClusterID, &p.Name, &p.Slug, &p.Environment, &p.AlwaysOn,
			&p.State, &p.PostgresVersion, &p.DatabaseName, &p.OwnerRole, &p.RoleName, &p.PasswordEnc,
			&p.PendingPasswordEnc, &p.GraceRole, &p.GraceExpiresAt, &p.Provisioned, &p.LatestJobID,
			&p.LastError, &p.CreatedAt, &p.UpdatedAt, &p.DeletedAt, &u.Previews, &u.BackupBytes)
		return u, err
	})
}
