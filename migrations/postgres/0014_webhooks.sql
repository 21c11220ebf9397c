-- Webhooks (app/src/domain/webhooks/): endpoints that hear about changes,
-- and the outbox of their deliveries. A delivery row is written in the
-- same transaction as the audit event it announces, so a crash between
-- the commit and the send loses nothing; its payload is read from that
-- event when it is sent.

CREATE TABLE webhook_endpoints (
    id              TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    -- Event names, comma-separated, or '*' for every event.
    events          TEXT    NOT NULL,
    -- The signing secret, sealed with the master key (it must be read
    -- back to sign, so it cannot be stored as a digest).
    secret_sealed   BYTEA   NOT NULL,
    enabled         BIGINT  NOT NULL DEFAULT 1,
    -- Why it was disabled, when Keyward disabled it (24 hours of failures).
    disabled_reason TEXT,
    -- The first failed delivery since the last one that succeeded.
    failing_since   BIGINT,
    created_at      BIGINT  NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE webhook_deliveries (
    id            TEXT    PRIMARY KEY,
    endpoint_id   TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The audit event announced (its seq), and the webhook event's name.
    seq           BIGINT  NOT NULL,
    event         TEXT    NOT NULL,
    -- pending, delivered, failed (gave up after 24 hours) or cancelled
    -- (the endpoint was disabled first).
    state         TEXT    NOT NULL,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    next_at       BIGINT  NOT NULL,
    -- An instance sending it holds it until then; one that died holding
    -- it lets it go when this passes.
    lease_until   BIGINT  NOT NULL DEFAULT 0,
    last_at       BIGINT,
    response_code BIGINT,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
-- The claim's pick of each endpoint's oldest due delivery.
CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, state, next_at, id);

-- Expiry announcements made (admin tokens, certificates): each stage
-- (30, 7, 1 days ahead; expired) once, whichever instance makes it.
CREATE TABLE expiry_notices (
    subject TEXT   NOT NULL,
    stage   TEXT   NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (subject, stage)
);
