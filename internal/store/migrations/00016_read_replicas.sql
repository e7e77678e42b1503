-- +goose Up
-- Read replicas (docs/fleet.md): read_replica_port is the port of the
-- cluster's hot standby (0 = none); a project attached to it gets a
-- read-only URL on that port (one replica per project for now).
ALTER TABLE clusters ADD COLUMN read_replica_port integer NOT NULL DEFAULT 0;
CREATE TABLE project_read_replicas (
    id         text PRIMARY KEY,
    project_id text NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    cluster_id text NOT NULL REFERENCES clusters (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE project_read_replicas;
ALTER TABLE clusters DROP COLUMN read_replica_port;
