//! Storage: SQLite (the embedded default) and PostgreSQL behind one interface.
//!
//! Both backends run the same SQL through sqlx's `Any` driver (`$n` placeholders, portable
//! types); each has its own migration set. The store holds rows, not meaning: secrets arrive
//! already sealed, and nothing here knows about HTTP or AWS semantics.

mod group;
mod iam;
mod identity;
mod migrations;
mod organizations;
mod s3;
mod sns;
mod sync;
mod userpool;

pub use iam::{EntityRow, InlinePolicyRow, PolicyVersionRow};
pub use identity::{IdentityKeyRow, IdentityPoolRow, IdentityRow, Login};
pub use organizations::{CreateAccountRequestRow, MemberRow, OrganizationRow};
pub use s3::{
    BucketDeletion, BucketRow, ObjectRow, PartRow, Removed, RemovedVersion, UploadRow, Version,
    VersionEntry, Written,
};
pub use sns::{ApplicationRow, EndpointRow};
pub use sync::{DatasetRow, DatasetWrite, IdentityUsageRow, PoolUsageRow, SyncRecordRow};
pub use userpool::{
    ClientRow, GroupRow, PoolRow, RefreshTokenRow, SigningKeyRow, UserConflict, UserRow,
};

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _, Row as _};

/// Makes the database file readable by its owner only (creating it empty if absent), and its
/// WAL and shared-memory files too: SQLite gives those the database file's mode.
fn private_files(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let private = std::fs::Permissions::from_mode(0o600);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .and_then(|_| std::fs::set_permissions(path, private.clone()))
        .map_err(StoreError::File)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::set_permissions(&side, private.clone()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::File(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key already exists.
    #[error("already exists")]
    Conflict,
    /// The URL names no supported database.
    #[error("unsupported database url (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database file: {0}")]
    File(std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A subscription to change notifications from every node.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeListener")
    }
}

/// Other nodes' Cognito Sync change notices (PostgreSQL's LISTEN).
pub struct SyncListener(sqlx::postgres::PgListener);

impl std::fmt::Debug for SyncListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncListener")
    }
}

impl SyncListener {
    /// Waits for the next notice and returns its payload. After an error the listener
    /// reconnects on the next call (notices sent meanwhile are lost).
    pub async fn next(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_owned())
    }
}

impl ChangeListener {
    /// Waits for the next change. After an error the listener reconnects on the next call;
    /// callers should treat an error as "something may have changed".
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub account_id: String,
    pub name: String,
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A long-term access key. `user_name` is `None` for the account's root user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRow {
    pub access_key_id: String,
    pub account_id: String,
    pub user_name: Option<String>,
    pub secret_sealed: Vec<u8>,
    pub status: String,
    pub created_at: i64,
}

pub(crate) fn access_key_row(r: &sqlx::any::AnyRow) -> Result<AccessKeyRow> {
    Ok(AccessKeyRow {
        access_key_id: r.try_get("access_key_id")?,
        account_id: r.try_get("account_id")?,
        user_name: r.try_get("user_name")?,
        secret_sealed: r.try_get("secret_sealed")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
    })
}

/// One key of the session-token key ring, sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeyRow {
    pub key_id: i64,
    pub key_sealed: Vec<u8>,
    pub created_at: i64,
}

/// The database behind every service.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, for the LISTEN connection that carries change notifications.
    url: String,
    /// The writes committed in groups (each kind's committer starts on first use).
    writers: std::sync::Arc<Writers>,
}

/// The group committers, one per kind of write that arrives often and together.
#[derive(Default)]
struct Writers {
    /// Cognito Sync dataset writes (UpdateRecords).
    datasets: group::GroupCommit<sync::DatasetJob>,
    /// New sign-ins' refresh-token rows.
    refresh_tokens: group::GroupCommit<userpool::RefreshInsert>,
}

/// The notification channel that tells every node an IAM change happened.
const CHANGES_CHANNEL: &str = "cognate_changes";

/// The notification channel that tells every node a Cognito Sync dataset changed.
const SYNC_CHANNEL: &str = "cognate_sync";

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        private_files(path)?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::open(&url).await
    }

    /// Opens a database by URL (`sqlite://…` or `postgres://…`) and applies migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                pool_options
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL for concurrent readers; FULL sync so an acknowledged commit is
                            // on disk before the client hears about it.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                pool_options
                    .max_connections(16)
                    .connect_with(options)
                    .await?
            }
        };
        migrations::migrator(backend).run(&pool).await?;
        Ok(Store {
            pool,
            backend,
            url: url.to_owned(),
            writers: std::sync::Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells every node sharing this database that cached authorization data is stale.
    /// SQLite serves one node, which has already dropped its own caches: nothing to send.
    pub async fn notify_change(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANGES_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Subscribes to other nodes' change notifications (PostgreSQL only; `None` on SQLite).
    pub async fn listen_changes(&self) -> Result<Option<ChangeListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeListener(listener)))
    }

    /// Tells every node (PostgreSQL only; a no-op on SQLite) that a dataset changed; `payload`
    /// is at most 8,000 bytes (PostgreSQL's limit on a notice).
    pub async fn notify_sync(&self, payload: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(SYNC_CHANNEL)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Subscribes to other nodes' dataset change notices (PostgreSQL only; `None` on SQLite).
    pub async fn listen_sync(&self) -> Result<Option<SyncListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(SYNC_CHANNEL).await?;
        Ok(Some(SyncListener(listener)))
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A server-wide setting.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores a setting unless it exists, and returns the value now stored, so concurrent
    /// first starts of several nodes agree on one value.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(name)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub async fn create_account(&self, account: &AccountRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (account_id, name, email, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&account.account_id)
        .bind(&account.name)
        .bind(&account.email)
        .bind(account.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn account(&self, account_id: &str) -> Result<Option<AccountRow>> {
        let row = sqlx::query(
            "SELECT account_id, name, email, created_at FROM accounts WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AccountRow {
                account_id: r.try_get("account_id")?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub async fn create_access_key(&self, key: &AccessKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, account_id, user_name, secret_sealed, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.access_key_id)
        .bind(&key.account_id)
        .bind(&key.user_name)
        .bind(&key.secret_sealed)
        .bind(&key.status)
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRow>> {
        let row = sqlx::query(
            "SELECT access_key_id, account_id, user_name, secret_sealed, status, created_at \
             FROM access_keys WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(access_key_row).transpose()
    }

    /// Replaces the sealed secret of an existing access key.
    pub async fn replace_access_key_secret(
        &self,
        access_key_id: &str,
        secret_sealed: &[u8],
    ) -> Result<()> {
        sqlx::query("UPDATE access_keys SET secret_sealed = $1 WHERE access_key_id = $2")
            .bind(secret_sealed)
            .bind(access_key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a key to the session-token key ring. The newest key (highest id) seals new tokens.
    pub async fn add_session_key(&self, key: &SessionKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO session_keys (key_id, key_sealed, created_at) VALUES ($1, $2, $3)",
        )
        .bind(key.key_id)
        .bind(&key.key_sealed)
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every session-token key, oldest first.
    pub async fn session_keys(&self) -> Result<Vec<SessionKeyRow>> {
        let rows =
            sqlx::query("SELECT key_id, key_sealed, created_at FROM session_keys ORDER BY key_id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SessionKeyRow {
                    key_id: r.try_get("key_id")?,
                    key_sealed: r.try_get("key_sealed")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
