//! Cognito identity pools below HTTP: pools and their roles, identities and the logins linked
//! to them, role choice, and Cognate's built-in `cognito-identity.amazonaws.com` OpenID
//! provider (the basic flow's tokens). Login tokens from other providers are verified by the
//! caller's [`Verifier`]; credentials are minted by the caller from the [`CredentialsPlan`]
//! this crate returns, after the role's trust policy agrees.

mod builtin;
mod developer;
mod identities;
mod logins;
pub mod mapping;
mod pools;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use cognate_credentials::MasterKey;
pub use cognate_protocol::cognito::not_authorized;
use cognate_protocol::cognito::{err, invalid, output, str_of, typed};
use cognate_protocol::shapes::cognito_identity as shapes;
use cognate_protocol::{ApiError, Sensitive, string_list};
use cognate_store::{IdentityKeyRow, IdentityPoolRow, IdentityRow, Login, Store, StoreError};
use cognate_userpool::SigningKey;
use cognate_userpool::keys::Alg;
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

/// The `cognito-identity` operations, as the model names them. All are implemented; the
/// public ones (no SigV4: the logins they carry prove the caller, the model's
/// `Operation::requires_signature`) have their own methods.
pub use cognate_protocol::services::cognito_identity::Operation;

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "identity pool storage failure");
    ApiError::internal()
}

/// The pool settings CreateIdentityPool and UpdateIdentityPool share.
struct Settings {
    allow_unauthenticated_identities: bool,
    allow_classic_flow: Option<bool>,
    supported_login_providers: Option<BTreeMap<String, String>>,
    developer_provider_name: Option<String>,
    open_id_connect_provider_arns: Option<Vec<String>>,
    cognito_identity_providers: Option<Vec<shapes::CognitoIdentityProvider>>,
    saml_provider_arns: Option<Vec<String>>,
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
    pub async fn call(&self, op: Operation, input: &Value) -> Result<Value, ApiError> {
        use Operation::*;
        match op {
            CreateIdentityPool => output(self.create_pool(typed(input)?).await?),
            DescribeIdentityPool => output(self.describe_pool(typed(input)?).await?),
            UpdateIdentityPool => output(self.update_pool(typed(input)?).await?),
            DeleteIdentityPool => output(self.delete_pool(typed(input)?).await?),
            ListIdentityPools => output(self.list_pools(typed(input)?).await?),
            SetIdentityPoolRoles => output(self.set_roles(typed(input)?).await?),
            GetIdentityPoolRoles => output(self.get_roles(typed(input)?).await?),
            SetPrincipalTagAttributeMap => output(self.set_tag_map(typed(input)?).await?),
            GetPrincipalTagAttributeMap => output(self.get_tag_map(typed(input)?).await?),
            TagResource => output(self.tag(typed(input)?).await?),
            UntagResource => output(self.untag(typed(input)?).await?),
            ListTagsForResource => output(self.list_tags(typed(input)?).await?),
            GetOpenIdTokenForDeveloperIdentity => {
                output(self.developer_token(typed(input)?).await?)
            }
            LookupDeveloperIdentity => output(self.lookup_developer(typed(input)?).await?),
            MergeDeveloperIdentities => output(self.merge_developer(typed(input)?).await?),
            UnlinkDeveloperIdentity => output(self.unlink_developer(typed(input)?).await?),
            DescribeIdentity => output(self.describe_identity(typed(input)?).await?),
            ListIdentities => output(self.list_identities(typed(input)?).await?),
            DeleteIdentities => output(self.delete_identities(typed(input)?).await?),
            GetId | GetCredentialsForIdentity | GetOpenIdToken | UnlinkIdentity => {
                Err(err("UnknownOperationException", ""))
            }
        }
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
    fn malformed_input_is_refused_without_quoting_it() {
        let input =
            json!({"IdentityPoolId": "p", "Roles": {}, "RoleMappings": {"x": "secret-token"}});
        let e = typed::<shapes::SetIdentityPoolRolesInput>(&input).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(!e.message.contains("secret-token"), "{}", e.message);
    }

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
