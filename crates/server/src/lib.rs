//! The Cognate server: one HTTP port for every AWS protocol. The edge ([`edge`]) routes each
//! request, authenticates it, hands typed input to a service crate and renders the result in
//! the protocol's shape. This crate holds no service logic and no SQL.

mod auth;
mod authz;
mod bootstrap;
mod config;
mod edge;
mod iam;
mod identitypool;
mod jwks;
mod listener;
mod organizations;
mod s3;
mod state;
mod sts;
mod userpool;

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
    let blobs = s3::open_blobs(&config, &store).await?;
    let delivery = userpool::delivery(&config)?;
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
    on_ready(&Ready {
        address,
        public_url: config.public_url(address),
        account_id: account.to_string(),
        root_access_key_id: root.access_key_id,
        root_credentials_file: root.credentials_file,
    });
    let served = listener::serve(listener, app, &config, shutdown).await;
    state_for_shutdown.flush_key_use().await;
    store.close().await;
    served.map_err(|source| StartError::Io {
        context: "serving".into(),
        source,
    })
}
