-- +goose Up
-- Studio: the SQL history of each project (what ran, how long, how many rows,
-- who) and saved snippets. The history keeps the query text, so reading it
-- needs projects:write like running SQL; the audit log keeps only a hash.
-- Numbered 20 (not 7) so concurrent branches adding migrations do not collide.
CREATE TABLE sql_history (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text NOT NULL REFERENCES projects (id),
    query           text NOT NULL,
    statement_kinds text[] NOT NULL DEFAULT '{}',
    read_only       boolean NOT NULL DEFAULT false,
    duration_ms     bigint NOT NULL,
    row_count       bigint NOT NULL,
    error           text,
    actor_kind      text NOT NULL,
    actor_id        text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sql_history_project ON sql_history (project_id, created_at DESC, id DESC);

CREATE TABLE sql_snippets (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    project_id      text NOT NULL REFERENCES projects (id),
    name            text NOT NULL,
    description     text,
    query           text NOT NULL,
    visibility      text NOT NULL CHECK (visibility IN ('user', 'project')),
    author_kind     text NOT NULL,
    author_id       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sql_snippets_project ON sql_snippets (project_id, name, id);

-- +goose Down
DROP TABLE sql_snippets;
DROP TABLE sql_history;
