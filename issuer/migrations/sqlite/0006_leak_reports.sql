-- Secret-scanning reports (GitHub's partner program): what a tenant wants done when one of its
-- keys is reported leaked, and the digests of reports already acted on.
--
-- on_leak: 'revoke' (the default, also for a tenant without a row) or 'flag' (audit only).
CREATE TABLE tenant_policies (
    tenant     TEXT    PRIMARY KEY,
    on_leak    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per distinct report body (SHA-256), with the answer given, so that a report delivered
-- again is answered the same and acted on once. Bounded: inserting a row deletes all but the
-- newest few thousand (the scanner redelivers within minutes, not months).
CREATE TABLE leak_reports (
    id          INTEGER PRIMARY KEY,
    digest      TEXT    NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    answer      TEXT    NOT NULL
);
