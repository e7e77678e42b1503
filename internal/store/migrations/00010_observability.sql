-- +goose Up
-- One row per project and sampler round (docs/observability.md): the
-- interval values served by the history route, and the raw cumulative
-- counters the next round subtracts.
CREATE TABLE observability_samples (
    project_id          text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    sampled_at          timestamptz NOT NULL,
    connections         integer NOT NULL,
    connection_limit    integer NOT NULL,
    active_queries      integer NOT NULL,
    blocked_queries     integer NOT NULL,
    avg_query_ms        double precision NOT NULL,
    cache_hit_ratio     double precision NOT NULL,
    rollback_ratio      double precision NOT NULL,
    deadlocks           bigint NOT NULL,
    dead_tuples         bigint NOT NULL,
    database_size_bytes bigint NOT NULL,
    storage_limit_bytes bigint NOT NULL,
    raw_xact_commit     bigint NOT NULL,
    raw_xact_rollback   bigint NOT NULL,
    raw_blks_hit        bigint NOT NULL,
    raw_blks_read       bigint NOT NULL,
    raw_deadlocks       bigint NOT NULL,
    raw_tup_dead        bigint NOT NULL,
    raw_stmt_calls      bigint NOT NULL,
    raw_stmt_time_ms    double precision NOT NULL,
    PRIMARY KEY (project_id, sampled_at)
);
CREATE INDEX observability_samples_sampled_at ON observability_samples (sampled_at);

-- Usage alerts (PRODUCT.md §17.3): at most one open alert per project and kind.
CREATE TABLE project_alerts (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    project_id       text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind             text NOT NULL,
    severity         text NOT NULL,
    observed_value   bigint NOT NULL,
    limit_value      bigint NOT NULL,
    triggered_at     timestamptz NOT NULL,
    last_notified_at timestamptz,
    acknowledged_at  timestamptz,
    resolved_at      timestamptz,
    -- the read-only hook was asked to switch the database to read-only
    readonly         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX project_alerts_one_open ON project_alerts (project_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX project_alerts_project ON project_alerts (project_id, triggered_at DESC);

-- Notification preferences (PRODUCT.md §21.4); no row = defaults.
CREATE TABLE notification_preferences (
    organization_id          text PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    alert_emails_enabled     boolean NOT NULL,
    alert_email_recipients   text[] NOT NULL,
    billing_email_recipients text[] NOT NULL,
    updated_at               timestamptz NOT NULL
);

-- Postgres server log lines (PRODUCT.md §21.1), attributed by database;
-- lines of no database (server lines) keep database NULL and are never served.
CREATE TABLE postgres_logs (
    id         bigserial PRIMARY KEY,
    cluster_id text NOT NULL,
    database   text,
    logged_at  timestamptz NOT NULL,
    severity   text NOT NULL,
    sqlstate   text,
    pid        integer,
    username   text,
    message    text NOT NULL
);
CREATE INDEX postgres_logs_database ON postgres_logs (cluster_id, database, id) WHERE database IS NOT NULL;
CREATE INDEX postgres_logs_logged_at ON postgres_logs (logged_at);

-- Where each cluster's log collector stopped: written in the transaction
-- of the lines it stored, so a restart neither loses nor repeats lines.
CREATE TABLE postgres_log_positions (
    cluster_id text PRIMARY KEY,
    file       text NOT NULL,
    "offset"   bigint NOT NULL
);

-- +goose Down
DROP TABLE postgres_log_positions;
DROP TABLE postgres_logs;
DROP TABLE notification_preferences;
DROP TABLE project_alerts;
DROP TABLE observability_samples;
