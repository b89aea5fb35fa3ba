//! Invoking functions: the Lambda Invoke API at `--lambda-endpoint`
//! (`POST /2015-03-31/functions/<name>/invocations`, SigV4-signed for the service `lambda`),
//! which LocalStack, serverless-offline and the Lambda Runtime Interface Emulator answer. The
//! function name comes from the ARN (its qualifier, if any, as `Qualifier`). A call gets 5
//! seconds, as Cognito gives its functions.

use std::time::Duration;

use cognate_sigv4 as sigv4;
use cognate_sync::{Invoke, InvokeError};
use serde_json::Value;

/// How long a function may take to answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// Where functions run, if anywhere.
pub struct Functions {
    endpoint: Option<String>,
    access_key_id: String,
    secret_access_key: zeroize::Zeroizing<String>,
    region: String,
    client: reqwest::Client,
}

impl Functions {
    pub fn new(config: &crate::config::Config) -> Self {
        Functions {
            endpoint: config
                .lambda_endpoint
                .as_ref()
                .map(|e| e.trim_end_matches('/').to_owned()),
            access_key_id: config
                .lambda_access_key_id
                .clone()
                .unwrap_or_else(|| "cognate".to_owned()),
            secret_access_key: zeroize::Zeroizing::new(
                config
                    .lambda_secret_access_key
                    .clone()
                    .unwrap_or_else(|| "cognate".to_owned()),
            ),
            region: config.region.clone(),
            client: reqwest::Client::builder()
                .timeout(DEADLINE)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// Whether any function can be invoked.
    pub fn configured(&self) -> bool {
        self.endpoint.is_some()
    }
}

/// The name (and qualifier) an ARN `arn:aws:lambda:<region>:<account>:function:<name>[:<q>]`
/// gives.
fn name_of(arn: &str) -> Option<(&str, Option<&str>)> {
    let mut parts = arn.splitn(8, ':');
    let (Some("arn"), Some(_), Some("lambda"), Some(_), Some(_), Some("function"), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$')
    };
    let qualifier = parts.next();
    (valid(name) && qualifier.is_none_or(valid)).then_some((name, qualifier))
}

impl Invoke for Functions {
    async fn invoke(&self, function_arn: &str, event: Value) -> Result<Value, InvokeError> {
        let Some(endpoint) = &self.endpoint else {
            return Err(InvokeError::Failed(
                "this server invokes no functions (no --lambda-endpoint)".to_owned(),
            ));
        };
        let (name, qualifier) = name_of(function_arn)
            .ok_or_else(|| InvokeError::Failed(format!("{function_arn} names no function")))?;
        let path = format!("/2015-03-31/functions/{name}/invocations");
        let query = qualifier
            .map(|q| format!("Qualifier={q}"))
            .unwrap_or_default();
        let body = serde_json::to_vec(&event).map_err(|e| InvokeError::Failed(e.to_string()))?;
        let hash = sigv4::sha256_hex(&body);
        let url: reqwest::Url = format!(
            "{endpoint}{path}{}{query}",
            if query.is_empty() { "" } else { "?" }
        )
        .parse()
        .map_err(|_| InvokeError::Failed("--lambda-endpoint is not a URL".to_owned()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => {
                return Err(InvokeError::Failed(
                    "--lambda-endpoint has no host".to_owned(),
                ));
            }
        };
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .map_err(|e| InvokeError::Failed(e.to_string()))?;
        let mut headers = http::HeaderMap::new();
        let header = |v: &str| {
            http::HeaderValue::from_str(v).map_err(|_| InvokeError::Failed("bad header".into()))
        };
        headers.insert(http::header::HOST, header(&host)?);
        headers.insert("x-amz-date", header(&date)?);
        headers.insert("x-amz-content-sha256", header(&hash)?);
        headers.insert("x-amz-invocation-type", header("RequestResponse")?);
        headers.insert(http::header::CONTENT_TYPE, header("application/json")?);
        let request = sigv4::Request {
            method: &http::Method::POST,
            path: &path,
            query: &query,
            headers: &headers,
        };
        let authorization = sigv4::authorization(
            &request,
            &self.access_key_id,
            &self.secret_access_key,
            &self.region,
            "lambda",
            &hash,
        )
        .map_err(|e| InvokeError::Failed(e.to_string()))?;
        headers.insert(http::header::AUTHORIZATION, header(&authorization)?);
        headers.remove(http::header::HOST);
        let response = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    InvokeError::TimedOut
                } else {
                    InvokeError::Failed("the function's endpoint could not be reached".to_owned())
                }
            })?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(InvokeError::Throttled);
        }
        let text = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                InvokeError::TimedOut
            } else {
                InvokeError::Failed("the function's answer was cut off".to_owned())
            }
        })?;
        if !status.is_success() || function_error {
            let message = serde_json::from_slice::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("errorMessage")
                        .or_else(|| v.get("message"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("status {}", status.as_u16()));
            return Err(InvokeError::Failed(message));
        }
        serde_json::from_slice(&text)
            .map_err(|_| InvokeError::Failed("its answer is not JSON".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_function_arns_only() {
        assert_eq!(
            name_of("arn:aws:lambda:us-east-1:111122223333:function:sync-trigger"),
            Some(("sync-trigger", None))
        );
        assert_eq!(
            name_of("arn:aws:lambda:us-east-1:111122223333:function:f:live"),
            Some(("f", Some("live")))
        );
        assert_eq!(
            name_of("arn:aws:lambda:us-east-1:111122223333:function:../../x"),
            None
        );
        assert_eq!(name_of("arn:aws:lambda:us-east-1:1:layer:x"), None);
        assert_eq!(name_of("arn:aws:s3:::bucket"), None);
    }
}
