-- A server key's optional name ("billing backend"), so a list of keys says
-- which backend holds which.
ALTER TABLE server_keys ADD COLUMN name TEXT;
