//! The SNS mobile-push Query adapter: each operation authorized with IAM (`sns:<Operation>`
//! on the application or endpoint it names, `*` for creating and listing applications), an
//! IAM refusal answered as SNS answers it (`AuthorizationError`), then `cognate_sns`.

use cognate_protocol::{ApiError, Model, Protocol, QueryService, services};
use cognate_sns::Operation;
use http::StatusCode;
use serde_json::Value;

use crate::auth::Caller;
use crate::context::Ctx;
use crate::federation::sns;
use crate::pipeline::{Service, Wire, signed};

pub(crate) struct SnsService;

fn resource(op: Operation, input: &Value) -> String {
    let member = match op {
        Operation::Publish => "TargetArn",
        Operation::GetEndpointAttributes
        | Operation::SetEndpointAttributes
        | Operation::DeleteEndpoint => "EndpointArn",
        _ => "PlatformApplicationArn",
    };
    input
        .get(member)
        .and_then(Value::as_str)
        .unwrap_or("*")
        .to_owned()
}

impl Service for SnsService {
    type Operation = Operation;
    /// The caller's account.
    type Authorized = String;
    const SIGNING_NAME: &'static str = services::sns::SIGNING_NAME;
    const WIRE: Wire = Wire::Query(QueryService::Sns);

    fn model() -> &'static Model {
        Model::query(QueryService::Sns)
    }

    fn implements(op: Operation) -> bool {
        cognate_sns::implements(op)
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Operation,
        input: &Value,
    ) -> Result<String, ApiError> {
        let caller = signed(caller)?;
        crate::authz::authorize(
            ctx,
            caller,
            Protocol::Query,
            &format!("sns:{}", op.name()),
            &resource(op, input),
            &[],
            None,
        )
        .await
        .map_err(|e| {
            if e.status == StatusCode::FORBIDDEN {
                ApiError::new(StatusCode::FORBIDDEN, "AuthorizationError", e.message)
            } else {
                e
            }
        })?;
        Ok(caller.principal.account().to_string())
    }

    async fn call(
        ctx: &Ctx<'_>,
        _: Option<&Caller>,
        op: Operation,
        input: Value,
        account: String,
    ) -> Result<Value, ApiError> {
        Ok(sns(ctx, &account).call(op, input).await?)
    }

    fn invalidates(_: Operation) -> bool {
        false
    }
}
