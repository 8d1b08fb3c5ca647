-- Refused requests are counted, not stored one row each: per hour, action, reason, client network
-- (an IPv4 address or an IPv6 /64) and presented key ID (empty when none), so a flood of bogus
-- credentials adds to a count instead of growing the table by a row a request.
CREATE TABLE refusal_counts (
    bucket     BIGINT NOT NULL,
    action     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    count      BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (bucket, action, reason, client, key_id)
);
