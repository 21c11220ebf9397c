-- An admin's authenticator app (TOTP, RFC 6238). The secret is sealed with
-- the master key. A row with no confirmed_at is an enrolment begun and not
-- yet proven with a first code: it is not asked for at sign-in. last_step
-- is the last 30-second step whose code was accepted: a code is taken once,
-- and no older one after it.
CREATE TABLE admin_totp (
    admin_id     TEXT    PRIMARY KEY REFERENCES admin_users (id),
    sealed       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0
);

-- One-time recovery codes, for when the app is lost: only their SHA-256
-- digests (each code holds 80 random bits), each usable once.
CREATE TABLE admin_recovery_codes (
    admin_id   TEXT    NOT NULL REFERENCES admin_users (id),
    digest     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (admin_id, digest)
);

-- A super admin's policy: every admin must have a second factor. One
-- without is taken to set one up at sign-in, and can do nothing else
-- until it is done.
ALTER TABLE application ADD COLUMN require_second_factor INTEGER NOT NULL DEFAULT 0;

-- Passkeys and security keys (WebAuthn), beside an authenticator app: the
-- public credential as the WebAuthn library keeps it (JSON; no secret in
-- it), its id, and the name the admin gave it.
CREATE TABLE admin_passkeys (
    id           TEXT    PRIMARY KEY,
    admin_id     TEXT    NOT NULL REFERENCES admin_users (id),
    name         TEXT    NOT NULL,
    credential   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX admin_passkeys_admin ON admin_passkeys (admin_id);
