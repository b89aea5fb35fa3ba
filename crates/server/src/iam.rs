//! The IAM Query adapter: parameters decoded by the IAM model, authorized, handed to
//! `cognate_iam`, and its output encoded by the model.

use bytes::Bytes;
use cognate_credentials::Principal;
use cognate_iam::{CallerUser, Iam};
use cognate_protocol::{
    ApiError, AuthFailure, Model, Protocol, QueryParams, QueryService, render_query, services,
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
    if caller.is_get_session_token() {
        // As on AWS, GetSessionToken credentials without MFA cannot call IAM.
        return Err(AuthFailure::InvalidToken.to_error(Protocol::Query));
    }
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
    let who = match &caller.principal {
        Principal::Root { .. } => CallerUser::Root,
        Principal::User { name, .. } => CallerUser::User(name),
        Principal::AssumedRole { .. } => CallerUser::RoleSession,
    };
    let authorization = iam.authorization(op, &who, &input).await?;
    crate::authz::authorize(
        ctx,
        &caller,
        Protocol::Query,
        &format!("iam:{action}"),
        &authorization.resource,
        &authorization.keys,
        None,
    )
    .await?;
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
