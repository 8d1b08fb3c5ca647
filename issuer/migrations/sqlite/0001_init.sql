-- keymint schema, version 1. Times are Unix seconds.

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('sk', 'pk')),
    env           TEXT NOT NULL CHECK (env IN ('live', 'test')),
    tenant        TEXT NOT NULL,
    -- HMAC-SHA256(pepper, key ID and secret): the secret itself is never stored.
    secret_hash   BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    default_ttl   INTEGER NOT NULL,
    max_ttl       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    allow_ips     TEXT NOT NULL DEFAULT '',
    allow_origins TEXT NOT NULL DEFAULT '',
    rate_limit    TEXT,
    label         TEXT,
    owner         TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    rotated_to    TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    -- AES-256-GCM(encryption key, PKCS#8), the kid as associated data; nonce first.
    encrypted_pkcs8 BLOB NOT NULL,
    public_jwk      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'removed', 'revoked')),
    created_at      INTEGER NOT NULL,
    activate_at     INTEGER NOT NULL,
    retired_at      INTEGER,
    remove_after    INTEGER,
    revoked_at      INTEGER
);

CREATE TABLE revocations (
    kind       TEXT NOT NULL CHECK (kind IN ('key', 'jti', 'tenant', 'kid')),
    target     TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    drop_after INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
);

-- Every signed revocation list, so every process serves the very bytes stored for a serial.
CREATE TABLE revocation_lists (
    serial   INTEGER PRIMARY KEY,
    jws      TEXT NOT NULL,
    iat      INTEGER NOT NULL,
    exp      INTEGER NOT NULL,
    -- The change ID the list reflects: a newer change means the list must be re-signed.
    as_of    INTEGER NOT NULL
);

-- An append-only change feed: running servers poll it and apply what changed within a second.
CREATE TABLE changes (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind   TEXT NOT NULL,
    target TEXT NOT NULL,
    at     INTEGER NOT NULL
);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    reason    TEXT,
    actor     TEXT,
    key_id    TEXT,
    tenant    TEXT,
    scopes    TEXT,
    client_ip TEXT,
    origin    TEXT,
    detail    TEXT
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
