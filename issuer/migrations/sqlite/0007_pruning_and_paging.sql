-- Entries past their drop_after are pruned in the background (no list carries them any more),
-- and every list is signed from the entries still in force: both find them through this index
-- rather than by reading the whole table.
CREATE INDEX revocations_drop_after ON revocations (drop_after);

-- The admin API and `keys list` page through keys newest first (keyset pagination on created_at,
-- then key_id): each page is found through this index, not by sorting every key.
CREATE INDEX api_keys_created ON api_keys (created_at DESC, key_id);
