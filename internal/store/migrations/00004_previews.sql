-- +goose Up
CREATE TABLE preview_databases (
    id                  text PRIMARY KEY,
    organization_id     text NOT NULL,
    project_id          text NOT NULL REFERENCES projects (id),
    cluster_id          text NOT NULL,
    name                text NOT NULL,
    mode                text NOT NULL,
    state               text NOT NULL,
    ttl_expires_at      timestamptz NOT NULL,
    database_name       text NOT NULL,
    role_name           text NOT NULL,
    password_enc        bytea NOT NULL,
    source_kind         text,
    source_database     text,
    source_backup_key   text,
    source_restore_time timestamptz,
    clone_strategy      text,
    clone_duration_ms   bigint,
    last_error          text,
    latest_job_id       text,
    -- delete_reason is why the preview is being deleted: manual or ttl.
    delete_reason       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
-- Names are unique (case-insensitively) among a project's live previews.
CREATE UNIQUE INDEX preview_databases_live_name ON preview_databases (project_id, lower(name))
    WHERE deleted_at IS NULL AND state <> 'deleting';
CREATE UNIQUE INDEX preview_databases_cluster_db ON preview_databases (cluster_id, database_name);
CREATE INDEX preview_databases_project ON preview_databases (project_id, created_at) WHERE deleted_at IS NULL;
-- The TTL reaper's scan.
CREATE INDEX preview_databases_due ON preview_databases (ttl_expires_at) WHERE deleted_at IS NULL AND state <> 'deleting';

-- +goose Down
DROP TABLE preview_databases;
