//! Authorization: every signed request is decided by the policy engine before its service
//! runs. The account root may do anything in its own account; every other principal only
//! what its policies allow, intersected with its permissions boundary and session policies.
//! A resource policy (a role's trust policy, a bucket policy) joins the evaluation when the
//! request targets such a resource; a cross-account request needs both sides to allow.

use cognate_credentials::Principal;
use cognate_policy::{Context, Decision, Policy, PolicySet, PrincipalInfo, Request, evaluate};
use cognate_protocol::{ApiError, Protocol};
use http::StatusCode;

use crate::auth::Caller;
use crate::context::Ctx;

/// The account that owns the target resource and its resource-based policy, if it has one.
#[derive(Clone, Copy)]
pub struct ResourcePolicy<'a> {
    pub policy: Option<&'a Policy>,
    pub account: &'a str,
}

/// `aws:ResourceTag/<key>` for the target's tags, and `aws:RequestTag/<key>` / `aws:TagKeys`
/// for tags (and tag keys) the request sets or removes.
pub fn tag_keys<'a>(
    resource: impl IntoIterator<Item = (&'a str, &'a str)>,
    requested: impl IntoIterator<Item = (&'a str, &'a str)>,
    removed: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<(String, Vec<String>)> = resource
        .into_iter()
        .map(|(k, v)| (format!("aws:ResourceTag/{k}"), vec![v.to_owned()]))
        .collect();
    let mut names = Vec::new();
    for (k, v) in requested {
        keys.push((format!("aws:RequestTag/{k}"), vec![v.to_owned()]));
        names.push(k.to_owned());
    }
    names.extend(removed.into_iter().map(str::to_owned));
    if !names.is_empty() {
        keys.push(("aws:TagKeys".to_owned(), names));
    }
    keys
}

/// A JSON object of string values (a model's tag map) as pairs.
pub fn string_pairs(value: Option<&serde_json::Value>) -> Vec<(&str, &str)> {
    value
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect()
}

/// The condition keys every request carries.
fn request_context(ctx: &Ctx<'_>, caller: &Caller, tags: &[(String, String)]) -> Context {
    let p = &caller.principal;
    let mut c = Context::new();
    c.set("aws:PrincipalArn", p.role_arn().unwrap_or_else(|| p.arn()));
    c.set("aws:PrincipalAccount", p.account().to_string());
    c.set("aws:userid", p.user_id());
    match p {
        Principal::Root { .. } => c.set("aws:PrincipalType", "Account"),
        Principal::User { name, .. } => {
            c.set("aws:PrincipalType", "User");
            c.set("aws:username", name.clone());
        }
        Principal::AssumedRole { .. } => c.set("aws:PrincipalType", "AssumedRole"),
    }
    for (k, v) in tags {
        c.set(&format!("aws:PrincipalTag/{k}"), v.clone());
    }
    if let Some(session) = &caller.session {
        // Session tags override the principal's own tags of the same key.
        for (k, v) in &session.tags {
            c.set(&format!("aws:PrincipalTag/{k}"), v.clone());
        }
        for (key, values) in &session.context {
            c.insert(key, values.clone());
        }
        if let Some(source) = &session.source_identity {
            c.set("aws:SourceIdentity", source.clone());
        }
        if let Ok(issued) = time::OffsetDateTime::from_unix_timestamp(session.issued_at) {
            c.set(
                "aws:TokenIssueTime",
                issued
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            );
        }
        c.set("aws:MultiFactorAuthPresent", "false");
    }
    add_request_keys(&mut c, ctx);
    c
}

/// Global condition keys whose value a request has but Cognate cannot compute yet (the
/// organization paths of principal and resource): absent, they fail closed rather than
/// silently passing a Deny that depends on them. Keys that are truly absent here (no request
/// comes through a VPC endpoint or an AWS service) keep AWS's semantics of an absent key.
const UNKNOWABLE_KEYS: &[&str] = &["aws:PrincipalOrgPaths", "aws:ResourceOrgPaths"];

/// The keys of the request itself, whoever makes it: source address, time, transport, region.
fn add_request_keys(c: &mut Context, ctx: &Ctx<'_>) {
    for key in UNKNOWABLE_KEYS {
        c.mark_unknowable(key);
    }
    c.set("aws:PrincipalIsAWSService", "false");
    c.set("aws:ViaAWSService", "false");
    for (key, header) in [("aws:UserAgent", "user-agent"), ("aws:Referer", "referer")] {
        if let Some(v) = ctx.parts.headers.get(header).and_then(|v| v.to_str().ok()) {
            c.set(key, v);
        }
    }
    if let Some(ip) = ctx.source_ip {
        c.set("aws:SourceIp", ip.to_string());
    }
    c.set(
        "aws:CurrentTime",
        ctx.now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    c.set("aws:EpochTime", ctx.now.unix_timestamp().to_string());
    c.set("aws:SecureTransport", "false");
    c.set("aws:RequestedRegion", ctx.state.region.clone());
}

/// Decides whether a web identity (federated through `provider_arn`) may assume a role: the
/// role's trust policy alone decides, with the token's condition keys in the context.
pub fn authorize_federated(
    ctx: &Ctx<'_>,
    provider_arn: &str,
    action: &str,
    role_arn: &str,
    trust: ResourcePolicy<'_>,
    request_keys: &[(String, Vec<String>)],
) -> Result<(), ApiError> {
    let mut context = Context::new();
    add_request_keys(&mut context, ctx);
    context.set("aws:ResourceAccount", trust.account);
    for (key, values) in request_keys {
        context.insert(key, values.clone());
    }
    let info = PrincipalInfo {
        arn: provider_arn.to_owned(),
        // The federated identity is judged inside the role's account, by the trust policy alone.
        account: trust.account.to_owned(),
        federated: Some(provider_arn.to_owned()),
        ..PrincipalInfo::default()
    };
    let set = PolicySet {
        resource: trust.policy,
        resource_account: Some(trust.account),
        ..PolicySet::default()
    };
    let request = Request {
        principal: &info,
        action,
        resource: role_arn,
        context: &context,
    };
    if evaluate(&set, &request).decision == Decision::Allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        format!("Not authorized to perform {action}"),
    ))
}

/// Decides an unsigned request: only a resource policy granting the anonymous principal
/// (`"Principal": "*"`) allows it.
pub fn authorize_anonymous(
    ctx: &Ctx<'_>,
    action: &str,
    resource: &str,
    request_keys: &[(String, Vec<String>)],
    resource_policy: ResourcePolicy<'_>,
) -> Result<(), ApiError> {
    let mut context = Context::new();
    add_request_keys(&mut context, ctx);
    context.set("aws:ResourceAccount", resource_policy.account);
    for (key, values) in request_keys {
        context.insert(key, values.clone());
    }
    let info = PrincipalInfo {
        arn: "*".to_owned(),
        anonymous: true,
        ..PrincipalInfo::default()
    };
    let set = PolicySet {
        resource: resource_policy.policy,
        resource_account: Some(resource_policy.account),
        ..PolicySet::default()
    };
    let request = Request {
        principal: &info,
        action,
        resource,
        context: &context,
    };
    if evaluate(&set, &request).decision == Decision::Allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        "Access Denied",
    ))
}

/// Decides whether `caller` may perform `action` on `resource`. Without a resource policy
/// the resource is in the caller's own account.
/// Whether the caller may hand `role` to `service` (`iam:PassRole` with
/// `iam:PassedToService`), as IAM requires of anything that lets a service act as a role.
pub async fn authorize_pass_role(
    ctx: &Ctx<'_>,
    caller: &Caller,
    protocol: Protocol,
    role: &str,
    service: &str,
) -> Result<(), ApiError> {
    authorize(
        ctx,
        caller,
        protocol,
        "iam:PassRole",
        role,
        &[("iam:PassedToService".to_owned(), vec![service.to_owned()])],
        None,
    )
    .await
}

pub async fn authorize(
    ctx: &Ctx<'_>,
    caller: &Caller,
    protocol: Protocol,
    action: &str,
    resource: &str,
    request_keys: &[(String, Vec<String>)],
    resource_policy: Option<ResourcePolicy<'_>>,
) -> Result<(), ApiError> {
    // The account root may do anything in its own account that no resource policy denies.
    if matches!(caller.principal, Principal::Root { .. })
        && resource_policy
            .is_none_or(|r| r.policy.is_none() && r.account == caller.principal.account().as_str())
    {
        return Ok(());
    }
    let policies = ctx
        .state
        .policies_of(&caller.principal)
        .await
        .map_err(ApiError::from)?;
    let code = match protocol {
        Protocol::Json | Protocol::RestJson => "AccessDeniedException",
        Protocol::Query | Protocol::RestXml => "AccessDenied",
    };
    if policies.gone {
        // The user or role these credentials belong to was deleted (perhaps made again
        // under the same name): its sessions and keys are worth nothing.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because the principal no longer exists",
                caller.principal.arn()
            ),
        ));
    }
    let session_policies = match &caller.session {
        Some(claims) if !claims.session_policies.is_empty() => {
            Some(ctx.state.session_policies(claims)?)
        }
        _ => None,
    };
    let mut context = request_context(ctx, caller, &policies.tags);
    let resource_account = resource_policy.map_or_else(
        || caller.principal.account().to_string(),
        |r| r.account.to_owned(),
    );
    let principal_account = caller.principal.account().to_string();
    for (key, account) in [
        ("aws:PrincipalOrgID", &principal_account),
        ("aws:ResourceOrgID", &resource_account),
    ] {
        if let Some(org) = ctx
            .state
            .organization_of(account)
            .await
            .map_err(|e| ApiError::from(cognate_iam::IamError::from(e)))?
        {
            context.set(key, org);
        }
    }
    context.set("aws:ResourceAccount", resource_account);
    for (key, values) in request_keys {
        context.insert(key, values.clone());
    }
    let mut info = PrincipalInfo::from_arn(&caller.principal.arn());
    info.account = caller.principal.account().to_string();
    info.role_arn = caller.principal.role_arn();
    info.root = matches!(caller.principal, Principal::Root { .. });
    let identity: Vec<&Policy> = policies.identity.iter().collect();
    let boundary: Option<Vec<&Policy>> = policies.boundary.as_ref().map(|b| b.iter().collect());
    let session: Option<Vec<&Policy>> = session_policies.as_ref().map(|s| s.iter().collect());
    let set = PolicySet {
        identity: &identity,
        resource: resource_policy.and_then(|r| r.policy),
        resource_account: resource_policy.map(|r| r.account),
        boundary: boundary.as_deref(),
        session: session.as_deref(),
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
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        code,
        evaluation.message(&request),
    ))
}
