-- +goose Up
CREATE TABLE approvals (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text NOT NULL,
    action          text NOT NULL,
    token_hash      bytea NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    job_id          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE approvals;
