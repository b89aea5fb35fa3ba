//! Browsers and buckets: a preflight (`OPTIONS`) is answered from the bucket's CORS
//! configuration without a signature, and a browser's actual request gets the CORS headers of
//! the rule that admits it. Rules are matched by [`cognate_s3::cors`].

use super::*;

/// What a browser's request names: its origin, and (preflight) the method and headers it asks
/// to use.
struct Asked<'h> {
    origin: &'h str,
    method: String,
    headers: Vec<String>,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The rule of `bucket` that admits `asked`, if any.
fn rule<'b>(bucket: &'b Bucket, asked: &Asked<'_>) -> Option<&'b s3::cors::CorsRule> {
    let headers: Vec<&str> = asked.headers.iter().map(String::as_str).collect();
    bucket
        .cors
        .as_ref()?
        .matching(asked.origin, &asked.method, &headers)
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The headers a matching rule puts on a response.
fn allow(headers: &mut HeaderMap, rule: &s3::cors::CorsRule, asked: &Asked<'_>, preflight: bool) {
    let origin = rule.allow_origin(asked.origin);
    insert(headers, "access-control-allow-origin", origin);
    if origin != "*" {
        insert(headers, "access-control-allow-credentials", "true");
    }
    insert(
        headers,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if preflight && !asked.headers.is_empty() {
        insert(
            headers,
            "access-control-allow-headers",
            &asked.headers.join(", "),
        );
    }
    if !rule.expose_headers.is_empty() {
        insert(
            headers,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        insert(headers, "access-control-max-age", &age.to_string());
    }
    insert(
        headers,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

/// `AccessForbidden` (403) for a preflight, naming the method asked for and what the path
/// names, as S3 does.
fn forbidden(message: &str, method: &str, resource_type: &str) -> ApiError {
    err(StatusCode::FORBIDDEN, "AccessForbidden", message)
        .with_detail("Method", method)
        .with_detail("ResourceType", resource_type)
}

/// Answers a preflight for a bucket or object path: 200 with the admitting rule's headers,
/// else `AccessForbidden` (403); without `Origin`, `BadRequest`.
pub async fn preflight(
    state: &crate::state::AppState,
    parts: &http::request::Parts,
) -> Result<Response<Body>, ApiError> {
    let (bucket, key, _) = address(state, parts)?;
    let origin = header_str(&parts.headers, "origin").ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        )
    })?;
    let method = header_str(&parts.headers, "access-control-request-method");
    let bucket = match bucket_named(state, &bucket).await {
        Ok(b) => b,
        Err(e) if e.code == "NoSuchBucket" => {
            return Err(forbidden(
                "CORSResponse: Bucket not found",
                "OPTIONS",
                "BUCKET",
            ));
        }
        Err(e) => return Err(e),
    };
    if bucket.cors.is_none() {
        return Err(forbidden(
            "CORSResponse: CORS is not enabled for this bucket.",
            method.unwrap_or("OPTIONS"),
            "BUCKET",
        ));
    }
    let asked = method.map(|method| Asked {
        origin,
        method: method.to_owned(),
        headers: header_str(&parts.headers, "access-control-request-headers")
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
    });
    let Some((rule, asked)) = asked
        .as_ref()
        .and_then(|asked| Some((rule(&bucket, asked)?, asked)))
    else {
        return Err(forbidden(
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            method.unwrap_or("OPTIONS"),
            if key.is_empty() { "BUCKET" } else { "OBJECT" },
        ));
    };
    let mut res = empty(StatusCode::OK);
    allow(res.headers_mut(), rule, asked, true);
    Ok(res)
}

/// Adds the CORS headers to the response of a browser's actual request (one with `Origin`)
/// when a rule of the bucket admits its origin and method.
pub async fn decorate(
    state: &crate::state::AppState,
    parts: &http::request::Parts,
    response: &mut Response<Body>,
) {
    let Some(origin) = header_str(&parts.headers, "origin") else {
        return;
    };
    let Ok((bucket, _, _)) = address(state, parts) else {
        return;
    };
    if bucket.is_empty() {
        return;
    }
    let Ok(bucket) = bucket_named(state, &bucket).await else {
        return;
    };
    let asked = Asked {
        origin,
        method: parts.method.as_str().to_owned(),
        headers: Vec::new(),
    };
    if let Some(rule) = rule(&bucket, &asked) {
        allow(response.headers_mut(), rule, &asked, false);
    }
}
