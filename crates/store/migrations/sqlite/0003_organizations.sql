-- AWS Organizations: one organization per management account, its member accounts, and
-- CreateAccount requests.
CREATE TABLE organizations (
    org_id                TEXT PRIMARY KEY,
    management_account_id TEXT NOT NULL UNIQUE,
    feature_set           TEXT NOT NULL,
    created_at            BIGINT NOT NULL
);

CREATE TABLE organization_accounts (
    account_id    TEXT PRIMARY KEY REFERENCES accounts (account_id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL REFERENCES organizations (org_id) ON DELETE CASCADE,
    joined_method TEXT NOT NULL,
    joined_at     BIGINT NOT NULL
);
CREATE INDEX organization_accounts_by_org ON organization_accounts (org_id);

CREATE TABLE create_account_requests (
    request_id   TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    account_name TEXT NOT NULL,
    account_id   TEXT,
    state        TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    completed_at BIGINT
);
