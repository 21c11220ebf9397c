-- A password a super admin set for someone else: its holder chooses their
-- own at their next sign-in, before anything else in the console.
ALTER TABLE admin_users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
