//! The AWS Organizations JSON 1.1 adapter: body validated against the model, authorized,
//! handed to `cognate_iam::organizations`.

use bytes::Bytes;
use cognate_iam::organizations::{self, Organizations};
use cognate_protocol::{ApiError, Model, Protocol, decode_json, render_json, services};
use cognate_sigv4::{self as sigv4, PathStyle};
use http::StatusCode;

use crate::edge::Ctx;

type Operation = services::organizations::Operation;

pub async fn handle(
    ctx: &mut Ctx<'_>,
    operation: &str,
    body: &[u8],
) -> Result<http::Response<Bytes>, ApiError> {
    let op = Operation::from_name(operation)
        .filter(|op| organizations::implements(*op))
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "UnknownOperationException", ""))?;
    let payload_hash = sigv4::sha256_hex(body);
    let caller = ctx
        .caller(
            Protocol::Json,
            services::organizations::SIGNING_NAME,
            PathStyle::Normalized,
            &payload_hash,
            true,
        )
        .await?
        .ok_or_else(ApiError::internal)?;
    let input: serde_json::Value = decode_json(body)?;
    let violations = Model::organizations().validate_json(operation, &input);
    if !violations.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidInputException",
            violations.join("; "),
        ));
    }
    crate::authz::authorize(
        ctx,
        &caller,
        Protocol::Json,
        &format!("organizations:{operation}"),
        "*",
        &[],
        None,
    )
    .await?;
    let state = ctx.state;
    let orgs = Organizations {
        store: &state.store,
        account: caller.principal.account(),
        master: &state.master,
        now: ctx.now,
        rng: &state.rng,
    };
    let output = orgs.call(op, input).await?;
    if op == Operation::CreateAccount {
        // A new account brings a new role: drop every cached policy.
        state.changed().await;
    }
    render_json(&output)
}
