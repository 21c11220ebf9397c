-- Failed sign-ins, counted in the database so that every instance sharing
-- it sees the same count and a restart forgets nothing. `subject` is
-- 'u:<username>' or 'c:<client address>'; rows leave after the window.
CREATE TABLE login_failures (
    id      BIGSERIAL PRIMARY KEY,
    subject TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX login_failures_subject_at ON login_failures (subject, at);
