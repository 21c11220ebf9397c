-- The data's own keys, sealed with the master key as one value: the sign-in
-- throttle's digest key and the audit chain's MAC keys, one per epoch with
-- the event it starts at. Rotating the master key re-seals them (with
-- every other sealed secret) instead of changing what they sign, and adds
-- an epoch: a fresh audit key from the rotation's own event on. Epochs are
-- sealed with their keys, so without the current master key they cannot
-- be moved or dropped. A database from before this table has its keys
-- (derived from the master key) sealed here, as epoch 0, when a server
-- first starts on it.
CREATE TABLE sealed_keys (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB    NOT NULL
);

-- The epoch whose key MACs new events. A change made by an instance that
-- still holds an older epoch (started before a rotation, with the old
-- master key) is refused: it would seal with a key no longer in use.
ALTER TABLE audit_head ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 0;
