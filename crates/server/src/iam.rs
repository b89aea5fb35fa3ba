//! The IAM Query adapter: parameters decoded by the IAM model, authorized, handed to
//! `cognate_iam`, and its output encoded by the model.

use bytes::Bytes;
use cognate_credentials::Principal;
use cognate_iam::{CallerUser, Iam};
use cognate_protocol::{
    ApiError, Model, Protocol, QueryParams, QueryService, render_query, services,
};
use cognate_sigv4::PathStyle;
use http::StatusCode;

use crate::edge::Ctx;

type Operation = services::iam::Operation;

pub async fn handle(
    ctx: &mut Ctx<'_>,
    action: &str,
    params: &QueryParams,
    payload_hash: &str,
) -> Result<http::Response<Bytes>, ApiError> {
    let op = Operation::from_name(action)
        .filter(|op| cognate_iam::implements(*op))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!(
                    "Could not find operation {action} for version {}",
                    services::iam::API_VERSION
                ),
            )
        })?;
    let caller = ctx
        .caller(
            Protocol::Query,
            services::iam::SIGNING_NAME,
            PathStyle::Normalized,
            payload_hash,
            true,
        )
        .await?
        .ok_or_else(ApiError::internal)?;
    let model = Model::query(QueryService::Iam);
    let input = model.decode_query(action, params)?;
    let state = ctx.state;
    let iam = Iam {
        store: &state.store,
        account: caller.principal.account(),
        master: &state.master,
        now: ctx.now,
        rng: &state.rng,
    };
    let resource = iam.resource_arn(op, &input).await?;
    crate::authz::authorize(
        ctx,
        &caller,
        Protocol::Query,
        &format!("iam:{action}"),
        &resource,
        &request_keys(&input),
        None,
    )
    .await?;
    let who = match &caller.principal {
        Principal::Root { .. } => CallerUser::Root,
        Principal::User { name, .. } => CallerUser::User(name),
        Principal::AssumedRole { .. } => CallerUser::RoleSession,
    };
    if op == Operation::GetAccessKeyLastUsed {
        state.flush_key_use().await;
    }
    let output = iam.call(op, who, input).await?;
    if !cognate_iam::is_read_only(op) {
        state.changed().await;
    }
    let result = model.encode_query(action, &output);
    Ok(render_query(
        action,
        services::iam::XML_NAMESPACE,
        ctx.request_id,
        result.as_deref(),
    ))
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` for requests that carry tags.
fn request_keys(input: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let mut keys = Vec::new();
    let mut tag_keys = Vec::new();
    if let Some(tags) = input.get("Tags").and_then(|t| t.as_array()) {
        for tag in tags {
            let key = tag.get("Key").and_then(|k| k.as_str()).unwrap_or("");
            let value = tag.get("Value").and_then(|v| v.as_str()).unwrap_or("");
            keys.push((format!("aws:RequestTag/{key}"), vec![value.to_owned()]));
            tag_keys.push(key.to_owned());
        }
    }
    if let Some(untag) = input.get("TagKeys").and_then(|t| t.as_array()) {
        tag_keys.extend(untag.iter().filter_map(|k| k.as_str().map(str::to_owned)));
    }
    if !tag_keys.is_empty() {
        keys.push(("aws:TagKeys".to_owned(), tag_keys));
    }
    keys
}
