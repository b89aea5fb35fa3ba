-- SNS mobile push: platform applications (their credential sealed under the master key) and
-- the device endpoints registered with them (one per application and token).
CREATE TABLE sns_applications (
    arn               TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    name              TEXT NOT NULL,
    platform          TEXT NOT NULL,
    attributes        TEXT NOT NULL,
    credential_sealed BYTEA,
    created_ms        BIGINT NOT NULL
);
CREATE INDEX sns_applications_by_account ON sns_applications (account_id, arn);

CREATE TABLE sns_endpoints (
    arn             TEXT PRIMARY KEY,
    application_arn TEXT NOT NULL REFERENCES sns_applications (arn) ON DELETE CASCADE,
    token           TEXT NOT NULL,
    attributes      TEXT NOT NULL,
    UNIQUE (application_arn, token)
);
CREATE INDEX sns_endpoints_by_application ON sns_endpoints (application_arn, arn);
