-- Scopes an admin declared public: the only ones a publishable (browser) key may carry. Scopes need
-- no registration otherwise.
CREATE TABLE scopes (
    name       TEXT PRIMARY KEY,
    public     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
