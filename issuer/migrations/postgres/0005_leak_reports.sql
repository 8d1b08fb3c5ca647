-- Secret-scanning reports (GitHub's partner program): what a tenant wants done when one of its
-- keys is reported leaked, and the digests of reports already acted on.
--
-- on_leak: 'revoke' (the default, also for a tenant without a row) or 'flag' (audit only).
-- webhook_url / webhook_secret: where the tenant's owner hears of a leaked key, and the HMAC
-- secret of those calls, sealed (AES-256-GCM under the encryption key, the tenant as associated
-- data).
CREATE TABLE tenant_policies (
    tenant         TEXT    PRIMARY KEY,
    on_leak        TEXT    NOT NULL,
    updated_at     BIGINT  NOT NULL,
    webhook_url    TEXT,
    webhook_secret BYTEA
);

-- One row per distinct report body (SHA-256), with the answer given, so that a report delivered
-- again is answered the same and acted on once. Bounded: inserting a row deletes all but the
-- newest few thousand (the scanner redelivers within minutes, not months).
CREATE TABLE leak_reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      TEXT    NOT NULL UNIQUE,
    received_at BIGINT  NOT NULL,
    answer      TEXT    NOT NULL
);

-- Calls to tenants' webhooks, persisted so that retries survive a restart. state: 'pending'
-- (next_at: when the next attempt is due, pushed out while one is in flight), 'delivered' or
-- 'failed' (attempts used up). Finished rows beyond the newest few thousand are deleted.
CREATE TABLE webhook_deliveries (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    url        TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    attempts   BIGINT  NOT NULL,
    next_at    BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
