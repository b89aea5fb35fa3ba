-- Cognito identity pools: pools (settings, roles and role mappings as JSON), identities, the
-- logins linked to each identity (provider + subject, unique per pool), and the signing keys of
-- the built-in `cognito-identity.amazonaws.com` OpenID provider.
CREATE TABLE identity_pools (
    pool_id    TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    config     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX identity_pools_by_account ON identity_pools (account_id, pool_id);

CREATE TABLE identity_ids (
    identity_id TEXT PRIMARY KEY,
    pool_id     TEXT NOT NULL REFERENCES identity_pools (pool_id) ON DELETE CASCADE,
    record      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX identity_ids_by_pool ON identity_ids (pool_id, identity_id);

CREATE TABLE identity_logins (
    pool_id     TEXT NOT NULL REFERENCES identity_pools (pool_id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES identity_ids (identity_id) ON DELETE CASCADE,
    PRIMARY KEY (pool_id, provider, subject)
);
CREATE INDEX identity_logins_by_identity ON identity_logins (identity_id, provider);

CREATE TABLE identity_signing_keys (
    kid        TEXT PRIMARY KEY,
    key_sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
