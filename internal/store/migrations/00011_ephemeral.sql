-- +goose Up
-- Ephemeral databases (PRODUCT.md §24): a project of the operator-owned
-- organization org_ephemeral, created without an account. The claim token is
-- kept only as its SHA-256; owner_key is what the cap counts by ("addr:<ip>"
-- or "org:<id>").
CREATE TABLE ephemeral_databases (
    project_id       text PRIMARY KEY REFERENCES projects (id),
    claim_token_hash bytea NOT NULL UNIQUE,
    owner_key        text NOT NULL,
    expires_at       timestamptz NOT NULL,
    claimed_at       timestamptz,
    claimed_by_org   text REFERENCES organizations (id),
    destroyed_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ephemeral_databases_open ON ephemeral_databases (owner_key, expires_at)
    WHERE claimed_at IS NULL AND destroyed_at IS NULL;

-- +goose Down
DROP TABLE ephemeral_databases;
