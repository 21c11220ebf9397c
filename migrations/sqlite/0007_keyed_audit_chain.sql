-- The audit chain is keyed (HMAC with a key derived from the master key,
-- which lives outside the database): whoever can write the database can
-- no longer edit an event and recompute the chain. `keyed` is 0 until
-- Keyward has re-hashed the events written before, once, at start-up;
-- until then, and only then, an event's hash (and nothing else) may be
-- rewritten.
ALTER TABLE audit_head ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN (SELECT keyed FROM audit_head WHERE id = 1) <> 0
  OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
  OR NEW.action IS NOT OLD.action OR NEW.target IS NOT OLD.target
  OR NEW.detail IS NOT OLD.detail OR NEW.source IS NOT OLD.source
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

-- A presented access token that the in-memory filter flags as logged out
-- is looked up by its session id.
CREATE INDEX revocations_subject ON revocations (subject);
