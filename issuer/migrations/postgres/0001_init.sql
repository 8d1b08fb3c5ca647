-- keymint schema for Postgres: the same tables, columns and meaning as the SQLite schema
-- (migrations/sqlite, versions 1 to 3), so `keymint migrate` can copy rows one to one.
-- Times are Unix seconds.

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('sk', 'pk')),
    env           TEXT NOT NULL CHECK (env IN ('live', 'test')),
    tenant        TEXT NOT NULL,
    -- HMAC-SHA256(pepper, key ID and secret): the secret itself is never stored.
    secret_hash   BYTEA NOT NULL,
    scopes        TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    default_ttl   BIGINT NOT NULL,
    max_ttl       BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    allow_ips     TEXT NOT NULL DEFAULT '',
    allow_origins TEXT NOT NULL DEFAULT '',
    rate_limit    TEXT,
    label         TEXT,
    owner         TEXT,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    rotated_to    TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    -- AES-256-GCM(encryption key, PKCS#8), the kid as associated data; nonce first.
    encrypted_pkcs8 BYTEA NOT NULL,
    public_jwk      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'removed', 'revoked')),
    created_at      BIGINT NOT NULL,
    activate_at     BIGINT NOT NULL,
    retired_at      BIGINT,
    remove_after    BIGINT,
    revoked_at      BIGINT
);

CREATE TABLE revocations (
    kind       TEXT NOT NULL CHECK (kind IN ('key', 'jti', 'tenant', 'kid')),
    target     TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    drop_after BIGINT NOT NULL,
    PRIMARY KEY (kind, target)
);

-- Every signed revocation list: the serial is the key, so no two replicas can store different
-- lists under one serial, and every replica serves the very bytes stored for it.
CREATE TABLE revocation_lists (
    serial   BIGINT PRIMARY KEY,
    jws      TEXT NOT NULL,
    iat      BIGINT NOT NULL,
    exp      BIGINT NOT NULL,
    as_of    BIGINT NOT NULL
);

-- An append-only change feed: replicas poll it and apply what changed within a second. Writers
-- take an advisory lock before inserting, so IDs commit in order (see store/sql.rs).
CREATE TABLE changes (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind   TEXT NOT NULL,
    target TEXT NOT NULL,
    at     BIGINT NOT NULL
);

CREATE TABLE audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
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
CREATE INDEX audit_key_id ON audit (key_id, id);
CREATE INDEX audit_tenant ON audit (tenant, id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE scopes (
    name       TEXT PRIMARY KEY,
    public     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

-- DPoP proof IDs seen by any replica (RFC 9449 §11.1): a proof replayed against another replica
-- is refused too.
CREATE TABLE dpop_proofs (
    id    TEXT PRIMARY KEY,
    until BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_until ON dpop_proofs (until);
