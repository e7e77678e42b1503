-- +goose Up
-- The Supabase-compatible facade (/api/supabase/v1, docs/supabase-compatibility.md).

-- supabase_ref makes a Supabase project ref: 20 random lower-case letters
-- (the Supabase CLI's ^[a-z]{20}$). Refs are public names, not secrets.
-- +goose StatementBegin
CREATE FUNCTION capydb_supabase_ref() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(chr(97 + floor(random() * 26)::int), '') FROM generate_series(1, 20)
$$;
-- +goose StatementEnd

-- Every project has a ref, an integer id (Supabase's V1ProjectRefResponse.id
-- is an integer) and the UUID of its default branch; the columns fill
-- existing rows too.
ALTER TABLE projects
    ADD COLUMN supabase_ref       text   NOT NULL DEFAULT capydb_supabase_ref(),
    ADD COLUMN supabase_number    bigserial,
    ADD COLUMN supabase_branch_id uuid   NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX projects_supabase_ref ON projects (supabase_ref);
CREATE UNIQUE INDEX projects_supabase_branch ON projects (supabase_branch_id);

-- Previews are Supabase branches: a ref, a UUID and the branch's metadata
-- (branch_name, git_branch, persistent, reset_on_push, notify_url, status).
-- protected previews never expire (the TTL reaper skips them).
ALTER TABLE preview_databases
    ADD COLUMN supabase_ref       text    NOT NULL DEFAULT capydb_supabase_ref(),
    ADD COLUMN supabase_branch_id uuid    NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN supabase_meta      jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN protected          boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX preview_databases_supabase_ref ON preview_databases (supabase_ref);
CREATE UNIQUE INDEX preview_databases_supabase_branch ON preview_databases (supabase_branch_id);

-- Supabase's CLI accepts only access tokens shaped sbp_<40 hex>: such a
-- token is an alias of one CapyDB API key (kept as both hashes), so it has
-- exactly that key's scopes, project and lifetime.
CREATE TABLE supabase_access_tokens (
    token_hash bytea PRIMARY KEY,
    key_hash   bytea NOT NULL REFERENCES api_keys (key_hash) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE supabase_access_tokens;
ALTER TABLE preview_databases DROP COLUMN protected, DROP COLUMN supabase_meta,
    DROP COLUMN supabase_branch_id, DROP COLUMN supabase_ref;
ALTER TABLE projects DROP COLUMN supabase_branch_id, DROP COLUMN supabase_number, DROP COLUMN supabase_ref;
DROP FUNCTION capydb_supabase_ref();
