-- Instances listen on one channel so that a change made on one is in
-- force on the others within milliseconds (app/src/domain/storage/changes.rs).
-- Every change the views hold is audited, so an audit event announces it;
-- a rename announces itself for the other instances' known-user caches.
-- Both notify inside the transaction that makes the change: delivered on
-- its commit, never for a change that rolled back. Logouts, many and
-- unaudited, are announced by the batching writer after its commit.
CREATE FUNCTION keyward_announce_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('keyward_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_events_announce
    AFTER INSERT ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_announce_change();

CREATE TRIGGER end_users_announce_rename
    AFTER UPDATE OF display_name ON end_users
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_announce_change();
