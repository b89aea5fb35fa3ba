//! S3's errors, in its codes and words.

use super::*;

pub(super) fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message.into())
}

/// S3's answer to an aws-chunked body it refuses.
pub(super) fn chunk_error(e: sigv4::ChunkError, incomplete: ApiError) -> ApiError {
    match e {
        sigv4::ChunkError::Signature => err(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
        sigv4::ChunkError::Trailer => err(
            StatusCode::BAD_REQUEST,
            "MalformedTrailerError",
            "The request contained trailing data that was not well-formed or did not conform to our published schema.",
        ),
        sigv4::ChunkError::Malformed | sigv4::ChunkError::Incomplete => incomplete,
    }
}

/// SSE-C parameters given for an object that was not stored with them.
pub(super) fn not_applicable() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        "The encryption parameters are not applicable to this object.",
    )
}

pub(super) fn no_such_bucket() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchBucket",
        "The specified bucket does not exist",
    )
}

pub(super) fn no_such_key() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        "The specified key does not exist.",
    )
}

pub(super) fn no_such_upload() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

pub(super) fn not_implemented() -> ApiError {
    err(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "A header you provided implies functionality that is not implemented",
    )
}

pub(super) fn invalid_argument(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, "InvalidArgument", message)
}

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "S3 request failed inside the server");
    ApiError::internal()
}

pub(super) fn malformed_xml() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}
