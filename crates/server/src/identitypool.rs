//! The Cognito identity pools JSON 1.1 adapter: administrative operations authorized with IAM
//! (`cognito-identity:<Operation>` on the pool ARN; roles handed to a pool need
//! `iam:PassRole`), public ones proven by their logins, each login verified here (user pools,
//! IAM OpenID Connect providers, the well-known providers), and enhanced-flow credentials
//! minted once the role's trust policy accepts `cognito-identity.amazonaws.com`.

use bytes::Bytes;
use cognate_identitypool::{
    self as identitypool, BUILTIN_PROVIDER, IdentityPools, Pool, Provider, VerifiedLogin,
};
use cognate_protocol::{ApiError, Model, Protocol, decode_json, render_json, services};
use cognate_sigv4::{self as sigv4, PathStyle};
use cognate_sts::{self as sts, AssumeRoleInput, StsError, web_identity};
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::authz::ResourcePolicy;
use crate::edge::Ctx;
use crate::state::AppState;

/// Where logins of the well-known providers are verified.
#[derive(Debug, Clone)]
pub struct LoginUrls {
    pub google_jwks: String,
    pub apple_jwks: String,
    pub facebook_graph: String,
    pub amazon_api: String,
}

impl LoginUrls {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let or = |v: &Option<String>, default: &str| {
            v.clone()
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        LoginUrls {
            google_jwks: or(
                &config.google_jwks_url,
                "https://www.googleapis.com/oauth2/v3/certs",
            ),
            apple_jwks: or(
                &config.apple_jwks_url,
                "https://appleid.apple.com/auth/keys",
            ),
            facebook_graph: or(&config.facebook_graph_url, "https://graph.facebook.com"),
            amazon_api: or(&config.amazon_api_url, "https://api.amazon.com"),
        }
    }
}

fn service<'a>(
    state: &'a AppState,
    now: time::OffsetDateTime,
    account: Option<&'a str>,
) -> IdentityPools<'a> {
    let url = state.public_url();
    IdentityPools {
        store: &state.store,
        master: &state.master,
        rng: &state.rng,
        cache: &state.identity_cache,
        region: &state.region,
        issuer_host: url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url),
        now,
        account,
    }
}

fn bad_configuration() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidIdentityPoolConfigurationException",
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )
}

pub async fn handle(
    ctx: &mut Ctx<'_>,
    operation: &str,
    body: &[u8],
) -> Result<http::Response<Bytes>, ApiError> {
    if !identitypool::OPERATIONS.contains(&operation) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "",
        ));
    }
    let public = identitypool::is_public(operation);
    let payload_hash = sigv4::sha256_hex(body);
    let caller = ctx
        .caller(
            Protocol::Json,
            services::cognito_identity::SIGNING_NAME,
            PathStyle::Normalized,
            &payload_hash,
            !public,
        )
        .await?;
    let input: Value = decode_json(body)?;
    let violations = Model::cognito_identity().validate_json(operation, &input);
    if !violations.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            violations.join("; "),
        ));
    }
    if public {
        let svc = service(ctx.state, ctx.now, None);
        let verifier = LoginVerifier {
            state: ctx.state,
            now: ctx.now,
        };
        let output = match operation {
            "GetId" => svc.get_id(&input, &verifier).await?,
            "GetOpenIdToken" => svc.get_open_id_token(&input, &verifier).await?,
            "UnlinkIdentity" => svc.unlink_identity(&input, &verifier).await?,
            _ => {
                let plan = svc.credentials_plan(&input, &verifier).await?;
                credentials(ctx, plan).await?
            }
        };
        return render_json(&output);
    }
    let caller = caller.ok_or_else(ApiError::internal)?;
    let account = caller.principal.account().to_string();
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
    let identities: Vec<&str> = match operation {
        "DescribeIdentity" => input
            .get("IdentityId")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
        "DeleteIdentities" => input
            .get("IdentityIdsToDelete")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
        _ => Vec::new(),
    };
    for pool in service(ctx.state, ctx.now, Some(&account))
        .pools_of_identities(&identities)
        .await?
    {
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
    let svc = service(ctx.state, ctx.now, Some(&account));
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
            &caller,
            Protocol::Json,
            &format!("cognito-identity:{operation}"),
            resource,
            &keys,
            None,
        )
        .await?;
    }
    if operation == "SetIdentityPoolRoles" {
        // Handing a role to the pool lets its users act as the role: the caller must be
        // allowed to pass it, as IAM requires.
        for role in IdentityPools::roles_passed(&input) {
            crate::authz::authorize(
                ctx,
                &caller,
                Protocol::Json,
                "iam:PassRole",
                &role,
                &[(
                    "iam:PassedToService".to_owned(),
                    vec!["cognito-identity.amazonaws.com".to_owned()],
                )],
                None,
            )
            .await
            .map_err(|_| {
                identitypool::not_authorized(format!("Access to Role '{role}' is forbidden."))
            })?;
        }
    }
    let output = service(ctx.state, ctx.now, Some(&account))
        .call(operation, &input)
        .await?;
    if matches!(
        operation,
        "UpdateIdentityPool"
            | "DeleteIdentityPool"
            | "SetIdentityPoolRoles"
            | "SetPrincipalTagAttributeMap"
            | "TagResource"
            | "UntagResource"
    ) {
        // Other nodes drop the pool from their caches.
        ctx.state.changed().await;
    }
    render_json(&output)
}

/// Enhanced flow: the role's trust policy must let `cognito-identity.amazonaws.com` assume it
/// with the identity's condition keys (and tag the session when there are principal tags);
/// the credentials are an ordinary role session named `CognitoIdentityCredentials`.
async fn credentials(
    ctx: &Ctx<'_>,
    plan: identitypool::CredentialsPlan,
) -> Result<Value, ApiError> {
    let role = crate::sts::cached_role(ctx.state, &plan.role_arn)
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
        &crate::sts::sts_role(&role)?,
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

/// A role assumable through `cognito-identity.amazonaws.com` must restrict which identity
/// pools may assume it (`cognito-identity.amazonaws.com:aud`), or every pool of every account
/// could: the request that was allowed must be refused when it names a pool that cannot
/// exist. AWS enforces the same rule.
pub fn names_pools(
    ctx: &Ctx<'_>,
    role_arn: &str,
    trust: ResourcePolicy<'_>,
    keys: &[(String, Vec<String>)],
) -> bool {
    let elsewhere: Vec<(String, Vec<String>)> = keys
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("cognito-identity.amazonaws.com:aud") {
                (k.clone(), vec!["cognate:no-such-identity-pool".to_owned()])
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    crate::authz::authorize_federated(
        ctx,
        BUILTIN_PROVIDER,
        "sts:AssumeRoleWithWebIdentity",
        role_arn,
        trust,
        &elsewhere,
    )
    .is_err()
}

/// A provider's verification failure in Cognito Identity's terms.
fn login_error(e: StsError) -> ApiError {
    match e {
        StsError::IdpCommunication(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "ExternalServiceException",
            "The identity provider could not be reached to verify the login.",
        ),
        StsError::InvalidIdentityToken(m) | StsError::ExpiredToken(m) => {
            identitypool::not_authorized(format!("Invalid login token. {m}"))
        }
        _ => identitypool::not_authorized("Invalid login token. Couldn't verify signed token."),
    }
}

/// Verifies logins of the providers the server reaches: user pools (in this server), IAM
/// OpenID Connect providers and Google / Apple (JWKS), Facebook / Login with Amazon (token
/// introspection).
struct LoginVerifier<'a> {
    state: &'a AppState,
    now: time::OffsetDateTime,
}

impl identitypool::Verifier for LoginVerifier<'_> {
    async fn verify(
        &self,
        pool: &Pool,
        provider: &Provider,
        login_key: &str,
        token: &str,
    ) -> Result<VerifiedLogin, ApiError> {
        match provider {
            Provider::UserPool {
                pool_id,
                client_ids,
                server_side_check,
            } => {
                let claims = crate::userpool::service(self.state, self.now, None)
                    .verify_id_token(pool_id, token, client_ids, *server_side_check)
                    .await?;
                let region = pool_id.split('_').next().unwrap_or("");
                let name = format!("cognito-idp.{region}.amazonaws.com/{pool_id}");
                let sub = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                Ok(VerifiedLogin {
                    amr: vec![name.clone(), format!("{name}:CognitoSignIn:{sub}")],
                    provider: name,
                    subject: sub,
                    claims,
                })
            }
            Provider::Oidc { arn, account } => {
                let unverified = web_identity::inspect(token).map_err(login_error)?;
                if unverified.provider != login_key {
                    return Err(identitypool::not_authorized(
                        "Invalid login token. Issuer doesn't match providerName",
                    ));
                }
                let registered = crate::sts::cached_provider(self.state, account, login_key)
                    .await?
                    .ok_or_else(|| {
                        identitypool::not_authorized(
                            "Token is not from a supported provider of this identity pool.",
                        )
                    })?;
                let jwks = self
                    .state
                    .jwks
                    .keys(&registered.url, unverified.kid.as_deref())
                    .await
                    .map_err(login_error)?;
                let verified = web_identity::verify(
                    token,
                    &unverified,
                    &jwks,
                    &registered.client_ids,
                    self.now,
                )
                .map_err(login_error)?;
                Ok(self.jwt_login(login_key, token, verified, Some(arn)))
            }
            Provider::Public { name, app_ids } => match name.as_str() {
                "accounts.google.com" | "appleid.apple.com" => {
                    let unverified = web_identity::inspect(token).map_err(login_error)?;
                    let (url, issuers): (&str, &[&str]) = if name == "accounts.google.com" {
                        (
                            &self.state.login_urls.google_jwks,
                            &["https://accounts.google.com", "accounts.google.com"],
                        )
                    } else {
                        (
                            &self.state.login_urls.apple_jwks,
                            &["https://appleid.apple.com"],
                        )
                    };
                    if !issuers.contains(&unverified.issuer.as_str()) {
                        return Err(identitypool::not_authorized(
                            "Invalid login token. Issuer doesn't match providerName",
                        ));
                    }
                    let jwks = self
                        .state
                        .jwks
                        .keys_at(url, unverified.kid.as_deref())
                        .await
                        .map_err(login_error)?;
                    let verified =
                        web_identity::verify(token, &unverified, &jwks, app_ids, self.now)
                            .map_err(login_error)?;
                    Ok(self.jwt_login(name, token, verified, None))
                }
                _ => self.introspect(pool, name, app_ids, token).await,
            },
            Provider::Builtin => Err(ApiError::internal()),
        }
    }
}

impl LoginVerifier<'_> {
    fn jwt_login(
        &self,
        name: &str,
        token: &str,
        verified: web_identity::Verified,
        oidc_arn: Option<&str>,
    ) -> VerifiedLogin {
        let claims = cognate_userpool::keys::peek(token)
            .map(|(_, c)| c)
            .unwrap_or_default();
        let detail = match oidc_arn {
            Some(arn) => format!("{arn}:OIDC:{}", verified.subject),
            None => format!("{name}:{}:{}", verified.audience, verified.subject),
        };
        VerifiedLogin {
            provider: name.to_owned(),
            subject: verified.subject,
            claims,
            amr: vec![name.to_owned(), detail],
        }
    }

    /// Facebook and Login with Amazon issue opaque access tokens: the provider is asked which
    /// app the token belongs to and whose it is.
    async fn introspect(
        &self,
        _pool: &Pool,
        name: &str,
        app_ids: &[String],
        token: &str,
    ) -> Result<VerifiedLogin, ApiError> {
        let urls = &self.state.login_urls;
        let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        let (app, user) = if name == "graph.facebook.com" {
            let app = self
                .get(&format!(
                    "{}/app?access_token={encoded}",
                    urls.facebook_graph
                ))
                .await?;
            let me = self
                .get(&format!(
                    "{}/me?access_token={encoded}",
                    urls.facebook_graph
                ))
                .await?;
            (text(&app, "id"), text(&me, "id"))
        } else {
            let info = self
                .get(&format!(
                    "{}/auth/o2/tokeninfo?access_token={encoded}",
                    urls.amazon_api
                ))
                .await?;
            (text(&info, "aud"), text(&info, "user_id"))
        };
        let (Some(app), Some(user)) = (app, user) else {
            return Err(identitypool::not_authorized(
                "Invalid login token. The provider did not recognise the token.",
            ));
        };
        if !app_ids.contains(&app) {
            return Err(identitypool::not_authorized(
                "Invalid login token. The token was issued for a different app.",
            ));
        }
        Ok(VerifiedLogin {
            provider: name.to_owned(),
            amr: vec![name.to_owned(), format!("{name}:{app}:{user}")],
            claims: json!({ "aud": app, "sub": user }),
            subject: user,
        })
    }

    /// A provider's JSON answer; a refusal (4xx) means the token is bad.
    async fn get(&self, url: &str) -> Result<Value, ApiError> {
        let unreachable = || login_error(StsError::IdpCommunication(String::new()));
        if !crate::jwks::allowed(url) {
            return Err(unreachable());
        }
        let response = self
            .state
            .jwks
            .client()
            .get(url)
            .send()
            .await
            .map_err(|_| unreachable())?;
        if response.status().is_client_error() {
            return Err(identitypool::not_authorized(
                "Invalid login token. The provider did not recognise the token.",
            ));
        }
        if !response.status().is_success() {
            return Err(unreachable());
        }
        let body = response.bytes().await.map_err(|_| unreachable())?;
        if body.len() > 64 * 1024 {
            return Err(unreachable());
        }
        serde_json::from_slice(&body).map_err(|_| unreachable())
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `GET /.well-known/jwks_uri`: the built-in OpenID provider's keys (as Cognito publishes them
/// at `https://cognito-identity.amazonaws.com/.well-known/jwks_uri`).
pub async fn jwks(state: &AppState) -> http::Response<axum::body::Body> {
    let (status, body) = match service(state, time::OffsetDateTime::now_utc(), None)
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

/// Basic flow: `AssumeRoleWithWebIdentity` with a token of the built-in provider, verified
/// under its keys. Returns the verified claims and the provider name for the trust policy.
pub async fn verify_builtin_token(
    state: &AppState,
    now: time::OffsetDateTime,
    token: &str,
) -> Result<web_identity::Verified, ApiError> {
    let claims = service(state, now, None)
        .verify_open_id_token(token)
        .await
        .map_err(|e| {
            if e.status.is_client_error() {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidIdentityToken", e.message)
            } else {
                e
            }
        })?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(web_identity::Verified {
        subject: text("sub").unwrap_or_default(),
        audience: text("aud").unwrap_or_default(),
        azp: None,
        amr: cognate_protocol::string_list(&claims, "amr").unwrap_or_default(),
        expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
    })
}
