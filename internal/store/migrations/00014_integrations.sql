-- +goose Up
-- Project integrations (API.md §3.24, PRODUCT.md §23): one row per project
-- and provider. config holds only non-secret settings (it is served as is);
-- secrets_enc is the secretbox-sealed JSON of the provider token, the webhook
-- signing secret and the secret of a hook the server registered.
CREATE TABLE project_integrations (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations (id),
    project_id      text NOT NULL REFERENCES projects (id),
    provider        text NOT NULL CHECK (provider IN ('vercel', 'netlify', 'clerk', 'auth0', 'better_auth')),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'error')),
    external_id     text,
    config          jsonb NOT NULL DEFAULT '{}',
    secrets_enc     bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, provider)
);

-- +goose Down
DROP TABLE project_integrations;
