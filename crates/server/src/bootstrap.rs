//! First start and every start: the master key, the default account and its root key, and
//! the session-token key ring. Every step is idempotent, so a restart reuses what exists and
//! several nodes starting together against one database agree.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use cognate_credentials::{
    AccountId, KeyRing, LONG_TERM_KEY_PREFIX, MasterKey, TEMPORARY_KEY_PREFIX,
    access_key_secret_context, generate_key_id, generate_secret_access_key,
};
use cognate_store::{AccessKeyRow, AccountRow, SessionKeyRow, Store, StoreError};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::Config;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("random number generator failed")]
    Rng,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}

const MASTER_KEY_FILE: &str = "master.key";
const ROOT_CREDENTIALS_FILE: &str = "root-credentials";
const MASTER_KEY_CHECK: &str = "master_key_check";
const DEFAULT_ACCOUNT: &str = "default_account_id";
const ROOT_KEY: &str = "root_access_key_id";

/// Writes a new file readable only by its owner; fails if it exists.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), StartError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(contents)
        .map_err(io(format!("writing {}", path.display())))?;
    file.sync_all()
        .map_err(io(format!("syncing {}", path.display())))?;
    Ok(())
}

/// The master key: from the configuration, else `<data-dir>/master.key`, generated on first
/// start. Checked against the database so a wrong key fails loudly instead of at first use.
pub async fn master_key(
    config: &Config,
    store: &Store,
    rng: &dyn SecureRandom,
) -> Result<MasterKey, StartError> {
    let key = match &config.master_key {
        Some(text) => MasterKey::from_text(text)
            .map_err(|e| StartError::Config(format!("master key: {e}")))?,
        None => {
            let path = config.data_dir.join(MASTER_KEY_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let text = Zeroizing::new(text);
                    MasterKey::from_text(&text)
                        .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let (key, text) = MasterKey::generate(rng).map_err(|_| StartError::Rng)?;
                    write_private(&path, text.as_bytes())?;
                    tracing::info!(path = %path.display(), "generated a new master key");
                    key
                }
                Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
            }
        }
    };
    let probe = key
        .seal(MASTER_KEY_CHECK, b"cognate", rng)
        .map_err(|_| StartError::Rng)?;
    let stored = store
        .setting_or_insert(MASTER_KEY_CHECK, &hex::encode(&probe))
        .await?;
    let opens = hex::decode(&stored)
        .ok()
        .is_some_and(|sealed| key.open(MASTER_KEY_CHECK, &sealed).is_ok());
    if !opens {
        return Err(StartError::Config(
            "the master key does not match the one this database was created with (set COGNATE_MASTER_KEY to the original key)".into(),
        ));
    }
    Ok(key)
}

/// The default account: created on first start (with `--account-id`, or a random id).
pub async fn default_account(
    config: &Config,
    store: &Store,
    rng: &dyn SecureRandom,
    now: i64,
) -> Result<AccountId, StartError> {
    let wanted = match &config.account_id {
        Some(id) => Some(
            AccountId::parse(id).map_err(|e| StartError::Config(format!("--account-id: {e}")))?,
        ),
        None => None,
    };
    let id = match store.setting(DEFAULT_ACCOUNT).await? {
        Some(existing) => existing,
        None => {
            let candidate = match &wanted {
                Some(id) => id.clone(),
                None => AccountId::generate(rng).map_err(|_| StartError::Rng)?,
            };
            store
                .setting_or_insert(DEFAULT_ACCOUNT, candidate.as_str())
                .await?
        }
    };
    let id = AccountId::parse(&id)
        .map_err(|_| StartError::Config("stored default account id is not 12 digits".into()))?;
    if let Some(wanted) = wanted
        && wanted != id
    {
        return Err(StartError::Config(format!(
            "--account-id {wanted} differs from this data's default account {id}"
        )));
    }
    let row = AccountRow {
        account_id: id.to_string(),
        name: "default".into(),
        email: None,
        created_at: now,
    };
    match store.create_account(&row).await {
        Ok(()) | Err(StoreError::Conflict) => Ok(id),
        Err(e) => Err(e.into()),
    }
}

/// The root access key id in force, and where its credentials file is (if generated).
#[derive(Debug)]
pub struct RootKey {
    pub access_key_id: String,
    pub credentials_file: Option<PathBuf>,
}

/// Installs the configured root key, or generates one on first start and writes it to
/// `<data-dir>/root-credentials` in the AWS CLI's credentials-file format.
pub async fn root_key(
    config: &Config,
    store: &Store,
    master: &MasterKey,
    account: &AccountId,
    rng: &dyn SecureRandom,
    now: i64,
) -> Result<RootKey, StartError> {
    if let (Some(id), Some(secret)) = (&config.root_access_key_id, &config.root_secret_access_key) {
        if id.is_empty()
            || id.starts_with(TEMPORARY_KEY_PREFIX)
            || !id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(StartError::Config(
                "the root access key id must be alphanumeric and must not start with ASIA".into(),
            ));
        }
        if secret.is_empty() {
            return Err(StartError::Config(
                "the root secret access key must not be empty".into(),
            ));
        }
        let sealed = master
            .seal(&access_key_secret_context(id), secret.as_bytes(), rng)
            .map_err(|_| StartError::Rng)?;
        match store.access_key(id).await? {
            Some(existing)
                if existing.account_id != account.as_str() || existing.user_name.is_some() =>
            {
                return Err(StartError::Config(format!(
                    "access key {id} already belongs to another principal"
                )));
            }
            Some(_) => store.replace_access_key_secret(id, &sealed).await?,
            None => {
                store
                    .create_access_key(&root_row(id, account, sealed, now))
                    .await?
            }
        }
        return Ok(RootKey {
            access_key_id: id.clone(),
            credentials_file: None,
        });
    }
    let path = config.data_dir.join(ROOT_CREDENTIALS_FILE);
    if let Some(id) = store.setting(ROOT_KEY).await? {
        if !path.exists()
            && let Some(row) = store.access_key(&id).await?
        {
            // The file was deleted: the sealed secret lets us write it again.
            let secret = master
                .open(&access_key_secret_context(&id), &row.secret_sealed)
                .map_err(|_| {
                    StartError::Config(
                        "the stored root secret does not open under the master key".into(),
                    )
                })?;
            write_credentials_file(&path, &id, &String::from_utf8_lossy(&secret))?;
        }
        return Ok(RootKey {
            access_key_id: id,
            credentials_file: Some(path),
        });
    }
    let id = generate_key_id(LONG_TERM_KEY_PREFIX, account, rng).map_err(|_| StartError::Rng)?;
    let secret = Zeroizing::new(generate_secret_access_key(rng).map_err(|_| StartError::Rng)?);
    let sealed = master
        .seal(&access_key_secret_context(&id), secret.as_bytes(), rng)
        .map_err(|_| StartError::Rng)?;
    store
        .create_access_key(&root_row(&id, account, sealed, now))
        .await?;
    let winner = store.setting_or_insert(ROOT_KEY, &id).await?;
    if winner == id {
        if path.exists() {
            std::fs::remove_file(&path).map_err(io(format!("replacing {}", path.display())))?;
        }
        write_credentials_file(&path, &id, &secret)?;
    }
    Ok(RootKey {
        access_key_id: winner,
        credentials_file: Some(path),
    })
}

fn root_row(id: &str, account: &AccountId, secret_sealed: Vec<u8>, now: i64) -> AccessKeyRow {
    AccessKeyRow {
        access_key_id: id.to_owned(),
        account_id: account.to_string(),
        user_name: None,
        secret_sealed,
        status: "Active".into(),
        created_at: now,
    }
}

fn write_credentials_file(path: &Path, id: &str, secret: &str) -> Result<(), StartError> {
    let text = Zeroizing::new(format!(
        "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    write_private(path, text.as_bytes())
}

fn session_key_context(key_id: i64) -> String {
    format!("session-key:{key_id}")
}

/// Adds a new session-token key; tokens sealed under older keys stay valid until they expire.
/// Returns the new key's id.
pub async fn add_session_key(
    store: &Store,
    master: &MasterKey,
    rng: &dyn SecureRandom,
    now: i64,
) -> Result<u32, StartError> {
    for _ in 0..3 {
        let next = store
            .session_keys()
            .await?
            .iter()
            .map(|k| k.key_id)
            .max()
            .unwrap_or(0)
            + 1;
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(bytes.as_mut_slice())
            .map_err(|_| StartError::Rng)?;
        let sealed = master
            .seal(&session_key_context(next), bytes.as_slice(), rng)
            .map_err(|_| StartError::Rng)?;
        match store
            .add_session_key(&SessionKeyRow {
                key_id: next,
                key_sealed: sealed,
                created_at: now,
            })
            .await
        {
            Ok(()) => {
                return u32::try_from(next)
                    .map_err(|_| StartError::Config("session key id out of range".into()));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StartError::Config(
        "could not add a session key: concurrent rotations".into(),
    ))
}

/// Loads the session-token key ring, creating its first key on first start.
pub async fn key_ring(
    store: &Store,
    master: &MasterKey,
    rng: &dyn SecureRandom,
    now: i64,
) -> Result<KeyRing, StartError> {
    if store.session_keys().await?.is_empty() {
        add_session_key(store, master, rng, now).await?;
    }
    load_key_ring(store, master).await
}

/// Opens every stored session key; the newest seals new tokens.
pub async fn load_key_ring(store: &Store, master: &MasterKey) -> Result<KeyRing, StartError> {
    let rows = store.session_keys().await?;
    let mut opened = Vec::with_capacity(rows.len());
    for row in &rows {
        let id = u32::try_from(row.key_id)
            .map_err(|_| StartError::Config("session key id out of range".into()))?;
        let key = master
            .open(&session_key_context(row.key_id), &row.key_sealed)
            .map_err(|_| {
                StartError::Config(format!(
                    "session key {id} does not open under the master key"
                ))
            })?;
        opened.push((id, key));
    }
    let active = opened.iter().map(|(id, _)| *id).max().unwrap_or(1);
    KeyRing::new(opened.iter().map(|(id, k)| (*id, k.as_slice())), active)
        .map_err(|e| StartError::Config(format!("session key ring: {e}")))
}
