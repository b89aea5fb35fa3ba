//! The Cognito identity pools JSON 1.1 adapter: administrative operations authorized with IAM
//! (`cognito-identity:<Operation>` on the pool ARN; roles handed to a pool need
//! `iam:PassRole`), public ones proven by their logins (verified by
//! [`crate::federation::LoginVerifier`]), and enhanced-flow credentials minted once the role's
//! trust policy accepts `cognito-identity.amazonaws.com`.

use cognate_identitypool::{self as identitypool, BUILTIN_PROVIDER, IdentityPools, Operation};
use cognate_protocol::{ApiError, Model, Protocol, services};
use cognate_sts::{self as sts, AssumeRoleInput};
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::authz::ResourcePolicy;
use crate::context::Ctx;
use crate::federation::{LoginVerifier, cached_role, names_pools, sts_role};
use crate::pipeline::{Service, Wire, signed};
use crate::state::AppState;

fn bad_configuration() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidIdentityPoolConfigurationException",
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )
}

pub(crate) struct IdentityPoolService;

impl Service for IdentityPoolService {
    type Operation = Operation;
    /// The caller's account, for administrative operations.
    type Authorized = Option<String>;
    const SIGNING_NAME: &'static str = services::cognito_identity::SIGNING_NAME;
    const WIRE: Wire = Wire::Json {
        invalid: "InvalidParameterException",
    };

    fn model() -> &'static Model {
        Model::cognito_identity()
    }

    fn implements(_: Operation) -> bool {
        true
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Operation,
        input: &Value,
    ) -> Result<Option<String>, ApiError> {
        if !op.requires_signature() {
            // The logins a public operation carries prove the caller, inside the service.
            return Ok(None);
        }
        let caller = signed(caller)?;
        let account = caller.principal.account().to_string();
        let svc = ctx.state.identity_pools(ctx.now, Some(&account));
        let pool_id = input
            .get("IdentityPoolId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                input
                    .get("ResourceArn")
                    .and_then(Value::as_str)
                    .and_then(|a| a.split_once(":identitypool/"))
                    .map(|(_, id)| id.to_owned())
            });
        // Operations on identities are authorized on their pools.
        let mut pools: Vec<String> = pool_id.into_iter().collect();
        let identities: Vec<&str> = match op {
            Operation::DescribeIdentity => input
                .get("IdentityId")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
            Operation::DeleteIdentities => input
                .get("IdentityIdsToDelete")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
            _ => Vec::new(),
        };
        for pool in svc.pools_of_identities(&identities).await? {
            if !pools.contains(&pool) {
                pools.push(pool);
            }
        }
        let resources: Vec<String> = if pools.is_empty() {
            vec!["*".to_owned()]
        } else {
            pools
                .iter()
                .map(|pool| {
                    format!(
                        "arn:aws:cognito-identity:{}:{account}:identitypool/{pool}",
                        ctx.state.region
                    )
                })
                .collect()
        };
        for (i, resource) in resources.iter().enumerate() {
            let pool = match pools.get(i) {
                Some(id) => svc.pool(id).await.ok(),
                None => None,
            };
            let pool_tags = pool.as_ref().map(|p| &p.config.identity_pool_tags);
            let removed = input.get("TagKeys").and_then(Value::as_array);
            let keys = crate::authz::tag_keys(
                pool_tags
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
                crate::authz::string_pairs(input.get("IdentityPoolTags").or(input.get("Tags"))),
                removed.into_iter().flatten().filter_map(Value::as_str),
            );
            crate::authz::authorize(
                ctx,
                caller,
                Protocol::Json,
                &format!("cognito-identity:{}", op.name()),
                resource,
                &keys,
                None,
            )
            .await?;
        }
        if op == Operation::SetIdentityPoolRoles {
            // Handing a role to the pool lets its users act as the role: the caller must be
            // allowed to pass it, as IAM requires.
            for role in IdentityPools::roles_passed(input)? {
                crate::authz::authorize_pass_role(
                    ctx,
                    caller,
                    Protocol::Json,
                    &role,
                    "cognito-identity.amazonaws.com",
                )
                .await
                .map_err(|_| {
                    identitypool::not_authorized(format!("Access to Role '{role}' is forbidden."))
                })?;
            }
        }
        Ok(Some(account))
    }

    async fn call(
        ctx: &Ctx<'_>,
        _: Option<&Caller>,
        op: Operation,
        input: Value,
        account: Option<String>,
    ) -> Result<Value, ApiError> {
        let svc = ctx.state.identity_pools(ctx.now, account.as_deref());
        let verifier = LoginVerifier {
            state: ctx.state,
            now: ctx.now,
        };
        match op {
            Operation::GetId => svc.get_id(&input, &verifier).await,
            Operation::GetOpenIdToken => svc.get_open_id_token(&input, &verifier).await,
            Operation::UnlinkIdentity => svc.unlink_identity(&input, &verifier).await,
            Operation::GetCredentialsForIdentity => {
                let plan = svc.credentials_plan(&input, &verifier).await?;
                credentials(ctx, plan).await
            }
            _ => svc.call(op, &input).await,
        }
    }

    fn invalidates(op: Operation) -> bool {
        // Other nodes drop the pool from their caches.
        use Operation::*;
        matches!(
            op,
            UpdateIdentityPool
                | DeleteIdentityPool
                | SetIdentityPoolRoles
                | SetPrincipalTagAttributeMap
                | TagResource
                | UntagResource
        )
    }
}

/// Enhanced flow: the role's trust policy must let `cognito-identity.amazonaws.com` assume it
/// with the identity's condition keys (and tag the session when there are principal tags);
/// the credentials are an ordinary role session named `CognitoIdentityCredentials`.
async fn credentials(
    ctx: &Ctx<'_>,
    plan: identitypool::CredentialsPlan,
) -> Result<Value, ApiError> {
    let role = cached_role(ctx.state, &plan.role_arn)
        .await?
        .filter(|role| role.account_id == plan.account)
        .ok_or_else(bad_configuration)?;
    let trust = ResourcePolicy {
        policy: Some(&role.trust),
        account: &role.account_id,
    };
    let mut keys = plan.session_context.clone();
    keys.push((
        "sts:RoleSessionName".into(),
        vec![identitypool::SESSION_NAME.into()],
    ));
    for (k, v) in &plan.tags {
        keys.push((format!("aws:RequestTag/{k}"), vec![v.clone()]));
    }
    keys.extend(role.resource_tag_keys());
    crate::authz::authorize_federated(
        ctx,
        BUILTIN_PROVIDER,
        "sts:AssumeRoleWithWebIdentity",
        &plan.role_arn,
        trust,
        &keys,
    )
    .map_err(|_| bad_configuration())?;
    if !names_pools(ctx, &plan.role_arn, trust, &keys) {
        return Err(bad_configuration());
    }
    if !plan.tags.is_empty() {
        keys.push((
            "aws:TagKeys".into(),
            plan.tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
        crate::authz::authorize_federated(
            ctx,
            BUILTIN_PROVIDER,
            "sts:TagSession",
            &plan.role_arn,
            trust,
            &keys,
        )
        .map_err(|_| bad_configuration())?;
    }
    let request = AssumeRoleInput {
        role_session_name: identitypool::SESSION_NAME.into(),
        tags: plan.tags,
        ..AssumeRoleInput::default()
    };
    let out = sts::assume_role_with_web_identity(
        &sts_role(&role)?,
        request,
        plan.session_context,
        ctx.now,
        &ctx.state.ring(),
        &ctx.state.rng,
    )?;
    let c = out.credentials;
    Ok(json!({
        "IdentityId": plan.identity_id,
        "Credentials": {
            "AccessKeyId": c.access_key_id,
            "SecretKey": c.secret_access_key,
            "SessionToken": c.session_token,
            "Expiration": c.expiration.unix_timestamp(),
        },
    }))
}

/// `GET /.well-known/jwks_uri`: the built-in OpenID provider's keys (as Cognito publishes them
/// at `https://cognito-identity.amazonaws.com/.well-known/jwks_uri`).
pub async fn jwks(state: &AppState) -> http::Response<axum::body::Body> {
    let (status, body) = match state
        .identity_pools(time::OffsetDateTime::now_utc(), None)
        .jwks()
        .await
    {
        Ok(v) => (StatusCode::OK, v.to_string()),
        Err(e) => (e.status, String::new()),
    };
    let mut res = http::Response::new(axum::body::Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
