-- Keys revoked or expired longer ago than the audit retention are deleted in the background
-- (their audit rows and usage rollups are gone by then too), a batch at a time: each batch is
-- found through these indexes, not by reading every key.
CREATE INDEX api_keys_expires ON api_keys (expires_at);
CREATE INDEX api_keys_revoked ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;
