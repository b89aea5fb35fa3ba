//! Cognito Streams: each sync as the developer guide's stream record, and BulkPublish (every
//! dataset of the pool once, at most once per 24 hours after a success). The server sends the
//! records (NATS JetStream in place of Kinesis).

use cognate_protocol::shapes::cognito_sync as shapes;
use cognate_store::{DatasetRow, Store, SyncRecordRow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Result, SyncError};
use crate::{CognitoSync, MAX_RECORDS_PER_DATASET};

/// The kind of pool setting bulk publish's state is stored as.
const BULK: &str = "bulkpublish";
/// A pool may bulk publish once per this many milliseconds after a success.
const BULK_EVERY_MS: i64 = 24 * 3600 * 1000;
/// Datasets read per query while bulk publishing.
const BULK_PAGE: i64 = 100;

/// One record of a sync as a stream carries it.
pub struct StreamRecord<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
    pub sync_count: i64,
    pub modified_ms: i64,
    pub device_modified_ms: Option<i64>,
}

/// The stream record of one sync (`operation` `replace` for a write, `remove` for a deleted
/// dataset), inline.
pub fn stream_record(
    identity_pool_id: &str,
    identity_id: &str,
    dataset_name: &str,
    operation: &str,
    records: &[StreamRecord<'_>],
    sync_count: i64,
    modified_ms: i64,
) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "value": r.value,
                "syncCount": r.sync_count,
                "lastModifiedDate": r.modified_ms,
                "deviceLastModifiedDate": r.device_modified_ms.unwrap_or(r.modified_ms),
                "op": if r.value.is_some() { "replace" } else { "remove" },
            })
        })
        .collect();
    json!({
        "identityPoolId": identity_pool_id,
        "identityId": identity_id,
        "dataSetName": dataset_name,
        "operation": operation,
        "kinesisSyncRecords": records,
        "lastModifiedDate": modified_ms,
        "payloadType": "Inline",
        "syncCount": sync_count,
    })
}

/// A bulk publish's state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Bulk {
    status: String,
    start_ms: Option<i64>,
    complete_ms: Option<i64>,
    failure: Option<String>,
}

fn dataset_record(d: &DatasetRow, records: &[SyncRecordRow]) -> Value {
    let live: Vec<StreamRecord<'_>> = records
        .iter()
        .filter(|r| r.value.is_some())
        .map(|r| StreamRecord {
            key: &r.key,
            value: r.value.as_deref(),
            sync_count: r.sync_count,
            modified_ms: r.modified_ms,
            device_modified_ms: r.device_modified_ms,
        })
        .collect();
    stream_record(
        &d.pool_id,
        &d.identity_id,
        &d.dataset_name,
        "replace",
        &live,
        d.sync_count,
        d.modified_ms,
    )
}

/// Every live dataset of a pool as one stream record each, page by page: `each` is called
/// with each record; the first error ends the walk.
pub async fn bulk_records<F, Fut>(store: &Store, pool_id: &str, mut each: F) -> Result<usize>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), String>>,
{
    let mut after = (String::new(), String::new());
    let mut sent = 0;
    loop {
        let page = store
            .sync_pool_datasets(pool_id, (&after.0, &after.1), BULK_PAGE)
            .await?;
        for d in &page {
            let records = store
                .sync_records_since(
                    &d.identity_id,
                    &d.dataset_name,
                    0,
                    (0, ""),
                    MAX_RECORDS_PER_DATASET * 4,
                )
                .await?;
            each(dataset_record(d, &records))
                .await
                .map_err(SyncError::internal)?;
            sent += 1;
        }
        match page.last() {
            Some(d) if page.len() as i64 == BULK_PAGE => {
                after = (d.identity_id.clone(), d.dataset_name.clone());
            }
            _ => return Ok(sent),
        }
    }
}

/// Records how a bulk publish ended.
pub async fn finish_bulk_publish(
    store: &Store,
    pool_id: &str,
    now_ms: i64,
    failure: Option<String>,
) -> Result<()> {
    for _ in 0..crate::WRITE_ATTEMPTS {
        let old = store.sync_pool_setting(pool_id, BULK).await?;
        let mut bulk: Bulk = match &old {
            Some(text) => serde_json::from_str(text).map_err(SyncError::internal)?,
            None => Bulk::default(),
        };
        bulk.status = if failure.is_some() {
            "FAILED"
        } else {
            "SUCCEEDED"
        }
        .to_owned();
        bulk.complete_ms = Some(now_ms);
        bulk.failure = failure.clone();
        let text = serde_json::to_string(&bulk).map_err(SyncError::internal)?;
        if store
            .write_sync_pool_setting(pool_id, BULK, old.as_deref(), &text)
            .await?
        {
            return Ok(());
        }
    }
    Err(crate::busy())
}

impl CognitoSync<'_> {
    async fn bulk(&self, pool_id: &str) -> Result<(Option<String>, Bulk)> {
        let old = self.store.sync_pool_setting(pool_id, BULK).await?;
        let bulk = match &old {
            Some(text) => serde_json::from_str(text).map_err(SyncError::internal)?,
            None => Bulk {
                status: "NOT_STARTED".to_owned(),
                ..Bulk::default()
            },
        };
        Ok((old, bulk))
    }

    /// Starts a bulk publish (the caller sends the records and then finishes it); returns
    /// the stream to send them to.
    pub async fn start_bulk_publish(&self, input: shapes::BulkPublishRequest) -> Result<String> {
        self.pool(&input.identity_pool_id).await?;
        let Some(stream) = self.stream_of(&input.identity_pool_id).await? else {
            return Err(SyncError::InvalidParameter(
                "Cognito Streams are not enabled for this identity pool".to_owned(),
            ));
        };
        let now = (self.now.unix_timestamp_nanos() / 1_000_000) as i64;
        for _ in 0..crate::WRITE_ATTEMPTS {
            let (old, bulk) = self.bulk(&input.identity_pool_id).await?;
            if bulk.status == "IN_PROGRESS" {
                return Err(SyncError::DuplicateRequest(
                    "A bulk publish of this identity pool is in progress".to_owned(),
                ));
            }
            if bulk.status == "SUCCEEDED"
                && bulk
                    .complete_ms
                    .is_some_and(|done| now - done < BULK_EVERY_MS)
            {
                return Err(SyncError::AlreadyStreamed(
                    "This identity pool was bulk published less than 24 hours ago".to_owned(),
                ));
            }
            let started = Bulk {
                status: "IN_PROGRESS".to_owned(),
                start_ms: Some(now),
                complete_ms: None,
                failure: None,
            };
            let text = serde_json::to_string(&started).map_err(SyncError::internal)?;
            if self
                .store
                .write_sync_pool_setting(&input.identity_pool_id, BULK, old.as_deref(), &text)
                .await?
            {
                return Ok(stream);
            }
        }
        Err(crate::busy())
    }

    pub async fn get_bulk_publish_details(
        &self,
        input: shapes::GetBulkPublishDetailsRequest,
    ) -> Result<shapes::GetBulkPublishDetailsResponse> {
        self.pool(&input.identity_pool_id).await?;
        let (_, bulk) = self.bulk(&input.identity_pool_id).await?;
        let seconds = |ms: i64| ms as f64 / 1000.0;
        Ok(shapes::GetBulkPublishDetailsResponse {
            identity_pool_id: Some(input.identity_pool_id),
            bulk_publish_start_time: bulk.start_ms.map(seconds),
            bulk_publish_complete_time: bulk.complete_ms.map(seconds),
            bulk_publish_status: Some(bulk.status),
            failure_message: bulk.failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_record_has_the_documented_shape() {
        let record = stream_record(
            "us-east-1:p",
            "us-east-1:i",
            "d",
            "replace",
            &[
                StreamRecord {
                    key: "a",
                    value: Some("1"),
                    sync_count: 3,
                    modified_ms: 10,
                    device_modified_ms: Some(9),
                },
                StreamRecord {
                    key: "b",
                    value: None,
                    sync_count: 3,
                    modified_ms: 10,
                    device_modified_ms: None,
                },
            ],
            3,
            10,
        );
        assert_eq!(
            record,
            json!({
                "identityPoolId": "us-east-1:p", "identityId": "us-east-1:i", "dataSetName": "d",
                "operation": "replace", "lastModifiedDate": 10, "payloadType": "Inline", "syncCount": 3,
                "kinesisSyncRecords": [
                    {"key": "a", "value": "1", "syncCount": 3, "lastModifiedDate": 10,
                     "deviceLastModifiedDate": 9, "op": "replace"},
                    {"key": "b", "value": null, "syncCount": 3, "lastModifiedDate": 10,
                     "deviceLastModifiedDate": 10, "op": "remove"},
                ],
            })
        );
    }
}
