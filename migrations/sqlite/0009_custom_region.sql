-- A custom region: a label of the operator's choosing (in `region`) with
-- the public base URL clients use for it. NULL for eu, sg and us.
ALTER TABLE application ADD COLUMN region_url TEXT;
