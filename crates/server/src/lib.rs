//! The Cognate server: one HTTP port for every AWS protocol. The edge ([`edge`]) routes each
//! request, authenticates it, hands typed input to a service crate and renders the result in
//! the protocol's shape. This crate holds no service logic and no SQL.

// The layers, bottom first, are `tests::LAYERS`: a module imports only the ones below it.
mod apply;
mod auth;
mod authz;
mod bootstrap;
mod config;
mod context;
mod edge;
mod federation;
mod flight;
mod jwks;
mod lambda;
mod listener;
mod pipeline;
mod push;
mod services;
mod state;
mod streams;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use bootstrap::StartError;
pub use config::{Config, LogFormat, MessageDelivery, redact_url};

use cognate_store::Store;

async fn open_store(config: &Config) -> Result<Store, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::Io {
        context: format!("creating data directory {}", config.data_dir.display()),
        source,
    })?;
    Ok(match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_sqlite(&config.data_dir.join("cognate.db")).await?,
    })
}

/// Adds a new session-token key (`cognate admin rotate-session-key`): new tokens are sealed
/// under it; tokens sealed under older keys stay valid until they expire. Running nodes pick
/// it up within a minute, at once on PostgreSQL. Returns the new key's id.
pub async fn rotate_session_key(config: &Config) -> Result<u32, StartError> {
    let rng = ring::rand::SystemRandom::new();
    let store = open_store(config).await?;
    let master = bootstrap::master_key(config, &store, &rng).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let id = bootstrap::add_session_key(&store, &master, &rng, now).await?;
    store.notify_change().await?;
    store.close().await;
    Ok(id)
}

/// Rotates a user pool's token signing key (`cognate admin rotate-user-pool-key`): new tokens
/// are signed with the new key; the old one stays in the pool's JWKS until its tokens have
/// expired. Returns the new key's id.
pub async fn rotate_user_pool_key(config: &Config, pool_id: &str) -> Result<String, StartError> {
    let rng = ring::rand::SystemRandom::new();
    let store = open_store(config).await?;
    let master = bootstrap::master_key(config, &store, &rng).await?;
    let kid = cognate_userpool::rotate_key(
        &store,
        &master,
        &rng,
        pool_id,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|e| StartError::Config(format!("{}: {}", e.code, e.message)))?;
    store.close().await;
    Ok(kid)
}

/// Where a started server can be reached, reported once it is ready.
#[derive(Debug, Clone)]
pub struct Ready {
    pub address: SocketAddr,
    pub public_url: String,
    pub account_id: String,
    pub root_access_key_id: String,
    pub root_credentials_file: Option<std::path::PathBuf>,
    /// With `--tls-dev`: the CA certificate clients must trust.
    pub tls_dev_ca: Option<std::path::PathBuf>,
}

/// Starts the server, calls `on_ready` once it accepts connections, and serves until
/// `shutdown` resolves; then finishes in-flight requests and closes the database.
pub async fn serve(
    config: Config,
    on_ready: impl FnOnce(&Ready),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let rng = ring::rand::SystemRandom::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = open_store(&config).await?;
    let master = bootstrap::master_key(&config, &store, &rng).await?;
    let account = bootstrap::default_account(&config, &store, &rng, now).await?;
    let root = bootstrap::root_key(&config, &store, &master, &account, &rng, now).await?;
    let ring = bootstrap::key_ring(&store, &master, &rng, now).await?;
    if config.dev {
        tracing::warn!(
            "DEV MODE: unknown access key ids are accepted as the root of account {account} WITHOUT a signature check; never expose this server"
        );
    }
    let blobs = services::s3::open_blobs(&config, &store).await?;
    let delivery = services::userpool::delivery(&config)?;
    let state = Arc::new(state::AppState::new(
        &config,
        store.clone(),
        account.clone(),
        master,
        ring,
        (blobs, delivery),
    ));
    if let Some(mut listener) = store.listen_changes().await? {
        // Other nodes' IAM writes arrive here: drop the caches so the next request sees them.
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listener.next().await {
                    tracing::warn!(error = %e, "change listener lost its connection; reconnecting");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                state.invalidate();
                if let Err(e) = state.reload_ring().await {
                    tracing::error!(error = %e, "could not reload the session key ring");
                }
            }
        });
    }
    if let Some(mut listener) = store.listen_sync().await? {
        // Other nodes' dataset changes reach the live channels open here.
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                match listener.next().await {
                    Ok(payload) => match serde_json::from_str::<push::Notice>(&payload) {
                        Ok(notice) if notice.node != state.hub.node => {
                            state.hub.publish(Arc::new(notice));
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "unreadable dataset change notice"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "sync listener lost its connection; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
    {
        // Keys added by `cognate admin rotate-session-key` (or another node) start sealing
        // here within a minute; tokens naming a new key reload the ring at once.
        let state = state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            every.tick().await;
            loop {
                every.tick().await;
                state.flush_key_use().await;
                if let Err(e) = state.reload_ring().await {
                    tracing::error!(error = %e, "could not reload the session key ring");
                }
            }
        });
    }
    let tls = tls::load(&config)?;
    let state_for_shutdown = state.clone();
    let app = axum::Router::new().fallback(edge::handle).with_state(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Io {
            context: format!("binding {}", config.listen),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| StartError::Io {
        context: "reading bound address".into(),
        source,
    })?;
    let _ = state_for_shutdown
        .public_url
        .set(config.public_url(address).trim_end_matches('/').to_owned());
    if let Some(path) = &config.init {
        let text = std::fs::read_to_string(path).map_err(|source| StartError::Io {
            context: format!("reading the --init file {}", path.display()),
            source,
        })?;
        let done = apply::apply(&state_for_shutdown, &path.display().to_string(), &text)
            .await
            .map_err(|e| StartError::Config(e.0))?;
        tracing::info!(file = %path.display(), entries = done.len(), "applied the --init file");
    }
    on_ready(&Ready {
        address,
        public_url: config.public_url(address),
        account_id: account.to_string(),
        root_access_key_id: root.access_key_id,
        root_credentials_file: root.credentials_file,
        tls_dev_ca: tls.as_ref().and_then(|t| t.dev_ca.clone()),
    });
    let served = listener::serve(listener, app, &config, tls.map(|t| t.acceptor), shutdown).await;
    state_for_shutdown.flush_key_use().await;
    store.close().await;
    served.map_err(|source| StartError::Io {
        context: "serving".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use std::path::Path;

    /// The modules, bottom first: each imports only modules before it here.
    const LAYERS: &[&str] = &[
        "config",
        "bootstrap",
        "tls",
        "flight",
        "jwks",
        "lambda",
        "push",
        "streams",
        "state",
        "listener",
        "auth",
        "context",
        "authz",
        "federation",
        "pipeline",
        "services",
        "apply",
        "edge",
    ];

    /// The modules `lib.rs` declares.
    fn declared(src: &Path) -> Vec<String> {
        std::fs::read_to_string(src.join("lib.rs"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
            .map(str::to_owned)
            .collect()
    }

    /// Every `.rs` file below `dir`, with its text.
    fn sources(dir: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }

    /// The top-level modules a file names as `crate::<module>`.
    fn imports(text: &str, modules: &[String]) -> Vec<String> {
        let mut found = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && !found.contains(&name) {
                found.push(name);
            }
        }
        found
    }

    /// ARCHITECTURE.md's invariant: a module imports only modules declared before it in
    /// `lib.rs` (no circle), and no service adapter imports another (what two services share
    /// lives in `federation`).
    #[test]
    fn modules_import_only_what_lies_below_them() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let order: Vec<String> = LAYERS.iter().map(|m| (*m).to_owned()).collect();
        let mut declared = declared(&src);
        declared.sort();
        let mut layered = order.clone();
        layered.sort();
        assert_eq!(declared, layered, "every module has its place in LAYERS");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut violations = Vec::new();
        for (path, text) in &files {
            let relative = path.strip_prefix(&src).unwrap();
            let top = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if top == "lib" {
                continue;
            }
            let rank = order.iter().position(|m| *m == top).unwrap();
            for import in imports(text, &order) {
                let theirs = order.iter().position(|m| *m == import).unwrap();
                if theirs >= rank && import != top {
                    violations.push(format!("{} imports crate::{import}", relative.display()));
                }
            }
            if top == "services" {
                let adapter = relative
                    .components()
                    .nth(1)
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned();
                for (i, _) in text.match_indices("services::") {
                    let other: String = text[i + "services::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let local = Path::new(&src).join("services").join(format!("{other}.rs"));
                    let local_dir = Path::new(&src).join("services").join(&other);
                    if other != adapter && (local.exists() || local_dir.exists()) {
                        violations.push(format!(
                            "{} imports the adapter services::{other}",
                            relative.display()
                        ));
                    }
                }
            }
        }
        assert!(violations.is_empty(), "layering broken: {violations:#?}");
    }
}
