//! Cognito Sync: each identity's datasets of key/value records, synchronised across devices by
//! sync count.
//!
//! A dataset has one sync count. Every successful UpdateRecords adds exactly one to it and
//! stamps that count on every record it changed; a patch must name the sync count of the record
//! as the device last saw it (0 for a record it never saw), else the whole call is refused with
//! `ResourceConflictException` and nothing changes. ListRecords returns the records changed
//! after a device's last sync count, removed ones as tombstones (no value), and a sealed
//! session token UpdateRecords requires. Deleting a dataset raises its count too, so a device
//! that last synced before learns of the deletion (`DatasetDeletedAfterRequestedSyncCount`).
//!
//! The server has authenticated the caller and authorized the operation with IAM; this crate
//! checks that the pool belongs to the caller's account and the identity to the pool.

mod devices;
mod error;
mod events;
mod streams;
mod token;

pub use error::{Result, SyncError};
pub use events::{Invoke, InvokeError, SYNC_TRIGGER};
pub use streams::{StreamRecord, bulk_records, finish_bulk_publish, stream_record};

use std::collections::HashMap;

use cognate_credentials::MasterKey;
use cognate_protocol::shapes::cognito_sync as shapes;
use cognate_store::{DatasetRow, DatasetWrite, Store, SyncRecordRow};
use ring::rand::SecureRandom;

/// Live datasets one identity may hold.
pub const MAX_DATASETS_PER_IDENTITY: i64 = 20;
/// Live records in one dataset.
pub const MAX_RECORDS_PER_DATASET: i64 = 1024;
/// Bytes of keys and values in one dataset (1 MB).
pub const MAX_DATASET_BYTES: i64 = 1024 * 1024;
/// Characters of a record key, and of a value (the model's limits, which a Sync Trigger's
/// answer must keep too).
pub const MAX_KEY_CHARS: usize = 1024;
pub const MAX_VALUE_CHARS: usize = 1_048_575;
/// How long a sync session token from ListRecords stays good for UpdateRecords.
const SESSION_SECONDS: i64 = 3600;
/// ListRecords' and ListDatasets' page size when the caller names none, and the largest.
const DEFAULT_PAGE: i64 = 1024;
/// ListIdentityPoolUsage's page size when the caller names none, and the largest.
const MAX_POOL_PAGE: i64 = 60;
/// How often a write that lost a race with another writer of its dataset starts again.
pub(crate) const WRITE_ATTEMPTS: usize = 8;

/// One request's view of Cognito Sync.
pub struct CognitoSync<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub rng: &'a (dyn SecureRandom + Sync),
    pub now: time::OffsetDateTime,
    pub region: &'a str,
    /// The signed caller's account: pools of other accounts do not exist for it.
    pub account: &'a str,
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn dataset_shape(d: &DatasetRow) -> shapes::Dataset {
    shapes::Dataset {
        identity_id: Some(d.identity_id.clone()),
        dataset_name: Some(d.dataset_name.clone()),
        creation_date: Some(seconds(d.created_ms)),
        last_modified_date: Some(seconds(d.modified_ms)),
        last_modified_by: Some(d.modified_by.clone()),
        data_storage: Some(d.data_storage),
        num_records: Some(d.num_records),
    }
}

fn record_shape(r: &SyncRecordRow) -> shapes::Record {
    shapes::Record {
        key: Some(r.key.clone()),
        value: r.value.clone(),
        sync_count: Some(r.sync_count),
        last_modified_date: Some(seconds(r.modified_ms)),
        last_modified_by: Some(r.modified_by.clone()),
        device_last_modified_date: r.device_modified_ms.map(seconds),
    }
}

/// The bytes a live record counts against its dataset's limit.
fn size(key: &str, value: Option<&str>) -> i64 {
    value.map_or(0, |v| (key.len() + v.len()) as i64)
}

fn page_size(requested: Option<i64>, max: i64) -> Result<i64> {
    match requested {
        None => Ok(max),
        Some(n) if n < 1 => Err(SyncError::InvalidParameter(
            "MaxResults must be a positive number".to_owned(),
        )),
        Some(n) => Ok(n.min(max)),
    }
}

impl CognitoSync<'_> {
    fn now_ms(&self) -> i64 {
        (self.now.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The pool, if it belongs to the caller's account.
    async fn pool(&self, pool_id: &str) -> Result<()> {
        match self.store.identity_pool(pool_id).await? {
            Some(p) if p.account_id == self.account => Ok(()),
            _ => Err(SyncError::ResourceNotFound(format!(
                "IdentityPool '{pool_id}' not found."
            ))),
        }
    }

    /// Whether the identity exists in the pool (which belongs to the caller's account).
    async fn identity_in(&self, pool_id: &str, identity_id: &str) -> Result<bool> {
        self.pool(pool_id).await?;
        Ok(self
            .store
            .identity(identity_id)
            .await?
            .is_some_and(|(row, _)| row.pool_id == pool_id))
    }

    async fn require_identity(&self, pool_id: &str, identity_id: &str) -> Result<()> {
        if self.identity_in(pool_id, identity_id).await? {
            Ok(())
        } else {
            Err(SyncError::ResourceNotFound(format!(
                "Identity '{identity_id}' not found."
            )))
        }
    }

    async fn live_dataset(&self, identity_id: &str, name: &str) -> Result<DatasetRow> {
        self.store
            .sync_dataset(identity_id, name)
            .await?
            .filter(|d| d.live)
            .ok_or_else(|| SyncError::ResourceNotFound(format!("Dataset '{name}' not found.")))
    }

    pub async fn list_datasets(
        &self,
        input: shapes::ListDatasetsRequest,
    ) -> Result<shapes::ListDatasetsResponse> {
        let limit = page_size(input.max_results, DEFAULT_PAGE)?;
        let after = token::page_after(input.next_token.as_deref())?.unwrap_or_default();
        if !self
            .identity_in(&input.identity_pool_id, &input.identity_id)
            .await?
        {
            return Ok(shapes::ListDatasetsResponse {
                datasets: Some(Vec::new()),
                count: Some(0),
                next_token: None,
            });
        }
        let mut rows = self
            .store
            .sync_datasets(&input.identity_id, &after, limit + 1)
            .await?;
        let next_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|d| token::page_token(&d.dataset_name))
        } else {
            None
        };
        Ok(shapes::ListDatasetsResponse {
            count: Some(rows.len() as i64),
            datasets: Some(rows.iter().map(dataset_shape).collect()),
            next_token,
        })
    }

    pub async fn describe_dataset(
        &self,
        input: shapes::DescribeDatasetRequest,
    ) -> Result<shapes::DescribeDatasetResponse> {
        self.require_identity(&input.identity_pool_id, &input.identity_id)
            .await?;
        let d = self
            .live_dataset(&input.identity_id, &input.dataset_name)
            .await?;
        Ok(shapes::DescribeDatasetResponse {
            dataset: Some(dataset_shape(&d)),
        })
    }

    /// Deletes a dataset and its records; devices learn of it from ListRecords. The answer
    /// describes the dataset as it was; the count is the one the deletion took.
    pub async fn delete_dataset(
        &self,
        input: shapes::DeleteDatasetRequest,
        by: &str,
    ) -> Result<(shapes::DeleteDatasetResponse, i64)> {
        self.require_identity(&input.identity_pool_id, &input.identity_id)
            .await?;
        for _ in 0..WRITE_ATTEMPTS {
            let d = self
                .live_dataset(&input.identity_id, &input.dataset_name)
                .await?;
            let count = d.sync_count + 1;
            let deleted = DatasetRow {
                live: false,
                sync_count: count,
                deleted_at: count,
                modified_ms: self.now_ms(),
                modified_by: by.to_owned(),
                data_storage: 0,
                num_records: 0,
                merged_from: None,
                ..d.clone()
            };
            match self
                .store
                .write_sync_dataset(&deleted, Some(d.sync_count), &[], MAX_DATASETS_PER_IDENTITY)
                .await?
            {
                DatasetWrite::Written => {
                    let out = shapes::DeleteDatasetResponse {
                        dataset: Some(dataset_shape(&d)),
                    };
                    return Ok((out, count));
                }
                DatasetWrite::Lost => continue,
                DatasetWrite::NoIdentity | DatasetWrite::TooManyDatasets => {
                    return Err(SyncError::ResourceNotFound(format!(
                        "Identity '{}' not found.",
                        input.identity_id
                    )));
                }
            }
        }
        Err(busy())
    }

    /// The records changed after `LastSyncCount` (all of them without it), tombstones
    /// included, oldest change first, with a session token for the UpdateRecords that follows.
    pub async fn list_records(
        &self,
        input: shapes::ListRecordsRequest,
    ) -> Result<shapes::ListRecordsResponse> {
        let since = input.last_sync_count.unwrap_or(0).max(0);
        let limit = page_size(input.max_results, DEFAULT_PAGE)?;
        let after = match token::page_after(input.next_token.as_deref())? {
            None => (since, String::new()),
            Some(t) => t
                .split_once(':')
                .and_then(|(n, key)| Some((n.parse::<i64>().ok()?, key.to_owned())))
                .ok_or_else(|| {
                    SyncError::InvalidParameter("Invalid pagination token".to_owned())
                })?,
        };
        let known = self
            .identity_in(&input.identity_pool_id, &input.identity_id)
            .await?;
        let dataset = if known {
            self.store
                .sync_dataset(&input.identity_id, &input.dataset_name)
                .await?
        } else {
            None
        };
        if dataset
            .as_ref()
            .is_some_and(|d| d.live && since > d.sync_count)
        {
            return Err(SyncError::InvalidParameter(format!(
                "No such SyncCount: {since} exists for this Dataset"
            )));
        }
        let merged = if known {
            self.store
                .sync_merged_names(&input.identity_id, &input.dataset_name)
                .await?
        } else {
            Vec::new()
        };
        let mut records = match &dataset {
            Some(d) if d.live => {
                self.store
                    .sync_records_since(
                        &input.identity_id,
                        &input.dataset_name,
                        since,
                        (after.0, &after.1),
                        limit + 1,
                    )
                    .await?
            }
            _ => Vec::new(),
        };
        let next_token = if records.len() as i64 > limit {
            records.truncate(limit as usize);
            records
                .last()
                .map(|r| token::page_token(&format!("{}:{}", r.sync_count, r.key)))
        } else {
            None
        };
        let now = self.now.unix_timestamp();
        let session = match input.sync_session_token {
            Some(t)
                if token::session_valid(
                    self.master,
                    &t,
                    &input.identity_id,
                    &input.dataset_name,
                    now,
                ) =>
            {
                t
            }
            _ => token::seal_session(
                self.master,
                self.rng,
                &input.identity_id,
                &input.dataset_name,
                now + SESSION_SECONDS,
            )?,
        };
        Ok(shapes::ListRecordsResponse {
            count: Some(records.len() as i64),
            records: Some(records.iter().map(record_shape).collect()),
            next_token,
            dataset_sync_count: Some(dataset.as_ref().map_or(0, |d| d.sync_count)),
            last_modified_by: dataset.as_ref().map(|d| d.modified_by.clone()),
            merged_dataset_names: (!merged.is_empty()).then_some(merged),
            dataset_exists: Some(dataset.as_ref().is_some_and(|d| d.live)),
            dataset_deleted_after_requested_sync_count: Some(
                dataset
                    .as_ref()
                    .is_some_and(|d| since > 0 && d.deleted_at > since),
            ),
            sync_session_token: Some(session),
        })
    }

    /// Applies a device's patches as one change: all or nothing, one sync count more (returned
    /// beside the answer). With `trigger` (a call with an identity's credentials), the pool's
    /// Sync Trigger function, if it has one, decides what is written.
    pub async fn update_records<I: Invoke>(
        &self,
        input: shapes::UpdateRecordsRequest,
        by: &str,
        trigger: Option<&I>,
    ) -> Result<(shapes::UpdateRecordsResponse, i64)> {
        if !token::session_valid(
            self.master,
            &input.sync_session_token,
            &input.identity_id,
            &input.dataset_name,
            self.now.unix_timestamp(),
        ) {
            return Err(SyncError::InvalidParameter(
                "SyncSessionToken not valid for these inputs".to_owned(),
            ));
        }
        let patches = input.record_patches.unwrap_or_default();
        let mut keys: Vec<String> = patches.iter().map(|p| p.key.clone()).collect();
        keys.sort();
        keys.dedup();
        if keys.len() != patches.len() {
            return Err(SyncError::InvalidParameter(
                "RecordPatches may name each key only once".to_owned(),
            ));
        }
        for p in &patches {
            if p.op == "replace" && p.value.is_none() {
                return Err(SyncError::InvalidParameter(format!(
                    "A replace patch needs a value (key '{}')",
                    p.key
                )));
            }
        }
        self.require_identity(&input.identity_pool_id, &input.identity_id)
            .await?;
        let function = match trigger {
            Some(invoker) => self
                .sync_trigger_of(&input.identity_pool_id)
                .await?
                .map(|f| (invoker, f)),
            None => None,
        };
        let now = self.now_ms();
        for _ in 0..WRITE_ATTEMPTS {
            let current = self
                .store
                .sync_dataset(&input.identity_id, &input.dataset_name)
                .await?;
            let live = current.as_ref().filter(|d| d.live);
            let existing: HashMap<String, SyncRecordRow> = if live.is_some() {
                self.store
                    .sync_records(&input.identity_id, &input.dataset_name, &keys)
                    .await?
                    .into_iter()
                    .map(|r| (r.key.clone(), r))
                    .collect()
            } else {
                HashMap::new()
            };
            for p in &patches {
                let seen = existing.get(&p.key).map_or(0, |r| r.sync_count);
                if p.sync_count != seen {
                    return Err(SyncError::ResourceConflict(format!(
                        "Current SyncCount for: {} is: {seen} not: {}",
                        p.key, p.sync_count
                    )));
                }
            }
            let mut changes: Vec<events::Change> = patches
                .iter()
                .map(|p| events::Change {
                    key: p.key.clone(),
                    value: if p.op == "replace" {
                        p.value.clone()
                    } else {
                        None
                    },
                    device_ms: p.device_last_modified_date.map(|s| (s * 1000.0) as i64),
                })
                .collect();
            // The live values the changes replace: the patched records', or with a trigger
            // every record's (the function sees, and may change, them all).
            let mut stored: HashMap<String, String> = existing
                .values()
                .filter_map(|r| Some((r.key.clone(), r.value.clone()?)))
                .collect();
            if let Some((invoker, function)) = &function {
                if live.is_some() {
                    let all = self
                        .store
                        .sync_records_since(
                            &input.identity_id,
                            &input.dataset_name,
                            0,
                            (0, ""),
                            MAX_RECORDS_PER_DATASET + keys.len() as i64 + 1,
                        )
                        .await?;
                    stored = all
                        .into_iter()
                        .filter_map(|r| Some((r.key, r.value?)))
                        .collect();
                }
                let dataset = events::Dataset {
                    region: self.region,
                    identity_pool_id: &input.identity_pool_id,
                    identity_id: &input.identity_id,
                    dataset_name: &input.dataset_name,
                };
                changes =
                    events::sync_trigger(*invoker, function, &dataset, &stored, changes).await?;
            }
            let count = current.as_ref().map_or(0, |d| d.sync_count) + 1;
            let mut bytes = live.map_or(0, |d| d.data_storage);
            let mut records = live.map_or(0, |d| d.num_records);
            let mut changed = Vec::with_capacity(changes.len());
            for c in changes {
                let old_value = stored.get(&c.key).map(String::as_str);
                bytes += size(&c.key, c.value.as_deref()) - size(&c.key, old_value);
                records += i64::from(c.value.is_some()) - i64::from(old_value.is_some());
                changed.push(SyncRecordRow {
                    key: c.key,
                    value: c.value,
                    sync_count: count,
                    modified_ms: now,
                    modified_by: by.to_owned(),
                    device_modified_ms: c.device_ms,
                });
            }
            if records > MAX_RECORDS_PER_DATASET {
                return Err(SyncError::LimitExceeded(format!(
                    "A dataset may hold at most {MAX_RECORDS_PER_DATASET} records"
                )));
            }
            if bytes > MAX_DATASET_BYTES {
                return Err(SyncError::LimitExceeded(format!(
                    "A dataset may hold at most {MAX_DATASET_BYTES} bytes"
                )));
            }
            let row = DatasetRow {
                identity_id: input.identity_id.clone(),
                dataset_name: input.dataset_name.clone(),
                pool_id: input.identity_pool_id.clone(),
                live: true,
                sync_count: count,
                deleted_at: current.as_ref().map_or(0, |d| d.deleted_at),
                created_ms: live.map_or(now, |d| d.created_ms),
                modified_ms: now,
                modified_by: by.to_owned(),
                data_storage: bytes,
                num_records: records,
                merged_from: live.and_then(|d| d.merged_from.clone()),
            };
            match self
                .store
                .write_sync_dataset(
                    &row,
                    current.as_ref().map(|d| d.sync_count),
                    &changed,
                    MAX_DATASETS_PER_IDENTITY,
                )
                .await?
            {
                DatasetWrite::Written => {
                    let out = shapes::UpdateRecordsResponse {
                        records: Some(changed.iter().map(record_shape).collect()),
                    };
                    return Ok((out, count));
                }
                DatasetWrite::Lost => continue,
                DatasetWrite::NoIdentity => {
                    return Err(SyncError::ResourceNotFound(format!(
                        "Identity '{}' not found.",
                        input.identity_id
                    )));
                }
                DatasetWrite::TooManyDatasets => {
                    return Err(SyncError::LimitExceeded(format!(
                        "An identity may hold at most {MAX_DATASETS_PER_IDENTITY} datasets"
                    )));
                }
            }
        }
        Err(busy())
    }

    pub async fn describe_identity_usage(
        &self,
        input: shapes::DescribeIdentityUsageRequest,
    ) -> Result<shapes::DescribeIdentityUsageResponse> {
        self.require_identity(&input.identity_pool_id, &input.identity_id)
            .await?;
        let usage = self.store.sync_identity_usage(&input.identity_id).await?;
        Ok(shapes::DescribeIdentityUsageResponse {
            identity_usage: Some(shapes::IdentityUsage {
                identity_id: Some(input.identity_id),
                identity_pool_id: Some(input.identity_pool_id),
                last_modified_date: usage.modified_ms.map(seconds),
                dataset_count: Some(usage.dataset_count),
                data_storage: Some(usage.data_storage),
            }),
        })
    }

    pub async fn describe_identity_pool_usage(
        &self,
        input: shapes::DescribeIdentityPoolUsageRequest,
    ) -> Result<shapes::DescribeIdentityPoolUsageResponse> {
        self.pool(&input.identity_pool_id).await?;
        let usage = self
            .store
            .sync_usage_of_pool(&input.identity_pool_id)
            .await?;
        Ok(shapes::DescribeIdentityPoolUsageResponse {
            identity_pool_usage: Some(pool_usage_shape(&usage)),
        })
    }

    /// The caller's account's identity pools with their usage (zeros for a pool without data).
    pub async fn list_identity_pool_usage(
        &self,
        input: shapes::ListIdentityPoolUsageRequest,
    ) -> Result<shapes::ListIdentityPoolUsageResponse> {
        let limit = page_size(input.max_results, MAX_POOL_PAGE)?;
        let after = token::page_after(input.next_token.as_deref())?.unwrap_or_default();
        let mut rows = self
            .store
            .sync_pool_usage(self.account, &after, limit + 1)
            .await?;
        let next_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|p| token::page_token(&p.pool_id))
        } else {
            None
        };
        Ok(shapes::ListIdentityPoolUsageResponse {
            count: Some(rows.len() as i64),
            identity_pool_usages: Some(rows.iter().map(pool_usage_shape).collect()),
            max_results: Some(limit),
            next_token,
        })
    }
}

fn pool_usage_shape(p: &cognate_store::PoolUsageRow) -> shapes::IdentityPoolUsage {
    shapes::IdentityPoolUsage {
        identity_pool_id: Some(p.pool_id.clone()),
        sync_sessions_count: Some(p.sync_sessions),
        data_storage: Some(p.data_storage),
        last_modified_date: p.modified_ms.map(seconds),
    }
}

/// Writers of one dataset kept winning the race: the caller may try again.
pub(crate) fn busy() -> SyncError {
    SyncError::TooManyRequests("The dataset is changing too fast; try again".to_owned())
}
