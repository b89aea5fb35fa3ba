//! The IAM Query adapter: parameters decoded by the IAM model, authorized on the resource and
//! condition keys `cognate_iam::Iam::authorization` names, handed to `cognate_iam`.

use cognate_credentials::Principal;
use cognate_iam::{CallerUser, Iam};
use cognate_protocol::{ApiError, AuthFailure, Model, Protocol, QueryService, services};
use serde_json::Value;

use crate::auth::Caller;
use crate::context::Ctx;
use crate::pipeline::{Service, Wire, signed};

pub(crate) struct IamService;

fn iam<'a>(ctx: &'a Ctx<'_>, caller: &'a Caller) -> Iam<'a> {
    let state = ctx.state;
    Iam {
        store: &state.store,
        account: caller.principal.account(),
        master: &state.master,
        now: ctx.now,
        rng: &state.rng,
    }
}

fn who(caller: &Caller) -> CallerUser<'_> {
    match &caller.principal {
        Principal::Root { .. } => CallerUser::Root,
        Principal::User { name, .. } => CallerUser::User(name),
        Principal::AssumedRole { .. } => CallerUser::RoleSession,
    }
}

impl Service for IamService {
    type Operation = services::iam::Operation;
    type Authorized = ();
    const SIGNING_NAME: &'static str = services::iam::SIGNING_NAME;
    const WIRE: Wire = Wire::Query(QueryService::Iam);

    fn model() -> &'static Model {
        Model::query(QueryService::Iam)
    }

    fn implements(op: Self::Operation) -> bool {
        cognate_iam::implements(op)
    }

    fn admit(_: Self::Operation, caller: Option<&Caller>) -> Result<(), ApiError> {
        if signed(caller)?.is_get_session_token() {
            // As on AWS, GetSessionToken credentials without MFA cannot call IAM.
            return Err(AuthFailure::InvalidToken.to_error(Protocol::Query));
        }
        Ok(())
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Self::Operation,
        input: &Value,
    ) -> Result<(), ApiError> {
        let caller = signed(caller)?;
        let authorization = iam(ctx, caller)
            .authorization(op, &who(caller), input)
            .await?;
        crate::authz::authorize(
            ctx,
            caller,
            Protocol::Query,
            &format!("iam:{}", op.name()),
            &authorization.resource,
            &authorization.keys,
            None,
        )
        .await
    }

    async fn call(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Self::Operation,
        input: Value,
        (): (),
    ) -> Result<Value, ApiError> {
        let caller = signed(caller)?;
        if op == Self::Operation::GetAccessKeyLastUsed {
            ctx.state.flush_key_use().await;
        }
        Ok(iam(ctx, caller).call(op, who(caller), input).await?)
    }

    fn invalidates(op: Self::Operation) -> bool {
        !cognate_iam::is_read_only(op)
    }
}
