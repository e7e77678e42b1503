-- +goose Up
-- Logical backups of a project database (user, scheduled, nightly, pre_restore).
CREATE TABLE backups (
    id                  text PRIMARY KEY,
    organization_id     text NOT NULL,
    project_id          text NOT NULL REFERENCES projects (id),
    backup_key          text NOT NULL UNIQUE,
    database_name       text NOT NULL,
    label               text,
    kind                text NOT NULL,
    state               text NOT NULL,
    size_bytes          bigint NOT NULL DEFAULT 0,
    checksum_sha256     text,
    verification_state  text NOT NULL DEFAULT 'pending',
    verified_at         timestamptz,
    verification_error  text,
    -- table_counts is the per-table row count of the dump's snapshot.
    table_counts        jsonb,
    expires_at          timestamptz,
    job_id              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backups_project ON backups (project_id, created_at DESC);
CREATE INDEX backups_due ON backups (expires_at) WHERE state IN ('completed', 'failed');

CREATE TABLE backup_schedules (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text NOT NULL UNIQUE REFERENCES projects (id),
    cron_hour       int NOT NULL CHECK (cron_hour BETWEEN 0 AND 23),
    cron_minute     int NOT NULL CHECK (cron_minute BETWEEN 0 AND 59),
    is_active       boolean NOT NULL,
    label           text NOT NULL DEFAULT '',
    retention_days  int NOT NULL CHECK (retention_days BETWEEN 1 AND 365),
    last_job_id     text,
    last_run_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE restore_points (
    id                    text PRIMARY KEY,
    organization_id       text NOT NULL,
    project_id            text NOT NULL REFERENCES projects (id),
    label                 text NOT NULL,
    kind                  text NOT NULL,
    backup_id             text REFERENCES backups (id),
    pitr_time             timestamptz,
    note                  text,
    created_by_actor_kind text NOT NULL,
    created_by_actor_id   text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE INDEX restore_points_project ON restore_points (project_id, created_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE project_exports (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text NOT NULL REFERENCES projects (id),
    object_key      text NOT NULL UNIQUE,
    database_name   text NOT NULL,
    state           text NOT NULL,
    size_bytes      bigint NOT NULL DEFAULT 0,
    checksum_sha256 text,
    job_id          text,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX project_exports_project ON project_exports (project_id, created_at DESC);

-- Upload slots for imports: one PUT of a dump file per slot.
CREATE TABLE import_uploads (
    object_key      text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text NOT NULL REFERENCES projects (id),
    max_bytes       bigint NOT NULL,
    size_bytes      bigint,
    checksum_sha256 text,
    completed_at    timestamptz,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE import_uploads;
DROP TABLE project_exports;
DROP TABLE restore_points;
DROP TABLE backup_schedules;
DROP TABLE backups;
