//! The Cognito user pools JSON 1.1 adapter, and the pools' OpenID discovery documents and
//! JWKS (`GET /<poolId>/.well-known/…`, public).

use bytes::Bytes;
use cognate_protocol::{ApiError, Model, Protocol, decode_json, render_json, services};
use cognate_sigv4::{self as sigv4, PathStyle};
use cognate_userpool::{self as userpool, Delivery, UserPools};
use http::{HeaderValue, StatusCode};
use serde_json::Value;

use crate::edge::Ctx;
use crate::state::AppState;

fn unknown() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "UnknownOperationException", "")
}

pub(crate) fn service<'a>(
    state: &'a AppState,
    now: time::OffsetDateTime,
    account: Option<&'a str>,
) -> UserPools<'a> {
    UserPools {
        store: &state.store,
        master: &state.master,
        rng: &state.rng,
        keys: &state.userpool_keys,
        region: &state.region,
        issuer_base: state.public_url(),
        delivery: &state.delivery,
        now,
        account,
    }
}

pub async fn handle(
    ctx: &mut Ctx<'_>,
    operation: &str,
    body: &[u8],
) -> Result<http::Response<Bytes>, ApiError> {
    if !userpool::OPERATIONS.contains(&operation) {
        return Err(unknown());
    }
    let public = userpool::is_public(operation);
    let payload_hash = sigv4::sha256_hex(body);
    let caller = ctx
        .caller(
            Protocol::Json,
            services::cognito_idp::SIGNING_NAME,
            PathStyle::Normalized,
            &payload_hash,
            !public,
        )
        .await?;
    let input: Value = decode_json(body)?;
    let violations = Model::cognito_idp().validate_json(operation, &input);
    if !violations.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            violations.join("; "),
        ));
    }
    let account = match (public, caller.as_ref()) {
        (true, _) => None,
        (false, None) => return Err(ApiError::internal()),
        (false, Some(caller)) => {
            let account = caller.principal.account().to_string();
            let resource = match input.get("UserPoolId").and_then(Value::as_str) {
                Some(pool) => format!(
                    "arn:aws:cognito-idp:{}:{account}:userpool/{pool}",
                    ctx.state.region
                ),
                None => "*".to_owned(),
            };
            let pool_tags = match input.get("UserPoolId").and_then(Value::as_str) {
                Some(pool) => {
                    service(ctx.state, ctx.now, Some(&account))
                        .pool_tags(pool)
                        .await
                }
                None => None,
            };
            let keys = crate::authz::tag_keys(
                crate::authz::string_pairs(pool_tags.as_ref()),
                crate::authz::string_pairs(input.get("UserPoolTags")),
                [],
            );
            crate::authz::authorize(
                ctx,
                caller,
                Protocol::Json,
                &format!("cognito-idp:{operation}"),
                &resource,
                &keys,
                None,
            )
            .await?;
            if let (true, Some(role)) = (
                operation == "CreateGroup" || operation == "UpdateGroup",
                input.get("RoleArn").and_then(Value::as_str),
            ) {
                // A group's role reaches every member's tokens (and through identity pools,
                // their credentials): giving it is passing the role, as IAM requires.
                crate::authz::authorize(
                    ctx,
                    caller,
                    Protocol::Json,
                    "iam:PassRole",
                    role,
                    &[(
                        "iam:PassedToService".to_owned(),
                        vec!["cognito-idp.amazonaws.com".to_owned()],
                    )],
                    None,
                )
                .await?;
            }
            Some(account)
        }
    };
    let output = service(ctx.state, ctx.now, account.as_deref())
        .call(operation, &input)
        .await?;
    if operation == "DeleteUserPool" || operation == "UpdateUserPool" {
        // Other nodes drop the pool from their caches.
        ctx.state.changed().await;
    }
    render_json(&output)
}

/// `/<poolId>/.well-known/openid-configuration` or `/<poolId>/.well-known/jwks.json`: the
/// pool id and which document, when the path is one of these.
pub fn discovery_path(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix('/')?;
    let (pool, doc) = rest.split_once("/.well-known/")?;
    let (region, id) = pool.split_once('_')?;
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid {
        return None;
    }
    match doc {
        "openid-configuration" => Some((pool, false)),
        "jwks.json" => Some((pool, true)),
        _ => None,
    }
}

/// Serves a discovery document or JWKS; 404 for an unknown pool.
pub async fn discovery(
    state: &AppState,
    pool_id: &str,
    jwks: bool,
) -> http::Response<axum::body::Body> {
    let svc = service(state, time::OffsetDateTime::now_utc(), None);
    let doc = if jwks {
        svc.jwks(pool_id).await
    } else {
        svc.openid_configuration(pool_id).await
    };
    let (status, body) = match doc {
        Ok(v) => (StatusCode::OK, v.to_string()),
        Err(e) if e.status.is_server_error() => (e.status, String::new()),
        Err(_) => (
            StatusCode::NOT_FOUND,
            serde_json::json!({ "message": format!("User pool {pool_id} not found.") }).to_string(),
        ),
    };
    let mut res = http::Response::new(axum::body::Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The delivery configured for this server.
pub fn delivery(config: &crate::config::Config) -> Result<Delivery, crate::StartError> {
    use crate::config::MessageDelivery;
    let missing = |what: &str| crate::StartError::Config(format!("message delivery needs {what}"));
    Ok(match config.message_delivery {
        MessageDelivery::Outbox => Delivery::Outbox(config.data_dir.join("outbox")),
        MessageDelivery::Log => Delivery::Log,
        MessageDelivery::Webhook => Delivery::Webhook {
            url: config
                .message_webhook_url
                .clone()
                .ok_or_else(|| missing("--message-webhook-url"))?,
            client: reqwest::Client::new(),
        },
        MessageDelivery::Smtp => Delivery::smtp(
            config
                .smtp_url
                .as_deref()
                .ok_or_else(|| missing("--smtp-url"))?,
            config
                .smtp_from
                .as_deref()
                .ok_or_else(|| missing("--smtp-from"))?,
        )
        .map_err(crate::StartError::Config)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_paths_name_a_pool() {
        assert_eq!(
            discovery_path("/us-east-1_AbC123xyz/.well-known/jwks.json"),
            Some(("us-east-1_AbC123xyz", true))
        );
        assert_eq!(
            discovery_path("/us-east-1_AbC123xyz/.well-known/openid-configuration"),
            Some(("us-east-1_AbC123xyz", false))
        );
        assert_eq!(discovery_path("/bucket/.well-known/jwks.json"), None);
        assert_eq!(discovery_path("/us-east-1_x/.well-known/other"), None);
        assert_eq!(discovery_path("/us-east-1_a-b/.well-known/jwks.json"), None);
    }
}
