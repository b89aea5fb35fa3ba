//! Starts the real `cognate` binary on a free port with its own data directory, and gives
//! tests real AWS clients and a raw HTTP client pointed at it.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_sts::config::{Credentials, Region};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Options for one server process.
#[derive(Default, Clone)]
pub struct Options {
    /// Reuse this data directory (for restart tests); a fresh one otherwise.
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub account_id: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Server {
        let (temp, data_dir) = match &opts.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognate"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir);
        if let Some(url) = &opts.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(&opts.args);
        for (k, _) in std::env::vars() {
            if k.starts_with("COGNATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut banner = Vec::new();
            for line in lines.by_ref().map_while(Result::ok) {
                let done = line.starts_with("  root key:");
                banner.push(line);
                if done {
                    break;
                }
            }
            let _ = tx.send(banner);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let banner = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(lines) if !lines.is_empty() => lines,
            _ => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
                panic!("cognate did not start; its log:\n{log}");
            }
        };
        let url = banner
            .iter()
            .find_map(|l| l.strip_prefix("cognate listening on "))
            .unwrap_or_else(|| panic!("no address in banner: {banner:?}"))
            .to_owned();
        let account_id = banner
            .iter()
            .find_map(|l| l.trim().strip_prefix("account:"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        Server {
            child,
            url,
            account_id,
            data_dir,
            _temp: temp,
        }
    }

    /// The generated root credentials, read from `<data-dir>/root-credentials`.
    pub fn root_credentials(&self) -> (String, String) {
        read_credentials_file(&self.data_dir.join("root-credentials"))
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(&pid)
            .status()
            .unwrap();
        assert!(ok.success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cognate did not exit within 30 s of SIGTERM");
    }

    pub fn sts(
        &self,
        access_key_id: &str,
        secret: &str,
        token: Option<&str>,
    ) -> aws_sdk_sts::Client {
        self.sts_at(access_key_id, secret, token, None)
    }

    /// An STS client whose clock is `time` (to sign requests in the past or future).
    pub fn sts_at(
        &self,
        access_key_id: &str,
        secret: &str,
        token: Option<&str>,
        time: Option<std::time::SystemTime>,
    ) -> aws_sdk_sts::Client {
        let creds = Credentials::new(
            access_key_id,
            secret,
            token.map(str::to_owned),
            None,
            "test",
        );
        let http = http_client();
        let mut config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(creds)
            // No retries: a test must see the server's first answer (the SDK otherwise corrects
            // its clock from the response and retries a refused skewed request).
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .http_client(http);
        if let Some(t) = time {
            config = config.time_source(aws_smithy_async::time::StaticTimeSource::new(t));
        }
        aws_sdk_sts::Client::from_conf(config.build())
    }

    /// An IAM client with the given credentials.
    pub fn iam(
        &self,
        access_key_id: &str,
        secret: &str,
        token: Option<&str>,
    ) -> aws_sdk_iam::Client {
        let creds = aws_sdk_iam::config::Credentials::new(
            access_key_id,
            secret,
            token.map(str::to_owned),
            None,
            "test",
        );
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(creds)
            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
            .http_client(http_client())
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// An Organizations client with the root credentials.
    pub fn root_organizations(&self) -> aws_sdk_organizations::Client {
        let (id, secret) = self.root_credentials();
        let creds = aws_sdk_organizations::config::Credentials::new(id, secret, None, None, "test");
        let config = aws_sdk_organizations::Config::builder()
            .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
            .region(aws_sdk_organizations::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(creds)
            .retry_config(aws_sdk_organizations::config::retry::RetryConfig::disabled())
            .http_client(http_client())
            .build();
        aws_sdk_organizations::Client::from_conf(config)
    }

    /// An S3 client (path-style) with the given credentials.
    pub fn s3(&self, access_key_id: &str, secret: &str, token: Option<&str>) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            access_key_id,
            secret,
            token.map(str::to_owned),
            None,
            "test",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .force_path_style(true)
            .credentials_provider(creds)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .http_client(http_client())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn root_s3(&self) -> aws_sdk_s3::Client {
        let (id, secret) = self.root_credentials();
        self.s3(&id, &secret, None)
    }

    pub fn root_iam(&self) -> aws_sdk_iam::Client {
        let (id, secret) = self.root_credentials();
        self.iam(&id, &secret, None)
    }

    pub fn root_sts(&self) -> aws_sdk_sts::Client {
        let (id, secret) = self.root_credentials();
        self.sts(&id, &secret, None)
    }

    /// Sends raw bytes as one HTTP/1.1 exchange and reads the whole response.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        let addr = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "server hung on {:?}",
            String::from_utf8_lossy(request)
        );
        RawResponse::parse(&buf)
    }

    /// A well-formed request with the given method, path, headers and body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let host = self.url.trim_start_matches("http://");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes).await
    }
}

/// The SDKs' HTTP client, with rustls on ring (no aws-lc build needed).
fn http_client() -> aws_sdk_sts::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_credentials_file(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .map(|v| v.trim_start().trim_start_matches('=').trim().to_owned())
            })
            .unwrap()
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

/// An HTTP response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    fn parse(buf: &[u8]) -> RawResponse {
        let text = String::from_utf8_lossy(buf);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        RawResponse {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fresh PostgreSQL schema for one server, when `COGNATE_TEST_POSTGRES_URL` is set (in CI
/// it must be): the URL that selects it, and its name for [`drop_schema`].
pub async fn postgres_url() -> Option<(String, String)> {
    let url = match std::env::var("COGNATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => {
            panic!("COGNATE_TEST_POSTGRES_URL must be set in CI")
        }
        _ => {
            eprintln!("COGNATE_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
            return None;
        }
    };
    let schema = format!("e2e_{}", uuid_like());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url)
        .await
        .expect("PostgreSQL at COGNATE_TEST_POSTGRES_URL must be reachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some((
        format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    ))
}

/// Removes a schema made by [`postgres_url`].
pub async fn drop_schema(schema: &str) {
    let url = std::env::var("COGNATE_TEST_POSTGRES_URL").unwrap();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// Creates IAM users with an access key each; returns their (key id, secret) in order.
pub async fn users_with_keys(iam: &aws_sdk_iam::Client, names: &[&str]) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for name in names {
        iam.create_user().user_name(*name).send().await.unwrap();
        let key = iam
            .create_access_key()
            .user_name(*name)
            .send()
            .await
            .unwrap();
        let key = key.access_key().unwrap();
        keys.push((
            key.access_key_id().to_owned(),
            key.secret_access_key().to_owned(),
        ));
    }
    keys
}
