-- Keys and tokens of the authentication API and the admin API.

-- The HMAC key that signs access and auth tokens, sealed with the master key.
CREATE TABLE signing_keys (
    id         TEXT    PRIMARY KEY,
    sealed     BYTEA    NOT NULL,
    created_at BIGINT NOT NULL
);

-- Server keys: only a SHA-256 digest is stored. retires_at NULL = active.
CREATE TABLE server_keys (
    id           TEXT    PRIMARY KEY,
    prefix       TEXT    NOT NULL,
    digest       BYTEA    NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    created_by   TEXT    NOT NULL,
    retires_at   BIGINT,
    last_used_at BIGINT
);

-- End users of the application, created by their first session.
CREATE TABLE end_users (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL UNIQUE,
    display_name TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Auth tokens are signed, not stored; redeeming one records its nonce, so
-- it can never be redeemed twice (also across restarts and instances).
CREATE TABLE redeemed_auth_tokens (
    nonce      BYTEA    PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Access-token revocations: kind 'session' (subject = session id) or
-- 'user' (subject = end user id; tokens issued at or before `at` die).
CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('session', 'user')),
    subject    TEXT    NOT NULL,
    at         BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_at ON revocations (at);

-- Admin tokens: looked up by digest; sealed so the owner can retrieve it.
-- valid_until is set when the token is superseded (end of the switch-over)
-- or revoked (at once).
CREATE TABLE admin_tokens (
    id           TEXT    PRIMARY KEY,
    admin_id     TEXT    NOT NULL REFERENCES admin_users (id),
    digest       BYTEA    NOT NULL UNIQUE,
    sealed       BYTEA    NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('current', 'superseded', 'revoked')),
    valid_until  BIGINT,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX admin_tokens_one_current ON admin_tokens (admin_id) WHERE state = 'current';

-- Sessions opened without an auth token, counted per hour (flushed in the
-- background), so the console can say who secure mode would lock out.
CREATE TABLE unsecured_session_counts (
    hour  BIGINT PRIMARY KEY,
    count BIGINT NOT NULL
);
