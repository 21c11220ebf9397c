-- Instances keep known end users in memory; each polls for users renamed
-- (updated after creation) by another instance. Only renames are indexed,
-- so the poll stays cheap however many users are created.
CREATE INDEX end_users_renamed ON end_users (updated_at) WHERE updated_at > created_at;
