//! Cognito identity pools below HTTP: pools and their roles, identities and the logins linked
//! to them, role choice, and Cognate's built-in `cognito-identity.amazonaws.com` OpenID
//! provider (the basic flow's tokens). Login tokens from other providers are verified by the
//! caller's [`Verifier`]; credentials are minted by the caller from the [`CredentialsPlan`]
//! this crate returns, after the role's trust policy agrees.

pub mod mapping;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use cognate_credentials::MasterKey;
use cognate_protocol::{ApiError, string_list};
use cognate_store::{IdentityKeyRow, IdentityPoolRow, IdentityRow, Login, Store, StoreError};
use cognate_userpool::SigningKey;
use cognate_userpool::keys::Alg;
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use mapping::{NoRole, RoleMapping, choose_role};

/// The built-in OpenID provider's name (the issuer without its scheme).
pub const BUILTIN_PROVIDER: &str = "cognito-identity.amazonaws.com";
/// The built-in OpenID provider's issuer.
pub const BUILTIN_ISSUER: &str = "https://cognito-identity.amazonaws.com";
/// The role session name of enhanced-flow credentials.
pub const SESSION_NAME: &str = "CognitoIdentityCredentials";
const OPEN_ID_TOKEN_SECS: i64 = 600;
const DEVELOPER_TOKEN_DEFAULT_SECS: i64 = 900;
const DEVELOPER_TOKEN_MAX_SECS: i64 = 86_400;

/// Every Cognito Identity operation; all are implemented.
pub const OPERATIONS: &[&str] = &[
    "CreateIdentityPool",
    "DescribeIdentityPool",
    "UpdateIdentityPool",
    "DeleteIdentityPool",
    "ListIdentityPools",
    "SetIdentityPoolRoles",
    "GetIdentityPoolRoles",
    "SetPrincipalTagAttributeMap",
    "GetPrincipalTagAttributeMap",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "GetId",
    "GetCredentialsForIdentity",
    "GetOpenIdToken",
    "GetOpenIdTokenForDeveloperIdentity",
    "LookupDeveloperIdentity",
    "MergeDeveloperIdentities",
    "UnlinkDeveloperIdentity",
    "UnlinkIdentity",
    "DescribeIdentity",
    "ListIdentities",
    "DeleteIdentities",
];

/// Operations that take no SigV4: the logins they carry prove the caller.
pub fn is_public(operation: &str) -> bool {
    matches!(
        operation,
        "GetId" | "GetCredentialsForIdentity" | "GetOpenIdToken" | "UnlinkIdentity"
    )
}

fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    err("InvalidParameterException", message)
}

pub fn not_authorized(message: impl Into<String>) -> ApiError {
    err("NotAuthorizedException", message)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "identity pool storage failure");
    ApiError::internal()
}

fn str_of<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    str_of(input, key).ok_or_else(|| invalid(format!("{key} is required")))
}

fn string_map(input: &Value, key: &str) -> BTreeMap<String, String> {
    input
        .get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn identity_not_found(id: &str) -> ApiError {
    err(
        "ResourceNotFoundException",
        format!("Identity '{id}' not found."),
    )
}

fn logins_dont_match() -> ApiError {
    not_authorized(
        "Logins don't match. Please include at least one valid login for this identity or identity pool.",
    )
}

fn bad_configuration() -> ApiError {
    err(
        "InvalidIdentityPoolConfigurationException",
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )
}

/// A user pool configured as a provider of an identity pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CognitoProvider {
    pub provider_name: String,
    pub client_id: String,
    #[serde(default)]
    pub server_side_token_check: bool,
}

/// Which claims become session tags for one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrincipalTagMap {
    pub use_defaults: bool,
    #[serde(default)]
    pub principal_tags: BTreeMap<String, String>,
}

/// An identity pool's settings, roles and mappings, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolConfig {
    pub allow_unauthenticated_identities: bool,
    #[serde(default)]
    pub allow_classic_flow: bool,
    #[serde(default)]
    pub supported_login_providers: BTreeMap<String, String>,
    #[serde(default)]
    pub developer_provider_name: Option<String>,
    #[serde(default, rename = "OpenIdConnectProviderARNs")]
    pub open_id_connect_provider_arns: Vec<String>,
    #[serde(default)]
    pub cognito_identity_providers: Vec<CognitoProvider>,
    #[serde(default, rename = "SamlProviderARNs")]
    pub saml_provider_arns: Vec<String>,
    #[serde(default)]
    pub identity_pool_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    #[serde(default)]
    pub role_mappings: BTreeMap<String, RoleMapping>,
    #[serde(default)]
    pub principal_tags: BTreeMap<String, PrincipalTagMap>,
}

/// An identity pool as every call sees it.
#[derive(Debug, Clone)]
pub struct Pool {
    pub row: IdentityPoolRow,
    pub config: PoolConfig,
}

impl Pool {
    /// The provider an identity may hold several logins of: the developer provider, whose
    /// users MergeDeveloperIdentities joins.
    fn multi(&self) -> Option<&str> {
        self.config.developer_provider_name.as_deref()
    }
}

/// What kind of provider a `Logins` key names in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// One of Cognate's user pools; the client ids the identity pool accepts for it.
    UserPool {
        pool_id: String,
        client_ids: Vec<String>,
        server_side_check: bool,
    },
    /// An IAM OpenID Connect provider of the pool's account, by its issuer.
    Oidc { arn: String, account: String },
    /// `accounts.google.com` / `appleid.apple.com` (OpenID Connect with a JWKS) or
    /// `graph.facebook.com` / `www.amazon.com` (access tokens checked with the provider):
    /// the app ids configured for it.
    Public { name: String, app_ids: Vec<String> },
    /// The built-in provider: an OpenID token issued by this service.
    Builtin,
}

/// A login whose token has been fully verified.
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    /// The provider's canonical name (what is stored and what role mappings are keyed by).
    pub provider: String,
    /// The user's id at the provider.
    pub subject: String,
    /// The token's claims (for role rules and principal tags).
    pub claims: Value,
    /// This login's entries in `amr` after `authenticated`.
    pub amr: Vec<String>,
}

/// Verifies the login tokens of providers this crate does not own.
pub trait Verifier: Sync {
    fn verify(
        &self,
        pool: &Pool,
        provider: &Provider,
        login_key: &str,
        token: &str,
    ) -> impl Future<Output = Result<VerifiedLogin, ApiError>> + Send;
}

/// The credentials an identity is to receive: the caller checks the role's trust policy
/// (`sts:AssumeRoleWithWebIdentity` by `cognito-identity.amazonaws.com`, with
/// `session_context` as condition keys, and `sts:TagSession` when there are tags) and mints.
#[derive(Debug, Clone)]
pub struct CredentialsPlan {
    pub identity_id: String,
    /// The identity pool's account: the role must be in it.
    pub account: String,
    pub role_arn: String,
    /// `cognito-identity.amazonaws.com:aud` / `:sub` / `:amr`.
    pub session_context: Vec<(String, Vec<String>)>,
    pub tags: Vec<(String, String)>,
}

/// Opened signing keys of the built-in provider and parsed pools, shared by every call.
#[derive(Default)]
pub struct IdentityCache {
    keys: Mutex<Vec<Arc<SigningKey>>>,
    /// When an unknown kid last forced a reload of the keys.
    keys_reloaded: Mutex<Option<std::time::Instant>>,
    /// Pools, with the generation they were read in: a read that raced a change (the
    /// generation moved on meanwhile) is not cached.
    pools: Mutex<(u64, HashMap<String, Arc<Pool>>)>,
}

/// How often an unknown key id may force the built-in provider's keys to be read again.
const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl IdentityCache {
    /// Forgets cached pools (another node changed one).
    pub fn clear(&self) {
        if let Ok(mut pools) = self.pools.lock() {
            pools.0 += 1;
            pools.1.clear();
        }
    }

    fn forget_pool(&self, id: &str) {
        if let Ok(mut pools) = self.pools.lock() {
            pools.0 += 1;
            pools.1.remove(id);
        }
    }

    /// The cached pool, or the generation a store read must still be in to be cached.
    fn pool(&self, id: &str) -> Result<Arc<Pool>, u64> {
        match self.pools.lock() {
            Ok(pools) => pools.1.get(id).cloned().ok_or(pools.0),
            Err(_) => Err(u64::MAX),
        }
    }

    fn insert_pool(&self, generation: u64, pool: Arc<Pool>) {
        if let Ok(mut pools) = self.pools.lock()
            && pools.0 == generation
        {
            pools.1.insert(pool.row.pool_id.clone(), pool);
        }
    }
}

/// The canonical name of a user pool provider: `cognito-idp.<region>.amazonaws.com/<poolId>`
/// for that form and for the pool's own issuer (`<public-url host and path>/<poolId>`).
pub fn canonical_user_pool_provider(name: &str, issuer_host: &str) -> Option<String> {
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let (host, pool_id) = name.rsplit_once('/')?;
    let (region, _) = pool_id.split_once('_')?;
    let aws_host = format!("cognito-idp.{region}.amazonaws.com");
    if host == aws_host || host == issuer_host.trim_end_matches('/') {
        Some(format!("{aws_host}/{pool_id}"))
    } else {
        None
    }
}

/// One call's view of the identity pool service.
pub struct IdentityPools<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub rng: &'a (dyn SecureRandom + Sync),
    pub cache: &'a IdentityCache,
    pub region: &'a str,
    /// The host and path of user pools' issuers (`<public-url>` without its scheme).
    pub issuer_host: &'a str,
    pub now: time::OffsetDateTime,
    /// The signed caller's account, for administrative operations.
    pub account: Option<&'a str>,
}

impl IdentityPools<'_> {
    fn now(&self) -> i64 {
        self.now.unix_timestamp()
    }

    fn new_id(&self) -> String {
        format!("{}:{}", self.region, uuid::Uuid::new_v4())
    }

    fn pool_arn(&self, row: &IdentityPoolRow) -> String {
        format!(
            "arn:aws:cognito-identity:{}:{}:identitypool/{}",
            self.region, row.account_id, row.pool_id
        )
    }

    /// Runs one administrative operation (the public ones have their own methods).
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        match operation {
            "CreateIdentityPool" => self.create_pool(input).await,
            "DescribeIdentityPool" => self.describe_pool(input).await,
            "UpdateIdentityPool" => self.update_pool(input).await,
            "DeleteIdentityPool" => self.delete_pool(input).await,
            "ListIdentityPools" => self.list_pools(input).await,
            "SetIdentityPoolRoles" => self.set_roles(input).await,
            "GetIdentityPoolRoles" => self.get_roles(input).await,
            "SetPrincipalTagAttributeMap" => self.set_tag_map(input).await,
            "GetPrincipalTagAttributeMap" => self.get_tag_map(input).await,
            "TagResource" => self.tag(input, true).await,
            "UntagResource" => self.tag(input, false).await,
            "ListTagsForResource" => self.list_tags(input).await,
            "GetOpenIdTokenForDeveloperIdentity" => self.developer_token(input).await,
            "LookupDeveloperIdentity" => self.lookup_developer(input).await,
            "MergeDeveloperIdentities" => self.merge_developer(input).await,
            "UnlinkDeveloperIdentity" => self.unlink_developer(input).await,
            "DescribeIdentity" => self.describe_identity(input).await,
            "ListIdentities" => self.list_identities(input).await,
            "DeleteIdentities" => self.delete_identities(input).await,
            _ => Err(err("UnknownOperationException", "")),
        }
    }

    // ---- pools -------------------------------------------------------------------------

    /// A pool: any pool for public calls, only the caller's for administrative ones.
    pub async fn pool(&self, pool_id: &str) -> Result<Arc<Pool>, ApiError> {
        let not_found = || {
            err(
                "ResourceNotFoundException",
                format!("IdentityPool '{pool_id}' not found."),
            )
        };
        let pool = match self.cache.pool(pool_id) {
            Ok(p) => p,
            Err(generation) => {
                let pool = Arc::new(self.stored_pool(pool_id).await?.ok_or_else(not_found)?);
                self.cache.insert_pool(generation, pool.clone());
                pool
            }
        };
        if self.account.is_some_and(|a| a != pool.row.account_id) {
            return Err(not_found());
        }
        Ok(pool)
    }

    async fn stored_pool(&self, pool_id: &str) -> Result<Option<Pool>, ApiError> {
        let Some(row) = self.store.identity_pool(pool_id).await.map_err(internal)? else {
            return Ok(None);
        };
        let config: PoolConfig = serde_json::from_str(&row.config).map_err(internal)?;
        Ok(Some(Pool { row, config }))
    }

    /// A pool of the caller's account read from the store, not the cache: what an
    /// administrative change starts from, so it cannot undo another node's change.
    async fn pool_to_change(&self, pool_id: &str) -> Result<Pool, ApiError> {
        let not_found = || {
            err(
                "ResourceNotFoundException",
                format!("IdentityPool '{pool_id}' not found."),
            )
        };
        let pool = self.stored_pool(pool_id).await?.ok_or_else(not_found)?;
        if self.account.is_some_and(|a| a != pool.row.account_id) {
            return Err(not_found());
        }
        Ok(pool)
    }

    fn pool_json(&self, pool: &Pool) -> Value {
        let c = &pool.config;
        let mut out = json!({
            "IdentityPoolId": pool.row.pool_id,
            "IdentityPoolName": pool.row.name,
            "AllowUnauthenticatedIdentities": c.allow_unauthenticated_identities,
            "AllowClassicFlow": c.allow_classic_flow,
            "SupportedLoginProviders": c.supported_login_providers,
            "OpenIdConnectProviderARNs": c.open_id_connect_provider_arns,
            "CognitoIdentityProviders": c.cognito_identity_providers,
            "SamlProviderARNs": c.saml_provider_arns,
            "IdentityPoolTags": c.identity_pool_tags,
        });
        if let (Some(name), Some(o)) = (&c.developer_provider_name, out.as_object_mut()) {
            o.insert("DeveloperProviderName".into(), json!(name));
        }
        out
    }

    /// Reads the settings an Create/UpdateIdentityPool input carries into `config`.
    fn apply_settings(&self, input: &Value, config: &mut PoolConfig) -> Result<(), ApiError> {
        config.allow_unauthenticated_identities = input
            .get("AllowUnauthenticatedIdentities")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        config.allow_classic_flow = input
            .get("AllowClassicFlow")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        config.supported_login_providers = string_map(input, "SupportedLoginProviders");
        for name in config.supported_login_providers.keys() {
            if !matches!(
                name.as_str(),
                "accounts.google.com"
                    | "appleid.apple.com"
                    | "graph.facebook.com"
                    | "www.amazon.com"
            ) {
                return Err(invalid(format!(
                    "The provider {name} is not a supported login provider; use an OpenID Connect provider instead."
                )));
            }
        }
        let developer = str_of(input, "DeveloperProviderName").map(str::to_owned);
        if config.developer_provider_name.is_some() && config.developer_provider_name != developer {
            return Err(invalid(
                "Developer provider name cannot be changed once set.",
            ));
        }
        config.developer_provider_name = developer;
        config.open_id_connect_provider_arns =
            string_list(input, "OpenIdConnectProviderARNs").unwrap_or_default();
        for arn in &config.open_id_connect_provider_arns {
            let account = arn.split(':').nth(4);
            if !arn.starts_with("arn:aws:iam::")
                || !arn.contains(":oidc-provider/")
                || account != self.account
            {
                return Err(invalid(format!(
                    "Invalid OpenIdConnectProviderARN: {arn} (a provider of this account)"
                )));
            }
        }
        config.cognito_identity_providers = match input.get("CognitoIdentityProviders") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| invalid("Invalid CognitoIdentityProviders"))?,
            None => Vec::new(),
        };
        for p in &config.cognito_identity_providers {
            if canonical_user_pool_provider(&p.provider_name, self.issuer_host).is_none() {
                return Err(invalid(format!(
                    "Invalid ProviderName: {} is not a Cognito user pool provider",
                    p.provider_name
                )));
            }
        }
        config.saml_provider_arns = string_list(input, "SamlProviderARNs").unwrap_or_default();
        if !config.saml_provider_arns.is_empty() {
            return Err(invalid("SAML providers are not supported by this service."));
        }
        if let Some(dev) = &config.developer_provider_name
            && (dev == BUILTIN_PROVIDER || self.configured_providers(config).contains(dev))
        {
            return Err(invalid(
                "DeveloperProviderName must differ from the identity pool's other providers.",
            ));
        }
        Ok(())
    }

    async fn create_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let account = self.account.ok_or_else(ApiError::internal)?;
        let name = required(input, "IdentityPoolName")?;
        let mut config = PoolConfig::default();
        self.apply_settings(input, &mut config)?;
        config.identity_pool_tags = string_map(input, "IdentityPoolTags");
        let now = self.now();
        let row = IdentityPoolRow {
            pool_id: self.new_id(),
            account_id: account.to_owned(),
            name: name.to_owned(),
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create_identity_pool(&row)
            .await
            .map_err(internal)?;
        Ok(self.pool_json(&Pool { row, config }))
    }

    async fn describe_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        Ok(self.pool_json(&pool))
    }

    async fn save_pool(&self, pool: Pool) -> Result<Pool, ApiError> {
        let mut row = pool.row;
        let expected = std::mem::replace(
            &mut row.config,
            serde_json::to_string(&pool.config).map_err(internal)?,
        );
        row.updated_at = self.now();
        if !self
            .store
            .update_identity_pool(&row, &expected)
            .await
            .map_err(internal)?
        {
            // Changed by another request since it was read, or deleted.
            self.cache.forget_pool(&row.pool_id);
            return Err(match self.stored_pool(&row.pool_id).await? {
                Some(_) => err(
                    "ConcurrentModificationException",
                    "The identity pool was changed by another request; retry.",
                ),
                None => err(
                    "ResourceNotFoundException",
                    format!("IdentityPool '{}' not found.", row.pool_id),
                ),
            });
        }
        self.cache.forget_pool(&row.pool_id);
        Ok(Pool {
            row,
            config: pool.config,
        })
    }

    async fn update_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let mut pool = self
            .pool_to_change(required(input, "IdentityPoolId")?)
            .await?;
        pool.row.name = required(input, "IdentityPoolName")?.to_owned();
        self.apply_settings(input, &mut pool.config)?;
        if input.get("IdentityPoolTags").is_some() {
            pool.config.identity_pool_tags = string_map(input, "IdentityPoolTags");
        }
        // Role mappings and tag maps name providers: drop those no longer configured.
        let providers = self.configured_providers(&pool.config);
        pool.config
            .role_mappings
            .retain(|k, _| providers.iter().any(|p| p == k));
        let pool = self.save_pool(pool).await?;
        Ok(self.pool_json(&pool))
    }

    async fn delete_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        self.store
            .delete_identity_pool(&pool.row.pool_id)
            .await
            .map_err(internal)?;
        self.cache.forget_pool(&pool.row.pool_id);
        Ok(json!({}))
    }

    async fn list_pools(&self, input: &Value) -> Result<Value, ApiError> {
        let account = self.account.ok_or_else(ApiError::internal)?;
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let after = str_of(input, "NextToken").unwrap_or("");
        let mut rows = self
            .store
            .identity_pools_of(account, after, max + 1)
            .await
            .map_err(internal)?;
        let more = rows.len() as i64 > max;
        rows.truncate(usize::try_from(max).unwrap_or(0));
        let pools: Vec<Value> = rows
            .iter()
            .map(|r| json!({ "IdentityPoolId": r.pool_id, "IdentityPoolName": r.name }))
            .collect();
        let mut out = json!({ "IdentityPools": pools });
        if let (true, Some(last), Some(o)) = (more, rows.last(), out.as_object_mut()) {
            o.insert("NextToken".into(), json!(last.pool_id));
        }
        Ok(out)
    }

    /// The canonical names of every provider a pool is configured with.
    fn configured_providers(&self, config: &PoolConfig) -> Vec<String> {
        let mut names: Vec<String> = config.supported_login_providers.keys().cloned().collect();
        for p in &config.cognito_identity_providers {
            if let Some(n) = canonical_user_pool_provider(&p.provider_name, self.issuer_host) {
                names.push(format!("{n}:{}", p.client_id));
                names.push(n);
            }
        }
        for arn in &config.open_id_connect_provider_arns {
            if let Some((_, issuer)) = arn.split_once(":oidc-provider/") {
                names.push(issuer.to_owned());
            }
        }
        names
    }

    /// The role ARNs a SetIdentityPoolRoles input hands to the pool (each needs
    /// `iam:PassRole`, checked by the caller).
    pub fn roles_passed(input: &Value) -> Vec<String> {
        let mut arns: Vec<String> = string_map(input, "Roles").into_values().collect();
        if let Some(mappings) = input.get("RoleMappings").and_then(Value::as_object) {
            for m in mappings.values() {
                for rule in m
                    .pointer("/RulesConfiguration/Rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(arn) = str_of(rule, "RoleARN") {
                        arns.push(arn.to_owned());
                    }
                }
            }
        }
        arns.sort();
        arns.dedup();
        arns
    }

    async fn set_roles(&self, input: &Value) -> Result<Value, ApiError> {
        let mut pool = self
            .pool_to_change(required(input, "IdentityPoolId")?)
            .await?;
        let roles = string_map(input, "Roles");
        for (kind, arn) in &roles {
            if kind != "authenticated" && kind != "unauthenticated" {
                return Err(invalid(format!(
                    "Invalid role type {kind}: must be authenticated or unauthenticated"
                )));
            }
            if !arn.starts_with("arn:aws:iam::") || !arn.contains(":role/") {
                return Err(invalid(format!("Invalid role ARN: {arn}")));
            }
        }
        // Identities act as these roles: they must belong to the pool's own account.
        let foreign = Self::roles_passed(input)
            .into_iter()
            .find(|arn| arn.split(':').nth(4) != Some(pool.row.account_id.as_str()));
        if let Some(arn) = foreign {
            return Err(invalid(format!(
                "Role {arn} is not in the identity pool's account."
            )));
        }
        let mut mappings = BTreeMap::new();
        let providers = self.configured_providers(&pool.config);
        if let Some(given) = input.get("RoleMappings").and_then(Value::as_object) {
            for (name, m) in given {
                let mapping: RoleMapping = serde_json::from_value(m.clone())
                    .map_err(|_| invalid(format!("Invalid RoleMapping for {name}")))?;
                if !providers.iter().any(|p| p == name) {
                    return Err(invalid(format!(
                        "{name} is not a valid RoleMapping ProviderName or is not a configured provider."
                    )));
                }
                if mapping.ambiguous_role_resolution.is_none() {
                    return Err(invalid(
                        "AmbiguousRoleResolution must be specified for Token and Rules role mappings.",
                    ));
                }
                let rules = mapping
                    .rules_configuration
                    .as_ref()
                    .map_or(0, |c| c.rules.len());
                if mapping.kind == "Rules" && rules == 0 {
                    return Err(invalid(
                        "RulesConfiguration must be specified for Rules role mappings.",
                    ));
                }
                // Keyed by the provider's name (a `<provider>:<clientId>` key narrows to a client).
                let key = canonical_user_pool_provider(
                    name.split(':').next().unwrap_or(""),
                    self.issuer_host,
                )
                .map(|p| match name.split_once(':') {
                    Some((_, client)) => format!("{p}:{client}"),
                    None => p,
                })
                .unwrap_or_else(|| name.clone());
                mappings.insert(key, mapping);
            }
        }
        pool.config.roles = roles;
        pool.config.role_mappings = mappings;
        self.save_pool(pool).await?;
        Ok(json!({}))
    }

    async fn get_roles(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let mut out = json!({
            "IdentityPoolId": pool.row.pool_id,
            "Roles": pool.config.roles,
        });
        if let (false, Some(o)) = (pool.config.role_mappings.is_empty(), out.as_object_mut()) {
            o.insert("RoleMappings".into(), json!(pool.config.role_mappings));
        }
        Ok(out)
    }

    /// The canonical provider name of a tag map or mapping input, if configured on the pool.
    fn configured_provider(&self, config: &PoolConfig, name: &str) -> Result<String, ApiError> {
        let canonical =
            canonical_user_pool_provider(name, self.issuer_host).unwrap_or_else(|| name.to_owned());
        if self.configured_providers(config).contains(&canonical) {
            Ok(canonical)
        } else {
            Err(invalid(format!(
                "{name} is not a configured provider of this identity pool."
            )))
        }
    }

    async fn set_tag_map(&self, input: &Value) -> Result<Value, ApiError> {
        let mut pool = self
            .pool_to_change(required(input, "IdentityPoolId")?)
            .await?;
        let name = required(input, "IdentityProviderName")?;
        let provider = self.configured_provider(&pool.config, name)?;
        let map = PrincipalTagMap {
            use_defaults: input
                .get("UseDefaults")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            principal_tags: string_map(input, "PrincipalTags"),
        };
        pool.config.principal_tags.insert(provider, map.clone());
        let pool = self.save_pool(pool).await?;
        Ok(json!({
            "IdentityPoolId": pool.row.pool_id,
            "IdentityProviderName": name,
            "UseDefaults": map.use_defaults,
            "PrincipalTags": map.principal_tags,
        }))
    }

    async fn get_tag_map(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let name = required(input, "IdentityProviderName")?;
        let provider = self.configured_provider(&pool.config, name)?;
        let map = pool
            .config
            .principal_tags
            .get(&provider)
            .cloned()
            .unwrap_or_default();
        Ok(json!({
            "IdentityPoolId": pool.row.pool_id,
            "IdentityProviderName": name,
            "UseDefaults": map.use_defaults,
            "PrincipalTags": map.principal_tags,
        }))
    }

    async fn pool_of_arn(&self, input: &Value) -> Result<Pool, ApiError> {
        let arn = required(input, "ResourceArn")?;
        let id = arn
            .strip_prefix("arn:aws:cognito-identity:")
            .and_then(|r| r.split_once(":identitypool/"))
            .map(|(_, id)| id)
            .ok_or_else(|| invalid(format!("Invalid ResourceArn: {arn}")))?;
        self.pool_to_change(id).await
    }

    async fn tag(&self, input: &Value, add: bool) -> Result<Value, ApiError> {
        let mut pool = self.pool_of_arn(input).await?;
        if add {
            pool.config
                .identity_pool_tags
                .extend(string_map(input, "Tags"));
            if pool.config.identity_pool_tags.len() > 50 {
                return Err(invalid("A resource can have at most 50 tags."));
            }
        } else {
            for key in input
                .get("TagKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                pool.config.identity_pool_tags.remove(key);
            }
        }
        self.save_pool(pool).await?;
        Ok(json!({}))
    }

    async fn list_tags(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool_of_arn(input).await?;
        Ok(json!({ "Tags": pool.config.identity_pool_tags }))
    }

    // ---- logins and identities ---------------------------------------------------------

    /// What a `Logins` key names in this pool.
    fn provider(&self, pool: &Pool, key: &str) -> Result<Provider, ApiError> {
        let unsupported =
            || not_authorized("Token is not from a supported provider of this identity pool.");
        if key == BUILTIN_PROVIDER {
            return Ok(Provider::Builtin);
        }
        if let Some(canonical) = canonical_user_pool_provider(key, self.issuer_host) {
            let entries: Vec<&CognitoProvider> = pool
                .config
                .cognito_identity_providers
                .iter()
                .filter(|p| {
                    canonical_user_pool_provider(&p.provider_name, self.issuer_host).as_deref()
                        == Some(canonical.as_str())
                })
                .collect();
            if entries.is_empty() {
                return Err(unsupported());
            }
            let pool_id = canonical.rsplit('/').next().unwrap_or("").to_owned();
            return Ok(Provider::UserPool {
                pool_id,
                client_ids: entries.iter().map(|p| p.client_id.clone()).collect(),
                server_side_check: entries.iter().any(|p| p.server_side_token_check),
            });
        }
        if let Some(ids) = pool.config.supported_login_providers.get(key) {
            return Ok(Provider::Public {
                name: key.to_owned(),
                app_ids: ids.split(',').map(|s| s.trim().to_owned()).collect(),
            });
        }
        for arn in &pool.config.open_id_connect_provider_arns {
            if let Some((head, issuer)) = arn.split_once(":oidc-provider/")
                && issuer == key
            {
                let account = head.rsplit(':').next().unwrap_or("").to_owned();
                return Ok(Provider::Oidc {
                    arn: arn.clone(),
                    account,
                });
            }
        }
        Err(unsupported())
    }

    /// Verifies every login of a request; one bad token fails the call.
    async fn verify_logins(
        &self,
        pool: &Pool,
        logins: &BTreeMap<String, String>,
        verifier: &impl Verifier,
    ) -> Result<Vec<VerifiedLogin>, ApiError> {
        let mut out: Vec<VerifiedLogin> = Vec::with_capacity(logins.len());
        for (key, token) in logins {
            let provider = self.provider(pool, key)?;
            let login = match provider {
                Provider::Builtin => self.verify_builtin(pool, token).await?,
                _ => verifier.verify(pool, &provider, key, token).await?,
            };
            if out.iter().any(|l| l.provider == login.provider) {
                return Err(invalid(format!(
                    "Logins name the provider {} more than once.",
                    login.provider
                )));
            }
            out.push(login);
        }
        Ok(out)
    }

    async fn new_identity(&self, pool: &Pool, logins: &[Login]) -> Result<String, ApiError> {
        let now = self.now();
        let row = IdentityRow {
            identity_id: self.new_id(),
            pool_id: pool.row.pool_id.clone(),
            record: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        match self
            .store
            .link_logins(
                Some(&row),
                &row.identity_id,
                &pool.row.pool_id,
                logins,
                now,
                pool.multi(),
            )
            .await
        {
            Ok(()) => Ok(row.identity_id),
            Err(StoreError::Conflict) => Err(err(
                "ResourceConflictException",
                "A login is already linked to another identity.",
            )),
            Err(e) => Err(internal(e)),
        }
    }

    /// Finds the identity of verified logins, linking new logins to it; several identities
    /// named by the logins are merged into the oldest-linked one. Retries once when a
    /// concurrent call linked the same login first.
    async fn identity_for_logins(
        &self,
        pool: &Pool,
        logins: &[VerifiedLogin],
    ) -> Result<String, ApiError> {
        let keys: Vec<Login> = logins
            .iter()
            .filter(|l| l.provider != BUILTIN_PROVIDER)
            .map(|l| Login {
                provider: l.provider.clone(),
                subject: l.subject.clone(),
            })
            .collect();
        for attempt in 0..2 {
            let mut found: Vec<String> = Vec::new();
            let mut unlinked: Vec<Login> = Vec::new();
            for key in &keys {
                match self
                    .store
                    .identity_of_login(&pool.row.pool_id, key)
                    .await
                    .map_err(internal)?
                {
                    Some(id) => {
                        if !found.contains(&id) {
                            found.push(id);
                        }
                    }
                    None => unlinked.push(key.clone()),
                }
            }
            // A developer-authenticated identity proves itself with the built-in token.
            let mut unchecked = false;
            if let Some(builtin) = logins.iter().find(|l| l.provider == BUILTIN_PROVIDER)
                && !found.contains(&builtin.subject)
            {
                found.insert(0, builtin.subject.clone());
                unchecked = true;
            }
            let result = match found.split_first() {
                None => self.new_identity(pool, &unlinked).await,
                Some((target, others)) => {
                    // The common case, a known login alone, needs no further reads.
                    if others.is_empty() && unlinked.is_empty() && !unchecked {
                        return Ok(target.clone());
                    }
                    self.check_mergeable(pool, target, others, &unlinked)
                        .await?;
                    for other in others {
                        self.merge(pool, other, target).await?;
                    }
                    if unlinked.is_empty() {
                        return Ok(target.clone());
                    }

                    match self
                        .store
                        .link_logins(
                            None,
                            target,
                            &pool.row.pool_id,
                            &unlinked,
                            self.now(),
                            pool.multi(),
                        )
                        .await
                    {
                        Ok(()) => Ok(target.clone()),
                        Err(StoreError::Conflict) => Err(err(
                            "ResourceConflictException",
                            "A login is already linked to another identity.",
                        )),
                        Err(e) => Err(internal(e)),
                    }
                }
            };
            match result {
                Err(e) if e.code == "ResourceConflictException" && attempt == 0 => continue,
                other => return other,
            }
        }
        Err(err(
            "ResourceConflictException",
            "A login is already linked to another identity.",
        ))
    }

    /// Identities named by one request's logins may become one: all exist in this pool and
    /// are enabled, and together they hold at most one login per provider.
    async fn check_mergeable(
        &self,
        pool: &Pool,
        target: &str,
        others: &[String],
        new: &[Login],
    ) -> Result<(), ApiError> {
        let multi = pool.multi();
        let mut providers: Vec<String> = new.iter().map(|l| l.provider.clone()).collect();
        for id in std::iter::once(target).chain(others.iter().map(String::as_str)) {
            let (row, logins) = self
                .store
                .identity(id)
                .await
                .map_err(internal)?
                .filter(|(row, _)| row.pool_id == pool.row.pool_id)
                .ok_or_else(|| identity_not_found(id))?;
            if is_disabled(&row) {
                return Err(not_authorized(format!(
                    "Access to Identity '{id}' is forbidden."
                )));
            }
            let mut own: Vec<String> = logins.into_iter().map(|l| l.provider).collect();
            own.dedup();
            providers.extend(own);
        }
        providers.retain(|p| Some(p.as_str()) != multi);
        let count = providers.len();
        providers.sort();
        providers.dedup();
        if providers.len() != count {
            return Err(err(
                "ResourceConflictException",
                "These logins belong to identities that cannot be merged: two of them are from one provider.",
            ));
        }
        Ok(())
    }

    /// `GetId`: the identity of the logins (created or linked as needed), or a new
    /// unauthenticated identity when there are none and the pool allows it.
    pub async fn get_id(&self, input: &Value, verifier: &impl Verifier) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        if let Some(account) = str_of(input, "AccountId")
            && account != pool.row.account_id
        {
            return Err(not_authorized(format!(
                "Access to IdentityPool '{}' is forbidden.",
                pool.row.pool_id
            )));
        }
        let logins = string_map(input, "Logins");
        let id = if logins.is_empty() {
            if !pool.config.allow_unauthenticated_identities {
                return Err(not_authorized(
                    "Unauthenticated access is not supported for this identity pool.",
                ));
            }
            self.new_identity(&pool, &[]).await?
        } else {
            let verified = self.verify_logins(&pool, &logins, verifier).await?;
            self.identity_for_logins(&pool, &verified).await?
        };
        Ok(json!({ "IdentityId": id }))
    }

    /// An identity usable by a public call: it exists, is enabled, and the request's logins
    /// (verified) belong to it. Unauthenticated identities present no logins; one that does
    /// present them is linked to them (it becomes authenticated).
    async fn usable_identity(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<(Arc<Pool>, String, Vec<VerifiedLogin>), ApiError> {
        let id = required(input, "IdentityId")?;
        let (row, linked) = self
            .store
            .identity(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| identity_not_found(id))?;
        let pool = self.pool(&row.pool_id).await?;
        if is_disabled(&row) {
            return Err(not_authorized(format!(
                "Access to Identity '{id}' is forbidden."
            )));
        }
        let logins = string_map(input, "Logins");
        if logins.is_empty() {
            if !linked.is_empty() {
                return Err(logins_dont_match());
            }
            if !pool.config.allow_unauthenticated_identities {
                return Err(not_authorized(
                    "Unauthenticated access is not supported for this identity pool.",
                ));
            }
            return Ok((pool, id.to_owned(), Vec::new()));
        }
        let verified = self.verify_logins(&pool, &logins, verifier).await?;
        let mut to_link = Vec::new();
        for login in &verified {
            let belongs = if login.provider == BUILTIN_PROVIDER {
                login.subject == id
            } else {
                linked
                    .iter()
                    .any(|l| l.provider == login.provider && l.subject == login.subject)
            };
            if belongs {
                continue;
            }
            // An unauthenticated identity signing in keeps its id: its new logins are linked
            // to it (all at once), if no other identity has them.
            let key = Login {
                provider: login.provider.clone(),
                subject: login.subject.clone(),
            };
            if !linked.is_empty()
                || login.provider == BUILTIN_PROVIDER
                || self
                    .store
                    .identity_of_login(&pool.row.pool_id, &key)
                    .await
                    .map_err(internal)?
                    .is_some()
            {
                return Err(logins_dont_match());
            }
            to_link.push(key);
        }
        if !to_link.is_empty() {
            self.store
                .link_logins_to_guest(id, &pool.row.pool_id, &to_link, self.now())
                .await
                .map_err(|_| logins_dont_match())?;
        }
        Ok((pool, id.to_owned(), verified))
    }

    /// `amr` for a set of verified logins.
    fn amr(logins: &[VerifiedLogin]) -> Vec<String> {
        if logins.is_empty() {
            return vec!["unauthenticated".into()];
        }
        let mut amr = vec!["authenticated".to_owned()];
        for l in logins {
            for entry in &l.amr {
                if !amr.contains(entry) {
                    amr.push(entry.clone());
                }
            }
        }
        amr
    }

    /// `GetCredentialsForIdentity`: which role, with which session keys and tags.
    pub async fn credentials_plan(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<CredentialsPlan, ApiError> {
        let (pool, identity_id, logins) = self.usable_identity(input, verifier).await?;
        let custom = str_of(input, "CustomRoleArn");
        let config = &pool.config;
        let (role_arn, tags) = match logins.first() {
            None => {
                let role = config
                    .roles
                    .get("unauthenticated")
                    .cloned()
                    .ok_or_else(bad_configuration)?;
                (role, Vec::new())
            }
            Some(_) => {
                // The first login whose provider has a role mapping decides; else the default.
                let mapped = logins.iter().find_map(|l| {
                    let client = l.claims.get("aud").and_then(Value::as_str).unwrap_or("");
                    config
                        .role_mappings
                        .get(&format!("{}:{client}", l.provider))
                        .or_else(|| config.role_mappings.get(&l.provider))
                        .map(|m| (m, l))
                });
                let (mapping, login) = match mapped {
                    Some((m, l)) => (Some(m), l),
                    None => (None, logins.first().ok_or_else(ApiError::internal)?),
                };
                let role =
                    choose_role(mapping, &config.roles, &login.claims, custom).map_err(|why| {
                        match why {
                            NoRole::Denied => not_authorized(
                                "The ambiguous role mapping rules denied this request",
                            ),
                            NoRole::CustomRoleRefused => not_authorized(format!(
                                "Access to Role '{}' is forbidden.",
                                custom.unwrap_or("")
                            )),
                            NoRole::NotConfigured => bad_configuration(),
                        }
                    })?;
                (role, principal_tags(config, login))
            }
        };
        let session_context = vec![
            (
                format!("{BUILTIN_PROVIDER}:aud"),
                vec![pool.row.pool_id.clone()],
            ),
            (format!("{BUILTIN_PROVIDER}:sub"), vec![identity_id.clone()]),
            (format!("{BUILTIN_PROVIDER}:amr"), Self::amr(&logins)),
        ];
        Ok(CredentialsPlan {
            identity_id,
            account: pool.row.account_id.clone(),
            role_arn,
            session_context,
            tags,
        })
    }

    // ---- the built-in OpenID provider --------------------------------------------------

    /// The built-in provider's keys, opened; generates the first one on first use.
    async fn builtin_keys(&self) -> Result<Vec<Arc<SigningKey>>, ApiError> {
        if let Ok(keys) = self.cache.keys.lock()
            && !keys.is_empty()
        {
            return Ok(keys.clone());
        }
        let mut rows = self.store.identity_keys().await.map_err(internal)?;
        if rows.is_empty() {
            let (kid, der) = cognate_userpool::keys::generate(self.rng).map_err(internal)?;
            let kid = format!("{}-{}", self.region, kid.trim_end_matches('='));
            let row = IdentityKeyRow {
                key_sealed: self
                    .master
                    .seal(&format!("identity-key:{kid}"), &der, self.rng)
                    .map_err(internal)?,
                kid,
                created_at: self.now.unix_timestamp() * 1000,
            };
            // Two nodes may both generate one: both keys verify, the newest signs.
            match self.store.add_identity_key(&row).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(internal(e)),
            }
            rows = self.store.identity_keys().await.map_err(internal)?;
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let der = self
                .master
                .open(&format!("identity-key:{}", row.kid), &row.key_sealed)
                .map_err(internal)?;
            keys.push(Arc::new(
                SigningKey::from_pkcs8_with(&row.kid, &der, Alg::Rs512).map_err(internal)?,
            ));
        }
        if let Ok(mut cached) = self.cache.keys.lock() {
            cached.clone_from(&keys);
        }
        Ok(keys)
    }

    /// The built-in provider's JWKS.
    pub async fn jwks(&self) -> Result<Value, ApiError> {
        let keys = self.builtin_keys().await?;
        Ok(json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
    }

    async fn sign_open_id_token(
        &self,
        pool: &Pool,
        identity_id: &str,
        amr: Vec<String>,
        lifetime: i64,
        tags: &[(String, String)],
    ) -> Result<String, ApiError> {
        let keys = self.builtin_keys().await?;
        let key = keys.last().ok_or_else(ApiError::internal)?;
        let now = self.now();
        let mut claims = json!({
            "iss": BUILTIN_ISSUER,
            "sub": identity_id,
            "aud": pool.row.pool_id,
            "amr": amr,
            "exp": now + lifetime,
            "iat": now,
            "https://cognito-identity.amazonaws.com/identity-pool-arn": self.pool_arn(&pool.row),
        });
        if let (false, Some(o)) = (tags.is_empty(), claims.as_object_mut()) {
            let tags: Map<String, Value> =
                tags.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
            o.insert(
                "https://aws.amazon.com/tags".into(),
                json!({ "principal_tags": tags }),
            );
        }
        key.sign(&claims).map_err(internal)
    }

    /// Verifies a token of the built-in provider for the basic flow (any pool) and returns its
    /// claims: signature under one of the keys, issuer, expiry.
    pub async fn verify_open_id_token(&self, token: &str) -> Result<Value, ApiError> {
        let bad = || not_authorized("Invalid login token. Couldn't verify signed token.");
        let kid = cognate_userpool::keys::kid_of(token).ok_or_else(bad)?;
        let keys = self.builtin_keys().await?;
        let key = match keys.iter().find(|k| k.kid == kid) {
            Some(k) => k.clone(),
            None => {
                // Another node may have added a key since this one cached them; unknown key
                // ids reload at most every KEY_RELOAD_INTERVAL (forged ones are cheap to send).
                let now = std::time::Instant::now();
                let due = self.cache.keys_reloaded.lock().is_ok_and(|mut last| {
                    let due = last.is_none_or(|t| now.duration_since(t) >= KEY_RELOAD_INTERVAL);
                    if due {
                        *last = Some(now);
                    }
                    due
                });
                if !due {
                    return Err(bad());
                }
                if let Ok(mut cached) = self.cache.keys.lock() {
                    cached.clear();
                }
                let keys = self.builtin_keys().await?;
                keys.iter()
                    .find(|k| k.kid == kid)
                    .cloned()
                    .ok_or_else(bad)?
            }
        };
        let claims = key.verify(token).ok_or_else(bad)?;
        if str_of(&claims, "iss") != Some(BUILTIN_ISSUER) {
            return Err(not_authorized(
                "Invalid login token. Issuer doesn't match providerName",
            ));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(bad)?;
        if exp <= self.now() {
            return Err(not_authorized(format!(
                "Invalid login token. Token expired: {} >= {exp}",
                self.now()
            )));
        }
        Ok(claims)
    }

    /// A built-in token as a login of `pool`: it must name the pool as its audience.
    async fn verify_builtin(&self, pool: &Pool, token: &str) -> Result<VerifiedLogin, ApiError> {
        let claims = self.verify_open_id_token(token).await?;
        if str_of(&claims, "aud") != Some(pool.row.pool_id.as_str()) {
            return Err(not_authorized(
                "Invalid login token. Token is not from this identity pool.",
            ));
        }
        let subject = str_of(&claims, "sub").unwrap_or("").to_owned();
        let amr = string_list(&claims, "amr").unwrap_or_default();
        // Only tokens of developer-authenticated identities are logins (what
        // GetOpenIdTokenForDeveloperIdentity returns): a guest's or another provider's
        // OpenID token must not stand in for the login it was issued for.
        let developer = pool.config.developer_provider_name.as_deref();
        let developer_entry = developer.map(|d| format!("{d}:{}:", pool.row.pool_id));
        if amr.first().map(String::as_str) != Some("authenticated")
            || developer.is_none()
            || amr.get(1).map(String::as_str) != developer
            || !amr
                .get(2)
                .zip(developer_entry.as_deref())
                .is_some_and(|(entry, prefix)| entry.starts_with(prefix))
        {
            return Err(not_authorized(
                "Invalid login token. Only tokens of developer-authenticated identities are logins.",
            ));
        }
        let amr = amr.into_iter().skip(1).collect();
        Ok(VerifiedLogin {
            provider: BUILTIN_PROVIDER.into(),
            subject,
            claims,
            amr,
        })
    }

    /// `GetOpenIdToken` (the basic flow): a token of the built-in provider for the identity.
    pub async fn get_open_id_token(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<Value, ApiError> {
        let id = required(input, "IdentityId")?;
        let (row, _) = self
            .store
            .identity(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| identity_not_found(id))?;
        if !self.pool(&row.pool_id).await?.config.allow_classic_flow {
            return Err(invalid(
                "Basic (classic) flow is not enabled, please use enhanced flow.",
            ));
        }
        let (pool, identity_id, logins) = self.usable_identity(input, verifier).await?;
        // A token issued on the strength of a developer token lives no longer than it.
        let lifetime = logins
            .iter()
            .filter(|l| l.provider == BUILTIN_PROVIDER)
            .filter_map(|l| l.claims.get("exp").and_then(Value::as_i64))
            .map(|exp| exp - self.now())
            .fold(OPEN_ID_TOKEN_SECS, i64::min);
        let tags: Vec<(String, String)> = logins.iter().flat_map(developer_tags).collect();
        let token = self
            .sign_open_id_token(&pool, &identity_id, Self::amr(&logins), lifetime, &tags)
            .await?;
        Ok(json!({ "IdentityId": identity_id, "Token": token }))
    }

    // ---- developer-authenticated identities --------------------------------------------

    fn developer_provider<'p>(&self, pool: &'p Pool, name: &str) -> Result<&'p str, ApiError> {
        match pool.config.developer_provider_name.as_deref() {
            Some(p) if p == name => Ok(p),
            _ => Err(not_authorized(
                "This identity pool does not support the specified developer provider",
            )),
        }
    }

    async fn developer_token(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let logins = string_map(input, "Logins");
        let mut developer: Option<(String, String)> = None;
        for (provider, user) in &logins {
            if pool.config.developer_provider_name.as_deref() == Some(provider.as_str()) {
                developer = Some((provider.clone(), user.clone()));
            } else {
                return Err(not_authorized(format!(
                    "Login {provider} is not the developer provider of this identity pool; link other providers with GetId."
                )));
            }
        }
        let (provider, user) = developer.ok_or_else(|| {
            not_authorized("This identity pool does not support the specified developer provider")
        })?;
        let lifetime = input
            .get("TokenDuration")
            .and_then(Value::as_i64)
            .unwrap_or(DEVELOPER_TOKEN_DEFAULT_SECS);
        if !(1..=DEVELOPER_TOKEN_MAX_SECS).contains(&lifetime) {
            return Err(invalid(
                "TokenDuration must be between 1 and 86400 seconds.",
            ));
        }
        let login = Login {
            provider: provider.clone(),
            subject: user.clone(),
        };
        let existing = self
            .store
            .identity_of_login(&pool.row.pool_id, &login)
            .await
            .map_err(internal)?;
        let wanted = str_of(input, "IdentityId");
        let identity_id = match (existing, wanted) {
            (Some(existing), Some(wanted)) if existing != wanted => {
                return Err(err(
                    "DeveloperUserAlreadyRegisteredException",
                    "This developer user identifier is already registered with Cognito.",
                ));
            }
            (Some(existing), _) => existing,
            (None, Some(wanted)) => {
                let (row, _) = self
                    .store
                    .identity(wanted)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| identity_not_found(wanted))?;
                if row.pool_id != pool.row.pool_id {
                    return Err(identity_not_found(wanted));
                }

                self.store
                    .link_logins(
                        None,
                        wanted,
                        &pool.row.pool_id,
                        &[login],
                        self.now(),
                        pool.multi(),
                    )
                    .await
                    .map_err(|_| {
                        err(
                            "DeveloperUserAlreadyRegisteredException",
                            "This developer user identifier is already registered with Cognito.",
                        )
                    })?;
                wanted.to_owned()
            }
            (None, None) => self.new_identity(&pool, &[login]).await?,
        };
        if let Some((row, _)) = self.store.identity(&identity_id).await.map_err(internal)?
            && is_disabled(&row)
        {
            return Err(not_authorized(format!(
                "Access to Identity '{identity_id}' is forbidden."
            )));
        }
        let amr = vec![
            "authenticated".to_owned(),
            provider.clone(),
            format!("{provider}:{}:{user}", pool.row.pool_id),
        ];
        let tags: Vec<(String, String)> = string_map(input, "PrincipalTags").into_iter().collect();
        let token = self
            .sign_open_id_token(&pool, &identity_id, amr, lifetime, &tags)
            .await?;
        Ok(json!({ "IdentityId": identity_id, "Token": token }))
    }

    /// An identity of `pool` with its logins.
    async fn pool_identity(
        &self,
        pool: &Pool,
        id: &str,
    ) -> Result<(IdentityRow, Vec<Login>), ApiError> {
        match self.store.identity(id).await.map_err(internal)? {
            Some((row, logins)) if row.pool_id == pool.row.pool_id => Ok((row, logins)),
            _ => Err(identity_not_found(id)),
        }
    }

    async fn lookup_developer(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let provider = pool.config.developer_provider_name.clone().ok_or_else(|| {
            not_authorized("This identity pool does not support the specified developer provider")
        })?;
        let by_user = match str_of(input, "DeveloperUserIdentifier") {
            Some(user) => Some(
                self.store
                    .identity_of_login(
                        &pool.row.pool_id,
                        &Login {
                            provider: provider.clone(),
                            subject: user.to_owned(),
                        },
                    )
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| {
                        err(
                            "ResourceNotFoundException",
                            format!("Developer user identifier '{user}' not found."),
                        )
                    })?,
            ),
            None => None,
        };
        let id = match (str_of(input, "IdentityId"), by_user) {
            (Some(id), Some(found)) if id != found => {
                return Err(err(
                    "ResourceConflictException",
                    "The IdentityId and the DeveloperUserIdentifier belong to different identities.",
                ));
            }
            (_, Some(found)) => found,
            (Some(id), None) => id.to_owned(),
            (None, None) => {
                return Err(invalid(
                    "One of IdentityId or DeveloperUserIdentifier is required.",
                ));
            }
        };
        let (_, logins) = self.pool_identity(&pool, &id).await?;
        let users: Vec<&str> = logins
            .iter()
            .filter(|l| l.provider == provider)
            .map(|l| l.subject.as_str())
            .collect();
        Ok(json!({ "IdentityId": id, "DeveloperUserIdentifierList": users }))
    }

    async fn merge_developer(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let provider = self
            .developer_provider(&pool, required(input, "DeveloperProviderName")?)?
            .to_owned();
        let find = |user: &str| {
            let login = Login {
                provider: provider.clone(),
                subject: user.to_owned(),
            };
            let pool_id = pool.row.pool_id.clone();
            async move {
                self.store
                    .identity_of_login(&pool_id, &login)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| {
                        err(
                            "ResourceNotFoundException",
                            format!("Developer user identifier '{}' not found.", login.subject),
                        )
                    })
            }
        };
        let source = find(required(input, "SourceUserIdentifier")?).await?;
        let destination = find(required(input, "DestinationUserIdentifier")?).await?;
        if source != destination {
            self.check_mergeable(&pool, &destination, std::slice::from_ref(&source), &[])
                .await?;
            self.merge(&pool, &source, &destination).await?;
        }
        Ok(json!({ "IdentityId": destination }))
    }

    async fn unlink_developer(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let provider = self
            .developer_provider(&pool, required(input, "DeveloperProviderName")?)?
            .to_owned();
        let id = required(input, "IdentityId")?;
        let (row, _) = self.pool_identity(&pool, id).await?;
        let login = Login {
            provider,
            subject: required(input, "DeveloperUserIdentifier")?.to_owned(),
        };
        let removed = self
            .store
            .unlink_logins(id, &[login], self.now(), &disabled_record(&row)?)
            .await
            .map_err(internal)?;
        if removed == 0 {
            return Err(err(
                "ResourceConflictException",
                "The developer user identifier is not linked to this identity.",
            ));
        }
        Ok(json!({}))
    }

    /// `UnlinkIdentity` (public): the caller proves the identity with its logins and removes
    /// the named providers' logins; an identity left with none is disabled.
    pub async fn unlink_identity(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<Value, ApiError> {
        let (pool, id, verified) = self.usable_identity(input, verifier).await?;
        if verified.is_empty() {
            return Err(logins_dont_match());
        }
        let (row, linked) = self.pool_identity(&pool, &id).await?;
        let remove: Vec<Login> = input
            .get("LoginsToRemove")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .flat_map(|p| {
                let canonical = canonical_user_pool_provider(p, self.issuer_host)
                    .unwrap_or_else(|| p.to_owned());
                linked
                    .iter()
                    .filter(move |l| l.provider == canonical)
                    .cloned()
            })
            .collect();
        self.store
            .unlink_logins(&id, &remove, self.now(), &disabled_record(&row)?)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    /// Merges `from` into `to` (checked by the caller; the store checks again while it holds
    /// both).
    async fn merge(&self, pool: &Pool, from: &str, to: &str) -> Result<(), ApiError> {
        match self
            .store
            .merge_identities(from, to, self.now(), pool.multi())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(err(
                "ResourceConflictException",
                "These identities cannot be merged: one is gone, or both have a login from one provider.",
            )),
            Err(e) => Err(internal(e)),
        }
    }

    // ---- identities (administrative) ---------------------------------------------------

    /// The pools of the identities that exist (what administrative operations on identities
    /// are authorized on).
    pub async fn pools_of_identities(&self, ids: &[&str]) -> Result<Vec<String>, ApiError> {
        let mut pools = Vec::new();
        for id in ids {
            if let Some((row, _)) = self.store.identity(id).await.map_err(internal)? {
                pools.push(row.pool_id);
            }
        }
        Ok(pools)
    }

    fn identity_json(row: &IdentityRow, logins: &[Login]) -> Value {
        let mut providers: Vec<&str> = logins.iter().map(|l| l.provider.as_str()).collect();
        providers.dedup();
        json!({
            "IdentityId": row.identity_id,
            "Logins": providers,
            "CreationDate": row.created_at,
            "LastModifiedDate": row.updated_at,
        })
    }

    async fn describe_identity(&self, input: &Value) -> Result<Value, ApiError> {
        let id = required(input, "IdentityId")?;
        let (row, logins) = self
            .store
            .identity(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| identity_not_found(id))?;
        // The caller's account must own the identity's pool.
        self.pool(&row.pool_id)
            .await
            .map_err(|_| identity_not_found(id))?;
        Ok(Self::identity_json(&row, &logins))
    }

    async fn list_identities(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let hide_disabled = input
            .get("HideDisabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut after = str_of(input, "NextToken").unwrap_or("").to_owned();
        let mut out = Vec::new();
        let mut next = None;
        'pages: loop {
            let rows = self
                .store
                .identities_of_pool(&pool.row.pool_id, &after, max + 1)
                .await
                .map_err(internal)?;
            let exhausted = (rows.len() as i64) <= max;
            for (row, logins) in &rows {
                if out.len() as i64 == max {
                    next = Some(after.clone());
                    break 'pages;
                }
                after.clone_from(&row.identity_id);
                if hide_disabled && is_disabled(row) {
                    continue;
                }
                out.push(Self::identity_json(row, logins));
            }
            if exhausted {
                break;
            }
        }
        let mut result = json!({ "IdentityPoolId": pool.row.pool_id, "Identities": out });
        if let (Some(token), Some(o)) = (next, result.as_object_mut()) {
            o.insert("NextToken".into(), json!(token));
        }
        Ok(result)
    }

    async fn delete_identities(&self, input: &Value) -> Result<Value, ApiError> {
        let mut unprocessed = Vec::new();
        for id in input
            .get("IdentityIdsToDelete")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            // Deleting what is not there (or not the caller's to see) succeeds, as on Cognito.
            let owned = match self.store.identity(id).await.map_err(internal)? {
                Some((row, _)) => self.pool(&row.pool_id).await.is_ok(),
                None => false,
            };
            if owned && !self.store.delete_identity(id).await.map_err(internal)? {
                unprocessed.push(json!({ "IdentityId": id, "ErrorCode": "InternalServerError" }));
            }
        }
        Ok(json!({ "UnprocessedIdentityIds": unprocessed }))
    }
}

/// The record of `row` once its last login is gone: disabled (inaccessible), as Cognito
/// makes it.
fn disabled_record(row: &IdentityRow) -> Result<String, ApiError> {
    let mut record: Value = serde_json::from_str(&row.record).map_err(internal)?;
    if let Some(o) = record.as_object_mut() {
        o.insert("Disabled".into(), json!(true));
    }
    Ok(record.to_string())
}

fn is_disabled(row: &IdentityRow) -> bool {
    serde_json::from_str::<Value>(&row.record)
        .ok()
        .and_then(|r| r.get("Disabled").and_then(Value::as_bool))
        == Some(true)
}

/// The principal tags a developer gave a built-in token (GetOpenIdTokenForDeveloperIdentity's
/// `PrincipalTags`).
fn developer_tags(login: &VerifiedLogin) -> Vec<(String, String)> {
    if login.provider != BUILTIN_PROVIDER {
        return Vec::new();
    }
    login
        .claims
        .pointer("/https:~1~1aws.amazon.com~1tags/principal_tags")
        .and_then(Value::as_object)
        .map(|tags| {
            tags.iter()
                .filter_map(|(k, v)| {
                    let v = v.as_array()?.first()?.as_str()?;
                    Some((k.clone(), v.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Session tags for a login: a developer's tags for a built-in token, else the pool's
/// principal tag map for its provider: the defaults (`client` ← `aud`, `username` ← `sub`)
/// and/or the mapped claims.
fn principal_tags(config: &PoolConfig, login: &VerifiedLogin) -> Vec<(String, String)> {
    if login.provider == BUILTIN_PROVIDER {
        return developer_tags(login);
    }
    let Some(map) = config.principal_tags.get(&login.provider) else {
        return Vec::new();
    };
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    if map.use_defaults {
        pairs.insert("client".into(), "aud".into());
        pairs.insert("username".into(), "sub".into());
    }
    pairs.extend(map.principal_tags.clone());
    pairs
        .into_iter()
        .filter_map(|(tag, claim)| {
            let value = match login.claims.get(&claim)? {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((tag, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pool_provider_names() {
        let host = "127.0.0.1:4566";
        let aws = Some("cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12".to_owned());
        assert_eq!(
            canonical_user_pool_provider(
                "cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12",
                host
            ),
            aws
        );
        assert_eq!(
            canonical_user_pool_provider("127.0.0.1:4566/us-east-1_Ab12", host),
            aws
        );
        assert_eq!(
            canonical_user_pool_provider("http://127.0.0.1:4566/us-east-1_Ab12", host),
            aws
        );
        assert_eq!(
            canonical_user_pool_provider(
                "cognito-idp.eu-west-1.amazonaws.com/us-east-1_Ab12",
                host
            ),
            None
        );
        assert_eq!(
            canonical_user_pool_provider("accounts.google.com", host),
            None
        );
        assert_eq!(
            canonical_user_pool_provider("evil.example/us-east-1_Ab12", host),
            None
        );
    }

    #[test]
    fn principal_tags_follow_the_map() {
        let mut config = PoolConfig::default();
        let login = VerifiedLogin {
            provider: "p".into(),
            subject: "s".into(),
            claims: json!({"aud": "client-1", "sub": "s", "custom:dept": "ops", "n": 3}),
            amr: vec![],
        };
        assert!(principal_tags(&config, &login).is_empty());
        config.principal_tags.insert(
            "p".into(),
            PrincipalTagMap {
                use_defaults: true,
                principal_tags: BTreeMap::from([
                    ("dept".to_owned(), "custom:dept".to_owned()),
                    ("missing".to_owned(), "nope".to_owned()),
                ]),
            },
        );
        assert_eq!(
            principal_tags(&config, &login),
            vec![
                ("client".to_owned(), "client-1".to_owned()),
                ("dept".to_owned(), "ops".to_owned()),
                ("username".to_owned(), "s".to_owned()),
            ]
        );
    }
}
