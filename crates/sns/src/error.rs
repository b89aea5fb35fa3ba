//! The one error type of the SNS subset: each variant is one of SNS's error codes.

use cognate_protocol::ApiError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// `InvalidParameter`; the message is SNS's (`Invalid parameter: <Name> Reason: …`).
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Endpoint is disabled")]
    EndpointDisabled,
    #[error("Platform application is disabled")]
    PlatformApplicationDisabled,
    /// A failure inside the server; the detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl SnsError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        SnsError::Internal(e.to_string())
    }

    pub(crate) fn invalid(name: &str, reason: impl std::fmt::Display) -> Self {
        SnsError::InvalidParameter(format!("Invalid parameter: {name} Reason: {reason}"))
    }
}

impl From<cognate_store::StoreError> for SnsError {
    fn from(e: cognate_store::StoreError) -> Self {
        SnsError::internal(e)
    }
}

impl From<SnsError> for ApiError {
    fn from(e: SnsError) -> Self {
        let (status, code) = match &e {
            SnsError::InvalidParameter(_) => (StatusCode::BAD_REQUEST, "InvalidParameter"),
            SnsError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            SnsError::EndpointDisabled => (StatusCode::BAD_REQUEST, "EndpointDisabled"),
            SnsError::PlatformApplicationDisabled => {
                (StatusCode::BAD_REQUEST, "PlatformApplicationDisabled")
            }
            SnsError::Internal(detail) => {
                tracing::error!(error = %detail, "sns failed inside the server");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "An internal error occurred",
                );
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, SnsError>;
