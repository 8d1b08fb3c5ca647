-- Entries past their drop_after are pruned in the background (no list carries them any more),
-- and every list is signed from the entries still in force: both find them through this index
-- rather than by reading the whole table.
CREATE INDEX revocations_drop_after ON revocations (drop_after);
