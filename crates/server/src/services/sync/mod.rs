//! The Cognito Sync REST-JSON adapter. Every operation is signed and authorized with IAM
//! (`cognito-sync:<Operation>` on the dataset, identity or pool ARN). Credentials an identity
//! pool gave an identity (their session carries `cognito-identity.amazonaws.com:sub`) reach
//! that identity's data only, and none of the pool-wide operations, which take developer
//! credentials.

use cognate_protocol::shapes::cognito_sync as shapes;
use cognate_protocol::{ApiError, Model, Protocol, services};
use cognate_sync::{CognitoSync, SyncError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::Caller;
use crate::context::Ctx;
use crate::pipeline::{Service, Wire, signed};
use crate::push::{Notice, Push};

pub(crate) mod live;

pub(crate) use services::cognito_sync::Operation;

/// The condition key naming the identity whose credentials signed the request.
const IDENTITY_KEY: &str = "cognito-identity.amazonaws.com:sub";
/// The condition key naming that identity's pool.
const POOL_KEY: &str = "cognito-identity.amazonaws.com:aud";

pub(crate) struct SyncService;

/// What authorization established for the call.
pub(crate) struct Authorized {
    /// The caller's account.
    account: String,
    /// Whether an identity's own credentials signed (Sync Triggers run only then).
    identity: bool,
}

/// Operations on one identity's data, which that identity's own credentials may call.
fn identity_data(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        ListDatasets
            | DescribeDataset
            | DeleteDataset
            | ListRecords
            | UpdateRecords
            | DescribeIdentityUsage
            | RegisterDevice
            | SubscribeToDataset
            | UnsubscribeFromDataset
    )
}

/// Operations only an identity's own credentials may call (a device's).
fn device_only(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        RegisterDevice | SubscribeToDataset | UnsubscribeFromDataset
    )
}

fn session_value<'a>(caller: &'a Caller, key: &str) -> Option<&'a str> {
    caller
        .session
        .as_deref()?
        .context
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

fn text<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

fn not_authorized(message: impl Into<String>) -> ApiError {
    SyncError::NotAuthorized(message.into()).into()
}

/// The ARN IAM authorizes `op` on: the dataset, the identity, the pool, or `*` for the
/// account-wide listing. ListDatasets is authorized on a dataset named `null`, as AWS does.
fn resource(region: &str, account: &str, op: Operation, input: &Value) -> String {
    let Some(pool) = text(input, "IdentityPoolId") else {
        return "*".to_owned();
    };
    let mut arn = format!("arn:aws:cognito-sync:{region}:{account}:identitypool/{pool}");
    if let Some(identity) = text(input, "IdentityId") {
        arn.push_str(&format!("/identity/{identity}"));
        let dataset = match op {
            Operation::ListDatasets => Some("null"),
            _ => text(input, "DatasetName"),
        };
        if let Some(dataset) = dataset {
            arn.push_str(&format!("/dataset/{dataset}"));
        }
    }
    arn
}

fn typed<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input).map_err(|e| {
        SyncError::InvalidParameter(format!("The request does not match the model: {e}")).into()
    })
}

fn output<T: Serialize>(out: Result<T, SyncError>) -> Result<Value, ApiError> {
    serde_json::to_value(out?).map_err(|_| ApiError::internal())
}

/// A dataset change, as it is told to devices and streams.
struct Change {
    identity_pool_id: String,
    identity_id: String,
    dataset_name: String,
    sync_count: i64,
    /// The device that made it (not told of it).
    device_id: Option<String>,
    /// `replace` (a write) or `remove` (the dataset was deleted).
    operation: &'static str,
    /// The records it wrote.
    records: Vec<shapes::Record>,
}

/// Tells the identity's devices (on every node) that one of its datasets changed, except the
/// device that changed it, and the pool's stream, when it streams. The live channels hear
/// first: they need no lookup, while mobile push and streams read their settings first.
async fn notify(ctx: &Ctx<'_>, sync: &CognitoSync<'_>, change: Change) {
    let device_id = change.device_id.clone();
    let push = Push {
        source: "cognito-sync".to_owned(),
        identity_pool_id: change.identity_pool_id.clone(),
        identity_id: change.identity_id.clone(),
        dataset_name: change.dataset_name.clone(),
        sync_count: change.sync_count,
    };
    ctx.state
        .pushed(Notice {
            push: push.clone(),
            device_id: device_id.clone(),
            node: ctx.state.hub.node.clone(),
        })
        .await;
    match sync.stream_of(&change.identity_pool_id).await {
        Ok(Some(stream)) => {
            let ms = |s: f64| (s * 1000.0).round() as i64;
            let records: Vec<cognate_sync::StreamRecord<'_>> = change
                .records
                .iter()
                .map(|r| cognate_sync::StreamRecord {
                    key: r.key.as_deref().unwrap_or_default(),
                    value: r.value.as_deref(),
                    sync_count: r.sync_count.unwrap_or(change.sync_count),
                    modified_ms: r.last_modified_date.map(ms).unwrap_or_default(),
                    device_modified_ms: r.device_last_modified_date.map(ms),
                })
                .collect();
            let record = cognate_sync::stream_record(
                &change.identity_pool_id,
                &change.identity_id,
                &change.dataset_name,
                change.operation,
                &records,
                change.sync_count,
                (ctx.now.unix_timestamp_nanos() / 1_000_000) as i64,
            );
            let streams = ctx.state.streams.clone();
            tokio::spawn(async move {
                if let Err(e) = streams.publish(&stream, &record).await {
                    tracing::warn!(stream = %stream, reason = %e, "a sync could not be streamed");
                }
            });
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not read a pool's stream configuration"),
    }
    // Mobile devices subscribed to the dataset, through their SNS endpoints: each payload key
    // its own string data value, as the Android client reads them.
    let subscribers = sync
        .subscribers(&push.identity_id, &push.dataset_name, device_id.as_deref())
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not read a dataset's subscribers");
            Vec::new()
        });
    if !subscribers.is_empty() {
        let data: std::collections::BTreeMap<String, String> = [
            ("source", push.source.clone()),
            ("identityPoolId", push.identity_pool_id.clone()),
            ("identityId", push.identity_id.clone()),
            ("datasetName", push.dataset_name.clone()),
            ("syncCount", push.sync_count.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let sns = crate::federation::sns(ctx, sync.account);
        for (device, endpoint) in subscribers {
            if let Err(e) = sns.publish_data(&endpoint, &data).await {
                tracing::info!(device = %device, reason = %e, "no push for a subscribed device");
            }
        }
    }
}

impl Service for SyncService {
    type Operation = Operation;
    type Authorized = Authorized;
    const SIGNING_NAME: &'static str = services::cognito_sync::SIGNING_NAME;
    const WIRE: Wire = Wire::RestJson {
        invalid: "InvalidParameterException",
    };

    fn model() -> &'static Model {
        Model::cognito_sync()
    }

    /// All 17 operations of the model.
    fn implements(_: Operation) -> bool {
        true
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Operation,
        input: &Value,
    ) -> Result<Authorized, ApiError> {
        let caller = signed(caller)?;
        let account = caller.principal.account().to_string();
        let identity = session_value(caller, IDENTITY_KEY);
        if identity.is_none() && device_only(op) {
            return Err(not_authorized(format!(
                "{} can only be called with temporary credentials provided by Cognito Identity",
                op.name()
            )));
        }
        if let Some(own) = identity {
            if !identity_data(op) {
                return Err(not_authorized(format!(
                    "{} can only be called with developer credentials",
                    op.name()
                )));
            }
            let identity = text(input, "IdentityId").unwrap_or_default();
            let pool = text(input, "IdentityPoolId").unwrap_or_default();
            let pool_matches = session_value(caller, POOL_KEY).is_none_or(|aud| aud == pool);
            if identity != own || !pool_matches {
                return Err(not_authorized(format!(
                    "Access to Identity '{identity}' is forbidden."
                )));
            }
        }
        crate::authz::authorize(
            ctx,
            caller,
            Protocol::RestJson,
            &format!("cognito-sync:{}", op.name()),
            &resource(&ctx.state.region, &account, op, input),
            &[],
            None,
        )
        .await?;
        if op == Operation::SetIdentityPoolConfiguration {
            // The roles let Cognito Sync use SNS and the stream for the pool: the caller must be
            // allowed to pass them, as IAM requires.
            for pointer in ["/PushSync/RoleArn", "/CognitoStreams/RoleArn"] {
                if let Some(role) = input.pointer(pointer).and_then(Value::as_str) {
                    crate::authz::authorize_pass_role(
                        ctx,
                        caller,
                        Protocol::RestJson,
                        role,
                        "cognito-sync.amazonaws.com",
                    )
                    .await
                    .map_err(|_| {
                        not_authorized(format!("Access to Role '{role}' is forbidden."))
                    })?;
                }
            }
        }
        Ok(Authorized {
            account,
            identity: identity.is_some(),
        })
    }

    async fn call(
        ctx: &Ctx<'_>,
        _: Option<&Caller>,
        op: Operation,
        input: Value,
        authorized: Authorized,
    ) -> Result<Value, ApiError> {
        let sync = CognitoSync {
            store: &ctx.state.store,
            master: &ctx.state.master,
            rng: &ctx.state.rng,
            now: ctx.now,
            region: &ctx.state.region,
            account: &authorized.account,
        };
        // AWS records the account as the writer (`LastModifiedBy`), whoever's credentials
        // signed.
        let by = authorized.account.as_str();
        use Operation::*;
        match op {
            ListDatasets => output(sync.list_datasets(typed(input)?).await),
            DescribeDataset => output(sync.describe_dataset(typed(input)?).await),
            DeleteDataset => {
                let input: shapes::DeleteDatasetRequest = typed(input)?;
                let (pool, identity, dataset) = (
                    input.identity_pool_id.clone(),
                    input.identity_id.clone(),
                    input.dataset_name.clone(),
                );
                let (out, count) = sync.delete_dataset(input, by).await?;
                let change = Change {
                    identity_pool_id: pool,
                    identity_id: identity,
                    dataset_name: dataset,
                    sync_count: count,
                    device_id: None,
                    operation: "remove",
                    records: Vec::new(),
                };
                notify(ctx, &sync, change).await;
                output(Ok(out))
            }
            ListRecords => output(sync.list_records(typed(input)?).await),
            UpdateRecords => {
                let input: shapes::UpdateRecordsRequest = typed(input)?;
                let (pool, identity, dataset, device) = (
                    input.identity_pool_id.clone(),
                    input.identity_id.clone(),
                    input.dataset_name.clone(),
                    input.device_id.clone(),
                );
                let trigger = authorized.identity.then_some(&ctx.state.functions);
                let (out, count) = sync.update_records(input, by, trigger).await?;
                let change = Change {
                    identity_pool_id: pool,
                    identity_id: identity,
                    dataset_name: dataset,
                    sync_count: count,
                    device_id: device,
                    operation: "replace",
                    records: out.records.clone().unwrap_or_default(),
                };
                notify(ctx, &sync, change).await;
                output(Ok(out))
            }
            DescribeIdentityUsage => output(sync.describe_identity_usage(typed(input)?).await),
            DescribeIdentityPoolUsage => {
                output(sync.describe_identity_pool_usage(typed(input)?).await)
            }
            ListIdentityPoolUsage => output(sync.list_identity_pool_usage(typed(input)?).await),
            GetCognitoEvents => output(sync.get_cognito_events(typed(input)?).await),
            GetIdentityPoolConfiguration => {
                output(sync.get_identity_pool_configuration(typed(input)?).await)
            }
            SetIdentityPoolConfiguration => {
                let input: shapes::SetIdentityPoolConfigurationRequest = typed(input)?;
                let sns = crate::federation::sns(ctx, &authorized.account);
                let arns = input
                    .push_sync
                    .as_ref()
                    .and_then(|p| p.application_arns.as_deref())
                    .unwrap_or_default();
                for arn in arns {
                    if sns.platform_of(arn).await.is_err() {
                        return Err(SyncError::InvalidParameter(format!(
                            "ApplicationArn {arn} names no platform application of this account"
                        ))
                        .into());
                    }
                }
                if let Some(streams) = &input.cognito_streams
                    && streams.streaming_status.as_deref() == Some("ENABLED")
                {
                    let Some(name) = streams.stream_name.as_deref() else {
                        return Err(SyncError::InvalidParameter(
                            "An enabled stream needs a StreamName".to_owned(),
                        )
                        .into());
                    };
                    if let Err(why) = ctx.state.streams.subject_of(name).await {
                        return Err(SyncError::InvalidParameter(format!(
                            "Cognito Streams cannot publish to {name}: {why}"
                        ))
                        .into());
                    }
                }
                output(sync.set_identity_pool_configuration(input).await)
            }
            RegisterDevice => {
                let input: shapes::RegisterDeviceRequest = typed(input)?;
                let sns = crate::federation::sns(ctx, &authorized.account);
                let applications = sync.push_applications(&input.identity_pool_id).await?;
                if applications.is_empty() {
                    return Err(SyncError::InvalidConfiguration(
                        "Push sync is not configured for this identity pool".to_owned(),
                    )
                    .into());
                }
                let mut application = None;
                for arn in &applications {
                    if sns.platform_of(arn).await.ok().as_deref() == Some(input.platform.as_str()) {
                        application = Some(arn);
                        break;
                    }
                }
                let Some(application) = application else {
                    return Err(SyncError::InvalidConfiguration(format!(
                        "The identity pool's push sync has no {} platform application",
                        input.platform
                    ))
                    .into());
                };
                let endpoint =
                    sns.register(application, &input.token)
                        .await
                        .map_err(|e| match e {
                            cognate_sns::SnsError::InvalidParameter(m) => {
                                SyncError::InvalidParameter(m).into()
                            }
                            other => ApiError::from(other),
                        })?;
                let device = uuid::Uuid::new_v4().to_string();
                output(sync.register_device(&input, &endpoint, &device).await)
            }
            BulkPublish => {
                let input: shapes::BulkPublishRequest = typed(input)?;
                let pool = input.identity_pool_id.clone();
                let stream = sync.start_bulk_publish(input).await?;
                let (store, streams) = (ctx.state.store.clone(), ctx.state.streams.clone());
                let task_pool = pool.clone();
                tokio::spawn(async move {
                    let sent = cognate_sync::bulk_records(&store, &task_pool, |record| {
                        let (streams, stream) = (streams.clone(), stream.clone());
                        async move { streams.publish(&stream, &record).await }
                    })
                    .await;
                    let failure = sent.err().map(|e| match e {
                        SyncError::Internal(why) => why,
                        other => other.to_string(),
                    });
                    let now =
                        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
                    if let Err(e) =
                        cognate_sync::finish_bulk_publish(&store, &task_pool, now, failure).await
                    {
                        tracing::error!(error = %e, "could not record a bulk publish's end");
                    }
                });
                output(Ok(shapes::BulkPublishResponse {
                    identity_pool_id: Some(pool),
                }))
            }
            GetBulkPublishDetails => output(sync.get_bulk_publish_details(typed(input)?).await),
            SubscribeToDataset | UnsubscribeFromDataset => {
                let text = |m: &str| input.get(m).and_then(Value::as_str).unwrap_or_default();
                sync.subscribe(
                    text("IdentityPoolId"),
                    text("IdentityId"),
                    text("DatasetName"),
                    text("DeviceId"),
                    op == SubscribeToDataset,
                )
                .await?;
                Ok(Value::Object(serde_json::Map::new()))
            }
            SetCognitoEvents => {
                let reachable = ctx.state.functions.configured();
                sync.set_cognito_events(typed(input)?, reachable).await?;
                Ok(Value::Object(serde_json::Map::new()))
            }
        }
    }

    fn invalidates(_: Operation) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_resource_is_the_narrowest_the_input_names() {
        let dataset = json!({"IdentityPoolId": "us-east-1:p", "IdentityId": "us-east-1:i", "DatasetName": "d"});
        assert_eq!(
            resource(
                "us-east-1",
                "111122223333",
                Operation::ListRecords,
                &dataset
            ),
            "arn:aws:cognito-sync:us-east-1:111122223333:identitypool/us-east-1:p/identity/us-east-1:i/dataset/d"
        );
        let pool = json!({"IdentityPoolId": "us-east-1:p"});
        assert_eq!(
            resource(
                "us-east-1",
                "111122223333",
                Operation::DescribeIdentityPoolUsage,
                &pool
            ),
            "arn:aws:cognito-sync:us-east-1:111122223333:identitypool/us-east-1:p"
        );
        assert_eq!(
            resource(
                "us-east-1",
                "111122223333",
                Operation::ListDatasets,
                &dataset
            ),
            "arn:aws:cognito-sync:us-east-1:111122223333:identitypool/us-east-1:p/identity/us-east-1:i/dataset/null"
        );
        assert_eq!(
            resource(
                "us-east-1",
                "111122223333",
                Operation::ListIdentityPoolUsage,
                &json!({})
            ),
            "*"
        );
    }

    #[test]
    fn typed_input_refuses_what_the_model_does_not_shape() {
        let bad: Result<shapes::ListRecordsRequest, _> =
            typed(json!({"IdentityPoolId": 1, "IdentityId": "a", "DatasetName": "d"}));
        assert_eq!(bad.err().map(|e| e.status.as_u16()), Some(400));
    }
}
