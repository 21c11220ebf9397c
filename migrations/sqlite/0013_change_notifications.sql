-- PostgreSQL's 0013 makes the database announce changes to the other
-- instances (LISTEN/NOTIFY). SQLite has no such channel: its instances
-- find changes by their poll. Kept so both backends number alike.
SELECT 1;
