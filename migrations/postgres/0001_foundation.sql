-- Times are Unix milliseconds; flags are 0/1 integers (the same in both backends).

CREATE TABLE application (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    name        TEXT   NOT NULL,
    region      TEXT   NOT NULL,
    api_key     TEXT   NOT NULL UNIQUE,
    secure_mode BIGINT NOT NULL DEFAULT 0,
    mtls        BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE admin_users (
    id            TEXT   PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    role          TEXT   NOT NULL CHECK (role IN ('admin', 'super_admin')),
    disabled      BIGINT NOT NULL DEFAULT 0,
    -- Bumped to end every console session of this admin at once.
    session_epoch BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Console sessions (tower-sessions). The key is a SHA-256 of the cookie's id.
CREATE TABLE console_sessions (
    id_digest  TEXT   PRIMARY KEY,
    data       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA  NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE audit_events (
    seq    BIGINT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    target TEXT   NOT NULL,
    detail TEXT   NOT NULL,
    source TEXT   NOT NULL,
    hash   BYTEA  NOT NULL
);

-- Append-only: the database itself refuses edits and deletions.
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
