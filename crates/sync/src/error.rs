//! The one error type of Cognito Sync: each variant is one of the model's exceptions, with
//! its code and HTTP status.

use cognate_protocol::ApiError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    ResourceNotFound(String),
    /// A patch was written against a record (or dataset) that changed since the device read it.
    #[error("{0}")]
    ResourceConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// A bulk publish is already in progress.
    #[error("{0}")]
    DuplicateRequest(String),
    /// The pool was bulk published less than 24 hours ago.
    #[error("{0}")]
    AlreadyStreamed(String),
    /// Push sync is not set up for what the request needs.
    #[error("{0}")]
    InvalidConfiguration(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The Sync Trigger function answered something other than the event it was given,
    /// changed in its records only (or failed).
    #[error("{0}")]
    InvalidLambdaFunctionOutput(String),
    #[error("{0}")]
    LambdaThrottled(String),
    /// The Sync Trigger function did not answer within 5 seconds.
    #[error("{0}")]
    LambdaSocketTimeout(String),
    /// A failure inside the server; the detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl SyncError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        SyncError::Internal(e.to_string())
    }
}

impl From<cognate_store::StoreError> for SyncError {
    fn from(e: cognate_store::StoreError) -> Self {
        SyncError::internal(e)
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        let (status, code) = match &e {
            SyncError::InvalidParameter(_) => {
                (StatusCode::BAD_REQUEST, "InvalidParameterException")
            }
            SyncError::NotAuthorized(_) => (StatusCode::FORBIDDEN, "NotAuthorizedException"),
            SyncError::ResourceNotFound(_) => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            SyncError::ResourceConflict(_) => (StatusCode::CONFLICT, "ResourceConflictException"),
            SyncError::LimitExceeded(_) => (StatusCode::BAD_REQUEST, "LimitExceededException"),
            SyncError::DuplicateRequest(_) => {
                (StatusCode::BAD_REQUEST, "DuplicateRequestException")
            }
            SyncError::AlreadyStreamed(_) => (StatusCode::BAD_REQUEST, "AlreadyStreamedException"),
            SyncError::InvalidConfiguration(_) => {
                (StatusCode::BAD_REQUEST, "InvalidConfigurationException")
            }
            SyncError::TooManyRequests(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException")
            }
            SyncError::InvalidLambdaFunctionOutput(_) => (
                StatusCode::BAD_REQUEST,
                "InvalidLambdaFunctionOutputException",
            ),
            SyncError::LambdaThrottled(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "LambdaThrottledException")
            }
            // The developer guide names this exception; the model does not list it, so its
            // status is not documented: a client error, as the function is the customer's.
            SyncError::LambdaSocketTimeout(_) => {
                (StatusCode::BAD_REQUEST, "LambdaSocketTimeoutException")
            }
            SyncError::Internal(detail) => {
                tracing::error!(error = %detail, "cognito sync failed inside the server");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalErrorException",
                    "An internal error occurred",
                );
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, SyncError>;
