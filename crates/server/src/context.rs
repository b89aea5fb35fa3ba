//! What a service adapter knows about one request ([`Ctx`]): the server's state, the parsed
//! request, its signature, the clock reading it is judged by, and what the log line will say.
//! Below every adapter; imports only the state and authentication.

use axum::body::Body;
use bytes::Bytes;
use cognate_protocol::{ApiError, AuthFailure, Protocol};
use cognate_sigv4::{self as sigv4, PathStyle, Presented};
use http::{StatusCode, request::Parts};
use http_body_util::BodyExt as _;
use time::OffsetDateTime;

use crate::auth::{self, AuthError, Caller, Signed};
use crate::state::AppState;

/// What a request turned out to be, for its log line.
#[derive(Default)]
pub struct Outcome {
    pub service: &'static str,
    pub operation: String,
    pub principal: Option<String>,
}

/// Everything a service adapter needs about one request.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub parts: &'a Parts,
    pub presented: Option<&'a Presented>,
    pub request_id: &'a str,
    pub now: OffsetDateTime,
    /// The client's address, for `aws:SourceIp`.
    pub source_ip: Option<std::net::IpAddr>,
    pub outcome: &'a mut Outcome,
    /// The resource S3's Signature Version 2 signs (`/bucket/key`) when the request's path
    /// is not it (virtual-hosted addressing).
    pub v2_path: Option<String>,
}

impl Ctx<'_> {
    /// Authenticates the request when it is signed. Unsigned requests yield `None` when
    /// `requires_signature` is false and `MissingAuthenticationToken` otherwise.
    pub async fn caller(
        &mut self,
        protocol: Protocol,
        service: &str,
        style: PathStyle,
        payload_hash: &str,
        requires_signature: bool,
    ) -> Result<Option<Caller>, ApiError> {
        let Some(presented) = self.presented else {
            return if requires_signature {
                Err(AuthFailure::Missing.to_error(protocol))
            } else {
                Ok(None)
            };
        };
        self.authenticate(protocol, presented, service, style, payload_hash, None)
            .await
            .map(Some)
    }

    /// Authenticates an S3 POST form: `presented` from its fields, its signature of `policy`.
    pub async fn form_caller(
        &mut self,
        presented: &Presented,
        policy: &str,
    ) -> Result<Caller, ApiError> {
        self.authenticate(
            Protocol::RestXml,
            presented,
            "s3",
            PathStyle::S3,
            sigv4::UNSIGNED_PAYLOAD,
            Some(policy),
        )
        .await
    }

    async fn authenticate(
        &mut self,
        protocol: Protocol,
        presented: &Presented,
        service: &str,
        style: PathStyle,
        payload_hash: &str,
        policy: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let query = self.parts.uri.query().unwrap_or("");
        let request = sigv4::Request {
            method: &self.parts.method,
            path: self.parts.uri.path(),
            query,
            headers: &self.parts.headers,
        };
        let v2_request = sigv4::Request {
            path: self.v2_path.as_deref().unwrap_or(request.path),
            ..request
        };
        let signed = Signed {
            request: &request,
            v2_request: &v2_request,
            presented,
            style,
            payload_hash,
            service,
            policy,
        };
        match auth::authenticate(self.state, &signed, self.now).await {
            Ok(caller) => {
                self.outcome.principal = Some(caller.principal.arn());
                Ok(caller)
            }
            Err(AuthError::Denied(failure)) => Err(failure.to_error(protocol)),
            Err(AuthError::Internal(detail)) => {
                tracing::error!(request_id = self.request_id, %detail, "authentication failed inside the server");
                Err(ApiError::internal())
            }
        }
    }
}

/// Reads a whole body, refusing one larger than `limit` before buffering it.
pub(crate) async fn read_body(
    headers: &http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request body must be at most {limit} bytes"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) if crate::listener::stalled(&*e) => Err(request_timeout()),
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "The request body could not be read",
        )),
    }
}

/// A request whose body stalled (S3's words, which every service's clients retry).
pub(crate) fn request_timeout() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
    )
}
