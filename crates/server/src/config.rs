//! The server's configuration: one struct with defaults, the single source of truth that the
//! command line, the environment and the TOML file all fill in.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything `cognate serve` can be told.
/// Where user pool messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageDelivery {
    Outbox,
    Log,
    Webhook,
    Smtp,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where SQLite, the master key file and generated credentials live.
    pub data_dir: PathBuf,
    /// A `postgres://` URL switches storage to PostgreSQL; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Base URL used in issuer URLs and links; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Where S3 object bytes live; defaults to `<data_dir>/objects`. Several nodes on one
    /// PostgreSQL database must share it (a shared filesystem).
    pub objects_dir: Option<PathBuf>,
    /// How user pool codes and temporary passwords are delivered: `outbox` (one JSON file per
    /// message in `<data_dir>/outbox`) or `log`.
    pub message_delivery: MessageDelivery,
    /// Where `webhook` delivery POSTs each message (JSON).
    pub message_webhook_url: Option<String>,
    /// The SMTP server for `smtp` delivery (`smtp://[user:pass@]host[:port]`, `smtps://…`,
    /// `?tls=required` for STARTTLS) and the sender address.
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    /// Where identity pools verify logins of the well-known providers: Google's and Apple's
    /// JWKS, Facebook's Graph API and Login with Amazon's API (defaults: the real services).
    pub google_jwks_url: Option<String>,
    pub apple_jwks_url: Option<String>,
    pub facebook_graph_url: Option<String>,
    /// Where functions (Cognito Sync's Sync Trigger) are invoked: a Lambda Invoke API
    /// (`POST /2015-03-31/functions/<name>/invocations`, SigV4-signed), such as LocalStack's
    /// or the Lambda Runtime Interface Emulator's. None: no function is invoked.
    pub lambda_endpoint: Option<String>,
    /// Virtual-hosted–style S3: a request whose Host is `<bucket>.<s3_domain>` addresses that
    /// bucket (path style keeps working on every host).
    pub s3_domain: Option<String>,
    /// The NATS server (with JetStream) Cognito Streams publish to, e.g.
    /// `nats://127.0.0.1:4222`. None: streams cannot be enabled.
    pub nats_url: Option<String>,
    /// Firebase Cloud Messaging's base URL, for SNS `GCM` applications (default
    /// `https://fcm.googleapis.com`; a stand-in in tests).
    pub fcm_url: Option<String>,
    /// Apple's push provider API for `APNS` applications (default
    /// `https://api.push.apple.com`), and for `APNS_SANDBOX` ones (default
    /// `https://api.sandbox.push.apple.com`). A plain `http://` URL (a local stand-in) is
    /// spoken to in HTTP/2 with prior knowledge.
    pub apns_url: Option<String>,
    pub apns_sandbox_url: Option<String>,
    /// The keys Cognate signs its Invoke calls with (the endpoint's, if it checks them).
    pub lambda_access_key_id: Option<String>,
    pub lambda_secret_access_key: Option<String>,
    pub amazon_api_url: Option<String>,
    pub region: String,
    /// The default (management) account's id, used when it is first created.
    pub account_id: Option<String>,
    /// Accept unknown access key ids as the default account's root without a signature check.
    pub dev: bool,
    /// 32 bytes as base64 or hex; otherwise a generated `master.key` in `data_dir` is used.
    pub master_key: Option<String>,
    /// Root keys to install instead of generated ones.
    pub root_access_key_id: Option<String>,
    pub root_secret_access_key: Option<String>,
    pub log_format: LogFormat,
    /// Most connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Most connections from one client address at once; further ones are closed.
    pub max_connections_per_ip: usize,
    /// Most Cognito Sync live channels (WebSockets) open at once; further ones are refused.
    /// They are counted apart from `max_connections`, which counts requests' connections.
    pub max_live_connections: usize,
    /// Seconds a connection may take to send a request's headers, and may sit idle between
    /// requests, before it is closed.
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without sending anything before the request is refused
    /// (`RequestTimeout`).
    pub body_timeout_secs: u64,
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate from a local development CA, both generated once into
    /// `<data_dir>/tls` (the CA's private key is never kept).
    pub tls_dev: bool,
    /// A declarative setup file applied at start (`--init`; see `cognate apply`).
    pub init: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            data_dir: PathBuf::from("./cognate-data"),
            database_url: None,
            public_url: None,
            objects_dir: None,
            message_delivery: MessageDelivery::Outbox,
            message_webhook_url: None,
            smtp_url: None,
            smtp_from: None,
            google_jwks_url: None,
            apple_jwks_url: None,
            facebook_graph_url: None,
            lambda_endpoint: None,
            s3_domain: None,
            nats_url: None,
            fcm_url: None,
            apns_url: None,
            apns_sandbox_url: None,
            lambda_access_key_id: None,
            lambda_secret_access_key: None,
            amazon_api_url: None,
            region: "us-east-1".to_owned(),
            account_id: None,
            dev: false,
            master_key: None,
            root_access_key_id: None,
            root_secret_access_key: None,
            log_format: LogFormat::Text,
            max_connections: 1024,
            max_connections_per_ip: 256,
            max_live_connections: 10_000,
            header_timeout_secs: 30,
            body_timeout_secs: 60,
            tls_cert: None,
            tls_key: None,
            tls_dev: false,
            init: None,
        }
    }
}

impl Config {
    /// The public base URL, without a trailing slash: by default the bound address, with
    /// `https` when the server serves TLS.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if self.tls() => format!("https://{bound}"),
            None => format!("http://{bound}"),
        }
    }

    /// Whether the server serves HTTPS.
    pub fn tls(&self) -> bool {
        self.tls_dev || self.tls_cert.is_some()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| redact_url(u)),
            )
            .field("public_url", &self.public_url)
            .field("objects_dir", &self.objects_dir)
            .field("message_delivery", &self.message_delivery)
            .field("message_webhook_url", &self.message_webhook_url)
            .field("smtp_url", &self.smtp_url.as_ref().map(|u| redact_url(u)))
            .field("smtp_from", &self.smtp_from)
            .field("google_jwks_url", &self.google_jwks_url)
            .field("apple_jwks_url", &self.apple_jwks_url)
            .field("facebook_graph_url", &self.facebook_graph_url)
            .field("lambda_endpoint", &self.lambda_endpoint)
            .field("s3_domain", &self.s3_domain)
            .field("nats_url", &self.nats_url)
            .field("fcm_url", &self.fcm_url)
            .field("apns_url", &self.apns_url)
            .field("apns_sandbox_url", &self.apns_sandbox_url)
            .field("lambda_access_key_id", &self.lambda_access_key_id)
            .field(
                "lambda_secret_access_key",
                &redact(&self.lambda_secret_access_key),
            )
            .field("amazon_api_url", &self.amazon_api_url)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("dev", &self.dev)
            .field("master_key", &redact(&self.master_key))
            .field("root_access_key_id", &self.root_access_key_id)
            .field(
                "root_secret_access_key",
                &redact(&self.root_secret_access_key),
            )
            .field("log_format", &self.log_format)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("max_live_connections", &self.max_live_connections)
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("body_timeout_secs", &self.body_timeout_secs)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_dev", &self.tls_dev)
            .field("init", &self.init)
            .finish()
    }
}

/// A database URL with any password replaced, fit for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = url.get(scheme_end + 3..at).unwrap_or("");
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{user}:***{}",
                url.get(..scheme_end + 3).unwrap_or(""),
                url.get(at..).unwrap_or("")
            )
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config {
            master_key: Some("MASTERKEYTEXT".into()),
            root_secret_access_key: Some("ROOTSECRET".into()),
            database_url: Some("postgres://u:DBPASSWORD@h/db".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        for secret in ["MASTERKEYTEXT", "ROOTSECRET", "DBPASSWORD"] {
            assert!(!s.contains(secret), "{s}");
        }
    }

    #[test]
    fn toml_uses_flag_names() {
        let c: Config =
            toml::from_str("listen = \"0.0.0.0:9000\"\nregion = \"eu-west-1\"\ndev = true\n")
                .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.region, "eu-west-1");
        assert!(c.dev);
        assert!(toml::from_str::<Config>("no-such-option = 1").is_err());
    }
}

/// Where logins of the well-known providers are verified.
#[derive(Debug, Clone)]
pub struct LoginUrls {
    pub google_jwks: String,
    pub apple_jwks: String,
    pub facebook_graph: String,
    pub amazon_api: String,
}

impl LoginUrls {
    pub fn from_config(config: &Config) -> Self {
        let or = |v: &Option<String>, default: &str| {
            v.clone()
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        LoginUrls {
            google_jwks: or(
                &config.google_jwks_url,
                "https://www.googleapis.com/oauth2/v3/certs",
            ),
            apple_jwks: or(
                &config.apple_jwks_url,
                "https://appleid.apple.com/auth/keys",
            ),
            facebook_graph: or(&config.facebook_graph_url, "https://graph.facebook.com"),
            amazon_api: or(&config.amazon_api_url, "https://api.amazon.com"),
        }
    }
}
