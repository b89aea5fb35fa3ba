//! Where the services meet: logins verified for identity pools (user pools of this server,
//! IAM OpenID Connect providers, Google / Apple / Facebook / Login with Amazon), the built-in
//! provider's tokens verified for `AssumeRoleWithWebIdentity`, and the roles and OpenID
//! Connect providers both STS and identity pools look up (cached until the next IAM change).
//! The service adapters use this module and never each other.

use std::sync::Arc;

use cognate_credentials::AccountId;
use cognate_identitypool::{self as identitypool, BUILTIN_PROVIDER, Pool, Provider, VerifiedLogin};
use cognate_protocol::ApiError;
use cognate_sts::{self as sts, StsError, web_identity};
use http::StatusCode;
use serde_json::{Value, json};

use crate::authz::ResourcePolicy;
use crate::context::Ctx;
use crate::state::AppState;

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

/// A role with its parsed trust policy, cached until the next IAM change.
pub(crate) async fn cached_role(
    state: &AppState,
    arn: &str,
) -> Result<Option<Arc<cognate_iam::RoleRecord>>, ApiError> {
    if let Some(role) = state.roles.get(&arn.to_owned()) {
        return Ok(Some(role));
    }
    let ticket = state.roles.ticket();
    let Some(role) = cognate_iam::role_by_arn(&state.store, arn)
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    let role = Arc::new(role);
    state.roles.insert(ticket, arn.to_owned(), role.clone());
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
    let ticket = state.oidc_providers.ticket();
    let Some(provider) = cognate_iam::oidc_provider(&state.store, account, name)
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    let provider = Arc::new(provider);
    state.oidc_providers.insert(ticket, key, provider.clone());
    Ok(Some(provider))
}

/// A role assumable through `cognito-identity.amazonaws.com` must restrict which identity
/// pools may assume it (`cognito-identity.amazonaws.com:aud`), or every pool of every account
/// could: the request that was allowed must be refused when it names a pool that cannot
/// exist. AWS enforces the same rule.
pub(crate) fn names_pools(
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
pub(crate) struct LoginVerifier<'a> {
    pub state: &'a AppState,
    pub now: time::OffsetDateTime,
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
                let claims = self
                    .state
                    .user_pools(self.now, None)
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
                let registered = cached_provider(self.state, account, login_key)
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
    /// app the token belongs to and whose it is (once for callers presenting it at once).
    async fn introspect(
        &self,
        _pool: &Pool,
        name: &str,
        app_ids: &[String],
        token: &str,
    ) -> Result<VerifiedLogin, ApiError> {
        let urls = &self.state.login_urls;
        let client = self.state.jwks.client().clone();
        let base = if name == "graph.facebook.com" {
            urls.facebook_graph.clone()
        } else {
            urls.amazon_api.clone()
        };
        let (provider, presented) = (name.to_owned(), token.to_owned());
        let (app, user) = self
            .state
            .introspections
            .run((name.to_owned(), token.to_owned()), move || async move {
                ask_provider(&client, &provider, &base, &presented).await
            })
            .await
            .unwrap_or_else(|| Err(ApiError::internal()))?;
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
}

/// Which app an opaque access token belongs to and whose it is, as the provider (Facebook's
/// Graph API at `base`, or Login with Amazon's) answers.
async fn ask_provider(
    client: &reqwest::Client,
    provider: &str,
    base: &str,
    token: &str,
) -> Result<(String, String), ApiError> {
    let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let (app, user) = if provider == "graph.facebook.com" {
        let app = provider_json(client, &format!("{base}/app?access_token={encoded}")).await?;
        let me = provider_json(client, &format!("{base}/me?access_token={encoded}")).await?;
        (text(&app, "id"), text(&me, "id"))
    } else {
        let info = provider_json(
            client,
            &format!("{base}/auth/o2/tokeninfo?access_token={encoded}"),
        )
        .await?;
        (text(&info, "aud"), text(&info, "user_id"))
    };
    match (app, user) {
        (Some(app), Some(user)) => Ok((app, user)),
        _ => Err(identitypool::not_authorized(
            "Invalid login token. The provider did not recognise the token.",
        )),
    }
}

/// A provider's JSON answer; a refusal (4xx) means the token is bad.
async fn provider_json(client: &reqwest::Client, url: &str) -> Result<Value, ApiError> {
    let unreachable = || login_error(StsError::IdpCommunication(String::new()));
    if !crate::jwks::allowed(url) {
        return Err(unreachable());
    }
    let response = client.get(url).send().await.map_err(|_| unreachable())?;
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

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Basic flow: `AssumeRoleWithWebIdentity` with a token of the built-in provider, verified
/// under its keys. Returns the verified claims and the provider name for the trust policy.
pub(crate) async fn verify_builtin_token(
    state: &AppState,
    now: time::OffsetDateTime,
    token: &str,
) -> Result<web_identity::Verified, ApiError> {
    let claims = state
        .identity_pools(now, None)
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

/// SNS for one request, as the signed caller's account sees it: the SNS adapter's, and
/// Cognito Sync's for the endpoints its devices register and the pushes it sends.
pub(crate) fn sns<'a>(ctx: &'a Ctx<'_>, account: &'a str) -> cognate_sns::Sns<'a> {
    cognate_sns::Sns {
        store: &ctx.state.store,
        master: &ctx.state.master,
        rng: &ctx.state.rng,
        push: &ctx.state.push,
        region: &ctx.state.region,
        account,
        now: ctx.now,
    }
}
