//! Any Authorization header or query string is parsed or refused, never a panic.
#![no_main]

use cognate_sigv4::{PathStyle, Request, SigningKey, parse, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (auth, query) = text.split_once('\n').unwrap_or((&text, ""));
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static("example.amazonaws.com"));
    headers.insert("x-amz-date", http::HeaderValue::from_static("20150830T123600Z"));
    if let Ok(v) = http::HeaderValue::from_str(auth) {
        headers.insert("authorization", v);
    }
    let method = http::Method::GET;
    let req = Request { method: &method, path: "/a/../b//c", query, headers: &headers };
    if let Ok(Some(p)) = parse(&req) {
        let key = SigningKey::derive("secret", &p.scope);
        let _ = cognate_sigv4::unsigned_amz_headers(&req, &p);
        for style in [PathStyle::Normalized, PathStyle::S3] {
            let _ = verify(&req, &p, &key, style, "UNSIGNED-PAYLOAD", p.timestamp);
        }
    }
});
