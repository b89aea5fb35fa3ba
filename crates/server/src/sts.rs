//! The STS Query adapter: parameters in, `cognate_sts` functions called, XML out.

use bytes::Bytes;
use cognate_protocol::{ApiError, Protocol, QueryParams, XmlWriter, render_query, services};
use cognate_sigv4::PathStyle;
use cognate_sts::{self as sts, Credentials, GetSessionTokenInput};
use http::StatusCode;
use time::format_description::well_known::Rfc3339;

use crate::edge::Ctx;

type Operation = services::sts::Operation;

pub async fn handle(
    ctx: &mut Ctx<'_>,
    action: &str,
    params: &QueryParams,
    payload_hash: &str,
) -> Result<http::Response<Bytes>, ApiError> {
    let unknown = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                services::sts::API_VERSION
            ),
        )
    };
    let op = match Operation::from_name(action) {
        Some(op @ (Operation::GetCallerIdentity | Operation::GetSessionToken)) => op,
        _ => return Err(unknown()),
    };
    let caller = ctx
        .caller(
            Protocol::Query,
            services::sts::SIGNING_NAME,
            PathStyle::Normalized,
            payload_hash,
            true,
        )
        .await?
        .ok_or_else(ApiError::internal)?;
    let mut w = XmlWriter::new();
    match op {
        Operation::GetCallerIdentity => {
            let id = sts::get_caller_identity(&caller.principal);
            w.element("Arn", &id.arn)
                .element("UserId", &id.user_id)
                .element("Account", &id.account);
        }
        Operation::GetSessionToken => {
            let input = GetSessionTokenInput {
                duration_seconds: int_param(params, "DurationSeconds")?,
            };
            let creds = sts::get_session_token(
                &caller.principal,
                caller.via_session,
                &input,
                ctx.now,
                &ctx.state.ring,
                &ctx.state.rng,
            )?;
            write_credentials(&mut w, &creds);
        }
        _ => return Err(unknown()),
    }
    Ok(render_query(
        action,
        services::sts::XML_NAMESPACE,
        ctx.request_id,
        Some(&w.finish()),
    ))
}

fn int_param(params: &QueryParams, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", format!("Value '{v}' at '{name}' failed to satisfy constraint: Member must be a number"))
            })
        })
        .transpose()
}

fn write_credentials(w: &mut XmlWriter, creds: &Credentials) {
    let expiration = creds.expiration.format(&Rfc3339).unwrap_or_default();
    w.nest("Credentials", |w| {
        w.element("AccessKeyId", &creds.access_key_id)
            .element("SecretAccessKey", &creds.secret_access_key)
            .element("SessionToken", &creds.session_token)
            .element("Expiration", &expiration);
    });
}
