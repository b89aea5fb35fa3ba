//! What the Cognito JSON services (user pools and identity pools) share: their client errors
//! (400 with a code; the codes are the same in both APIs) and reading string members of
//! model-shaped input, typed or not.

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

/// An operation's input as its model type. The pipeline validated it against the model, so
/// a mismatch here is a map or nested member of the wrong JSON type. serde's message would
/// quote the offending value (a token, a password), so only that it failed is said.
pub fn typed<T: serde::de::DeserializeOwned>(input: &Value) -> Result<T, ApiError> {
    T::deserialize(input)
        .map_err(|_| invalid("Invalid input: a member has the wrong type or is missing"))
}

/// An operation's output as model-shaped JSON (`()` is the empty structure). The model's
/// shapes have string keys and plain members, so serializing them cannot fail; if it did,
/// the caller hears an internal error.
pub fn output<T: serde::Serialize>(out: T) -> Result<Value, ApiError> {
    match serde_json::to_value(out) {
        Ok(Value::Null) => Ok(Value::Object(serde_json::Map::new())),
        Ok(v) => Ok(v),
        Err(_) => Err(ApiError::internal()),
    }
}
