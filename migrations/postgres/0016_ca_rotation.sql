-- CA rotation: an application has a current CA and, during a rotation's
-- overlap, the CAs it replaced. Replaces the one-row `ca` table.
-- id counts the CAs (1 is the one made with the application); the highest
-- is current. retires_at is set on a CA when a newer one replaces it: its
-- certificates are accepted, and its CRL served, until then.
CREATE TABLE certificate_authorities (
    id         BIGINT  PRIMARY KEY,
    cert_pem   TEXT    NOT NULL,
    key_sealed BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    created_by TEXT    NOT NULL DEFAULT 'system',
    retires_at BIGINT
);
INSERT INTO certificate_authorities (id, cert_pem, key_sealed, created_at)
    SELECT id, cert_pem, key_sealed, created_at FROM ca;
DROP TABLE ca;

-- Which CA issued a certificate (every one so far came from CA 1).
ALTER TABLE certificates ADD COLUMN ca_id BIGINT NOT NULL DEFAULT 1;

-- How long a CA made at rotation lasts, in days (20 years unless chosen).
ALTER TABLE application ADD COLUMN ca_validity_days BIGINT NOT NULL DEFAULT 7300;
