//! The `cognate` command: `cognate serve` starts the server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use cognate_server::{Config, LogFormat, Ready, redact_url};

#[derive(Parser)]
#[command(
    name = "cognate",
    version,
    about = "A self-hosted identity broker and temporary-credential service speaking the AWS protocols"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve(ServeArgs),
    /// Administer a data directory or database (takes the same storage flags as serve).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Apply a setup file (the format of `serve --init`) to a running server, through its API.
    Apply(ApplyArgs),
}

#[derive(Args)]
struct ApplyArgs {
    /// The setup file (TOML)
    file: PathBuf,
    /// The server's URL, e.g. http://127.0.0.1:4566
    #[arg(long, env = "COGNATE_ENDPOINT")]
    endpoint: String,
    /// The default account's root credentials (AWS credentials-file format, such as
    /// <data-dir>/root-credentials) [default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY]
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// The server's region
    #[arg(long, env = "COGNATE_REGION", default_value = "us-east-1")]
    region: String,
    /// A CA certificate (PEM) to trust for an https endpoint, such as <data-dir>/tls/ca.pem
    #[arg(long)]
    ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Add a session-token key: new sessions are sealed under it, older ones stay valid.
    RotateSessionKey(ServeArgs),
    /// Give a user pool a new token signing key; the old one stays published until its tokens expire.
    RotateUserPoolKey {
        /// The user pool's id
        #[arg(long)]
        pool_id: String,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DeliveryArg {
    Outbox,
    Log,
    Webhook,
    Smtp,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

/// Every flag also reads `COGNATE_<NAME>`; flags and environment win over the `--config` file.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4566]
    #[arg(long, env = "COGNATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: SQLite database, master key, root credentials [default: ./cognate-data]
    #[arg(long, env = "COGNATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A postgres:// URL switches storage to PostgreSQL
    #[arg(long, env = "COGNATE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Base URL for issuer URLs and links [default: http://<listen>]
    #[arg(long, env = "COGNATE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Where S3 object bytes live; nodes sharing a database must share it [default: <data-dir>/objects]
    #[arg(long, env = "COGNATE_OBJECTS_DIR")]
    objects_dir: Option<PathBuf>,
    /// User pool codes and temporary passwords: JSON files in <data-dir>/outbox, log lines, or a JSON POST to --message-webhook-url [default: outbox]
    #[arg(long, env = "COGNATE_MESSAGE_DELIVERY")]
    message_delivery: Option<DeliveryArg>,
    /// The URL webhook delivery POSTs each message to
    #[arg(long, env = "COGNATE_MESSAGE_WEBHOOK_URL")]
    message_webhook_url: Option<String>,
    /// SMTP server for smtp delivery: smtp://[user:pass@]host[:port], smtps://…, ?tls=required for STARTTLS
    #[arg(long, env = "COGNATE_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender address for smtp delivery
    #[arg(long, env = "COGNATE_SMTP_FROM")]
    smtp_from: Option<String>,
    /// Identity pools: Google's JWKS [default: https://www.googleapis.com/oauth2/v3/certs]
    #[arg(long, env = "COGNATE_GOOGLE_JWKS_URL")]
    google_jwks_url: Option<String>,
    /// Identity pools: Apple's JWKS [default: https://appleid.apple.com/auth/keys]
    #[arg(long, env = "COGNATE_APPLE_JWKS_URL")]
    apple_jwks_url: Option<String>,
    /// Identity pools: Facebook's Graph API [default: https://graph.facebook.com]
    #[arg(long, env = "COGNATE_FACEBOOK_GRAPH_URL")]
    facebook_graph_url: Option<String>,
    /// Firebase Cloud Messaging's base URL, for SNS GCM applications [default: https://fcm.googleapis.com]
    #[arg(long, env = "COGNATE_FCM_URL")]
    fcm_url: Option<String>,
    /// Apple's push provider API, for SNS APNS applications [default: https://api.push.apple.com]
    #[arg(long, env = "COGNATE_APNS_URL")]
    apns_url: Option<String>,
    /// Apple's sandbox push provider API, for APNS_SANDBOX applications [default: https://api.sandbox.push.apple.com]
    #[arg(long, env = "COGNATE_APNS_SANDBOX_URL")]
    apns_sandbox_url: Option<String>,
    /// The NATS server (with JetStream) Cognito Streams publish to, e.g. nats://127.0.0.1:4222
    #[arg(long, env = "COGNATE_NATS_URL")]
    nats_url: Option<String>,
    /// Virtual-hosted–style S3: a request whose Host is <bucket>.<DOMAIN> addresses that bucket
    /// (with wildcard DNS for *.DOMAIN; `localhost` works for local clients that resolve
    /// *.localhost)
    #[arg(long, env = "COGNATE_S3_DOMAIN")]
    s3_domain: Option<String>,
    /// A Lambda Invoke API endpoint where Cognito Sync's Sync Trigger functions are invoked
    #[arg(long, env = "COGNATE_LAMBDA_ENDPOINT")]
    lambda_endpoint: Option<String>,
    /// The access key id Invoke calls are signed with [default: cognate]
    #[arg(long, env = "COGNATE_LAMBDA_ACCESS_KEY_ID")]
    lambda_access_key_id: Option<String>,
    /// The secret access key Invoke calls are signed with [default: cognate]
    #[arg(long, env = "COGNATE_LAMBDA_SECRET_ACCESS_KEY", hide_env_values = true)]
    lambda_secret_access_key: Option<String>,
    /// Identity pools: Login with Amazon's API [default: https://api.amazon.com]
    #[arg(long, env = "COGNATE_AMAZON_API_URL")]
    amazon_api_url: Option<String>,
    /// Region this server is [default: us-east-1]
    #[arg(long, env = "COGNATE_REGION")]
    region: Option<String>,
    /// The default account's 12-digit id (used when it is first created)
    #[arg(long, env = "COGNATE_ACCOUNT_ID")]
    account_id: Option<String>,
    /// TOML configuration file (keys are the flag names)
    #[arg(long, env = "COGNATE_CONFIG")]
    config: Option<PathBuf>,
    /// DEVELOPMENT ONLY: accept unknown access key ids as the default account's root, unsigned
    #[arg(long, env = "COGNATE_DEV")]
    dev: bool,
    /// Master key (32 bytes, base64 or hex) [default: <data-dir>/master.key, generated]
    #[arg(long, env = "COGNATE_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
    /// Root access key id to install instead of a generated one
    #[arg(long, env = "COGNATE_ROOT_ACCESS_KEY_ID")]
    root_access_key_id: Option<String>,
    /// Root secret access key to install with --root-access-key-id
    #[arg(long, env = "COGNATE_ROOT_SECRET_ACCESS_KEY", hide_env_values = true)]
    root_secret_access_key: Option<String>,
    /// Log line format [default: text]
    #[arg(long, env = "COGNATE_LOG_FORMAT")]
    log_format: Option<LogFormatArg>,
    /// Most connections served at once [default: 1024]
    #[arg(long, env = "COGNATE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most connections from one client address at once [default: 256]
    #[arg(long, env = "COGNATE_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Most Cognito Sync live channels (WebSockets) open at once [default: 10000]
    #[arg(long, env = "COGNATE_MAX_LIVE_CONNECTIONS")]
    max_live_connections: Option<usize>,
    /// Seconds allowed for a request's headers, and idle between requests [default: 30]
    #[arg(long, env = "COGNATE_HEADER_TIMEOUT_SECS")]
    header_timeout_secs: Option<u64>,
    /// Seconds a request body may stall before the request is refused [default: 60]
    #[arg(long, env = "COGNATE_BODY_TIMEOUT_SECS")]
    body_timeout_secs: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key)
    #[arg(long, env = "COGNATE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// A setup file (TOML) applied at start: accounts, IAM, user and identity pools, buckets
    #[arg(long, env = "COGNATE_INIT")]
    init: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, env = "COGNATE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a development certificate from a local CA generated into <data-dir>/tls
    #[arg(long, env = "COGNATE_TLS_DEV")]
    tls_dev: bool,
}

impl ServeArgs {
    /// Defaults, then the file, then flags and environment.
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<Config>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        macro_rules! set_opt {
            ($($field:ident),*) => { $( if self.$field.is_some() { c.$field = self.$field; } )* };
        }
        set!(
            listen,
            data_dir,
            region,
            max_connections,
            max_connections_per_ip,
            max_live_connections,
            header_timeout_secs,
            body_timeout_secs
        );
        set_opt!(
            database_url,
            public_url,
            objects_dir,
            account_id,
            master_key,
            root_access_key_id,
            root_secret_access_key
        );
        c.dev |= self.dev;
        c.tls_dev |= self.tls_dev;
        set_opt!(tls_cert, tls_key, init);
        if let Some(d) = self.message_delivery {
            c.message_delivery = match d {
                DeliveryArg::Outbox => cognate_server::MessageDelivery::Outbox,
                DeliveryArg::Log => cognate_server::MessageDelivery::Log,
                DeliveryArg::Webhook => cognate_server::MessageDelivery::Webhook,
                DeliveryArg::Smtp => cognate_server::MessageDelivery::Smtp,
            };
        }
        set_opt!(message_webhook_url, smtp_url, smtp_from);
        set_opt!(
            nats_url,
            fcm_url,
            apns_url,
            apns_sandbox_url,
            lambda_endpoint,
            s3_domain,
            lambda_access_key_id,
            lambda_secret_access_key
        );
        set_opt!(
            google_jwks_url,
            apple_jwks_url,
            facebook_graph_url,
            amazon_api_url
        );
        if let Some(f) = self.log_format {
            c.log_format = match f {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            };
        }
        if c.root_access_key_id.is_some() != c.root_secret_access_key.is_some() {
            anyhow::bail!(
                "COGNATE_ROOT_ACCESS_KEY_ID and COGNATE_ROOT_SECRET_ACCESS_KEY must be set together"
            );
        }
        Ok(c)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COGNATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing in-flight requests");
}

fn announce(config: &Config, ready: &Ready) {
    let storage = match &config.database_url {
        Some(url) => format!("PostgreSQL at {}", redact_url(url)),
        None => format!("SQLite at {}", config.data_dir.join("cognate.db").display()),
    };
    let scheme = if config.tls() { "https" } else { "http" };
    println!("cognate listening on {scheme}://{}", ready.address);
    println!("  public url: {}", ready.public_url);
    println!("  storage:    {storage}");
    if let Some(ca) = &ready.tls_dev_ca {
        // Printed before the root key line, which tells scripts the server is ready.
        println!(
            "  tls:        development CA {} (trust it: AWS_CA_BUNDLE={0} for the AWS CLI and boto3, NODE_EXTRA_CA_CERTS={0} for Node, or your system's trust store)",
            ca.display()
        );
    }
    println!(
        "  account:    {} (root: arn:aws:iam::{}:root)",
        ready.account_id, ready.account_id
    );
    match &ready.root_credentials_file {
        Some(path) => println!(
            "  root key:   {} (credentials in {})",
            ready.root_access_key_id,
            path.display()
        ),
        None => println!(
            "  root key:   {} (from configuration)",
            ready.root_access_key_id
        ),
    }
    if config.dev {
        println!("  !!! DEV MODE: unknown access keys are accepted WITHOUT signature checks !!!");
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            init_logging(config.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let shown = config.clone();
                cognate_server::serve(config, |ready| announce(&shown, ready), shutdown_signal())
                    .await
            })?;
            Ok(())
        }
        Command::Apply(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            for line in runtime.block_on(apply(&args))? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Admin(AdminCommand::RotateSessionKey(args)) => {
            let config = args.into_config()?;
            init_logging(config.log_format);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let id = runtime.block_on(cognate_server::rotate_session_key(&config))?;
            println!("session key {id} is now the active key");
            Ok(())
        }
        Command::Admin(AdminCommand::RotateUserPoolKey { pool_id, args }) => {
            let config = args.into_config()?;
            init_logging(config.log_format);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let kid = runtime.block_on(cognate_server::rotate_user_pool_key(&config, &pool_id))?;
            println!("user pool {pool_id} now signs with key {kid}");
            Ok(())
        }
    }
}

/// The access key id and secret of an AWS credentials file's `[default]` profile.
fn credentials_from_file(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut section, mut id, mut secret) = (String::new(), None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
        } else if let Some((k, v)) = line.split_once('=')
            && section == "default"
        {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => anyhow::bail!(
            "{} has no aws_access_key_id and aws_secret_access_key under [default]",
            path.display()
        ),
    }
}

/// `cognate apply`: posts the file to the server's `/_cognate/apply`, signed with SigV4 by the
/// default account's root, and returns what the server applied.
async fn apply(args: &ApplyArgs) -> anyhow::Result<Vec<String>> {
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let (key_id, secret) = match &args.credentials {
        Some(path) => credentials_from_file(path)?,
        None => (
            std::env::var("AWS_ACCESS_KEY_ID")
                .context("AWS_ACCESS_KEY_ID is not set (or give --credentials)")?,
            std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?,
        ),
    };
    let url: reqwest::Url = format!("{}/_cognate/apply", args.endpoint.trim_end_matches('/'))
        .parse()
        .context("--endpoint is not a URL")?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => anyhow::bail!("--endpoint has no host"),
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, host.parse()?);
    headers.insert(http::header::CONTENT_TYPE, "application/toml".parse()?);
    headers.insert(
        "x-amz-date",
        cognate_sigv4::format_amz_date(time::OffsetDateTime::now_utc()).parse()?,
    );
    headers.insert(
        "x-cognate-file",
        http::HeaderValue::from_str(&args.file.display().to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("the setup file")),
    );
    let method = http::Method::POST;
    let request = cognate_sigv4::Request {
        method: &method,
        path: url.path(),
        query: "",
        headers: &headers,
    };
    let authorization = cognate_sigv4::authorization(
        &request,
        &key_id,
        &secret,
        &args.region,
        "cognate",
        &cognate_sigv4::sha256_hex(&body),
    )
    .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    headers.insert(http::header::AUTHORIZATION, authorization.parse()?);
    let mut client = reqwest::Client::builder();
    if let Some(ca) = &args.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    headers.remove(http::header::HOST);
    let response = client
        .build()?
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .with_context(|| format!("sending the file to {}", args.endpoint))?;
    let status = response.status();
    let answer: serde_json::Value = response
        .json()
        .await
        .context("reading the server's answer")?;
    if !status.is_success() {
        let message = answer
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("the server refused the file");
        anyhow::bail!("{message}");
    }
    Ok(answer
        .get("applied")
        .and_then(serde_json::Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}
