-- +goose Up
-- Device logins: the CLI starts one without credentials and polls it with a
-- token whose SHA-256 is all we keep; an admin approves it for an
-- organization; the first poll after approval mints the key (its plaintext is
-- never stored) and records which key was delivered.
CREATE TABLE cli_login_sessions (
    id                 text PRIMARY KEY,
    poll_token_hash    bytea NOT NULL UNIQUE,
    state              text NOT NULL DEFAULT 'pending',
    key_name           text NOT NULL,
    device_name        text,
    source             text NOT NULL,
    scopes             text[] NOT NULL DEFAULT '{}',
    key_expires_at     timestamptz,
    expires_at         timestamptz NOT NULL,
    organization_id    text REFERENCES organizations (id),
    -- granted_scopes are fixed at approval: the requested ones or the approver's.
    granted_scopes     text[],
    approved_by_kind   text,
    approved_by_id     text,
    created_by_user_id text,
    authorized_at      timestamptz,
    api_key_id         text,
    delivered_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cli_login_sessions_expires ON cli_login_sessions (expires_at);

CREATE INDEX api_keys_project ON api_keys (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX audit_events_org ON audit_events (organization_id, created_at DESC);

-- +goose Down
DROP INDEX audit_events_org;
DROP INDEX api_keys_project;
DROP TABLE cli_login_sessions;
