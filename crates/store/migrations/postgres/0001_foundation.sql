-- Accounts, their long-term access keys, and the session-token key ring.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    -- NULL for the account's root user.
    user_name     TEXT,
    -- Sealed under the master key; the store never sees plaintext secrets.
    secret_sealed BYTEA NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX access_keys_by_owner ON access_keys (account_id, user_name);

CREATE TABLE session_keys (
    key_id     BIGINT PRIMARY KEY,
    key_sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
