-- IAM: users, groups, roles, managed policies and OIDC providers share one entity table
-- (kind + case-insensitive name key); their kind-specific attributes are a JSON document.
CREATE TABLE iam_entities (
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    name       TEXT NOT NULL,
    id         TEXT NOT NULL UNIQUE,
    path       TEXT NOT NULL,
    arn        TEXT NOT NULL UNIQUE,
    attrs      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind, name_key)
);

CREATE TABLE iam_group_members (
    account_id TEXT NOT NULL,
    group_key  TEXT NOT NULL,
    user_key   TEXT NOT NULL,
    PRIMARY KEY (account_id, group_key, user_key)
);
CREATE INDEX iam_group_members_by_user ON iam_group_members (account_id, user_key);

-- Managed policies attached to a user, group or role.
CREATE TABLE iam_attachments (
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, name_key, policy_arn)
);
CREATE INDEX iam_attachments_by_policy ON iam_attachments (policy_arn);

-- Inline policies of a user, group or role.
CREATE TABLE iam_inline_policies (
    account_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    policy_key  TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, name_key, policy_key)
);

CREATE TABLE iam_policy_versions (
    policy_arn TEXT NOT NULL,
    version_id TEXT NOT NULL,
    document   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy_arn, version_id)
);
