-- +goose Up
-- A project's network allow-list (docs/network.md). No row: allow all.
CREATE TABLE project_networks (
    project_id       text PRIMARY KEY REFERENCES projects (id),
    allowed_cidrs    text[] NOT NULL,
    allowed_cidrs_v6 text[] NOT NULL,
    -- plaintext lets this project's clients skip TLS; it only takes effect
    -- when the operator started the server with --allow-plaintext.
    plaintext        boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'stored', -- stored | applied
    applied_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Addresses banned from one project after repeated failed logins.
CREATE TABLE network_bans (
    project_id  text NOT NULL REFERENCES projects (id),
    address     inet NOT NULL,
    failures    integer NOT NULL,
    banned_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (project_id, address)
);
CREATE INDEX network_bans_expiry ON network_bans (expires_at);

-- +goose Down
DROP TABLE network_bans;
DROP TABLE project_networks;
