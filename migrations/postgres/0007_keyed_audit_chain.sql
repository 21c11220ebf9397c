-- The audit chain is keyed (HMAC with a key derived from the master key,
-- which lives outside the database): whoever can write the database can
-- no longer edit an event and recompute the chain. A new database starts
-- keyed. One with events from before stays `keyed = 0` until the operator
-- runs `keyward audit rekey` once (the server refuses to start until
-- then); until then, and only then, an event's hash (and nothing else) may
-- be rewritten. `key_check` is a MAC of a constant under the chain's key:
-- a process holding another master key is refused instead of writing a
-- chain nobody can verify.
ALTER TABLE audit_head ADD COLUMN keyed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN key_check BYTEA;
UPDATE audit_head SET keyed = 1 WHERE NOT EXISTS (SELECT 1 FROM audit_events);

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (SELECT keyed FROM audit_head WHERE id = 1) = 0
       AND (NEW.seq, NEW.at, NEW.actor, NEW.action, NEW.target, NEW.detail, NEW.source)
           IS NOT DISTINCT FROM (OLD.seq, OLD.at, OLD.actor, OLD.action, OLD.target, OLD.detail, OLD.source)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;

-- A presented access token that the in-memory filter flags as logged out
-- is looked up by its session id.
CREATE INDEX revocations_subject ON revocations (subject);

-- Addresses each admin (by username digest) signed in from lately: spared
-- the username's sign-in backoff, so guessing from elsewhere cannot keep
-- an admin out of their usual place.
CREATE TABLE login_known_addresses (
    subject TEXT    PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

-- Expired logouts are deleted in batches every minute, found by index
-- (the table holds every logout of the last 30 days).
CREATE INDEX revocations_expires ON revocations (expires_at);
