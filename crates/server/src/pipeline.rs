//! The one request pipeline of the JSON 1.1, Query and REST-JSON services (STS, IAM,
//! Organizations, Cognito user pools, identity pools and Sync). Every request runs the same steps in the same order:
//!
//! 1. the operation, from the generated `Operation` enum of the service's model; one the
//!    service does not implement gets the protocol's unknown-operation error;
//! 2. authentication: SigV4, unless the model marks the operation `authtype: none`;
//! 3. [`Service::admit`]: refusals that depend on the credentials only;
//! 4. decoding and validation against the model, in the protocol's words;
//! 5. [`Service::authorize`]: IAM (or a trust policy) on the operation's resources;
//! 6. [`Service::call`]: the service crate;
//! 7. cache invalidation here and on other nodes ([`Service::invalidates`]);
//! 8. encoding in the protocol's shape.
//!
//! A service adapter (`services/<service>.rs`) implements [`Service`]: which operations, how
//! each is authorized, which crate function runs it. Logging, request ids and error rendering
//! stay in the edge.

use bytes::Bytes;
use cognate_protocol::{
    ApiError, Model, Protocol, QueryParams, QueryService, ServiceOperation, decode_json,
    render_json, render_query, render_rest_json,
};
use cognate_sigv4::{self as sigv4, PathStyle};
use http::StatusCode;
use serde_json::Value;

use crate::auth::Caller;
use crate::context::Ctx;

/// How a service's requests and responses travel.
pub(crate) enum Wire {
    /// JSON 1.1 (`X-Amz-Target`); model violations get the service's own `invalid` code.
    Json { invalid: &'static str },
    /// Query (`Action=`), answered in XML.
    Query(QueryService),
    /// REST-JSON (the operation from the method and path); model violations get `invalid`.
    RestJson { invalid: &'static str },
}

/// A request's input as it arrived: a JSON body or Query parameters.
pub(crate) enum Payload<'a> {
    Json(&'a [u8]),
    Query {
        params: &'a QueryParams,
        body: &'a [u8],
    },
    /// A REST request: the URI labels its path matched, and its JSON body.
    Rest {
        labels: &'a [(String, String)],
        body: &'a [u8],
    },
}

impl Payload<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Json(body) | Payload::Query { body, .. } | Payload::Rest { body, .. } => body,
        }
    }
}

/// One service behind the pipeline.
pub(crate) trait Service {
    /// The service's operations, generated from its model.
    type Operation: ServiceOperation;
    /// What authorization found that the call needs (the caller's account, a verified role).
    type Authorized;
    /// The SigV4 signing name (credential scope service).
    const SIGNING_NAME: &'static str;
    const WIRE: Wire;

    /// The service's model, for decoding, validation and encoding.
    fn model() -> &'static Model;

    /// Whether Cognate implements `op`; every other operation is unknown.
    fn implements(op: Self::Operation) -> bool;

    /// Refusals that depend on the credentials alone, before the input is read.
    fn admit(op: Self::Operation, caller: Option<&Caller>) -> Result<(), ApiError> {
        let _ = (op, caller);
        Ok(())
    }

    /// Decides whether the caller may run `op` on the resources `input` names.
    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Self::Operation,
        input: &Value,
    ) -> Result<Self::Authorized, ApiError>;

    /// Runs `op`; its output is model-shaped JSON.
    async fn call(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Self::Operation,
        input: Value,
        authorized: Self::Authorized,
    ) -> Result<Value, ApiError>;

    /// Whether a successful `op` changed something other nodes (and this node's caches) hold.
    fn invalidates(op: Self::Operation) -> bool;
}

/// The error for an operation a service does not have (or Cognate does not implement).
pub(crate) fn unknown_operation(wire: &Wire, name: &str) -> ApiError {
    match wire {
        Wire::Json { .. } | Wire::RestJson { .. } => ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("Unknown operation {name}: this service does not implement it"),
        ),
        Wire::Query(service) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "Could not find operation {name} for version {}",
                service.api_version()
            ),
        ),
    }
}

/// Runs the operation `name` of service `S`.
pub(crate) async fn run<S: Service>(
    ctx: &mut Ctx<'_>,
    name: &str,
    payload: Payload<'_>,
) -> Result<http::Response<Bytes>, ApiError> {
    let op = S::Operation::from_name(name)
        .filter(|op| S::implements(*op))
        .ok_or_else(|| unknown_operation(&S::WIRE, name))?;
    let protocol = match S::WIRE {
        Wire::Json { .. } => Protocol::Json,
        Wire::Query(_) => Protocol::Query,
        Wire::RestJson { .. } => Protocol::RestJson,
    };
    let payload_hash = sigv4::sha256_hex(payload.bytes());
    let caller = ctx
        .caller(
            protocol,
            S::SIGNING_NAME,
            PathStyle::Normalized,
            &payload_hash,
            op.requires_signature(),
        )
        .await?;
    S::admit(op, caller.as_ref())?;
    let model = S::model();
    let (input, invalid) = match (&S::WIRE, &payload) {
        (Wire::Json { invalid }, Payload::Json(body)) => (decode_json(body)?, Some(*invalid)),
        (Wire::RestJson { invalid }, Payload::Rest { labels, body }) => (
            model.decode_rest(
                name,
                labels,
                ctx.parts.uri.query().unwrap_or(""),
                &ctx.parts.headers,
                body,
                invalid,
            )?,
            Some(*invalid),
        ),
        (Wire::Query(_), Payload::Query { params, .. }) => {
            (model.decode_query(name, params)?, None)
        }
        _ => return Err(ApiError::internal()),
    };
    if let Some(invalid) = invalid {
        let violations = model.validate_json(name, &input);
        if !violations.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                invalid,
                violations.join("; "),
            ));
        }
    }
    let authorized = S::authorize(ctx, caller.as_ref(), op, &input).await?;
    let output = S::call(ctx, caller.as_ref(), op, input, authorized).await?;
    if S::invalidates(op) {
        ctx.state.changed().await;
    }
    match S::WIRE {
        Wire::Json { .. } => render_json(&output),
        Wire::RestJson { .. } => render_rest_json(&output),
        Wire::Query(service) => {
            let result = model.encode_query(name, &output);
            Ok(render_query(
                name,
                service.xml_namespace(),
                ctx.request_id,
                result.as_deref(),
            ))
        }
    }
}

/// The caller of an operation that requires a signature (authentication has run).
pub(crate) fn signed(caller: Option<&Caller>) -> Result<&Caller, ApiError> {
    caller.ok_or_else(ApiError::internal)
}
