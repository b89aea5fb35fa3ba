//! REST bindings: matching a method and path against the model's URI templates, and the
//! REST-JSON error shape.

use bytes::Bytes;
use http::{HeaderValue, Response, header};

use crate::ApiError;

/// A REST operation matched from a path, with its URI labels percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestMatch<O> {
    pub operation: O,
    pub labels: Vec<(String, String)>,
}

/// Finds the operation whose method and URI template (`/identitypools/{IdentityPoolId}/…`)
/// match. The most specific template (most literal segments) wins.
pub fn match_rest<O: Copy>(
    operations: impl IntoIterator<Item = (O, &'static str, &'static str)>,
    method: &str,
    path: &str,
) -> Option<RestMatch<O>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, RestMatch<O>)> = None;
    for (op, m, template) in operations {
        if m != method {
            continue;
        }
        let template = template.split('?').next().unwrap_or("");
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut labels = Vec::new();
        let mut literal = 0;
        let matched = parts.iter().zip(&segments).all(|(p, s)| {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let value = percent_decode(s);
                labels.push((name.to_owned(), value));
                !s.is_empty()
            } else {
                literal += 1;
                p == s
            }
        });
        if matched && best.as_ref().is_none_or(|(score, _)| literal > *score) {
            best = Some((
                literal,
                RestMatch {
                    operation: op,
                    labels,
                },
            ));
        }
    }
    best.map(|(_, m)| m)
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A REST-JSON success: the output as a JSON document.
pub fn render_rest_json<T: serde::Serialize>(output: &T) -> Result<Response<Bytes>, ApiError> {
    let body = serde_json::to_vec(output).map_err(|_| ApiError::internal())?;
    let mut res = Response::new(Bytes::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// A REST-JSON error: `x-amzn-ErrorType` and `{"message": …}`.
pub fn render_rest_json_error(err: &ApiError) -> Response<Bytes> {
    let body = serde_json::json!({ "message": err.message });
    let mut res = Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = err.status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        res.headers_mut().insert("x-amzn-errortype", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::cognito_sync::Operation;

    fn ops() -> impl Iterator<Item = (Operation, &'static str, &'static str)> {
        Operation::ALL.iter().map(|op| {
            let (m, t) = op.http();
            (*op, m, t)
        })
    }

    #[test]
    fn cognito_sync_paths_match_the_model() {
        let m = match_rest(
            ops(),
            "GET",
            "/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/prefs",
        )
        .unwrap();
        assert_eq!(m.operation, Operation::DescribeDataset);
        assert_eq!(
            m.labels,
            vec![
                ("IdentityPoolId".into(), "us-east-1:abc".into()),
                ("IdentityId".into(), "us-east-1:def".into()),
                ("DatasetName".into(), "prefs".into()),
            ]
        );
        let m = match_rest(
            ops(),
            "GET",
            "/identitypools/p/identities/i/datasets/d/records",
        )
        .unwrap();
        assert_eq!(m.operation, Operation::ListRecords);
        assert!(match_rest(ops(), "PATCH", "/identitypools/p").is_none());
        assert!(match_rest(ops(), "GET", "/nowhere").is_none());
    }
}
