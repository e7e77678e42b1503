-- +goose Up
CREATE TABLE webhook_endpoints (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations (id),
    url             text NOT NULL,
    description     text,
    -- Empty = every catalogue event.
    event_types     text[] NOT NULL DEFAULT '{}',
    is_active       boolean NOT NULL DEFAULT true,
    -- The whsec_ signing secret, sealed with secretbox (AES-256-GCM).
    secret_enc      bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id, created_at);

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    -- Deleting an endpoint cancels (removes) its deliveries.
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    -- The exact envelope posted: json (not jsonb) keeps its bytes as written.
    payload         json NOT NULL,
    -- event (fan-out from the outbox), test, or redeliver.
    source          text NOT NULL DEFAULT 'event',
    redelivery_of   text,
    state           text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL,
    -- Attempts that ended in a failure (attempts also counts one in flight).
    failures        integer NOT NULL DEFAULT 0,
    response_status integer,
    last_error      text,
    -- Due time of the next attempt. A claim pushes it past the attempt's
    -- timeout, so an attempt whose server died becomes due again by itself.
    next_attempt_at timestamptz,
    claimed_by      text,
    delivered_at    timestamptz,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Fan-out is idempotent: one delivery per endpoint and outbox event.
CREATE UNIQUE INDEX webhook_deliveries_event_once ON webhook_deliveries (endpoint_id, event_id) WHERE source = 'event';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
-- Endpoint health: the latest finished delivery, and pending ones failing repeatedly.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (endpoint_id, finished_at DESC) WHERE finished_at IS NOT NULL;
CREATE INDEX webhook_deliveries_struggling ON webhook_deliveries (endpoint_id) WHERE state = 'pending' AND failures >= 3;
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

-- Outbox progress: an event is fanned out to endpoints exactly once.
ALTER TABLE events ADD COLUMN webhooks_dispatched_at timestamptz;
-- Events written before webhooks existed have nobody to go to.
UPDATE events SET webhooks_dispatched_at = created_at;
CREATE INDEX events_webhooks_pending ON events (created_at) WHERE webhooks_dispatched_at IS NULL;

-- Wake the webhook dispatchers when events commit (whoever writes them).
-- +goose StatementBegin
CREATE FUNCTION capydb_notify_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('capydb_webhooks', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER events_notify_webhooks AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION capydb_notify_webhooks();

-- +goose Down
DROP TRIGGER events_notify_webhooks ON events;
DROP FUNCTION capydb_notify_webhooks();
DROP INDEX events_webhooks_pending;
ALTER TABLE events DROP COLUMN webhooks_dispatched_at;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
