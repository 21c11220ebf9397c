-- The application's own CA and the client certificates it issues (mTLS).

-- One CA per application: its certificate, and its private key sealed
-- with the master key.
CREATE TABLE ca (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem   TEXT    NOT NULL,
    key_sealed BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Issued client certificates. Looked up by the SHA-256 fingerprint of the
-- DER a TLS client presents; revoked_at set = revoked (and in the CRL).
CREATE TABLE certificates (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    key_type    TEXT    NOT NULL,
    serial      TEXT    NOT NULL UNIQUE,
    fingerprint BLOB    NOT NULL UNIQUE,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    pem         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  INTEGER,
    revoked_by  TEXT
);
CREATE INDEX certificates_created ON certificates (created_at);
