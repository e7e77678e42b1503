-- +goose Up
CREATE TABLE organizations (
    id                      text PRIMARY KEY,
    name                    text NOT NULL,
    slug                    text NOT NULL UNIQUE,
    billing_plan            text NOT NULL DEFAULT 'business',
    billing_email           text,
    clerk_organization_id   text UNIQUE,
    clerk_organization_slug text,
    suspended_at            timestamptz,
    suspended_reason        text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id                 text PRIMARY KEY,
    organization_id    text NOT NULL REFERENCES organizations (id),
    name               text NOT NULL,
    key_hash           bytea NOT NULL UNIQUE,
    key_prefix         text NOT NULL,
    scopes             text[] NOT NULL,
    project_id         text,
    expires_at         timestamptz,
    device_name        text,
    source             text NOT NULL DEFAULT 'api',
    created_by_user_id text,
    last_used_at       timestamptz,
    revoked_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org ON api_keys (organization_id, created_at DESC);

CREATE TABLE clusters (
    id               text PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    provider         text NOT NULL,
    region           text NOT NULL,
    public_host      text NOT NULL,
    direct_port      integer NOT NULL,
    pooled_port      integer NOT NULL,
    postgres_version text NOT NULL,
    state            text NOT NULL DEFAULT 'active',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id                 text PRIMARY KEY,
    organization_id    text NOT NULL REFERENCES organizations (id),
    cluster_id         text NOT NULL REFERENCES clusters (id),
    name               text NOT NULL,
    slug               text NOT NULL,
    environment        text NOT NULL,
    always_on          boolean NOT NULL,
    state              text NOT NULL,
    postgres_version   text NOT NULL,
    database_name      text NOT NULL,
    -- owner_role owns the database; role_name is the login in the URLs (it
    -- differs from owner_role after a rotation with a grace window).
    owner_role         text NOT NULL,
    role_name          text NOT NULL,
    password_enc       bytea NOT NULL,
    -- pending_password_enc holds the password a running rotation is setting,
    -- so a retried rotation reuses it instead of minting another.
    pending_password_enc bytea,
    -- grace_role is the previous login that keeps working until grace_expires_at.
    grace_role         text,
    grace_expires_at   timestamptz,
    provisioned        boolean NOT NULL DEFAULT false,
    latest_job_id      text,
    last_error         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE UNIQUE INDEX projects_org_slug ON projects (organization_id, slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX projects_cluster_db ON projects (cluster_id, database_name);
CREATE INDEX projects_org ON projects (organization_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE jobs (
    id                   text PRIMARY KEY,
    type                 text NOT NULL,
    state                text NOT NULL DEFAULT 'pending',
    organization_id      text NOT NULL,
    project_id           text,
    preview_database_id  text,
    cluster_id           text,
    attempts             integer NOT NULL DEFAULT 0,
    max_attempts         integer NOT NULL DEFAULT 5,
    retry_classification text NOT NULL DEFAULT '',
    error                text,
    last_exit_code       integer,
    last_stdout          text,
    last_stderr          text,
    locked_resource      text,
    claimed_by           text,
    claimed_at           timestamptz,
    lease_expires_at     timestamptz,
    started_at           timestamptz,
    completed_at         timestamptz,
    run_at               timestamptz NOT NULL DEFAULT now(),
    payload              jsonb NOT NULL DEFAULT '{}',
    result               jsonb,
    progress             jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- The database itself guarantees at most one running job per locked resource.
CREATE UNIQUE INDEX jobs_one_running_per_resource ON jobs (locked_resource) WHERE state = 'running';
CREATE INDEX jobs_pending ON jobs (run_at, created_at) WHERE state = 'pending';
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_project ON jobs (project_id, created_at DESC);

-- Outbox: lifecycle events, written in the same transaction as the state change.
CREATE TABLE events (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    type            text NOT NULL,
    data            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_org ON events (organization_id, created_at);

CREATE TABLE audit_events (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text,
    action          text NOT NULL,
    actor_kind      text NOT NULL,
    actor_id        text,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_project ON audit_events (project_id, created_at DESC);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE events;
DROP TABLE jobs;
DROP TABLE projects;
DROP TABLE clusters;
DROP TABLE api_keys;
DROP TABLE organizations;
