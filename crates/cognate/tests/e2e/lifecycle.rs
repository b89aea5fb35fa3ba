//! Start, readiness, durability across `kill -9`, graceful shutdown.

use crate::harness::{Options, Server, drop_schema, postgres_url};

#[tokio::test]
async fn health_answers_once_ready() {
    let server = Server::start();
    let res = server.request("GET", "/_cognate/health", &[], b"").await;
    assert_eq!(res.status, 200);
    let body: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn generated_secrets_are_private_files() {
    let server = Server::start();
    use std::os::unix::fs::PermissionsExt as _;
    // A write first, so SQLite's WAL and shared-memory files exist too.
    server
        .root_iam()
        .create_user()
        .user_name("u")
        .send()
        .await
        .unwrap();
    for file in [
        "root-credentials",
        "master.key",
        "cognate.db",
        "cognate.db-wal",
        "cognate.db-shm",
    ] {
        let mode = std::fs::metadata(server.data_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    // The root secret is encrypted at rest: it appears nowhere in the database files.
    let (_, secret) = server.root_credentials();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        // The object directory holds object bytes (none here); the database files matter.
        if path.file_name().unwrap() == "root-credentials" || path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret in {}",
            path.display()
        );
    }
    let log = std::fs::read_to_string(server.data_dir.with_extension("log")).unwrap();
    assert!(!log.contains(&secret), "secret in the log");
}

async fn survives_kill_9(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().join("data")),
        database_url,
        ..Default::default()
    };
    let mut server = Server::start_with(opts.clone());
    let account = server.account_id.clone();
    let (id, secret) = server.root_credentials();
    let session = server.root_sts().get_session_token().send().await.unwrap();
    let creds = session.credentials().unwrap().clone();
    // An acknowledged IAM write: the response came back, so it must survive the crash.
    server
        .root_iam()
        .create_user()
        .user_name("durable")
        .send()
        .await
        .unwrap();
    server.kill9();

    let server = Server::start_with(opts);
    assert_eq!(server.account_id, account);
    assert_eq!(server.root_credentials(), (id, secret));
    let who = server
        .root_sts()
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(account.as_str()));
    let user = server
        .root_iam()
        .get_user()
        .user_name("durable")
        .send()
        .await
        .unwrap();
    assert_eq!(user.user().unwrap().user_name(), "durable");
    // A session issued before the crash still verifies: the key ring survived too.
    let who = server
        .sts(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token()),
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(account.as_str()));
}

#[tokio::test]
async fn data_survives_kill_9_on_sqlite() {
    survives_kill_9(None).await;
}

#[tokio::test]
async fn data_survives_kill_9_on_postgres() {
    let Some((url, schema)) = postgres_url().await else {
        return;
    };
    survives_kill_9(Some(url)).await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_deleted_credentials_file_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    };
    let mut server = Server::start_with(opts.clone());
    let creds = server.root_credentials();
    server.kill9();
    std::fs::remove_file(dir.path().join("data/root-credentials")).unwrap();
    let server = Server::start_with(opts);
    assert_eq!(server.root_credentials(), creds);
}

#[tokio::test]
async fn a_wrong_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with(Options {
        data_dir: Some(data.clone()),
        ..Default::default()
    });
    server.kill9();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cognate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("COGNATE_MASTER_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("master key does not match"), "{stderr}");
    assert!(
        !stderr.contains(&"ab".repeat(32)),
        "the key itself must not be printed"
    );
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_without_secrets() {
    let server = Server::start_with(Options {
        args: vec!["--log-format".into(), "json".into()],
        ..Default::default()
    });
    let creds = server.root_sts().get_session_token().send().await.unwrap();
    let secret = creds.credentials().unwrap().secret_access_key().to_owned();
    let token = creds.credentials().unwrap().session_token().to_owned();
    server
        .root_sts()
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let log = std::fs::read_to_string(server.data_dir.with_extension("log")).unwrap();
    let requests: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["target"] == "cognate::request")
        .collect();
    assert_eq!(requests.len(), 2, "{log}");
    assert_eq!(requests[0]["operation"], "GetSessionToken");
    assert_eq!(requests[1]["operation"], "GetCallerIdentity");
    assert_eq!(requests[1]["status"], 200);
    assert_eq!(
        requests[1]["principal"],
        format!("arn:aws:iam::{}:root", server.account_id)
    );
    assert!(
        requests[1]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    assert!(requests[1]["latency_us"].is_u64());
    let (_, root_secret) = server.root_credentials();
    for secret in [secret.as_str(), token.as_str(), root_secret.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = Server::start();
    server
        .root_sts()
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// The id of the key a session token is sealed under (its header: version, key id).
fn token_key_id(token: &str) -> u32 {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap();
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
}

#[tokio::test]
async fn session_key_rotation_keeps_issued_tokens_valid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = Options {
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let mut server = Server::start_with(opts.clone());
    let before = server.root_sts().get_session_token().send().await.unwrap();
    let before = before.credentials().unwrap().clone();
    assert_eq!(token_key_id(before.session_token()), 1);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cognate"))
        .args(["admin", "rotate-session-key", "--data-dir"])
        .arg(&data)
        .env_remove("COGNATE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "session key 2 is now the active key"
    );

    // The running server still accepts the old token.
    server
        .sts(
            before.access_key_id(),
            before.secret_access_key(),
            Some(before.session_token()),
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    // A second node on the same data starts with the new key; the first node meets a token
    // sealed under a key it has never seen and reloads its ring to accept it.
    let second = Server::start_with(opts.clone());
    let fresh = second.root_sts().get_session_token().send().await.unwrap();
    let fresh = fresh.credentials().unwrap().clone();
    assert_eq!(token_key_id(fresh.session_token()), 2);
    server
        .sts(
            fresh.access_key_id(),
            fresh.secret_access_key(),
            Some(fresh.session_token()),
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    drop(second);
    server.kill9();
    let server = Server::start_with(opts);
    let after = server.root_sts().get_session_token().send().await.unwrap();
    let after = after.credentials().unwrap().clone();
    assert_eq!(
        token_key_id(after.session_token()),
        2,
        "new sessions use the new key"
    );
    for c in [&before, &after] {
        server
            .sts(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token()),
            )
            .get_caller_identity()
            .send()
            .await
            .unwrap();
    }
}
