//! Authorization: every signed request is decided by the policy engine before its service
//! runs. The account root may do anything in its own account; every other principal only
//! what its policies allow.

use cognate_credentials::Principal;
use cognate_policy::{Context, Decision, PolicySet, PrincipalInfo, Request, evaluate};
use cognate_protocol::{ApiError, Protocol};
use http::StatusCode;

use crate::auth::Caller;
use crate::edge::Ctx;

/// The condition keys every request carries.
fn request_context(ctx: &Ctx<'_>, caller: &Caller, tags: &[(String, String)]) -> Context {
    let p = &caller.principal;
    let mut c = Context::new();
    c.set("aws:PrincipalArn", p.arn());
    c.set("aws:PrincipalAccount", p.account().to_string());
    c.set("aws:userid", p.user_id());
    match p {
        Principal::Root { .. } => c.set("aws:PrincipalType", "Account"),
        Principal::User { name, .. } => {
            c.set("aws:PrincipalType", "User");
            c.set("aws:username", name.clone());
        }
    }
    for (k, v) in tags {
        c.set(&format!("aws:PrincipalTag/{k}"), v.clone());
    }
    if let Some(ip) = ctx.source_ip {
        c.set("aws:SourceIp", ip.to_string());
    }
    let now = ctx.now;
    c.set(
        "aws:CurrentTime",
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    c.set("aws:EpochTime", now.unix_timestamp().to_string());
    c.set("aws:SecureTransport", "false");
    c.set("aws:RequestedRegion", ctx.state.region.clone());
    if caller.via_session {
        c.set("aws:MultiFactorAuthPresent", "false");
    }
    c
}

/// Decides whether `caller` may perform `action` on `resource` (in the caller's account).
pub async fn authorize(
    ctx: &Ctx<'_>,
    caller: &Caller,
    protocol: Protocol,
    action: &str,
    resource: &str,
    request_keys: &[(String, Vec<String>)],
) -> Result<(), ApiError> {
    if matches!(caller.principal, Principal::Root { .. }) {
        return Ok(());
    }
    let policies = ctx
        .state
        .policies_of(&caller.principal)
        .await
        .map_err(ApiError::from)?;
    let mut context = request_context(ctx, caller, &policies.tags);
    for (key, values) in request_keys {
        context.insert(key, values.clone());
    }
    let mut info = PrincipalInfo::from_arn(&caller.principal.arn());
    info.account = caller.principal.account().to_string();
    let identity: Vec<&cognate_policy::Policy> = policies.identity.iter().collect();
    let boundary: Option<Vec<&cognate_policy::Policy>> =
        policies.boundary.as_ref().map(|b| b.iter().collect());
    let set = PolicySet {
        identity: &identity,
        boundary: boundary.as_deref(),
        ..PolicySet::default()
    };
    let request = Request {
        principal: &info,
        action,
        resource,
        context: &context,
    };
    let evaluation = evaluate(&set, &request);
    if evaluation.decision == Decision::Allowed {
        return Ok(());
    }
    let code = match protocol {
        Protocol::Json | Protocol::RestJson => "AccessDeniedException",
        Protocol::Query | Protocol::RestXml => "AccessDenied",
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        code,
        evaluation.message(&request),
    ))
}
