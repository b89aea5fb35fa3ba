//! The Cognito user pools JSON 1.1 adapter, and the pools' OpenID discovery documents and
//! JWKS (`GET /<poolId>/.well-known/…`, public).

use cognate_protocol::{ApiError, Model, Protocol, services};
use cognate_userpool::{self as userpool, Delivery, Operation};
use http::{HeaderValue, StatusCode};
use serde_json::Value;

use crate::auth::Caller;
use crate::context::Ctx;
use crate::pipeline::{Service, Wire, signed};
use crate::state::AppState;

pub(crate) struct UserPoolService;

impl Service for UserPoolService {
    type Operation = Operation;
    /// The caller's account, for administrative operations.
    type Authorized = Option<String>;
    const SIGNING_NAME: &'static str = services::cognito_idp::SIGNING_NAME;
    const WIRE: Wire = Wire::Json {
        invalid: "InvalidParameterException",
    };

    fn model() -> &'static Model {
        Model::cognito_idp()
    }

    fn implements(op: Operation) -> bool {
        userpool::implements(op)
    }

    async fn authorize(
        ctx: &Ctx<'_>,
        caller: Option<&Caller>,
        op: Operation,
        input: &Value,
    ) -> Result<Option<String>, ApiError> {
        if !op.requires_signature() {
            // Public operations prove themselves with a client id, a password, a code or a
            // token, inside the service.
            return Ok(None);
        }
        let caller = signed(caller)?;
        let account = caller.principal.account().to_string();
        // Tagging calls name the pool by its ARN.
        let pool = input.get("UserPoolId").and_then(Value::as_str).or_else(|| {
            input
                .get("ResourceArn")
                .and_then(Value::as_str)
                .and_then(userpool::pool_of_arn)
        });
        let resource = match pool {
            Some(pool) => format!(
                "arn:aws:cognito-idp:{}:{account}:userpool/{pool}",
                ctx.state.region
            ),
            None => "*".to_owned(),
        };
        let pool_tags = match pool {
            Some(pool) => {
                ctx.state
                    .user_pools(ctx.now, Some(&account))
                    .pool_tags(pool)
                    .await
            }
            None => None,
        };
        let keys = crate::authz::tag_keys(
            crate::authz::string_pairs(pool_tags.as_ref()),
            crate::authz::string_pairs(input.get("UserPoolTags").or_else(|| input.get("Tags"))),
            [],
        );
        crate::authz::authorize(
            ctx,
            caller,
            Protocol::Json,
            &format!("cognito-idp:{}", op.name()),
            &resource,
            &keys,
            None,
        )
        .await?;
        if let (Operation::CreateGroup | Operation::UpdateGroup, Some(role)) =
            (op, input.get("RoleArn").and_then(Value::as_str))
        {
            // A group's role reaches every member's tokens (and through identity pools,
            // their credentials): giving it is passing the role, as IAM requires.
            crate::authz::authorize_pass_role(
                ctx,
                caller,
                Protocol::Json,
                role,
                "cognito-idp.amazonaws.com",
            )
            .await?;
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
        ctx.state
            .user_pools(ctx.now, account.as_deref())
            .call(op, &input)
            .await
    }

    fn invalidates(op: Operation) -> bool {
        // Other nodes drop the pool from their caches.
        matches!(
            op,
            Operation::DeleteUserPool
                | Operation::UpdateUserPool
                | Operation::AddCustomAttributes
                | Operation::SetUserPoolMfaConfig
                | Operation::TagResource
                | Operation::UntagResource
        )
    }
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
    let svc = state.user_pools(time::OffsetDateTime::now_utc(), None);
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
