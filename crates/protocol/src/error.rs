//! AWS errors as every protocol renders them: a code, a message, an HTTP status and a fault.

use std::borrow::Cow;

use http::StatusCode;

/// Whether the caller or the service is at fault (the Query protocol's `<Type>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

/// An error a client sees: the AWS error code its SDK turns into an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: StatusCode,
    pub fault: Fault,
    /// Further elements of S3's error document (`HeadersNotSigned`, …), in order.
    pub details: Vec<(&'static str, String)>,
    /// Response headers S3 sends with this error (`x-amz-delete-marker`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        let fault = if status.is_server_error() {
            Fault::Receiver
        } else {
            Fault::Sender
        };
        ApiError {
            code: code.into(),
            message: message.into(),
            status,
            fault,
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Adds an element to S3's error document.
    pub fn with_detail(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.details.push((element, value.into()));
        self
    }

    /// Adds a response header to S3's error response.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A failure inside the service. The message never carries internal detail.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "We encountered an internal error. Please try again.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Why authentication failed, independent of protocol; [`AuthFailure::to_error`] names the
/// code each protocol uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No signature on an operation that needs one.
    Missing,
    /// A malformed or incomplete signature.
    Incomplete(String),
    /// The access key id is not known.
    UnknownAccessKey,
    /// The session token is malformed, forged, or does not belong to the access key.
    InvalidToken,
    /// The session token has expired.
    ExpiredToken,
    /// The signature does not match.
    SignatureMismatch,
    /// The request time is outside the clock-skew window.
    Skewed(String),
    /// A presigned URL past its lifetime.
    PresignExpired,
    /// The credential scope's date is not the request's date.
    ScopeDate(String),
    /// `x-amz-*` headers the signature does not cover (lower-case names).
    HeadersNotSigned(Vec<String>),
}

const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl AuthFailure {
    pub fn to_error(&self, protocol: crate::Protocol) -> ApiError {
        use crate::Protocol::*;
        use AuthFailure::*;
        let s = |status: u16, code: &'static str, message: &str| {
            ApiError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                code,
                message,
            )
        };
        match (protocol, self) {
            (Query, Missing) => s(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ),
            (Query, Incomplete(m)) => s(400, "IncompleteSignature", m),
            (Query, UnknownAccessKey | InvalidToken) => {
                s(403, "InvalidClientTokenId", INVALID_TOKEN)
            }
            (Query, ExpiredToken) => s(403, "ExpiredToken", EXPIRED_TOKEN),
            (Query, SignatureMismatch) => s(403, "SignatureDoesNotMatch", MISMATCH),
            (Query, Skewed(m) | ScopeDate(m)) => s(403, "SignatureDoesNotMatch", m),
            (Query, PresignExpired) => s(403, "ExpiredToken", "Request has expired"),
            (Query, HeadersNotSigned(names)) => s(400, "IncompleteSignature", &not_signed(names)),

            (Json | RestJson, Missing) => s(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            (Json | RestJson, Incomplete(m)) => s(400, "IncompleteSignatureException", m),
            (Json | RestJson, UnknownAccessKey | InvalidToken) => {
                s(403, "UnrecognizedClientException", INVALID_TOKEN)
            }
            (Json | RestJson, ExpiredToken) => s(403, "ExpiredTokenException", EXPIRED_TOKEN),
            (Json | RestJson, SignatureMismatch) => s(403, "InvalidSignatureException", MISMATCH),
            (Json | RestJson, Skewed(m) | ScopeDate(m)) => s(403, "InvalidSignatureException", m),
            (Json | RestJson, PresignExpired) => {
                s(403, "InvalidSignatureException", "Signature expired")
            }
            (Json | RestJson, HeadersNotSigned(names)) => {
                s(400, "IncompleteSignatureException", &not_signed(names))
            }

            (RestXml, Missing) => s(403, "AccessDenied", "Access Denied"),
            (RestXml, Incomplete(m) | ScopeDate(m)) => s(400, "AuthorizationHeaderMalformed", m),
            (RestXml, UnknownAccessKey) => s(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            (RestXml, InvalidToken) => s(
                400,
                "InvalidToken",
                "The provided token is malformed or otherwise invalid.",
            ),
            (RestXml, ExpiredToken) => s(400, "ExpiredToken", "The provided token has expired."),
            (RestXml, SignatureMismatch) => s(403, "SignatureDoesNotMatch", MISMATCH),
            (RestXml, Skewed(_)) => s(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            ),
            (RestXml, PresignExpired) => s(403, "AccessDenied", "Request has expired"),
            (RestXml, HeadersNotSigned(names)) => s(
                403,
                "AccessDenied",
                "There were headers present in the request which were not signed",
            )
            .with_detail("HeadersNotSigned", names.join(", ")),
        }
    }
}

/// The Query and JSON services' words for a header left out of the signature, as they say
/// it of `host`.
fn not_signed(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}' must be a 'SignedHeader' in the AWS Authorization."))
        .collect::<Vec<_>>()
        .join(" ")
}
