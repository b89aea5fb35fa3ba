//! What every request handler shares: storage, keys, and the caches that keep the
//! authentication path free of database reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use cognate_credentials::{AccountId, KeyRing, MasterKey, Principal, SessionClaims};
use cognate_iam::PrincipalPolicies;
use cognate_protocol::ApiError;
use cognate_sigv4::{Scope, SigningKey};
use cognate_store::Store;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

/// A long-term access key, resolved and opened.
pub struct CachedKey {
    pub principal: Principal,
    pub active: bool,
    secret: Zeroizing<String>,
    /// The signing key derived for the last scope used: a client signs many requests a day.
    signing: Mutex<Option<(Scope, SigningKey)>>,
    /// When this node last noted a use of the key (unix seconds), to note at most one a second.
    last_touch: std::sync::atomic::AtomicI64,
}

impl CachedKey {
    pub fn new(principal: Principal, active: bool, secret: Zeroizing<String>) -> Self {
        CachedKey {
            principal,
            active,
            secret,
            signing: Mutex::new(None),
            last_touch: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Verifies a SigV2 POST form's signature of its policy under this key's secret.
    pub fn verify_v2_policy(
        &self,
        policy: &str,
        presented: &cognate_sigv4::Presented,
    ) -> Result<(), cognate_sigv4::Error> {
        cognate_sigv4::v2::verify_policy(policy, presented, &self.secret)
    }

    /// Verifies a SigV2 signature (S3) under this key's secret.
    pub fn verify_v2(
        &self,
        request: &cognate_sigv4::Request<'_>,
        presented: &cognate_sigv4::Presented,
        now: time::OffsetDateTime,
    ) -> Result<(), cognate_sigv4::Error> {
        cognate_sigv4::v2::verify(request, presented, &self.secret, now)
    }

    /// The signing key for `scope`, derived once per scope.
    pub fn signing_key(&self, scope: &Scope) -> SigningKey {
        if let Ok(guard) = self.signing.lock()
            && let Some((cached_scope, key)) = guard.as_ref()
            && cached_scope == scope
        {
            return key.clone();
        }
        let key = SigningKey::derive(&self.secret, scope);
        if let Ok(mut guard) = self.signing.lock() {
            *guard = Some((scope.clone(), key.clone()));
        }
        key
    }
}

/// Server-wide state.
pub struct AppState {
    pub store: Store,
    pub region: String,
    /// `--s3-domain`, lower-cased: `<bucket>.<domain>` hosts address buckets.
    pub s3_domain: Option<String>,
    pub default_account: AccountId,
    pub dev: bool,
    /// How long a request body may send nothing (`--body-timeout-secs`).
    pub body_timeout: std::time::Duration,
    pub master: MasterKey,
    /// The session-token key ring; replaced whole when a key is added.
    ring: RwLock<Arc<KeyRing>>,
    /// When the ring was last reloaded because a token named a key this node did not have.
    ring_reloaded: std::sync::Mutex<Option<std::time::Instant>>,
    pub rng: SystemRandom,
    /// Identity providers' signing keys.
    pub jwks: crate::jwks::Jwks,
    /// Facebook and Login with Amazon introspections running now, by (provider, token):
    /// callers presenting one token at once share one question to the provider.
    pub introspections:
        crate::flight::Flights<(String, String), Result<(String, String), ApiError>>,
    keys: Cache<String, Arc<CachedKey>>,
    /// Parsed policies per principal ARN, so authorization costs evaluation only.
    policies: Cache<String, Arc<PrincipalPolicies>>,
    /// Parsed session policies per session (temporary access key id).
    sessions: RwLock<HashMap<String, Arc<Vec<cognate_policy::Policy>>>>,
    /// Access key uses not yet written to the store: key id → (unix seconds, service).
    key_use: Mutex<HashMap<String, (i64, String)>>,
    /// Roles by ARN (trust policy parsed), for AssumeRole*.
    pub roles: Cache<String, Arc<cognate_iam::RoleRecord>>,
    /// OpenID Connect providers by (account, issuer name).
    pub oidc_providers: Cache<(String, String), Arc<cognate_iam::OidcProvider>>,
    /// Web identity tokens already verified, by SHA-256 of the token and the role's account
    /// (a client reuses its ID token until it expires; its signature is checked once).
    pub verified_tokens: Cache<([u8; 32], String), Arc<cognate_sts::web_identity::Verified>>,
    /// S3 object files.
    pub blobs: cognate_s3::Blobs,
    /// User pools' opened token signing keys.
    pub userpool_keys: cognate_userpool::KeyCache,
    /// How user pool messages are delivered.
    pub delivery: cognate_userpool::Delivery,
    /// Identity pools' opened keys and parsed pools.
    pub identity_cache: cognate_identitypool::IdentityCache,
    /// Where logins of the well-known providers are verified.
    pub login_urls: crate::config::LoginUrls,
    /// This server's public base URL, known once the listener is bound (user pool issuers).
    pub public_url: std::sync::OnceLock<String>,
    /// S3 buckets by name, with their policies parsed.
    pub buckets: Cache<String, Arc<Bucket>>,
    /// The organization (id) each account belongs to, for `aws:PrincipalOrgID` and
    /// `aws:ResourceOrgID`.
    pub organizations: Cache<String, Option<String>>,
    /// S3 object rows by (bucket, key), kept only when this node is the only writer
    /// (SQLite); every object write on this node forgets its key.
    pub objects: Option<Cache<(String, String), Arc<cognate_store::ObjectRow>>>,
    /// Cognito Sync live channels open on this node.
    pub hub: Arc<crate::push::Hub>,
    /// Where functions (Sync Triggers) are invoked.
    pub functions: crate::lambda::Functions,
    /// Cognito Streams' NATS JetStream.
    pub streams: Arc<crate::streams::Streams>,
    /// Mobile push delivery (SNS platform endpoints).
    pub push: Arc<cognate_sns::Push>,
}

/// A bucket as authorization needs it: its row and its parsed policy.
pub struct Bucket {
    pub row: cognate_store::BucketRow,
    pub policy: Option<cognate_policy::Policy>,
    pub cors: Option<cognate_s3::cors::CorsConfiguration>,
}

/// A bounded map that starts over when full and empties on every IAM change.
///
/// A reader that misses takes a [`Ticket`] before it reads the store, and its insert is
/// dropped if the cache was cleared or had a key removed since: otherwise a read from before
/// a change, finishing after the change emptied the cache, would put the old value back and
/// keep it until the next change.
pub struct Cache<K, V> {
    map: RwLock<HashMap<K, V>>,
    /// Raised (under the write lock) by every clear and removal.
    generation: std::sync::atomic::AtomicU64,
}

/// When a reader started reading what it will insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new() -> Self {
        Cache {
            map: RwLock::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.map.read().ok()?.get(key).cloned()
    }

    /// Taken before reading the store for a value to insert.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn remove(&self, key: &K) {
        if let Ok(mut map) = self.map.write() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            map.remove(key);
        }
    }

    /// Caches `value`, read after `ticket` was taken, unless the cache changed since.
    pub fn insert(&self, ticket: Ticket, key: K, value: V) {
        if let Ok(mut map) = self.map.write() {
            if self.ticket() != ticket {
                return;
            }
            if map.len() >= SESSION_CACHE_MAX {
                map.clear();
            }
            map.insert(key, value);
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            map.clear();
        }
    }
}

/// Sessions whose parsed policies are kept; past this the cache starts over.
const SESSION_CACHE_MAX: usize = 10_000;

/// Looking up an access key failed inside the server (not "unknown key").
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("storage: {0}")]
    Store(#[from] cognate_store::StoreError),
    #[error("stored secret for {0} does not open under the master key")]
    Sealed(String),
}

impl AppState {
    /// The state for `config`'s server: `region`, `dev` and message delivery come from it.
    pub fn new(
        config: &crate::config::Config,
        store: Store,
        default_account: AccountId,
        master: MasterKey,
        ring: KeyRing,
        (blobs, delivery): (cognate_s3::Blobs, cognate_userpool::Delivery),
    ) -> Self {
        AppState {
            functions: crate::lambda::Functions::new(config),
            streams: Arc::new(crate::streams::Streams::new(config)),
            push: Arc::new(cognate_sns::Push::new(&{
                let mut providers = cognate_sns::Providers::default();
                if let Some(url) = &config.fcm_url {
                    providers.fcm_url = url.clone();
                }
                if let Some(url) = &config.apns_url {
                    providers.apns_url = url.clone();
                }
                if let Some(url) = &config.apns_sandbox_url {
                    providers.apns_sandbox_url = url.clone();
                }
                providers
            })),
            hub: Arc::new(crate::push::Hub::new(
                config.max_live_connections,
                uuid::Uuid::new_v4().to_string(),
            )),
            region: config.region.clone(),
            s3_domain: config.s3_domain.as_ref().map(|d| d.to_ascii_lowercase()),
            default_account,
            dev: config.dev,
            body_timeout: std::time::Duration::from_secs(config.body_timeout_secs.max(1)),
            delivery,
            master,
            ring: RwLock::new(Arc::new(ring)),
            ring_reloaded: std::sync::Mutex::new(None),
            rng: SystemRandom::new(),
            jwks: crate::jwks::Jwks::new(),
            introspections: crate::flight::Flights::default(),
            keys: Cache::new(),
            policies: Cache::new(),
            sessions: RwLock::new(HashMap::new()),
            key_use: Mutex::new(HashMap::new()),
            roles: Cache::new(),
            oidc_providers: Cache::new(),
            verified_tokens: Cache::new(),
            objects: (store.backend() == cognate_store::Backend::Sqlite).then(Cache::new),
            store,
            blobs,
            public_url: std::sync::OnceLock::new(),
            userpool_keys: cognate_userpool::KeyCache::default(),
            identity_cache: cognate_identitypool::IdentityCache::default(),
            login_urls: crate::config::LoginUrls::from_config(config),
            buckets: Cache::new(),
            organizations: Cache::new(),
        }
    }

    /// The public base URL (set at start, before any request is served).
    pub fn public_url(&self) -> &str {
        self.public_url.get().map_or("", String::as_str)
    }

    /// The user pool service for one request: administrative calls name the caller's
    /// `account`; public ones (`None`) reach any pool.
    pub fn user_pools<'a>(
        &'a self,
        now: time::OffsetDateTime,
        account: Option<&'a str>,
    ) -> cognate_userpool::UserPools<'a> {
        cognate_userpool::UserPools {
            store: &self.store,
            master: &self.master,
            rng: &self.rng,
            keys: &self.userpool_keys,
            region: &self.region,
            issuer_base: self.public_url(),
            delivery: &self.delivery,
            now,
            account,
        }
    }

    /// The identity pool service for one request, as [`AppState::user_pools`].
    pub fn identity_pools<'a>(
        &'a self,
        now: time::OffsetDateTime,
        account: Option<&'a str>,
    ) -> cognate_identitypool::IdentityPools<'a> {
        let url = self.public_url();
        cognate_identitypool::IdentityPools {
            store: &self.store,
            master: &self.master,
            rng: &self.rng,
            cache: &self.identity_cache,
            region: &self.region,
            issuer_host: url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or(url),
            now,
            account,
        }
    }

    /// A session's parsed policies (validated when the session was created).
    pub fn session_policies(
        &self,
        claims: &SessionClaims,
    ) -> Result<Arc<Vec<cognate_policy::Policy>>, ApiError> {
        if let Ok(cache) = self.sessions.read()
            && let Some(p) = cache.get(&claims.access_key_id)
        {
            return Ok(p.clone());
        }
        let parsed = claims
            .session_policies
            .iter()
            .map(|doc| cognate_policy::Policy::parse(doc, cognate_policy::PolicyUse::Identity))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::internal())?;
        let parsed = Arc::new(parsed);
        if let Ok(mut cache) = self.sessions.write() {
            if cache.len() >= SESSION_CACHE_MAX {
                cache.clear();
            }
            cache.insert(claims.access_key_id.clone(), parsed.clone());
        }
        Ok(parsed)
    }

    /// Notes that a long-term key signed a request (kept in memory, at most once a second per
    /// key, and written out by [`AppState::flush_key_use`]).
    pub fn note_key_use(&self, key: &CachedKey, access_key_id: &str, now: i64, service: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        if now - key.last_touch.load(Relaxed) < 1 {
            return;
        }
        key.last_touch.store(now, Relaxed);
        if let Ok(mut pending) = self.key_use.lock() {
            pending.insert(access_key_id.to_owned(), (now, service.to_owned()));
        }
    }

    /// Writes noted key uses to the store (GetAccessKeyLastUsed reads them there).
    pub async fn flush_key_use(&self) {
        let pending = match self.key_use.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        for (id, (at, service)) in pending {
            if let Err(e) = self
                .store
                .record_key_use(&id, at, &service, &self.region)
                .await
            {
                tracing::error!(error = %e, "could not record an access key's last use");
            }
        }
    }

    /// The key ring in force.
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the key ring from the store (after another node or `cognate admin
    /// rotate-session-key` added a key).
    pub async fn reload_ring(&self) -> Result<(), crate::bootstrap::StartError> {
        let ring = crate::bootstrap::load_key_ring(&self.store, &self.master).await?;
        if let Ok(mut current) = self.ring.write() {
            *current = Arc::new(ring);
        }
        Ok(())
    }

    /// Reloads the ring for a token sealed under a key this node has not seen, at most once a
    /// second (forged key ids must not turn into a database load).
    pub async fn reload_ring_for_unknown_key(&self) -> bool {
        let now = std::time::Instant::now();
        if let Ok(mut last) = self.ring_reloaded.lock() {
            if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1)) {
                return false;
            }
            *last = Some(now);
        }
        match self.reload_ring().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not reload the session key ring");
                false
            }
        }
    }

    /// Forgets every cached key and policy: called after any IAM write, so the change is
    /// visible to the next request.
    pub fn invalidate(&self) {
        self.keys.clear();
        self.policies.clear();
        self.roles.clear();
        self.oidc_providers.clear();
        self.verified_tokens.clear();
        self.buckets.clear();
        self.organizations.clear();
        self.userpool_keys.clear();
        self.identity_cache.clear();
        if let Some(objects) = &self.objects {
            objects.clear();
        }
    }

    /// A dataset changed: tell the live channels here, and the other nodes.
    pub async fn pushed(&self, notice: crate::push::Notice) {
        let notice = Arc::new(notice);
        self.hub.publish(notice.clone());
        match serde_json::to_string(notice.as_ref()) {
            Ok(payload) => {
                if let Err(e) = self.store.notify_sync(&payload).await {
                    tracing::error!(error = %e, "could not tell other nodes of a dataset change");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode a dataset change"),
        }
    }

    /// After a write that changes authorization data: drop this node's caches and tell the
    /// other nodes to drop theirs.
    pub async fn changed(&self) {
        self.invalidate();
        if let Err(e) = self.store.notify_change().await {
            tracing::error!(error = %e, "could not notify other nodes of a change");
        }
    }

    /// The parsed policies that apply to a principal, cached until the next IAM write.
    pub async fn policies_of(
        &self,
        principal: &Principal,
    ) -> Result<Arc<PrincipalPolicies>, cognate_iam::IamError> {
        // A role's sessions share the role's policies; the unique id keeps a deleted
        // entity's credentials from sharing those of a new one of the same name.
        let arn = match principal {
            Principal::AssumedRole { role_id, .. } => {
                format!("{}#{role_id}", principal.role_arn().unwrap_or_default())
            }
            Principal::User { id, .. } => format!("{}#{id}", principal.arn()),
            Principal::Root { .. } => principal.arn(),
        };
        if let Some(p) = self.policies.get(&arn) {
            return Ok(p);
        }
        let ticket = self.policies.ticket();
        let loaded = Arc::new(cognate_iam::principal_policies(&self.store, principal).await?);
        self.policies.insert(ticket, arn, loaded.clone());
        Ok(loaded)
    }

    /// The id of the organization `account` belongs to, if any.
    pub async fn organization_of(
        &self,
        account: &str,
    ) -> Result<Option<String>, cognate_store::StoreError> {
        if let Some(org) = self.organizations.get(&account.to_owned()) {
            return Ok(org);
        }
        let ticket = self.organizations.ticket();
        let org = self.store.organization_of(account).await?.map(|o| o.org_id);
        self.organizations
            .insert(ticket, account.to_owned(), org.clone());
        Ok(org)
    }

    /// A long-term access key by id: from the cache, else from the store (then cached).
    pub async fn access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Arc<CachedKey>>, LookupError> {
        if let Some(key) = self.keys.get(&access_key_id.to_owned()) {
            return Ok(Some(key));
        }
        let ticket = self.keys.ticket();
        let Some(row) = self.store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        let Ok(account) = AccountId::parse(&row.account_id) else {
            return Err(LookupError::Sealed(access_key_id.to_owned()));
        };
        let principal = match row.user_name {
            None => Principal::Root { account },
            Some(name) => {
                let Some(user) = self.store.entity(account.as_str(), "user", &name).await? else {
                    return Ok(None);
                };
                Principal::User {
                    account,
                    name: user.name,
                    id: user.id,
                    path: user.path,
                }
            }
        };
        let secret = self
            .master
            .open(
                &cognate_credentials::access_key_secret_context(access_key_id),
                &row.secret_sealed,
            )
            .map_err(|_| LookupError::Sealed(access_key_id.to_owned()))?;
        let secret = Zeroizing::new(String::from_utf8_lossy(&secret).into_owned());
        let key = Arc::new(CachedKey::new(principal, row.status == "Active", secret));
        self.keys
            .insert(ticket, access_key_id.to_owned(), key.clone());
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_from_before_a_change_is_not_cached_after_it() {
        let cache: Cache<&str, u32> = Cache::new();
        // A reader misses and reads the store; a change empties the cache meanwhile.
        let ticket = cache.ticket();
        cache.clear();
        cache.insert(ticket, "role", 1);
        assert_eq!(
            cache.get(&"role"),
            None,
            "the old value came back after the change"
        );
        // A removal of any key voids readers in flight the same way.
        let ticket = cache.ticket();
        cache.remove(&"other");
        cache.insert(ticket, "role", 1);
        assert_eq!(cache.get(&"role"), None);
        // A reader that started after the change caches what it read.
        let ticket = cache.ticket();
        cache.insert(ticket, "role", 2);
        assert_eq!(cache.get(&"role"), Some(2));
    }
}
