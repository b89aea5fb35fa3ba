//! Every protocol's error shape, for the inputs a careless or hostile client sends.

use crate::harness::Server;

const FORM: (&str, &str) = (
    "content-type",
    "application/x-www-form-urlencoded; charset=utf-8",
);

#[tokio::test]
async fn unknown_json_target_is_unknown_operation_exception() {
    let server = Server::start();
    for target in [
        "AWSCognitoIdentityProviderService.NoSuchOperation",
        "DynamoDB_20120810.GetItem",
        "garbage",
    ] {
        let res = server
            .request(
                "POST",
                "/",
                &[
                    ("x-amz-target", target),
                    ("content-type", "application/x-amz-json-1.1"),
                ],
                b"{}",
            )
            .await;
        assert_eq!(res.status, 400, "{target}: {res:?}");
        let body: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        assert_eq!(body["__type"], "UnknownOperationException", "{target}");
        // A message a person can act on: which operation was not understood.
        let operation = target.rsplit('.').next().unwrap();
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains(operation)),
            "{target}: {body}"
        );
        assert_eq!(
            res.header("x-amzn-errortype"),
            Some("UnknownOperationException")
        );
        assert!(res.header("x-amzn-requestid").is_some());
    }
    // The request log line says what the client was told, not only the status.
    let log = std::fs::read_to_string(server.data_dir.with_extension("log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("cognate::request") && l.contains("NoSuchOperation"))
        .unwrap_or_else(|| panic!("no request line in {log}"));
    assert!(line.contains("UnknownOperationException"), "{line}");
    assert!(line.contains("error_message"), "{line}");
}

#[tokio::test]
async fn unknown_query_action_is_invalid_action() {
    let server = Server::start();
    let res = server
        .request(
            "POST",
            "/",
            &[FORM],
            b"Action=NoSuchAction&Version=2011-06-15",
        )
        .await;
    assert_eq!(res.status, 400, "{res:?}");
    assert!(
        res.body
            .contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
        "{}",
        res.body
    );
    assert!(
        res.body.contains("<Code>InvalidAction</Code>"),
        "{}",
        res.body
    );
    assert!(res.body.contains("<Type>Sender</Type>"), "{}", res.body);
    let id = res.header("x-amzn-requestid").unwrap();
    assert!(
        res.body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{}",
        res.body
    );

    // IAM's version routes to IAM's namespace.
    let res = server
        .request(
            "POST",
            "/",
            &[FORM],
            b"Action=NoSuchAction&Version=2010-05-08",
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(
        res.body
            .contains("https://iam.amazonaws.com/doc/2010-05-08/"),
        "{}",
        res.body
    );

    let res = server
        .request("POST", "/", &[FORM], b"Version=2011-06-15")
        .await;
    assert_eq!(res.status, 400);
    assert!(
        res.body.contains("<Code>MissingAction</Code>"),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn unsigned_calls_to_signed_operations_are_refused() {
    let server = Server::start();
    let res = server
        .request(
            "POST",
            "/",
            &[FORM],
            b"Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
    assert_eq!(res.status, 403, "{res:?}");
    assert!(
        res.body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn malformed_signatures_are_incomplete_signature() {
    let server = Server::start();
    let res = server
        .request(
            "POST",
            "/",
            &[
                FORM,
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-east-1/sts/aws4_request",
                ),
            ],
            b"Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
    assert_eq!(res.status, 400, "{res:?}");
    assert!(
        res.body.contains("<Code>IncompleteSignature</Code>"),
        "{}",
        res.body
    );
    let res = server
        .request(
            "POST",
            "/",
            &[FORM, ("authorization", "Bearer abc")],
            b"Action=GetCallerIdentity",
        )
        .await;
    assert_eq!(res.status, 400, "{res:?}");
    assert!(
        res.body.contains("<Code>IncompleteSignature</Code>"),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn garbage_bodies_get_4xx_in_the_protocol_shape() {
    let server = Server::start();
    let res = server
        .request(
            "POST",
            "/",
            &[FORM],
            b"Action=GetCallerIdentity&\xff\xfe\x00",
        )
        .await;
    assert_eq!(res.status, 400, "{res:?}");
    assert!(
        res.body.contains("<Code>MalformedQueryString</Code>"),
        "{}",
        res.body
    );

    let res = server
        .request(
            "POST",
            "/",
            &[
                ("x-amz-target", "AWSCognitoIdentityService.GetId"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            b"\x00\x01{{{not json",
        )
        .await;
    assert!((400..500).contains(&res.status), "{res:?}");
    assert!(res.body.contains("__type"), "{}", res.body);
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_buffering() {
    let server = Server::start();
    // Declared too large: refused from the header alone, without sending the body.
    let host = server.url.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 50000000\r\nconnection: close\r\n\r\nAction=GetCallerIdentity"
    );
    let res = server.raw(head.as_bytes()).await;
    assert_eq!(res.status, 413, "{res:?}");
    assert!(res.body.contains("RequestEntityTooLarge"), "{}", res.body);
    // Chunked without a length: cut off at the limit.
    let mut chunked = format!("POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n").into_bytes();
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let res = server.raw(&chunked).await;
    assert_eq!(res.status, 413, "{res:?}");
}

#[tokio::test]
async fn s3_requests_get_s3_errors() {
    let server = Server::start();
    let res = server.request("GET", "/some-bucket/key", &[], b"").await;
    assert_eq!(res.header("content-type"), Some("application/xml"));
    assert!(res.body.contains("<Error><Code>"), "{}", res.body);
    assert!(res.header("x-amz-request-id").is_some());
    // A signature for S3 from a key nobody issued.
    let res = server
        .request("GET", "/b/k", &[
            ("x-amz-date", "20250101T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"),
        ], b"")
        .await;
    assert_eq!(res.status, 403, "{res:?}");
    assert!(
        res.body.contains("<Code>RequestTimeTooSkewed</Code>")
            || res.body.contains("<Code>InvalidAccessKeyId</Code>"),
        "{}",
        res.body
    );
}

/// A bounded stream of random requests: none may produce a server error, a hang or a crash.
#[tokio::test]
async fn random_requests_never_cause_server_errors() {
    let server = Server::start();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];
    let headers: [(&str, &str); 6] = [
        (
            "x-amz-target",
            "AWSCognitoIdentityProviderService.InitiateAuth",
        ),
        FORM,
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x/y/z, SignedHeaders=host, Signature=zz",
        ),
        ("x-amz-date", "not-a-date"),
        ("x-amz-security-token", "%%%"),
        ("content-type", "application/x-amz-json-1.1"),
    ];
    for i in 0..300 {
        let method = methods[(next() % methods.len() as u64) as usize];
        let picked: Vec<(&str, &str)> = headers
            .iter()
            .filter(|_| next() % 3 == 0)
            .copied()
            .collect();
        let len = (next() % 200) as usize;
        let body: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
        let path = match next() % 4 {
            0 => "/".to_owned(),
            1 => "/identitypools/x%3Ay/identities".to_owned(),
            2 => format!("/?Action=GetCallerIdentity&X-Amz-Signature={}", next()),
            _ => format!("/bucket-{i}/key%2F{}", next()),
        };
        let res = server.request(method, &path, &picked, &body).await;
        assert!(res.status >= 200, "{method} {path}: no response");
        assert!(res.status < 500, "{method} {path} {picked:?}: {res:?}");
    }
    // And the server is still healthy.
    assert_eq!(
        server
            .request("GET", "/_cognate/health", &[], b"")
            .await
            .status,
        200
    );
}

/// Pre-authentication work is bounded: a deeply nested document from an anonymous client is
/// refused as malformed (it once cost memory quadratic in its depth and aborted the server).
#[tokio::test]
async fn deeply_nested_documents_are_malformed_not_fatal() {
    let server = Server::start();
    server
        .root_s3()
        .create_bucket()
        .bucket("nest")
        .send()
        .await
        .unwrap();
    let mut body = String::from("<Delete>");
    while body.len() < 180 * 1024 {
        body.push_str("<Object>");
    }
    let res = server
        .request(
            "POST",
            "/nest?delete",
            &[("content-type", "application/xml")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 400, "{res:?}");
    assert!(
        res.body.contains("<Code>MalformedXML</Code>"),
        "{}",
        res.body
    );
    let health = server.request("GET", "/_cognate/health", &[], b"").await;
    assert_eq!(health.status, 200);
}

/// Half-sent requests cannot hold the server: headers must arrive within the header timeout,
/// a body must keep moving, and the connection limit keeps the rest waiting, not failing.
#[tokio::test]
async fn slow_clients_are_cut_off_and_others_still_served() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Server::start_with(crate::harness::Options {
        args: [
            "--max-connections",
            "4",
            "--header-timeout-secs",
            "1",
            "--body-timeout-secs",
            "1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        ..Default::default()
    });
    let addr = server.url.trim_start_matches("http://").to_owned();
    // More half-sent requests than the server has connection slots.
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /_cognate/health HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    // Each is closed once its header time is up; none is answered.
    for mut s in stalled {
        let mut buf = Vec::new();
        let closed =
            tokio::time::timeout(std::time::Duration::from_secs(60), s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "a half-sent request kept its connection");
    }
    let health = server.request("GET", "/_cognate/health", &[], b"").await;
    assert_eq!(health.status, 200);

    // A body that stops moving ends its request with RequestTimeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nAction=Get",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.ends_with(b">") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "a stalled body held its request");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("RequestTimeout"), "{text}");
}
