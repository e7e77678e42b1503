-- +goose Up
-- The fleet (docs/fleet.md): a cluster may be run by a `capydb node` on
-- another host. node_role is the control-database login of that node (NULL
-- for the embedded cluster); the node proves it is alive with
-- last_heartbeat_at; ca_pem is the CA its server certificate chains to;
-- max_projects caps placement (0 = no cap).
ALTER TABLE clusters
    ADD COLUMN node_role         text UNIQUE,
    ADD COLUMN last_heartbeat_at timestamptz,
    ADD COLUMN ca_pem            text NOT NULL DEFAULT '',
    ADD COLUMN max_projects      integer NOT NULL DEFAULT 0;
-- move_to is the cluster a project.move is copying the project to; that
-- cluster's node may see the project while it does.
ALTER TABLE projects ADD COLUMN move_to text;
-- Workers claim by cluster: the pending jobs of one cluster.
CREATE INDEX jobs_pending_cluster ON jobs (cluster_id, run_at) WHERE state = 'pending';

-- +goose Down
DROP INDEX jobs_pending_cluster;
ALTER TABLE projects DROP COLUMN move_to;
ALTER TABLE clusters DROP COLUMN node_role, DROP COLUMN last_heartbeat_at, DROP COLUMN ca_pem,
    DROP COLUMN max_projects;
