-- When an end user last used an access token (flushed in the background).
ALTER TABLE end_users ADD COLUMN last_seen_at INTEGER;
