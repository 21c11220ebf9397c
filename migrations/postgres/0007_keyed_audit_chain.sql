-- The audit chain is keyed (HMAC with a key derived from the master key,
-- which lives outside the database): whoever can write the database can
-- no longer edit an event and recompute the chain. `keyed` is 0 until
-- Keyward has re-hashed the events written before, once, at start-up;
-- until then, and only then, an event's hash (and nothing else) may be
-- rewritten.
ALTER TABLE audit_head ADD COLUMN keyed BIGINT NOT NULL DEFAULT 0;

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
