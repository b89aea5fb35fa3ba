-- Cognito user pools: pools, app clients, users (with their sealed secrets), username aliases,
-- groups and memberships, token signing keys, refresh tokens (stored as hashes).
CREATE TABLE userpool_pools (
    pool_id    TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    config     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX userpool_pools_by_account ON userpool_pools (account_id, pool_id);

CREATE TABLE userpool_clients (
    client_id     TEXT PRIMARY KEY,
    pool_id       TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    secret_sealed BLOB,
    config        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX userpool_clients_by_pool ON userpool_clients (pool_id, client_id);

CREATE TABLE userpool_users (
    pool_id        TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    username_key   TEXT NOT NULL,
    sub            TEXT NOT NULL,
    record         TEXT NOT NULL,
    secrets_sealed BLOB NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (pool_id, username_key)
);
CREATE UNIQUE INDEX userpool_users_by_sub ON userpool_users (pool_id, sub);

CREATE TABLE userpool_aliases (
    pool_id      TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    alias        TEXT NOT NULL,
    username_key TEXT NOT NULL,
    PRIMARY KEY (pool_id, alias)
);

CREATE TABLE userpool_keys (
    pool_id    TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    kid        TEXT NOT NULL,
    key_sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (pool_id, kid)
);

CREATE TABLE userpool_refresh_tokens (
    token_hash   TEXT PRIMARY KEY,
    pool_id      TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    username_key TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    origin_jti   TEXT NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX userpool_refresh_tokens_by_user ON userpool_refresh_tokens (pool_id, username_key);
CREATE INDEX userpool_refresh_tokens_by_origin ON userpool_refresh_tokens (origin_jti);

CREATE TABLE userpool_groups (
    pool_id    TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    record     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (pool_id, name)
);

CREATE TABLE userpool_group_members (
    pool_id      TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    group_name   TEXT NOT NULL,
    username_key TEXT NOT NULL,
    PRIMARY KEY (pool_id, group_name, username_key)
);
CREATE INDEX userpool_group_members_by_user ON userpool_group_members (pool_id, username_key);
