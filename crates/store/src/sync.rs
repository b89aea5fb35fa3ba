//! Cognito Sync rows: each identity's datasets and their records (tombstones included).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::group::GroupWrite;
use crate::{Result, Store, StoreError};

/// One dataset of one identity. A deleted dataset keeps its row (`live` false) so its sync
/// count goes on rising and devices learn of the deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRow {
    pub identity_id: String,
    pub dataset_name: String,
    pub pool_id: String,
    pub live: bool,
    pub sync_count: i64,
    /// The sync count its last deletion took (0: never deleted).
    pub deleted_at: i64,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub modified_ms: i64,
    pub modified_by: String,
    /// Bytes of the live records' keys and values.
    pub data_storage: i64,
    /// Live records (tombstones not counted).
    pub num_records: i64,
    /// For a dataset an identity merge brought (`<name>.<old identity id>`): the `<name>` it
    /// reports the merge on.
    pub merged_from: Option<String>,
}

/// One record; `value` is `None` for a removed record (a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecordRow {
    pub key: String,
    pub value: Option<String>,
    pub sync_count: i64,
    pub modified_ms: i64,
    pub modified_by: String,
    pub device_modified_ms: Option<i64>,
}

/// A pool's totals over its identities' datasets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsageRow {
    pub pool_id: String,
    pub data_storage: i64,
    /// The sum of its datasets' sync counts: every write and deletion there has been.
    pub sync_sessions: i64,
    pub modified_ms: Option<i64>,
}

/// An identity's totals over its live datasets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityUsageRow {
    pub dataset_count: i64,
    pub data_storage: i64,
    pub modified_ms: Option<i64>,
}

/// What a dataset write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetWrite {
    Written,
    /// The dataset's sync count was no longer the one the writer read: nothing was written.
    Lost,
    /// The identity is gone.
    NoIdentity,
    /// The write would have made the identity hold more live datasets than allowed.
    TooManyDatasets,
}

macro_rules! dataset_columns {
    () => {
        "identity_id, dataset_name, pool_id, live, sync_count, deleted_at, \
         created_ms, modified_ms, modified_by, data_storage, num_records, merged_from"
    };
}

macro_rules! record_columns {
    () => {
        "record_key, value, sync_count, modified_ms, modified_by, device_modified_ms"
    };
}

fn dataset(r: &AnyRow) -> Result<DatasetRow> {
    let live: i64 = r.try_get("live")?;
    Ok(DatasetRow {
        identity_id: r.try_get("identity_id")?,
        dataset_name: r.try_get("dataset_name")?,
        pool_id: r.try_get("pool_id")?,
        live: live != 0,
        sync_count: r.try_get("sync_count")?,
        deleted_at: r.try_get("deleted_at")?,
        created_ms: r.try_get("created_ms")?,
        modified_ms: r.try_get("modified_ms")?,
        modified_by: r.try_get("modified_by")?,
        data_storage: r.try_get("data_storage")?,
        num_records: r.try_get("num_records")?,
        merged_from: r.try_get("merged_from")?,
    })
}

fn record(r: &AnyRow) -> Result<SyncRecordRow> {
    Ok(SyncRecordRow {
        key: r.try_get("record_key")?,
        value: r.try_get("value")?,
        sync_count: r.try_get("sync_count")?,
        modified_ms: r.try_get("modified_ms")?,
        modified_by: r.try_get("modified_by")?,
        device_modified_ms: r.try_get("device_modified_ms")?,
    })
}

impl Store {
    /// A dataset, live or deleted.
    pub async fn sync_dataset(&self, identity_id: &str, name: &str) -> Result<Option<DatasetRow>> {
        sqlx::query(concat!(
            "SELECT ",
            dataset_columns!(),
            " FROM sync_datasets WHERE identity_id = $1 AND dataset_name = $2"
        ))
        .bind(identity_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(dataset)
        .transpose()
    }

    /// An identity's live datasets after `after` (by name), at most `limit`.
    pub async fn sync_datasets(
        &self,
        identity_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DatasetRow>> {
        sqlx::query(concat!(
            "SELECT ",
            dataset_columns!(),
            " FROM sync_datasets WHERE identity_id = $1 AND live = 1 \
             AND dataset_name > $2 ORDER BY dataset_name LIMIT $3"
        ))
        .bind(identity_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(dataset)
        .collect()
    }

    /// The live datasets an identity merge brought that report the merge on `name`.
    pub async fn sync_merged_names(&self, identity_id: &str, name: &str) -> Result<Vec<String>> {
        sqlx::query(
            "SELECT dataset_name FROM sync_datasets WHERE identity_id = $1 AND merged_from = $2 \
             AND live = 1 ORDER BY dataset_name",
        )
        .bind(identity_id)
        .bind(name)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("dataset_name")?))
        .collect()
    }

    /// A dataset's records changed after sync count `since`, in (sync count, key) order,
    /// starting after `after` in that order, at most `limit`.
    pub async fn sync_records_since(
        &self,
        identity_id: &str,
        name: &str,
        since: i64,
        after: (i64, &str),
        limit: i64,
    ) -> Result<Vec<SyncRecordRow>> {
        sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM sync_records WHERE identity_id = $1 AND dataset_name = $2 \
             AND sync_count > $3 AND (sync_count > $4 OR (sync_count = $4 AND record_key > $5)) \
             ORDER BY sync_count, record_key LIMIT $6"
        ))
        .bind(identity_id)
        .bind(name)
        .bind(since)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(record)
        .collect()
    }

    /// The records of a dataset with these keys (those that exist, tombstones included).
    pub async fn sync_records(
        &self,
        identity_id: &str,
        name: &str,
        keys: &[String],
    ) -> Result<Vec<SyncRecordRow>> {
        let mut found = Vec::new();
        // In chunks, under every backend's limit on bound parameters.
        for chunk in keys.chunks(200) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = sqlx::AssertSqlSafe(format!(
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM sync_records WHERE identity_id = $1 AND dataset_name = $2 \
                 AND record_key IN ({})"
                ),
                marks.join(", ")
            ));
            let mut query = sqlx::query(sql).bind(identity_id).bind(name);
            for key in chunk {
                query = query.bind(key);
            }
            for r in query.fetch_all(&self.pool).await? {
                found.push(record(&r)?);
            }
        }
        Ok(found)
    }

    /// Writes a dataset's new state and its changed records in one transaction, if its sync
    /// count is still `expected` (`None`: the writer found no row, so the row must not exist
    /// yet). Writers of one identity run one at a time (its identity row is held first), so a
    /// write that would bring the identity's live datasets over `max_datasets` is refused.
    ///
    /// Writes arriving together are committed together (group commit): each in its own
    /// savepoint of one transaction, so one fsync carries them all and one writer's lost race
    /// or limit leaves the others' writes alone.
    pub async fn write_sync_dataset(
        &self,
        row: &DatasetRow,
        expected: Option<i64>,
        records: &[SyncRecordRow],
        max_datasets: i64,
    ) -> Result<DatasetWrite> {
        let write = DatasetJob {
            row: row.clone(),
            expected,
            records: records.to_vec(),
            max_datasets,
        };
        self.writers.datasets.write(&self.pool, write).await
    }

    /// An identity's totals over its live datasets.
    pub async fn sync_identity_usage(&self, identity_id: &str) -> Result<IdentityUsageRow> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(data_storage), 0) AS BIGINT) AS bytes, MAX(modified_ms) AS modified \
             FROM sync_datasets WHERE identity_id = $1 AND live = 1",
        )
        .bind(identity_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(IdentityUsageRow {
            dataset_count: r.try_get("n")?,
            data_storage: r.try_get("bytes")?,
            modified_ms: r.try_get("modified")?,
        })
    }

    /// A pool's setting of `kind` (`events`, `configuration`) as JSON, if it was ever set.
    pub async fn sync_pool_setting(&self, pool_id: &str, kind: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT value FROM sync_pools WHERE pool_id = $1 AND kind = $2")
                .bind(pool_id)
                .bind(kind)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("value"))
                .transpose()?,
        )
    }

    /// Sets a pool's setting if it is still `expected` (`None`: never set); false when another
    /// writer changed it first.
    pub async fn write_sync_pool_setting(
        &self,
        pool_id: &str,
        kind: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<bool> {
        let done = match expected {
            Some(old) => sqlx::query(
                "UPDATE sync_pools SET value = $3 WHERE pool_id = $1 AND kind = $2 AND value = $4",
            )
            .bind(pool_id)
            .bind(kind)
            .bind(value)
            .bind(old)
            .execute(&self.pool)
            .await,
            None => {
                sqlx::query("INSERT INTO sync_pools (pool_id, kind, value) VALUES ($1, $2, $3)")
                    .bind(pool_id)
                    .bind(kind)
                    .bind(value)
                    .execute(&self.pool)
                    .await
            }
        };
        match done {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) => match StoreError::from(e) {
                StoreError::Conflict => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Registers a device of an identity for push sync, or finds the one it already has for
    /// that endpoint; returns its id.
    pub async fn register_sync_device(
        &self,
        device_id: &str,
        identity_id: &str,
        platform: &str,
        endpoint_arn: &str,
    ) -> Result<String> {
        let inserted = sqlx::query(
            "INSERT INTO sync_devices (device_id, identity_id, platform, endpoint_arn) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (identity_id, endpoint_arn) DO NOTHING",
        )
        .bind(device_id)
        .bind(identity_id)
        .bind(platform)
        .bind(endpoint_arn)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(device_id.to_owned());
        }
        Ok(sqlx::query(
            "SELECT device_id FROM sync_devices WHERE identity_id = $1 AND endpoint_arn = $2",
        )
        .bind(identity_id)
        .bind(endpoint_arn)
        .fetch_one(&self.pool)
        .await?
        .try_get("device_id")?)
    }

    /// A device's identity and SNS endpoint.
    pub async fn sync_device(&self, device_id: &str) -> Result<Option<(String, String)>> {
        sqlx::query("SELECT identity_id, endpoint_arn FROM sync_devices WHERE device_id = $1")
            .bind(device_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Ok((r.try_get("identity_id")?, r.try_get("endpoint_arn")?)))
            .transpose()
    }

    /// Subscribes (or unsubscribes) a device to a dataset of its identity.
    pub async fn set_sync_subscription(
        &self,
        identity_id: &str,
        dataset_name: &str,
        device_id: &str,
        subscribed: bool,
    ) -> Result<()> {
        let sql = if subscribed {
            "INSERT INTO sync_subscriptions (identity_id, dataset_name, device_id) \
             VALUES ($1, $2, $3) ON CONFLICT (identity_id, dataset_name, device_id) DO NOTHING"
        } else {
            "DELETE FROM sync_subscriptions WHERE identity_id = $1 AND dataset_name = $2 \
             AND device_id = $3"
        };
        sqlx::query(sql)
            .bind(identity_id)
            .bind(dataset_name)
            .bind(device_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The devices subscribed to a dataset: (device id, SNS endpoint ARN).
    pub async fn sync_subscribers(
        &self,
        identity_id: &str,
        dataset_name: &str,
    ) -> Result<Vec<(String, String)>> {
        sqlx::query(
            "SELECT d.device_id AS device_id, d.endpoint_arn AS endpoint_arn \
             FROM sync_subscriptions s JOIN sync_devices d ON d.device_id = s.device_id \
             WHERE s.identity_id = $1 AND s.dataset_name = $2 ORDER BY d.device_id",
        )
        .bind(identity_id)
        .bind(dataset_name)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("device_id")?, r.try_get("endpoint_arn")?)))
        .collect()
    }

    /// One pool's totals.
    pub async fn sync_usage_of_pool(&self, pool_id: &str) -> Result<PoolUsageRow> {
        let r = sqlx::query(
            "SELECT CAST(COALESCE(SUM(data_storage), 0) AS BIGINT) AS bytes, \
             CAST(COALESCE(SUM(sync_count), 0) AS BIGINT) AS sessions, MAX(modified_ms) AS modified \
             FROM sync_datasets WHERE pool_id = $1",
        )
        .bind(pool_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(PoolUsageRow {
            pool_id: pool_id.to_owned(),
            data_storage: r.try_get("bytes")?,
            sync_sessions: r.try_get("sessions")?,
            modified_ms: r.try_get("modified")?,
        })
    }

    /// The usage of an account's identity pools after `after` (by id), at most `limit`; a
    /// pool without data has zeros.
    pub async fn sync_pool_usage(
        &self,
        account_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<PoolUsageRow>> {
        sqlx::query(
            "SELECT p.pool_id AS pool_id, CAST(COALESCE(SUM(d.data_storage), 0) AS BIGINT) AS bytes, \
             CAST(COALESCE(SUM(d.sync_count), 0) AS BIGINT) AS sessions, MAX(d.modified_ms) AS modified \
             FROM identity_pools p LEFT JOIN sync_datasets d ON d.pool_id = p.pool_id \
             WHERE p.account_id = $1 AND p.pool_id > $2 GROUP BY p.pool_id ORDER BY p.pool_id LIMIT $3",
        )
        .bind(account_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(PoolUsageRow {
                pool_id: r.try_get("pool_id")?,
                data_storage: r.try_get("bytes")?,
                sync_sessions: r.try_get("sessions")?,
                modified_ms: r.try_get("modified")?,
            })
        })
        .collect()
    }
}

impl Store {
    /// A pool's live datasets after (identity, name), in that order, at most `limit`.
    pub async fn sync_pool_datasets(
        &self,
        pool_id: &str,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<DatasetRow>> {
        sqlx::query(concat!(
            "SELECT ",
            dataset_columns!(),
            " FROM sync_datasets WHERE pool_id = $1 AND live = 1 AND \
             (identity_id > $2 OR (identity_id = $2 AND dataset_name > $3)) \
             ORDER BY identity_id, dataset_name LIMIT $4"
        ))
        .bind(pool_id)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(dataset)
        .collect()
    }
}

/// One dataset write, for the group committer.
pub(crate) struct DatasetJob {
    row: DatasetRow,
    expected: Option<i64>,
    records: Vec<SyncRecordRow>,
    max_datasets: i64,
}

impl GroupWrite for DatasetJob {
    type Outcome = DatasetWrite;

    async fn apply(&self, conn: &mut sqlx::AnyConnection) -> Result<DatasetWrite> {
        apply(conn, self).await
    }

    fn keeps(outcome: &DatasetWrite) -> bool {
        *outcome == DatasetWrite::Written
    }
}

/// One write, inside the caller's transaction (which rolls back unless it was `Written`).
async fn apply(conn: &mut sqlx::AnyConnection, job: &DatasetJob) -> Result<DatasetWrite> {
    let (row, expected, records, max_datasets) =
        (&job.row, job.expected, &job.records, job.max_datasets);
    let held =
        sqlx::query("UPDATE identity_ids SET updated_at = updated_at WHERE identity_id = $1")
            .bind(&row.identity_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if held == 0 {
        return Ok(DatasetWrite::NoIdentity);
    }
    let written = match expected {
            Some(expected) => sqlx::query(
                "UPDATE sync_datasets SET live = $3, sync_count = $4, deleted_at = $5, created_ms = $6, \
                 modified_ms = $7, modified_by = $8, data_storage = $9, num_records = $10, \
                 merged_from = $12 WHERE identity_id = $1 AND dataset_name = $2 AND sync_count = $11",
            )
            .bind(&row.identity_id)
            .bind(&row.dataset_name)
            .bind(i64::from(row.live))
            .bind(row.sync_count)
            .bind(row.deleted_at)
            .bind(row.created_ms)
            .bind(row.modified_ms)
            .bind(&row.modified_by)
            .bind(row.data_storage)
            .bind(row.num_records)
            .bind(expected)
            .bind(row.merged_from.as_deref())
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            None => {
                match sqlx::query(concat!(
            "INSERT INTO sync_datasets (",
            dataset_columns!(),
            ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
                .bind(&row.identity_id)
                .bind(&row.dataset_name)
                .bind(&row.pool_id)
                .bind(i64::from(row.live))
                .bind(row.sync_count)
                .bind(row.deleted_at)
                .bind(row.created_ms)
                .bind(row.modified_ms)
                .bind(&row.modified_by)
                .bind(row.data_storage)
                .bind(row.num_records)
                .bind(row.merged_from.as_deref())
                .execute(&mut *conn)
                .await
                {
                    Ok(done) => done.rows_affected(),
                    Err(e) => match StoreError::from(e) {
                        StoreError::Conflict => 0,
                        other => return Err(other),
                    },
                }
            }
        };
    if written == 0 {
        return Ok(DatasetWrite::Lost);
    }
    if row.live {
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM sync_datasets WHERE identity_id = $1 AND live = 1",
        )
        .bind(&row.identity_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
        if live > max_datasets {
            return Ok(DatasetWrite::TooManyDatasets);
        }
    } else {
        sqlx::query("DELETE FROM sync_records WHERE identity_id = $1 AND dataset_name = $2")
            .bind(&row.identity_id)
            .bind(&row.dataset_name)
            .execute(&mut *conn)
            .await?;
    }
    for r in records {
        sqlx::query(concat!(
            "INSERT INTO sync_records (identity_id, dataset_name, ",
            record_columns!(),
            ") \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (identity_id, dataset_name, record_key) DO UPDATE SET \
                 value = excluded.value, sync_count = excluded.sync_count, \
                 modified_ms = excluded.modified_ms, modified_by = excluded.modified_by, \
                 device_modified_ms = excluded.device_modified_ms"
        ))
        .bind(&row.identity_id)
        .bind(&row.dataset_name)
        .bind(&r.key)
        .bind(r.value.as_deref())
        .bind(r.sync_count)
        .bind(r.modified_ms)
        .bind(&r.modified_by)
        .bind(r.device_modified_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(DatasetWrite::Written)
}
