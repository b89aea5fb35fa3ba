//! The AWS Organizations JSON 1.1 adapter: body validated against the model, authorized as
//! `organizations:<Operation>`, handed to `cognate_iam::organizations`.

use cognate_iam::organizations::{self, Organizations};
use cognate_protocol::{ApiError, Model, Protocol, services};
use serde_json::Value;

use crate::auth::Caller;
use crate::context::Ctx;
use crate::pipeline::{Service, Wire, signed};

pub(crate) struct OrganizationsService;

impl Service for OrganizationsService {
    type Operation = services::organizations::Operation;
    type Authorized = ();
    const SIGNING_NAME: &'static str = services::organizations::SIGNING_NAME;
    const WIRE: Wire = Wire::Json {
        invalid: "InvalidInputException",
    };

    fn model() -> &'static Model {
        Model::organizations()
    }

    fn implements(op: Self::Operation) -> bool {
        organizations::implements(op)
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Self::Operation,
        _: &Value,
    ) -> Result<(), ApiError> {
        crate::authz::authorize(
            ctx,
            signed(caller)?,
            Protocol::Json,
            &format!("organizations:{}", op.name()),
            "*",
            &[],
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
        let state = ctx.state;
        let orgs = Organizations {
            store: &state.store,
            account: signed(caller)?.principal.account(),
            master: &state.master,
            now: ctx.now,
            rng: &state.rng,
        };
        Ok(orgs.call(op, input).await?)
    }

    fn invalidates(op: Self::Operation) -> bool {
        // A new account brings a new role: drop every cached policy.
        op == Self::Operation::CreateAccount
    }
}
