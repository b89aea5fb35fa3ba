-- Cognito Sync: each identity's datasets and their records. A dataset's `sync_count` only
-- rises (every successful write and every deletion adds one); `deleted_at` is the count at its
-- last deletion (0: never), so a device that last synced before it learns of the deletion. A
-- removed record stays as a tombstone (`value` NULL) so other devices learn of the removal.
-- When two identities merge, the datasets of the one that goes move to the one that stays as
-- `<name>.<old identity id>`, with `merged_from` naming the dataset they report the merge on.
CREATE TABLE sync_datasets (
    identity_id  TEXT NOT NULL REFERENCES identity_ids (identity_id) ON DELETE CASCADE,
    dataset_name TEXT NOT NULL,
    pool_id      TEXT NOT NULL,
    live         INTEGER NOT NULL,
    sync_count   BIGINT NOT NULL,
    deleted_at   BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL,
    modified_ms  BIGINT NOT NULL,
    modified_by  TEXT NOT NULL,
    data_storage BIGINT NOT NULL,
    num_records  BIGINT NOT NULL,
    merged_from  TEXT,
    PRIMARY KEY (identity_id, dataset_name)
);
CREATE INDEX sync_datasets_by_pool ON sync_datasets (pool_id);
CREATE INDEX sync_datasets_merged ON sync_datasets (identity_id, merged_from);

CREATE TABLE sync_records (
    identity_id        TEXT NOT NULL,
    dataset_name       TEXT NOT NULL,
    record_key         TEXT NOT NULL,
    value              TEXT,
    sync_count         BIGINT NOT NULL,
    modified_ms        BIGINT NOT NULL,
    modified_by        TEXT NOT NULL,
    device_modified_ms BIGINT,
    PRIMARY KEY (identity_id, dataset_name, record_key),
    FOREIGN KEY (identity_id, dataset_name)
        REFERENCES sync_datasets (identity_id, dataset_name) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX sync_records_since ON sync_records (identity_id, dataset_name, sync_count, record_key);

-- A pool's Cognito Sync settings as JSON, by kind: `events` (Cognito Events: event type →
-- function ARN) and `configuration` (push sync).
CREATE TABLE sync_pools (
    pool_id TEXT NOT NULL REFERENCES identity_pools (pool_id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (pool_id, kind)
);

-- Devices registered for push sync (each an SNS endpoint), and the datasets they watch.
CREATE TABLE sync_devices (
    device_id    TEXT PRIMARY KEY,
    identity_id  TEXT NOT NULL REFERENCES identity_ids (identity_id) ON DELETE CASCADE,
    platform     TEXT NOT NULL,
    endpoint_arn TEXT NOT NULL,
    UNIQUE (identity_id, endpoint_arn)
);

CREATE TABLE sync_subscriptions (
    identity_id  TEXT NOT NULL REFERENCES identity_ids (identity_id) ON DELETE CASCADE,
    dataset_name TEXT NOT NULL,
    device_id    TEXT NOT NULL REFERENCES sync_devices (device_id) ON DELETE CASCADE,
    PRIMARY KEY (identity_id, dataset_name, device_id)
);
