//! SigV4 verification cost for a typical signed STS request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cognate_sigv4::{
    PathStyle, Request, SigningKey, canonical_request, parse, sha256_hex, string_to_sign, verify,
};
use criterion::{Criterion, criterion_group, criterion_main};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const BODY: &[u8] = b"Action=GetCallerIdentity&Version=2011-06-15";

fn signed_headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("host", "127.0.0.1:4566".parse().unwrap());
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
    h.insert("user-agent", "aws-cli/2 botocore/1".parse().unwrap());
    let placeholder = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000";
    h.insert("authorization", placeholder.parse().unwrap());
    let method = http::Method::POST;
    let req = Request {
        method: &method,
        path: "/",
        query: "",
        headers: &h,
    };
    let presented = parse(&req).unwrap().unwrap();
    let key = SigningKey::derive(SECRET, &presented.scope);
    let canonical = canonical_request(&req, &presented, PathStyle::Normalized, &sha256_hex(BODY));
    let sig = hex::encode(key.sign(&string_to_sign(&presented, &canonical)));
    let auth = placeholder.replace(&"0".repeat(64), &sig);
    h.insert("authorization", auth.parse().unwrap());
    h
}

fn bench(c: &mut Criterion) {
    let headers = signed_headers();
    let method = http::Method::POST;
    let req = Request {
        method: &method,
        path: "/",
        query: "",
        headers: &headers,
    };
    let presented = parse(&req).unwrap().unwrap();
    let now = presented.timestamp;
    let cached_key = SigningKey::derive(SECRET, &presented.scope);

    c.bench_function("sigv4 parse + verify (cached signing key)", |b| {
        b.iter(|| {
            let p = parse(&req).unwrap().unwrap();
            verify(
                &req,
                &p,
                &cached_key,
                PathStyle::Normalized,
                &sha256_hex(BODY),
                now,
            )
            .unwrap();
        })
    });
    c.bench_function("sigv4 parse + derive key + verify", |b| {
        b.iter(|| {
            let p = parse(&req).unwrap().unwrap();
            let key = SigningKey::derive(SECRET, &p.scope);
            verify(
                &req,
                &p,
                &key,
                PathStyle::Normalized,
                &sha256_hex(BODY),
                now,
            )
            .unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
