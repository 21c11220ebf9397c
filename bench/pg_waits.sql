-- What PostgreSQL's backends wait on while the benchmark runs: samples
-- pg_stat_activity every 5 ms for about two minutes, then prints the
-- longest uninterrupted waits. Run it beside `scripts/bench.sh --postgres`
-- once the bench prints "measuring":
--   psql -h 127.0.0.1 -U postgres -d postgres -f bench/pg_waits.sql
-- A long IO/WALSync with others on LWLock/WALWrite is one flush of the
-- write-ahead log holding every commit behind it (the disk, not Keyward).
CREATE TEMP TABLE samples (t timestamptz, pid int, kind text, wait text, query text);
DO $$
BEGIN
  FOR i IN 1..20000 LOOP
    -- Without this, every read in the loop sees the first snapshot.
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO samples
      SELECT clock_timestamp(), pid, backend_type,
             coalesce(wait_event_type || '/' || wait_event, state), left(query, 40)
      FROM pg_stat_activity
      WHERE pid <> pg_backend_pid() AND (datname = 'keyward_bench' OR datname IS NULL);
    PERFORM pg_sleep(0.005);
  END LOOP;
END $$;

-- Consecutive samples of one backend in one wait are one wait.
WITH marked AS (
  SELECT *, CASE WHEN wait IS DISTINCT FROM lag(wait) OVER w THEN 1 ELSE 0 END AS starts
  FROM samples WINDOW w AS (PARTITION BY pid ORDER BY t)
), numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY pid ORDER BY t) AS run FROM marked
)
SELECT min(t)::time(3) AS from, round(extract(epoch FROM max(t) - min(t)) * 1000) AS ms_at_least,
       kind, wait, min(query) AS query
FROM numbered
WHERE wait NOT LIKE 'Activity/%' AND wait NOT LIKE 'Client/%' AND wait <> 'active'
GROUP BY pid, run, kind, wait
ORDER BY ms_at_least DESC
LIMIT 15;
