-- The audit chain is keyed (HMAC with a key derived from the master key,
-- which lives outside the database): whoever can write the database can
-- no longer edit an event and recompute the chain. A new database starts
-- keyed. One with events from before stays `keyed = 0` until the operator
-- runs `keyward audit rekey` once (the server refuses to start until
-- then); until then, and only then, an event's hash (and nothing else) may
-- be rewritten. `key_check` is a MAC of a constant under the chain's key:
-- a process holding another master key is refused instead of writing a
-- chain nobody can verify.
ALTER TABLE audit_head ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN key_check BLOB;
UPDATE audit_head SET keyed = 1 WHERE NOT EXISTS (SELECT 1 FROM audit_events);

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

-- Addresses each admin (by username digest) signed in from lately: spared
-- the username's sign-in backoff, so guessing from elsewhere cannot keep
-- an admin out of their usual place.
CREATE TABLE login_known_addresses (
    subject TEXT    PRIMARY KEY,
    seen_at INTEGER NOT NULL
);

-- Expired logouts are deleted in batches every minute, found by index
-- (the table holds every logout of the last 30 days).
CREATE INDEX revocations_expires ON revocations (expires_at);
