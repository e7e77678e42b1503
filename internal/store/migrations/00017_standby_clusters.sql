-- +goose Up
-- Standby clusters and failover (docs/fleet.md, "Standby clusters"): a
-- cluster with replica_of is a hot standby of that cluster, run by its own
-- node (streaming from a physical slot). admin_secret and replication_secret
-- are a primary's superuser and replication passwords, sealed with the
-- secret key: its standbys' nodes need them (a standby is a physical copy,
-- its admin role is the primary's). replication is the primary's last report
-- of its standbys from pg_stat_replication. stopped_at is when a node last
-- shut its cluster down cleanly; failed_over_to names the standby that took
-- over a fenced cluster.
ALTER TABLE clusters
    ADD COLUMN replica_of         text REFERENCES clusters (id),
    ADD COLUMN admin_secret       bytea,
    ADD COLUMN replication_secret bytea,
    ADD COLUMN replication        jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN stopped_at         timestamptz,
    ADD COLUMN failed_over_to     text REFERENCES clusters (id);

-- +goose Down
ALTER TABLE clusters DROP COLUMN replica_of, DROP COLUMN admin_secret, DROP COLUMN replication_secret,
    DROP COLUMN replication, DROP COLUMN stopped_at, DROP COLUMN failed_over_to;
