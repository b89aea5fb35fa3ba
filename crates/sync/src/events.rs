//! Cognito Events: a pool's Sync Trigger, the function UpdateRecords runs on a dataset's
//! records before they are stored, as the developer guide documents it. The function gets
//! every record of the dataset (the caller's changes with `op` `replace` or `remove`) and
//! answers the same event; its `datasetRecords` are what is written (a record set to `remove`
//! or to a null `newValue` is removed, one left out is not written, one added is written). Only
//! calls with an identity's credentials run it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

use cognate_protocol::shapes::cognito_sync as shapes;
use serde_json::{Map, Value, json};

use crate::error::{Result, SyncError};
use crate::{CognitoSync, MAX_KEY_CHARS, MAX_VALUE_CHARS};

/// The kind of pool setting the events are stored as.
const EVENTS: &str = "events";

/// The one event type Cognito Sync raises.
pub const SYNC_TRIGGER: &str = "SyncTrigger";

/// Runs a function on an event and returns its answer: the Lambda Invoke API, or whatever the
/// server configures.
pub trait Invoke: Sync {
    fn invoke(
        &self,
        function_arn: &str,
        event: Value,
    ) -> impl Future<Output = std::result::Result<Value, InvokeError>> + Send;
}

/// Why a function gave no answer.
#[derive(Debug)]
pub enum InvokeError {
    Throttled,
    /// No answer within the deadline (5 seconds).
    TimedOut,
    /// The function failed, or its answer was not JSON; the text says how.
    Failed(String),
}

impl From<InvokeError> for SyncError {
    fn from(e: InvokeError) -> Self {
        match e {
            InvokeError::Throttled => {
                SyncError::LambdaThrottled("The Sync Trigger function was throttled".to_owned())
            }
            InvokeError::TimedOut => SyncError::LambdaSocketTimeout(
                "The Sync Trigger function did not answer within 5 seconds".to_owned(),
            ),
            InvokeError::Failed(why) => SyncError::InvalidLambdaFunctionOutput(format!(
                "The Sync Trigger function failed: {why}"
            )),
        }
    }
}

/// One record as a write leaves it: its value (`None`: removed) and the device's time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub key: String,
    pub value: Option<String>,
    pub device_ms: Option<i64>,
}

/// Where the records of a Sync Trigger event come from.
pub(crate) struct Dataset<'a> {
    pub region: &'a str,
    pub identity_pool_id: &'a str,
    pub identity_id: &'a str,
    pub dataset_name: &'a str,
}

fn bad_output(why: impl std::fmt::Display) -> SyncError {
    SyncError::InvalidLambdaFunctionOutput(format!("The Sync Trigger function's answer {why}"))
}

/// Asks the function what to write instead of `changes`, given the dataset's live records.
pub(crate) async fn sync_trigger<I: Invoke>(
    invoker: &I,
    function_arn: &str,
    dataset: &Dataset<'_>,
    stored: &HashMap<String, String>,
    changes: Vec<Change>,
) -> Result<Vec<Change>> {
    let mut records = Map::new();
    for (key, value) in stored {
        records.insert(
            key.clone(),
            json!({"oldValue": value, "newValue": value, "op": "replace"}),
        );
    }
    for c in &changes {
        records.insert(
            c.key.clone(),
            json!({
                "oldValue": stored.get(&c.key),
                "newValue": c.value,
                "op": if c.value.is_some() { "replace" } else { "remove" },
            }),
        );
    }
    let event = json!({
        "version": 2,
        "eventType": SYNC_TRIGGER,
        "region": dataset.region,
        "identityPoolId": dataset.identity_pool_id,
        "identityId": dataset.identity_id,
        "datasetName": dataset.dataset_name,
        "datasetRecords": records,
    });
    let answer = invoker.invoke(function_arn, event.clone()).await?;
    for field in [
        "version",
        "eventType",
        "region",
        "identityPoolId",
        "identityId",
        "datasetName",
    ] {
        if answer.get(field) != event.get(field) {
            return Err(bad_output(format!("changed the read-only field {field}")));
        }
    }
    let Some(out) = answer.get("datasetRecords").and_then(Value::as_object) else {
        return Err(bad_output("has no datasetRecords object"));
    };
    let devices: HashMap<&str, Option<i64>> = changes
        .iter()
        .map(|c| (c.key.as_str(), c.device_ms))
        .collect();
    let patched: HashSet<&str> = devices.keys().copied().collect();
    let mut result = Vec::new();
    for (key, record) in out {
        let op = record.get("op").and_then(Value::as_str);
        let value = match (op, record.get("newValue")) {
            (Some("remove"), _) | (Some("replace"), None | Some(Value::Null)) => None,
            (Some("replace"), Some(Value::String(v))) => Some(v.clone()),
            _ => {
                return Err(bad_output(format!(
                    "has a record '{key}' whose op is not replace or remove, or whose newValue is not a string"
                )));
            }
        };
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(bad_output(format!("has a key of {chars} characters")));
        }
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > MAX_VALUE_CHARS)
        {
            return Err(bad_output(format!("has a value too long for '{key}'")));
        }
        if patched.contains(key.as_str()) || value.as_ref() != stored.get(key) {
            result.push(Change {
                key: key.clone(),
                value,
                device_ms: devices.get(key.as_str()).copied().flatten(),
            });
        }
    }
    Ok(result)
}

impl CognitoSync<'_> {
    /// The pool's events as stored (JSON), and parsed.
    async fn events(&self, pool_id: &str) -> Result<(Option<String>, BTreeMap<String, String>)> {
        let stored = self.store.sync_pool_setting(pool_id, EVENTS).await?;
        let parsed = match &stored {
            Some(text) => serde_json::from_str(text).map_err(SyncError::internal)?,
            None => BTreeMap::new(),
        };
        Ok((stored, parsed))
    }

    /// The function a pool's Sync Trigger names, if any.
    pub(crate) async fn sync_trigger_of(&self, pool_id: &str) -> Result<Option<String>> {
        Ok(self.events(pool_id).await?.1.remove(SYNC_TRIGGER))
    }

    pub async fn get_cognito_events(
        &self,
        input: shapes::GetCognitoEventsRequest,
    ) -> Result<shapes::GetCognitoEventsResponse> {
        self.pool(&input.identity_pool_id).await?;
        Ok(shapes::GetCognitoEventsResponse {
            events: Some(self.events(&input.identity_pool_id).await?.1),
        })
    }

    /// Sets (or, with an empty ARN, removes) the function of each event type named, keeping
    /// the others. `functions_reachable` is whether the server can invoke functions at all.
    pub async fn set_cognito_events(
        &self,
        input: shapes::SetCognitoEventsRequest,
        functions_reachable: bool,
    ) -> Result<()> {
        self.pool(&input.identity_pool_id).await?;
        for (kind, arn) in &input.events {
            if kind != SYNC_TRIGGER {
                return Err(SyncError::InvalidParameter(format!(
                    "{kind} is not a Cognito event type (the one there is: {SYNC_TRIGGER})"
                )));
            }
            if !arn.is_empty() {
                let parts: Vec<&str> = arn.split(':').collect();
                let function = parts.get(5).copied() == Some("function")
                    && parts.get(6).is_some_and(|n| !n.is_empty());
                if !arn.starts_with("arn:aws:lambda:") || !function {
                    return Err(SyncError::InvalidParameter(format!(
                        "{arn} is not a Lambda function ARN"
                    )));
                }
                if !functions_reachable {
                    return Err(SyncError::InvalidParameter(
                        "This server invokes no functions: start it with --lambda-endpoint"
                            .to_owned(),
                    ));
                }
            }
        }
        for _ in 0..crate::WRITE_ATTEMPTS {
            let (stored, mut events) = self.events(&input.identity_pool_id).await?;
            for (kind, arn) in &input.events {
                if arn.is_empty() {
                    events.remove(kind);
                } else {
                    events.insert(kind.clone(), arn.clone());
                }
            }
            let text = serde_json::to_string(&events).map_err(SyncError::internal)?;
            if self
                .store
                .write_sync_pool_setting(&input.identity_pool_id, EVENTS, stored.as_deref(), &text)
                .await?
            {
                return Ok(());
            }
        }
        Err(crate::busy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function that answers with `answer(event)`.
    struct Function<F: Fn(Value) -> std::result::Result<Value, String> + Sync>(F);

    impl<F: Fn(Value) -> std::result::Result<Value, String> + Sync> Invoke for Function<F> {
        async fn invoke(&self, _: &str, event: Value) -> std::result::Result<Value, InvokeError> {
            (self.0)(event).map_err(InvokeError::Failed)
        }
    }

    fn dataset() -> Dataset<'static> {
        Dataset {
            region: "us-east-1",
            identity_pool_id: "us-east-1:p",
            identity_id: "us-east-1:i",
            dataset_name: "d",
        }
    }

    fn change(key: &str, value: Option<&str>) -> Change {
        Change {
            key: key.into(),
            value: value.map(str::to_owned),
            device_ms: Some(5),
        }
    }

    async fn run(
        answer: impl Fn(Value) -> std::result::Result<Value, String> + Sync,
        stored: &[(&str, &str)],
        changes: Vec<Change>,
    ) -> Result<Vec<Change>> {
        let stored = stored
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        sync_trigger(&Function(answer), "arn", &dataset(), &stored, changes).await
    }

    #[tokio::test]
    async fn the_function_sees_every_record_and_decides_what_is_written() {
        let out = run(
            |mut e| {
                let records = &mut e["datasetRecords"];
                assert_eq!(
                    records["kept"],
                    json!({"oldValue": "k", "newValue": "k", "op": "replace"})
                );
                assert_eq!(
                    records["level"],
                    json!({"oldValue": "1", "newValue": "2", "op": "replace"})
                );
                assert_eq!(
                    records["gone"],
                    json!({"oldValue": "g", "newValue": null, "op": "remove"})
                );
                records["level"]["newValue"] = json!("3");
                records["award"] = json!({"newValue": "gold", "op": "replace"});
                records["kept"]["op"] = json!("remove");
                records.as_object_mut().unwrap().remove("gone");
                Ok(e)
            },
            &[("kept", "k"), ("level", "1"), ("gone", "g")],
            vec![change("level", Some("2")), change("gone", None)],
        )
        .await
        .unwrap();
        let mut out: Vec<(String, Option<String>, Option<i64>)> = out
            .into_iter()
            .map(|c| (c.key, c.value, c.device_ms))
            .collect();
        out.sort();
        assert_eq!(
            out,
            vec![
                ("award".into(), Some("gold".into()), None),
                ("kept".into(), None, None),
                ("level".into(), Some("3".into()), Some(5)),
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_that_changes_read_only_fields_or_is_malformed_is_refused() {
        for answer in [
            |mut e: Value| {
                e["identityId"] = json!("us-east-1:other");
                Ok(e)
            },
            |mut e: Value| {
                e["datasetRecords"] = json!([]);
                Ok(e)
            },
            |mut e: Value| {
                e["datasetRecords"]["x"] = json!({"newValue": 7, "op": "replace"});
                Ok(e)
            },
            |mut e: Value| {
                e["datasetRecords"]["x"] = json!({"newValue": "v", "op": "upsert"});
                Ok(e)
            },
            |_: Value| Err("Unhandled".to_owned()),
        ] {
            let out = run(answer, &[], vec![change("a", Some("b"))]).await;
            assert!(
                matches!(out, Err(SyncError::InvalidLambdaFunctionOutput(_))),
                "{out:?}"
            );
        }
    }
}
