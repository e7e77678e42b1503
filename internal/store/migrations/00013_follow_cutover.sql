-- +goose Up
-- Follow imports (PRODUCT.md §14.4): one row while a project follows a
-- source. name is the publication's, slot's and subscription's name; the
-- source URL (it holds a password) is encrypted.
CREATE TABLE project_follows (
    project_id      text PRIMARY KEY REFERENCES projects (id),
    organization_id text NOT NULL REFERENCES organizations (id),
    name            text NOT NULL,
    source_url_enc  bytea NOT NULL,
    streaming       boolean NOT NULL DEFAULT false,
    start_job_id    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Cutover requests (PRODUCT.md §22): a tenant asks to promote a preview;
-- an operator acknowledges or rejects it and executes it.
CREATE TABLE cutover_requests (
    id                      text PRIMARY KEY,
    organization_id         text NOT NULL REFERENCES organizations (id),
    project_id              text NOT NULL REFERENCES projects (id),
    preview_database_id     text NOT NULL REFERENCES preview_databases (id),
    status                  text NOT NULL CHECK (status IN ('open', 'acked', 'rejected', 'completed')),
    customer_note           text,
    external_ticket_ref     text,
    operator_note           text,
    rejected_reason         text,
    requested_by_actor_kind text NOT NULL,
    requested_by_actor_id   text,
    ack_by_user_id          text,
    ack_at                  timestamptz,
    pre_cutover_backup_id   text,
    promote_job_id          text,
    completed_at            timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cutover_requests_project ON cutover_requests (project_id, created_at DESC);
-- One open or acknowledged request per preview.
CREATE UNIQUE INDEX cutover_requests_one_live ON cutover_requests (preview_database_id)
    WHERE status IN ('open', 'acked');

-- +goose Down
DROP TABLE cutover_requests;
DROP TABLE project_follows;
