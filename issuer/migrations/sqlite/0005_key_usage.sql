-- Issuances and refusals are no longer one audit row each: the database keeps usage rollups, one
-- row per key, hour, action, outcome, reason, client network (an IPv4 address or an IPv6 /64) and
-- origin, with a count and the first and last time seen. It grows with keys x clients x hours,
-- never per token; `--audit-retention` prunes it. The per-issuance record is the log line.
--
-- key_id is the key's ID, `unknown` for an ID no key has, or empty when none could be read;
-- client and origin are `other` once a key (or the unknown ones) has more distinct ones in an
-- hour than the issuer keeps apart, so no client can grow this table at will.
CREATE TABLE key_usage (
    id         INTEGER PRIMARY KEY,
    key_id     TEXT    NOT NULL,
    bucket     INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    origin     TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE UNIQUE INDEX key_usage_kind ON key_usage (key_id, bucket, action, outcome, reason, client, origin);
-- Retention deletes the oldest hours first, in small batches.
CREATE INDEX key_usage_bucket ON key_usage (bucket);

-- The refusal counts of the previous release are usage rows without an origin.
INSERT INTO key_usage (key_id, bucket, action, outcome, reason, client, origin, count, first_seen, last_seen)
SELECT key_id, bucket, action, 'refused', reason, client, '', count, first_seen, last_seen
FROM refusal_counts;
DROP TABLE refusal_counts;

-- Retention prunes stored audit rows (admin actions, and the per-issuance rows of earlier
-- releases until they age out) by time.
CREATE INDEX audit_at ON audit (at);
