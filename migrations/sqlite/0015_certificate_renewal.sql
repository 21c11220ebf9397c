-- Renewal: a certificate re-issued for the same key and subject. The old
-- one keeps working until retires_at (at most its own not_after), so a
-- backend can swap without an outage, and names the one that replaced it;
-- it no longer counts towards the limit of active certificates.
ALTER TABLE certificates ADD COLUMN retires_at BIGINT;
ALTER TABLE certificates ADD COLUMN renewed_as TEXT;
