-- +goose Up
-- The session-mode pgBouncer's port (0: the cluster has none).
ALTER TABLE clusters ADD COLUMN session_port integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE clusters DROP COLUMN session_port;
