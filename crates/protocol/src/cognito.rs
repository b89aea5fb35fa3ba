//! What the Cognito JSON services (user pools and identity pools) share: their client errors
//! (400 with a code; the codes are the same in both APIs) and reading string members of
//! model-shaped input.

use http::StatusCode;
use serde_json::Value;

use crate::ApiError;

/// A client error (400) with Cognito's `code`.
pub fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// `InvalidParameterException`.
pub fn invalid(message: impl Into<String>) -> ApiError {
    err("InvalidParameterException", message)
}

/// `NotAuthorizedException`.
pub fn not_authorized(message: impl Into<String>) -> ApiError {
    err("NotAuthorizedException", message)
}

/// The string member `key` of `input`, if present.
pub fn str_of<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

/// The string member `key` of `input`; `InvalidParameterException` when absent.
pub fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    str_of(input, key).ok_or_else(|| invalid(format!("{key} is required")))
}
