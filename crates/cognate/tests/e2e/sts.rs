//! STS with aws-sdk-sts: identity, temporary credentials, and attacks on both.

use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::ProvideErrorMetadata as _;

use crate::harness::Server;

/// The AWS error code and HTTP status of a failed SDK call.
fn failure<E: aws_sdk_sts::error::ProvideErrorMetadata + std::fmt::Debug>(
    err: aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
) -> (String, u16, String) {
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = err.code().unwrap_or_default().to_owned();
    let message = err.message().unwrap_or_default().to_owned();
    (code, status, message)
}

#[tokio::test]
async fn root_gets_its_caller_identity() {
    let server = Server::start();
    let out = server
        .root_sts()
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(out.account(), Some(server.account_id.as_str()));
    assert_eq!(out.account().unwrap().len(), 12);
    assert_eq!(
        out.arn(),
        Some(format!("arn:aws:iam::{}:root", server.account_id).as_str())
    );
    assert_eq!(out.user_id(), Some(server.account_id.as_str()));
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let server = Server::start();
    let (id, secret) = server.root_credentials();
    let mut wrong = secret.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    let err = server
        .sts(&id, std::str::from_utf8(&wrong).unwrap(), None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    let (code, status, _) = failure(err);
    assert_eq!((code.as_str(), status), ("SignatureDoesNotMatch", 403));
}

#[tokio::test]
async fn unknown_access_key_is_invalid_client_token_id() {
    let server = Server::start();
    let err = server
        .sts(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    let (code, status, _) = failure(err);
    assert_eq!((code.as_str(), status), ("InvalidClientTokenId", 403));
}

#[tokio::test]
async fn requests_signed_outside_fifteen_minutes_are_refused() {
    let server = Server::start();
    let (id, secret) = server.root_credentials();
    for offset in [-20i64, 20] {
        let at = if offset < 0 {
            SystemTime::now() - Duration::from_secs(20 * 60)
        } else {
            SystemTime::now() + Duration::from_secs(20 * 60)
        };
        let err = server
            .sts_at(&id, &secret, None, Some(at))
            .get_caller_identity()
            .send()
            .await
            .unwrap_err();
        let (code, status, message) = failure(err);
        assert_eq!(
            (code.as_str(), status),
            ("SignatureDoesNotMatch", 403),
            "offset {offset} min"
        );
        assert!(message.starts_with("Signature"), "{message}");
    }
    // Ten minutes off is within the allowed skew.
    let at = SystemTime::now() - Duration::from_secs(10 * 60);
    server
        .sts_at(&id, &secret, None, Some(at))
        .get_caller_identity()
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn session_credentials_authenticate_without_the_database_and_resist_tampering() {
    let server = Server::start();
    let out = server
        .root_sts()
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let creds = out.credentials().unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_eq!(creds.secret_access_key().len(), 40);
    let (id, secret, token) = (
        creds.access_key_id(),
        creds.secret_access_key(),
        creds.session_token(),
    );

    let session = server.sts(id, secret, Some(token));
    let who = session.get_caller_identity().send().await.unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{}:root", server.account_id).as_str())
    );

    // A session cannot mint another session.
    let (code, status, _) = failure(session.get_session_token().send().await.unwrap_err());
    assert_eq!((code.as_str(), status), ("AccessDenied", 403));

    // Flip one character anywhere in the token: refused.
    for i in [0, token.len() / 2, token.len() - 1] {
        let mut t = token.as_bytes().to_vec();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(t).unwrap();
        let (code, status, _) = failure(
            server
                .sts(id, secret, Some(&tampered))
                .get_caller_identity()
                .send()
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (code.as_str(), status),
            ("InvalidClientTokenId", 403),
            "tampered at {i}"
        );
    }
    // The right token with another key id, the right key id without its token, a wrong secret.
    let other = server.root_sts().get_session_token().send().await.unwrap();
    let other = other.credentials().unwrap();
    let (code, _, _) = failure(
        server
            .sts(other.access_key_id(), secret, Some(token))
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidClientTokenId");
    let (code, _, _) = failure(
        server
            .sts(id, secret, None)
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidClientTokenId");
    let (code, _, _) = failure(
        server
            .sts(id, other.secret_access_key(), Some(token))
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "SignatureDoesNotMatch");
    // A long-term key presented with a session token.
    let (root_id, root_secret) = server.root_credentials();
    let (code, _, _) = failure(
        server
            .sts(&root_id, &root_secret, Some(token))
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidClientTokenId");
}

#[tokio::test]
async fn session_duration_is_validated() {
    let server = Server::start();
    let err = server
        .root_sts()
        .get_session_token()
        .duration_seconds(899)
        .send()
        .await
        .unwrap_err();
    let (code, status, _) = failure(err);
    assert_eq!((code.as_str(), status), ("ValidationError", 400));
    let out = server.root_sts().get_session_token().send().await.unwrap();
    let expires = out.credentials().unwrap().expiration().secs();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Root sessions default to (and are capped at) one hour.
    assert!(
        (expires - now - 3600).abs() < 120,
        "expires {expires}, now {now}"
    );
}

#[tokio::test]
async fn dev_mode_accepts_unknown_keys_but_still_checks_known_ones() {
    let server = Server::start_with(crate::harness::Options {
        args: vec!["--dev".into()],
        ..Default::default()
    });
    let who = server
        .sts("testing", "testing", None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{}:root", server.account_id).as_str())
    );
    let (id, _) = server.root_credentials();
    let (code, _, _) = failure(
        server
            .sts(&id, "wrong-secret-wrong-secret-wrong-secret-00", None)
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "SignatureDoesNotMatch");
    let (code, _, _) = failure(
        server
            .sts("ASIAIOSFODNN7EXAMPLE", "x", Some("forged"))
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidClientTokenId");
}

#[tokio::test]
async fn configured_root_keys_replace_generated_ones() {
    let env = |secret: &str| {
        vec![
            (
                "COGNATE_ROOT_ACCESS_KEY_ID".to_owned(),
                "AKIACOGNATETEST00001".to_owned(),
            ),
            (
                "COGNATE_ROOT_SECRET_ACCESS_KEY".to_owned(),
                secret.to_owned(),
            ),
            ("COGNATE_ACCOUNT_ID".to_owned(), "111122223333".to_owned()),
        ]
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::harness::Options {
        data_dir: Some(dir.path().join("data")),
        env: env("first-secret"),
        ..Default::default()
    };
    let mut server = Server::start_with(opts.clone());
    assert_eq!(server.account_id, "111122223333");
    let who = server
        .sts("AKIACOGNATETEST00001", "first-secret", None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.arn(), Some("arn:aws:iam::111122223333:root"));
    assert!(!dir.path().join("data/root-credentials").exists());
    server.kill9();
    let server = Server::start_with(crate::harness::Options {
        env: env("second-secret"),
        ..opts
    });
    server
        .sts("AKIACOGNATETEST00001", "second-secret", None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let (code, _, _) = failure(
        server
            .sts("AKIACOGNATETEST00001", "first-secret", None)
            .get_caller_identity()
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "SignatureDoesNotMatch");
}

/// AssumeRole with aws-sdk-sts (roles created with aws-sdk-iam): a trust policy that names a
/// user admits that user alone, with its ExternalId, and the session is the role's.
#[tokio::test]
async fn assume_role_with_the_rust_sdk() {
    let server = Server::start();
    let iam = server.root_iam();
    let account = server.account_id.clone();
    let keys = crate::harness::users_with_keys(&iam, &["alice", "bob"]).await;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:user/alice"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"ext-1"}}}}}}]}}"#
    );
    let role = iam
        .create_role()
        .role_name("Deployer")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let role_arn = role.role().unwrap().arn().to_owned();

    let alice = server.sts(&keys[0].0, &keys[0].1, None);
    let out = alice
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("deploy-1")
        .external_id("ext-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.assumed_role_user().unwrap().arn(),
        format!("arn:aws:sts::{account}:assumed-role/Deployer/deploy-1")
    );
    let c = out.credentials().unwrap();
    let who = server
        .sts(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:sts::{account}:assumed-role/Deployer/deploy-1").as_str())
    );
    assert!(
        who.user_id().unwrap().starts_with("AROA") && who.user_id().unwrap().ends_with(":deploy-1")
    );

    let (code, status, _) = failure(
        alice
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("no-ext")
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!((code.as_str(), status), ("AccessDenied", 403));
    let bob = server.sts(&keys[1].0, &keys[1].1, None);
    let (code, _, _) = failure(
        bob.assume_role()
            .role_arn(&role_arn)
            .role_session_name("bob")
            .external_id("ext-1")
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDenied");
}

/// The seed's cross-account scenario with the Rust SDKs: account B (made with Organizations)
/// has `LogReader`, trusting account A; in A, the group `ops` may assume it. A member of `ops`
/// gets a LogReader session in B that can do nothing but what the role allows; a user outside
/// `ops` is refused.
#[tokio::test]
async fn cross_account_log_reader_with_the_rust_sdk() {
    let server = Server::start();
    let a = server.account_id.clone();
    let orgs = server.root_organizations();
    orgs.create_organization().send().await.unwrap();
    let status = orgs
        .create_account()
        .email("logs@example.com")
        .account_name("logs")
        .send()
        .await
        .unwrap();
    let b = status
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_owned();

    // A's administrator (the root may not assume roles) administers B through
    // OrganizationAccountAccessRole.
    let admin_key = crate::harness::users_with_keys(&server.root_iam(), &["admin"])
        .await
        .remove(0);
    server
        .root_iam()
        .attach_user_policy()
        .user_name("admin")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    let admin = server
        .sts(&admin_key.0, &admin_key.1, None)
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{b}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("setup")
        .send()
        .await
        .unwrap();
    let c = admin.credentials().unwrap();
    let iam_b = server.iam(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{a}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let role_arn = iam_b
        .create_role()
        .role_name("LogReader")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_owned();
    iam_b
        .put_role_policy()
        .role_name("LogReader")
        .policy_name("read-logs")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::b-logs","arn:aws:s3:::b-logs/*"]}]}"#)
        .send()
        .await
        .unwrap();

    let iam_a = server.root_iam();
    iam_a.create_group().group_name("ops").send().await.unwrap();
    let assume = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{role_arn}"}}]}}"#
    );
    iam_a
        .put_group_policy()
        .group_name("ops")
        .policy_name("assume")
        .policy_document(assume)
        .send()
        .await
        .unwrap();
    let keys = crate::harness::users_with_keys(&iam_a, &["alice", "bob"]).await;
    iam_a
        .add_user_to_group()
        .group_name("ops")
        .user_name("alice")
        .send()
        .await
        .unwrap();

    let alice = server.sts(&keys[0].0, &keys[0].1, None);
    let out = alice
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("alice")
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    let who = server
        .sts(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(b.as_str()));
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:sts::{b}:assumed-role/LogReader/alice").as_str())
    );
    // The role reads logs and nothing else in B.
    let session_iam = server.iam(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let err = session_iam.list_users().send().await.unwrap_err();
    assert_eq!(
        aws_sdk_iam::error::ProvideErrorMetadata::code(&err),
        Some("AccessDenied")
    );

    let bob = server.sts(&keys[1].0, &keys[1].1, None);
    let (code, status, _) = failure(
        bob.assume_role()
            .role_arn(&role_arn)
            .role_session_name("bob")
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!((code.as_str(), status), ("AccessDenied", 403));
}
