//! The public AWS SigV4 test suite ("aws-sig-v4-test-suite"): every vector's request must
//! verify against its published signature, and fail once anything it covers changes.
//! All vectors: access key AKIDEXAMPLE, region us-east-1, service `service`,
//! 2015-08-30T12:36:00Z, host example.amazonaws.com.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cognate_sigv4::{Error, PathStyle, Request, SigningKey, parse, sha256_hex, verify};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    signed_headers: &'static str,
    signature: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: "",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: "",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-slashes",
        method: "GET",
        path: "//example//",
        query: "",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-vanilla-query-order-value",
        method: "GET",
        path: "/",
        query: "Param1=value2&Param1=value1",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    },
    Vector {
        name: "get-vanilla-utf8-query",
        method: "GET",
        path: "/",
        query: "\u{1234}=bar",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    },
    Vector {
        name: "get-header-value-order",
        method: "GET",
        path: "/",
        query: "",
        headers: &[
            ("my-header1", "value4"),
            ("my-header1", "value1"),
            ("my-header1", "value3"),
            ("my-header1", "value2"),
        ],
        body: "",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    Vector {
        name: "get-header-key-duplicate",
        method: "GET",
        path: "/",
        query: "",
        headers: &[
            ("my-header1", "value2"),
            ("my-header1", "value2"),
            ("my-header1", "value1"),
        ],
        body: "",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("my-header1", " value1"), ("my-header2", "\"a   b   c\"")],
        body: "",
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: "Param1=value1",
        signed_headers: "content-type;host;x-amz-date",
        signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
];

struct Built {
    method: http::Method,
    headers: http::HeaderMap,
}

fn build(v: &Vector, extra: &[(&str, &str)], signature: &str) -> Built {
    let mut headers = http::HeaderMap::new();
    headers.append("host", "example.amazonaws.com".parse().unwrap());
    headers.append("x-amz-date", "20150830T123600Z".parse().unwrap());
    for (k, val) in v.headers.iter().chain(extra) {
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(val).unwrap(),
        );
    }
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={signature}",
        v.signed_headers
    );
    headers.insert("authorization", auth.parse().unwrap());
    Built {
        method: v.method.parse().unwrap(),
        headers,
    }
}

fn check(
    v: &Vector,
    path: &str,
    query: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Result<(), Error> {
    let built = build(v, extra, v.signature);
    let req = Request {
        method: &built.method,
        path,
        query,
        headers: &built.headers,
    };
    let presented = parse(&req)?.expect("signed");
    let key = SigningKey::derive(SECRET, &presented.scope);
    verify(
        &req,
        &presented,
        &key,
        PathStyle::Normalized,
        &sha256_hex(body.as_bytes()),
        presented.timestamp,
    )
}

#[test]
fn every_published_vector_verifies() {
    for v in VECTORS {
        check(v, v.path, v.query, v.body, &[]).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
    }
}

#[test]
fn any_change_to_a_covered_part_breaks_the_signature() {
    for v in VECTORS {
        let other_path = format!("{}x", v.path);
        let other_query = if v.query.is_empty() {
            "a=b".to_owned()
        } else {
            format!("{}x", v.query)
        };
        let other_body = format!("{}x", v.body);
        for (what, result) in [
            ("path", check(v, &other_path, v.query, v.body, &[])),
            ("query", check(v, v.path, &other_query, v.body, &[])),
            ("body", check(v, v.path, v.query, &other_body, &[])),
        ] {
            assert_eq!(
                result,
                Err(Error::SignatureMismatch),
                "{}: changed {what}",
                v.name
            );
        }
        if v.signed_headers.contains("my-header1") {
            assert_eq!(
                check(v, v.path, v.query, v.body, &[("my-header1", "extra")]),
                Err(Error::SignatureMismatch),
                "{}: header",
                v.name
            );
        }
        // A header outside the signed list may change freely.
        check(v, v.path, v.query, v.body, &[("user-agent", "anything")]).unwrap();
    }
}

#[test]
fn a_wrong_secret_never_verifies() {
    for v in VECTORS {
        let built = build(v, &[], v.signature);
        let req = Request {
            method: &built.method,
            path: v.path,
            query: v.query,
            headers: &built.headers,
        };
        let presented = parse(&req).unwrap().unwrap();
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz", &presented.scope);
        assert_eq!(
            verify(
                &req,
                &presented,
                &key,
                PathStyle::Normalized,
                &sha256_hex(v.body.as_bytes()),
                presented.timestamp
            ),
            Err(Error::SignatureMismatch)
        );
    }
}

/// The suite's session-token vector: `x-amz-security-token` is signed like any header.
#[test]
fn session_token_vector() {
    let v = Vector {
        name: "get-vanilla-with-session-token",
        method: "GET",
        path: "/",
        query: "",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date;x-amz-security-token",
        signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    };
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    check(&v, "/", "", "", &[("x-amz-security-token", token)]).unwrap();
    let built = build(&v, &[("x-amz-security-token", token)], v.signature);
    let req = Request {
        method: &built.method,
        path: "/",
        query: "",
        headers: &built.headers,
    };
    assert_eq!(
        parse(&req).unwrap().unwrap().security_token.as_deref(),
        Some(token)
    );
}
