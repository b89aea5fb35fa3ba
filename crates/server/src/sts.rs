//! The STS Query adapter: parameters decoded by the STS model, the role's trust policy
//! evaluated by the authorizer, `cognate_sts` functions called, output encoded by the model.

use std::sync::Arc;

use bytes::Bytes;
use cognate_credentials::AccountId;
use cognate_protocol::{
    ApiError, Model, Protocol, QueryParams, QueryService, render_query, services,
};
use cognate_sigv4::PathStyle;
use cognate_sts::{self as sts, AssumeRoleInput, Credentials, GetSessionTokenInput};
use http::StatusCode;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::authz::{ResourcePolicy, authorize};
use crate::edge::Ctx;
use crate::state::AppState;

type Operation = services::sts::Operation;

pub async fn handle(
    ctx: &mut Ctx<'_>,
    action: &str,
    params: &QueryParams,
    payload_hash: &str,
) -> Result<http::Response<Bytes>, ApiError> {
    let op = match Operation::from_name(action) {
        Some(
            op @ (Operation::GetCallerIdentity
            | Operation::GetSessionToken
            | Operation::AssumeRole
            | Operation::AssumeRoleWithWebIdentity
            | Operation::GetAccessKeyInfo),
        ) => op,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!(
                    "Could not find operation {action} for version {}",
                    services::sts::API_VERSION
                ),
            ));
        }
    };
    let signed = op.requires_signature();
    let caller = ctx
        .caller(
            Protocol::Query,
            services::sts::SIGNING_NAME,
            PathStyle::Normalized,
            payload_hash,
            signed,
        )
        .await?;
    let model = Model::query(QueryService::Sts);
    let input = model.decode_query(action, params)?;
    if op == Operation::AssumeRoleWithWebIdentity {
        let output = assume_role_with_web_identity(ctx, &input).await?;
        let result = model.encode_query(action, &output);
        return Ok(render_query(
            action,
            services::sts::XML_NAMESPACE,
            ctx.request_id,
            result.as_deref(),
        ));
    }
    let caller = caller.ok_or_else(ApiError::internal)?;
    if caller.is_get_session_token()
        && !matches!(op, Operation::AssumeRole | Operation::GetCallerIdentity)
    {
        // GetSessionToken credentials reach STS only for AssumeRole and GetCallerIdentity.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("Cannot call {action} with session credentials"),
        ));
    }
    let output = match op {
        Operation::GetCallerIdentity => {
            let id = sts::get_caller_identity(&caller.principal);
            json!({ "UserId": id.user_id, "Account": id.account, "Arn": id.arn })
        }
        Operation::GetSessionToken => {
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
            json!({ "Credentials": credentials_json(&creds) })
        }
        Operation::GetAccessKeyInfo => {
            authorize(
                ctx,
                &caller,
                Protocol::Query,
                "sts:GetAccessKeyInfo",
                "*",
                &[],
                None,
            )
            .await?;
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
            json!({ "Account": account.to_string() })
        }
        _ => assume_role(ctx, &caller, &input).await?,
    };
    let result = model.encode_query(action, &output);
    Ok(render_query(
        action,
        services::sts::XML_NAMESPACE,
        ctx.request_id,
        result.as_deref(),
    ))
}

/// `AssumeRoleWithWebIdentity` (unsigned): the token must come from an OpenID Connect
/// provider registered in the role's account, verify against the provider's JWKS, name one of
/// its client ids, and satisfy the role's trust policy with its `aud` / `sub` / `amr` keys.
async fn assume_role_with_web_identity(ctx: &Ctx<'_>, input: &Value) -> Result<Value, ApiError> {
    use cognate_sts::web_identity;
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
    let role_arn = text("RoleArn").unwrap_or_default();
    let token = text("WebIdentityToken").unwrap_or_default();
    let unverified = web_identity::inspect(&token)?;
    let role_account = role_arn.split(':').nth(4).unwrap_or("").to_owned();
    let (provider_arn, verified) = if unverified.provider == cognate_identitypool::BUILTIN_PROVIDER
    {
        // A token of the identity pools' built-in provider (the basic flow): no IAM provider
        // is registered for it, as on AWS; its keys are this server's.
        let verified =
            crate::identitypool::verify_builtin_token(ctx.state, ctx.now, &token).await?;
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
                    .insert(token_key, verified.clone());
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
    let session_name = text("RoleSessionName").unwrap_or_default();
    keys.push(("sts:RoleSessionName".into(), vec![session_name.clone()]));
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
        && !crate::identitypool::names_pools(ctx, &role_arn, trust, &keys)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity: a role trusting cognito-identity.amazonaws.com must restrict cognito-identity.amazonaws.com:aud to its identity pools",
        ));
    }

    let managed = session_policy_documents(ctx, &role.account_id, input).await?;
    let sts_role = sts_role(&role)?;
    let request = AssumeRoleInput {
        role_session_name: session_name,
        duration_seconds: input.get("DurationSeconds").and_then(Value::as_i64),
        policy: text("Policy"),
        managed_policy_documents: managed,
        ..AssumeRoleInput::default()
    };
    let out = sts::assume_role_with_web_identity(
        &sts_role,
        request,
        session_context,
        ctx.now,
        &ctx.state.ring(),
        &ctx.state.rng,
    )?;
    let mut result = json!({
        "Credentials": credentials_json(&out.credentials),
        "SubjectFromWebIdentityToken": verified.subject,
        "AssumedRoleUser": { "AssumedRoleId": out.assumed_role_id, "Arn": out.arn },
        "Provider": provider_arn,
        "Audience": verified.audience,
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

/// The role as the STS logic needs it.
pub(crate) fn sts_role(role: &cognate_iam::RoleRecord) -> Result<sts::Role, ApiError> {
    Ok(sts::Role {
        account: AccountId::parse(&role.account_id).map_err(|_| ApiError::internal())?,
        name: role.name.clone(),
        id: role.id.clone(),
        path: role.path.clone(),
        max_session_secs: role.max_session_secs,
    })
}

fn sigv4_digest(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// A role with its parsed trust policy, cached until the next IAM change.
pub(crate) async fn cached_role(
    state: &AppState,
    arn: &str,
) -> Result<Option<Arc<cognate_iam::RoleRecord>>, ApiError> {
    if let Some(role) = state.roles.get(&arn.to_owned()) {
        return Ok(Some(role));
    }
    let Some(role) = cognate_iam::role_by_arn(&state.store, arn)
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    let role = Arc::new(role);
    state.roles.insert(arn.to_owned(), role.clone());
    Ok(Some(role))
}

/// An account's OpenID Connect provider, cached until the next IAM change.
pub(crate) async fn cached_provider(
    state: &AppState,
    account: &str,
    name: &str,
) -> Result<Option<Arc<cognate_iam::OidcProvider>>, ApiError> {
    let key = (account.to_owned(), name.to_owned());
    if let Some(provider) = state.oidc_providers.get(&key) {
        return Ok(Some(provider));
    }
    let Some(provider) = cognate_iam::oidc_provider(&state.store, account, name)
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    let provider = Arc::new(provider);
    state.oidc_providers.insert(key, provider.clone());
    Ok(Some(provider))
}

fn credentials_json(c: &Credentials) -> Value {
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "SessionToken": c.session_token,
        "Expiration": c.expiration.format(&Rfc3339).unwrap_or_default(),
    })
}

/// `AssumeRole`: the role's trust policy (and, for the caller's own account's view, its
/// identity policies) must allow `sts:AssumeRole`; tags need `sts:TagSession` and a source
/// identity `sts:SetSourceIdentity`, in the same trust policy.
async fn assume_role(ctx: &Ctx<'_>, caller: &Caller, input: &Value) -> Result<Value, ApiError> {
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
    let session_name = text("RoleSessionName").unwrap_or_default();
    let tags: Vec<(String, String)> = input
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
        .unwrap_or_default();
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
    let mut keys: Vec<(String, Vec<String>)> =
        vec![("sts:RoleSessionName".into(), vec![session_name.clone()])];
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
        keys.push(("sts:TransitiveTagKeys".into(), transitive.clone()));
    }
    keys.extend(role.resource_tag_keys());
    let trust = Some(ResourcePolicy {
        policy: Some(&role.trust),
        account: &role.account_id,
    });
    authorize(
        ctx,
        caller,
        Protocol::Query,
        "sts:AssumeRole",
        &role_arn,
        &keys,
        trust,
    )
    .await?;
    if !tags.is_empty() {
        authorize(
            ctx,
            caller,
            Protocol::Query,
            "sts:TagSession",
            &role_arn,
            &keys,
            trust,
        )
        .await?;
    }
    if source_identity.is_some() {
        authorize(
            ctx,
            caller,
            Protocol::Query,
            "sts:SetSourceIdentity",
            &role_arn,
            &keys,
            trust,
        )
        .await?;
    }

    let managed = session_policy_documents(ctx, &role.account_id, input).await?;
    let sts_role = sts_role(&role)?;
    let request = AssumeRoleInput {
        role_session_name: session_name,
        duration_seconds: input.get("DurationSeconds").and_then(Value::as_i64),
        policy: text("Policy"),
        managed_policy_documents: managed,
        tags,
        transitive_tag_keys: transitive,
        source_identity: source_identity.clone(),
    };
    let out = sts::assume_role(
        &caller.principal,
        caller.session.as_deref(),
        &sts_role,
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
