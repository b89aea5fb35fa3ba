//! AWS JSON 1.1: typed input from the body, `__type` + `message` errors.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::ApiError;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Decodes a JSON 1.1 request body into an operation's input type. An empty body is `{}`.
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(serialization("Start of structure or map expected"));
    }
    serde_json::from_slice(body).map_err(|e| serialization(&e.to_string()))
}

fn serialization(detail: &str) -> ApiError {
    // serde's messages name fields, never values, so they are safe to return.
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "SerializationException",
        detail.to_owned(),
    )
}

/// A successful JSON 1.1 response.
/// The strings of the array member `key` of model-shaped JSON (non-strings skipped); `None`
/// when the member is absent or not an array.
pub fn string_list(value: &serde_json::Value, key: &str) -> Option<Vec<String>> {
    let items = value.get(key)?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

pub fn render_json<T: serde::Serialize>(output: &T) -> Result<Response<Bytes>, ApiError> {
    let body = serde_json::to_vec(output).map_err(|_| ApiError::internal())?;
    let mut res = Response::new(Bytes::from(body));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(res)
}

/// A JSON 1.1 error: `x-amzn-ErrorType` and `{"__type": …, "message": …}`.
pub fn render_json_error(err: &ApiError) -> Response<Bytes> {
    let body = serde_json::json!({ "__type": err.code, "message": err.message });
    let mut res = Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = err.status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        res.headers_mut().insert("x-amzn-errortype", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    struct Input {
        #[serde(default)]
        pool_name: Option<String>,
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        let input: Input = decode_json(b"").unwrap();
        assert!(input.pool_name.is_none());
    }

    #[test]
    fn garbage_is_a_serialization_exception() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"PoolName\": 5}",
            b"{",
            b"\xff\xfe",
        ] {
            let err = decode_json::<Input>(body).unwrap_err();
            assert_eq!(err.code, "SerializationException", "{body:?}");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn errors_carry_type_and_message() {
        let err = ApiError::new(StatusCode::BAD_REQUEST, "UnknownOperationException", "");
        let res = render_json_error(&err);
        assert_eq!(
            res.headers()["x-amzn-errortype"],
            "UnknownOperationException"
        );
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(v["__type"], "UnknownOperationException");
    }
}
