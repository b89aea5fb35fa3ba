//! The STS Query adapter: parameters decoded by the STS model, the role's trust policy
//! evaluated by the authorizer (or, for web identities, the token verified and the trust
//! policy evaluated for its provider), `cognate_sts` functions called.

use std::sync::Arc;

use cognate_iam::RoleRecord;
use cognate_protocol::{ApiError, Model, Protocol, QueryService, services};
use cognate_sts::{self as sts, AssumeRoleInput, Credentials, GetSessionTokenInput, web_identity};
use http::StatusCode;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::authz::{ResourcePolicy, authorize};
use crate::context::Ctx;
use crate::federation::{
    cached_provider, cached_role, names_pools, sts_role, verify_builtin_token,
};
use crate::pipeline::{Service, Wire, signed};

type Operation = services::sts::Operation;

pub(crate) struct StsService;

/// What authorization established for the call.
pub(crate) enum Authorized {
    /// Nothing beyond the caller's identity.
    Caller,
    /// `AssumeRole`: the role, whose trust policy admitted the caller.
    Role(Arc<RoleRecord>),
    /// `AssumeRoleWithWebIdentity`: the verified token and the role that trusts its provider.
    WebIdentity(Box<WebIdentity>),
}

pub(crate) struct WebIdentity {
    role: Arc<RoleRecord>,
    provider_arn: String,
    verified: Arc<web_identity::Verified>,
    /// The provider's condition keys, kept on the session.
    session_context: Vec<(String, Vec<String>)>,
}

impl Service for StsService {
    type Operation = Operation;
    type Authorized = Authorized;
    const SIGNING_NAME: &'static str = services::sts::SIGNING_NAME;
    const WIRE: Wire = Wire::Query(QueryService::Sts);

    fn model() -> &'static Model {
        Model::query(QueryService::Sts)
    }

    fn implements(op: Operation) -> bool {
        matches!(
            op,
            Operation::GetCallerIdentity
                | Operation::GetSessionToken
                | Operation::AssumeRole
                | Operation::AssumeRoleWithWebIdentity
                | Operation::GetAccessKeyInfo
        )
    }

    fn admit(op: Operation, caller: Option<&Caller>) -> Result<(), ApiError> {
        if op == Operation::AssumeRoleWithWebIdentity {
            // Unsigned: the token is the credential.
            return Ok(());
        }
        if signed(caller)?.is_get_session_token()
            && !matches!(op, Operation::AssumeRole | Operation::GetCallerIdentity)
        {
            // GetSessionToken credentials reach STS only for AssumeRole and GetCallerIdentity.
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                format!("Cannot call {} with session credentials", op.name()),
            ));
        }
        Ok(())
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Operation,
        input: &Value,
    ) -> Result<Authorized, ApiError> {
        match op {
            Operation::AssumeRoleWithWebIdentity => Ok(Authorized::WebIdentity(Box::new(
                authorize_web_identity(ctx, input).await?,
            ))),
            Operation::AssumeRole => Ok(Authorized::Role(
                authorize_assume_role(ctx, signed(caller)?, input).await?,
            )),
            Operation::GetAccessKeyInfo => {
                authorize(
                    ctx,
                    signed(caller)?,
                    Protocol::Query,
                    "sts:GetAccessKeyInfo",
                    "*",
                    &[],
                    None,
                )
                .await?;
                Ok(Authorized::Caller)
            }
            _ => Ok(Authorized::Caller),
        }
    }

    async fn call(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Operation,
        input: Value,
        authorized: Authorized,
    ) -> Result<Value, ApiError> {
        match (op, authorized) {
            (_, Authorized::WebIdentity(web)) => {
                assume_role_with_web_identity(ctx, &input, *web).await
            }
            (_, Authorized::Role(role)) => assume_role(ctx, signed(caller)?, &input, &role).await,
            (Operation::GetCallerIdentity, _) => {
                let id = sts::get_caller_identity(&signed(caller)?.principal);
                Ok(json!({ "UserId": id.user_id, "Account": id.account, "Arn": id.arn }))
            }
            (Operation::GetSessionToken, _) => {
                let caller = signed(caller)?;
                let input = GetSessionTokenInput {
                    duration_seconds: input.get("DurationSeconds").and_then(Value::as_i64),
                };
                let creds = sts::get_session_token(
                    &caller.principal,
                    caller.via_session,
                    &input,
                    ctx.now,
                    &ctx.state.ring(),
                    &ctx.state.rng,
                )?;
                Ok(json!({ "Credentials": credentials_json(&creds) }))
            }
            (Operation::GetAccessKeyInfo, _) => {
                let id = input
                    .get("AccessKeyId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                // Key ids carry their account, as AWS's do: no lookup, any node, any key.
                let account = cognate_credentials::account_of_key_id(id).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameterValue",
                        format!("Invalid access key id: {id}"),
                    )
                })?;
                Ok(json!({ "Account": account.to_string() }))
            }
            _ => Err(ApiError::internal()),
        }
    }

    fn invalidates(_: Operation) -> bool {
        false
    }
}

/// `AssumeRoleWithWebIdentity` (unsigned): the token must come from an OpenID Connect
/// provider registered in the role's account, verify against the provider's JWKS, name one of
/// its client ids, and satisfy the role's trust policy with its `aud` / `sub` / `amr` keys.
async fn authorize_web_identity(ctx: &Ctx<'_>, input: &Value) -> Result<WebIdentity, ApiError> {
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    let role_arn = text("RoleArn").unwrap_or_default();
    let token = text("WebIdentityToken").unwrap_or_default();
    let unverified = web_identity::inspect(&token)?;
    let role_account = role_arn.split(':').nth(4).unwrap_or("").to_owned();
    let (provider_arn, verified) = if unverified.provider == cognate_identitypool::BUILTIN_PROVIDER
    {
        // A token of the identity pools' built-in provider (the basic flow): no IAM provider
        // is registered for it, as on AWS; its keys are this server's.
        let verified = verify_builtin_token(ctx.state, ctx.now, &token).await?;
        (unverified.provider.clone(), Arc::new(verified))
    } else {
        let provider = cached_provider(ctx.state, &role_account, &unverified.provider)
            .await?
            .ok_or_else(|| {
                ApiError::from(sts::StsError::InvalidIdentityToken(format!(
                    "No OpenIDConnect provider found in your account for {}",
                    unverified.issuer
                )))
            })?;
        let token_key = (sigv4_digest(token.as_bytes()), role_account.clone());
        let verified = match ctx.state.verified_tokens.get(&token_key) {
            Some(verified) => {
                web_identity::check_expiry(verified.expires_at, ctx.now.unix_timestamp())?;
                verified
            }
            None => {
                let ticket = ctx.state.verified_tokens.ticket();
                let jwks = ctx
                    .state
                    .jwks
                    .keys(&provider.url, unverified.kid.as_deref())
                    .await?;
                let verified = Arc::new(web_identity::verify(
                    &token,
                    &unverified,
                    &jwks,
                    &provider.client_ids,
                    ctx.now,
                )?);
                ctx.state
                    .verified_tokens
                    .insert(ticket, token_key, verified.clone());
                verified
            }
        };
        (provider.arn.clone(), verified)
    };

    let name = &unverified.provider;
    let mut keys: Vec<(String, Vec<String>)> = vec![
        (format!("{name}:aud"), vec![verified.audience.clone()]),
        (format!("{name}:sub"), vec![verified.subject.clone()]),
    ];
    if !verified.amr.is_empty() {
        keys.push((format!("{name}:amr"), verified.amr.clone()));
    }
    if let Some(azp) = &verified.azp {
        keys.push((format!("{name}:azp"), vec![azp.clone()]));
    }
    let session_context = keys.clone();
    keys.push((
        "sts:RoleSessionName".into(),
        vec![text("RoleSessionName").unwrap_or_default()],
    ));
    let role = cached_role(ctx.state, &role_arn).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        )
    })?;
    keys.extend(role.resource_tag_keys());
    let trust = ResourcePolicy {
        policy: Some(&role.trust),
        account: &role.account_id,
    };
    crate::authz::authorize_federated(
        ctx,
        &provider_arn,
        "sts:AssumeRoleWithWebIdentity",
        &role_arn,
        trust,
        &keys,
    )?;
    if provider_arn == cognate_identitypool::BUILTIN_PROVIDER
        && !names_pools(ctx, &role_arn, trust, &keys)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity: a role trusting cognito-identity.amazonaws.com must restrict cognito-identity.amazonaws.com:aud to its identity pools",
        ));
    }
    Ok(WebIdentity {
        role,
        provider_arn,
        verified,
        session_context,
    })
}

/// Mints the web identity's role session.
async fn assume_role_with_web_identity(
    ctx: &Ctx<'_>,
    input: &Value,
    web: WebIdentity,
) -> Result<Value, ApiError> {
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    let managed = session_policy_documents(ctx, &web.role.account_id, input).await?;
    let request = AssumeRoleInput {
        role_session_name: text("RoleSessionName").unwrap_or_default(),
        duration_seconds: input.get("DurationSeconds").and_then(Value::as_i64),
        policy: text("Policy"),
        managed_policy_documents: managed,
        ..AssumeRoleInput::default()
    };
    let out = sts::assume_role_with_web_identity(
        &sts_role(&web.role)?,
        request,
        web.session_context,
        ctx.now,
        &ctx.state.ring(),
        &ctx.state.rng,
    )?;
    let mut result = json!({
        "Credentials": credentials_json(&out.credentials),
        "SubjectFromWebIdentityToken": web.verified.subject,
        "AssumedRoleUser": { "AssumedRoleId": out.assumed_role_id, "Arn": out.arn },
        "Provider": web.provider_arn,
        "Audience": web.verified.audience,
    });
    if let (Some(size), Value::Object(map)) = (out.packed_policy_size, &mut result) {
        map.insert("PackedPolicySize".into(), json!(size));
    }
    Ok(result)
}

/// The documents of the managed session policies named in `PolicyArns`: AWS managed ones or
/// the role's account's own (another account's policies do not exist here).
async fn session_policy_documents(
    ctx: &Ctx<'_>,
    account: &str,
    input: &Value,
) -> Result<Vec<String>, ApiError> {
    let mut documents = Vec::new();
    for arn in input
        .get("PolicyArns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let arn = arn.get("arn").and_then(Value::as_str).unwrap_or("");
        match cognate_iam::managed_policy_document(&ctx.state.store, account, arn)
            .await
            .map_err(ApiError::from)?
        {
            Some(doc) => documents.push(doc),
            None => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NoSuchEntity",
                    format!("Policy {arn} does not exist or is not attachable."),
                ));
            }
        }
    }
    Ok(documents)
}

fn sigv4_digest(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

fn credentials_json(c: &Credentials) -> Value {
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "SessionToken": c.session_token,
        "Expiration": c.expiration.format(&Rfc3339).unwrap_or_default(),
    })
}

/// The session tags `AssumeRole` asks for.
fn requested_tags(input: &Value) -> Vec<(String, String)> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| {
                    let field = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                    (field("Key"), field("Value"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `AssumeRole`: the role's trust policy (and, for the caller's own account's view, its
/// identity policies) must allow `sts:AssumeRole`; tags need `sts:TagSession` and a source
/// identity `sts:SetSourceIdentity`, in the same trust policy.
async fn authorize_assume_role(
    ctx: &Ctx<'_>,
    caller: &Caller,
    input: &Value,
) -> Result<Arc<RoleRecord>, ApiError> {
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    if matches!(
        caller.principal,
        cognate_credentials::Principal::Root { .. }
    ) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Roles may not be assumed by root accounts.",
        ));
    }
    let role_arn = text("RoleArn").unwrap_or_default();
    let tags = requested_tags(input);
    let transitive = cognate_protocol::string_list(input, "TransitiveTagKeys").unwrap_or_default();
    let source_identity = text("SourceIdentity");

    let denied = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.principal.arn()
            ),
        )
    };
    // A role that does not exist is refused like one that does not trust the caller, so
    // role names cannot be probed.
    let role = cached_role(ctx.state, &role_arn)
        .await?
        .ok_or_else(denied)?;
    let mut keys: Vec<(String, Vec<String>)> = vec![(
        "sts:RoleSessionName".into(),
        vec![text("RoleSessionName").unwrap_or_default()],
    )];
    if let Some(external) = text("ExternalId") {
        keys.push(("sts:ExternalId".into(), vec![external]));
    }
    if let Some(source) = &source_identity {
        keys.push(("sts:SourceIdentity".into(), vec![source.clone()]));
    }
    for (k, v) in &tags {
        keys.push((format!("aws:RequestTag/{k}"), vec![v.clone()]));
    }
    if !tags.is_empty() {
        keys.push((
            "aws:TagKeys".into(),
            tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
    }
    if !transitive.is_empty() {
        keys.push(("sts:TransitiveTagKeys".into(), transitive));
    }
    keys.extend(role.resource_tag_keys());
    let trust = Some(ResourcePolicy {
        policy: Some(&role.trust),
        account: &role.account_id,
    });
    let mut actions = vec!["sts:AssumeRole"];
    if !tags.is_empty() {
        actions.push("sts:TagSession");
    }
    if source_identity.is_some() {
        actions.push("sts:SetSourceIdentity");
    }
    for action in actions {
        authorize(
            ctx,
            caller,
            Protocol::Query,
            action,
            &role_arn,
            &keys,
            trust,
        )
        .await?;
    }
    Ok(role)
}

/// Mints the session of a role whose trust policy admitted the caller.
async fn assume_role(
    ctx: &Ctx<'_>,
    caller: &Caller,
    input: &Value,
    role: &RoleRecord,
) -> Result<Value, ApiError> {
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    let source_identity = text("SourceIdentity");
    let managed = session_policy_documents(ctx, &role.account_id, input).await?;
    let request = AssumeRoleInput {
        role_session_name: text("RoleSessionName").unwrap_or_default(),
        duration_seconds: input.get("DurationSeconds").and_then(Value::as_i64),
        policy: text("Policy"),
        managed_policy_documents: managed,
        tags: requested_tags(input),
        transitive_tag_keys: cognate_protocol::string_list(input, "TransitiveTagKeys")
            .unwrap_or_default(),
        source_identity: source_identity.clone(),
    };
    let out = sts::assume_role(
        &caller.principal,
        caller.session.as_deref(),
        &sts_role(role)?,
        request,
        ctx.now,
        &ctx.state.ring(),
        &ctx.state.rng,
    )?;
    let mut result = json!({
        "Credentials": credentials_json(&out.credentials),
        "AssumedRoleUser": { "AssumedRoleId": out.assumed_role_id, "Arn": out.arn },
    });
    if let (Some(size), Value::Object(map)) = (out.packed_policy_size, &mut result) {
        map.insert("PackedPolicySize".into(), json!(size));
    }
    if let (Some(source), Value::Object(map)) = (source_identity, &mut result) {
        map.insert("SourceIdentity".into(), json!(source));
    }
    Ok(result)
}
