-- DPoP proof IDs seen by the token endpoint (RFC 9449 §11.1), shared by every process on this
-- database. `id` is SHA-256 of the proof key's thumbprint and the proof's jti, base64url.
CREATE TABLE dpop_proofs (
    id    TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE INDEX dpop_proofs_until ON dpop_proofs (until);

-- The admin API's audit query filters by key and tenant, newest first.
CREATE INDEX audit_key_id ON audit (key_id, id);
CREATE INDEX audit_tenant ON audit (tenant, id);
