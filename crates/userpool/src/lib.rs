//! Cognito user pools below HTTP: pools and app clients, the user directory, sign-up with
//! confirmation codes, password sign-in, refresh and sign-out, RS256 tokens and the JWKS.
//! `UserPools::call` runs one operation on model-shaped JSON (the edge has validated it
//! against the model and, for administrative operations, authorized it with IAM).

mod attributes;
pub mod keys;
mod password;
pub mod srp;
mod totp;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use cognate_credentials::MasterKey;
use cognate_protocol::{ApiError, string_list};
use cognate_store::{
    ClientRow, PoolRow, RefreshTokenRow, SigningKeyRow, Store, UserConflict, UserRow,
};
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use attributes::{When, Writer};
pub use keys::SigningKey;

/// Hashes a password as stored (for benchmarks and tools).
pub fn hash_password(password: &str, rng: &dyn SecureRandom) -> Result<String, ApiError> {
    password::hash(password, rng)
}

/// Verifies a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    password::verify(password, hash)
}
pub use password::PasswordPolicy;

/// The operations implemented so far; every other Cognito operation is unknown to the edge.
pub const OPERATIONS: &[&str] = &[
    "CreateUserPool",
    "DescribeUserPool",
    "DeleteUserPool",
    "ListUserPools",
    "CreateUserPoolClient",
    "DescribeUserPoolClient",
    "DeleteUserPoolClient",
    "ListUserPoolClients",
    "AdminCreateUser",
    "AdminGetUser",
    "AdminDeleteUser",
    "AdminSetUserPassword",
    "AdminConfirmSignUp",
    "AdminDisableUser",
    "AdminEnableUser",
    "AdminUserGlobalSignOut",
    "AdminInitiateAuth",
    "AdminRespondToAuthChallenge",
    "SignUp",
    "ConfirmSignUp",
    "InitiateAuth",
    "RespondToAuthChallenge",
    "GetUser",
    "GlobalSignOut",
    "RevokeToken",
    "CreateGroup",
    "GetGroup",
    "UpdateGroup",
    "DeleteGroup",
    "ListGroups",
    "AdminAddUserToGroup",
    "AdminRemoveUserFromGroup",
    "ListUsersInGroup",
    "AdminListGroupsForUser",
    "ForgotPassword",
    "ConfirmForgotPassword",
    "ChangePassword",
    "ResendConfirmationCode",
    "UpdateUserAttributes",
    "GetUserAttributeVerificationCode",
    "VerifyUserAttribute",
    "DeleteUser",
    "AdminUpdateUserAttributes",
    "AdminResetUserPassword",
    "ListUsers",
    "AssociateSoftwareToken",
    "VerifySoftwareToken",
    "SetUserMFAPreference",
    "AdminSetUserMFAPreference",
    "UpdateUserPool",
    "UpdateUserPoolClient",
    "AddCustomAttributes",
];

/// Operations that need no SigV4 signature: the caller proves itself with a client id,
/// a password, a code or a token instead.
pub fn is_public(operation: &str) -> bool {
    matches!(
        operation,
        "SignUp"
            | "ConfirmSignUp"
            | "InitiateAuth"
            | "RespondToAuthChallenge"
            | "GetUser"
            | "GlobalSignOut"
            | "RevokeToken"
            | "ForgotPassword"
            | "ConfirmForgotPassword"
            | "ChangePassword"
            | "ResendConfirmationCode"
            | "UpdateUserAttributes"
            | "GetUserAttributeVerificationCode"
            | "VerifyUserAttribute"
            | "DeleteUser"
            | "AssociateSoftwareToken"
            | "VerifySoftwareToken"
            | "SetUserMFAPreference"
    )
}

/// What the user pool service keeps in memory between calls: opened signing keys by
/// (pool, kid) (a key is unsealed and parsed once; keys never change), and pools with their
/// settings parsed (dropped on every pool change; `clear` on other nodes' changes).
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: std::sync::RwLock<std::collections::HashMap<(String, String), Arc<SigningKey>>>,
    pools: std::sync::RwLock<std::collections::HashMap<String, Arc<(PoolRow, PoolConfig)>>>,
    /// Password checks running now, per (pool, user): what bounds concurrent guesses.
    attempts: Arc<std::sync::Mutex<std::collections::HashMap<(String, String), u32>>>,
    /// Failure counts of names that are no user (PreventUserExistenceErrors), so that they
    /// lock out and run out of code attempts as real users do; bounded.
    ghosts: std::sync::Mutex<std::collections::HashMap<(String, String), Ghost>>,
}

/// What is counted for a name that is no user.
#[derive(Debug, Clone, Default)]
struct Ghost {
    record: UserRecord,
    code_attempts: u32,
}

/// Most names without users remembered at once (then forgotten all together).
const MAX_GHOSTS: usize = 10_000;

/// One password check running for a user; the slot is given back when this drops.
struct AttemptSlot {
    user: (String, String),
    attempts: Arc<std::sync::Mutex<std::collections::HashMap<(String, String), u32>>>,
}

impl Drop for AttemptSlot {
    fn drop(&mut self) {
        if let Ok(mut running) = self.attempts.lock()
            && let Some(n) = running.get_mut(&self.user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.user);
            }
        }
    }
}

impl KeyCache {
    /// Runs `f` on the ghost of `name` in `pool_id`.
    fn ghost<T>(&self, pool_id: &str, name: &str, f: impl FnOnce(&mut Ghost) -> T) -> Option<T> {
        let mut ghosts = self.ghosts.lock().ok()?;
        if ghosts.len() >= MAX_GHOSTS {
            ghosts.clear();
        }
        let ghost = ghosts
            .entry((pool_id.to_owned(), name.to_lowercase()))
            .or_default();
        Some(f(ghost))
    }

    /// A slot for one more password check of `user`, if fewer than `budget` are running.
    fn attempt_slot(&self, user: (String, String), budget: u32) -> Option<AttemptSlot> {
        let mut running = self.attempts.lock().ok()?;
        let n = running.entry(user.clone()).or_insert(0);
        if *n >= budget {
            return None;
        }
        *n += 1;
        Some(AttemptSlot {
            user,
            attempts: self.attempts.clone(),
        })
    }

    /// Forgets cached pools (after a change on another node).
    pub fn clear(&self) {
        if let Ok(mut pools) = self.pools.write() {
            pools.clear();
        }
    }

    fn pool(&self, id: &str) -> Option<Arc<(PoolRow, PoolConfig)>> {
        self.pools.read().ok()?.get(id).cloned()
    }

    fn insert_pool(&self, pool: Arc<(PoolRow, PoolConfig)>) {
        if let Ok(mut pools) = self.pools.write() {
            if pools.len() >= 10_000 {
                pools.clear();
            }
            pools.insert(pool.0.pool_id.clone(), pool);
        }
    }

    fn forget_pool(&self, id: &str) {
        if let Ok(mut pools) = self.pools.write() {
            pools.remove(id);
        }
    }

    fn get(&self, id: &(String, String)) -> Option<Arc<SigningKey>> {
        self.keys.read().ok()?.get(id).cloned()
    }

    fn insert(&self, id: (String, String), key: Arc<SigningKey>) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(id, key);
        }
    }
}

/// How verification codes and temporary passwords reach users.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// One log line per message (codes included: development only).
    Log,
    /// One JSON file per message in this directory.
    Outbox(PathBuf),
    /// One JSON POST per message to this URL (a mailer or SMS gateway of the operator's).
    Webhook {
        url: String,
        client: reqwest::Client,
    },
    /// Email through an SMTP server (`smtp://`, `smtps://`, `?tls=required` for STARTTLS).
    /// Users with only a phone number get nothing (logged).
    Smtp {
        transport: Box<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
        from: lettre::message::Mailbox,
    },
}

impl Delivery {
    /// SMTP delivery from a URL and a sender address.
    pub fn smtp(url: &str, from: &str) -> Result<Delivery, String> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP URL: {e}"))?
            .build();
        let transport = Box::new(transport);
        let from = from
            .parse()
            .map_err(|e| format!("SMTP sender address: {e}"))?;
        Ok(Delivery::Smtp { transport, from })
    }
}

/// The subject and text of an email for a message.
fn email_text(purpose: &str, field: &str, secret: &str) -> (String, String) {
    if field == "temporary_password" {
        return (
            "Your temporary password".to_owned(),
            format!("Your temporary password is {secret}\n"),
        );
    }
    let subject = match purpose {
        "ForgotPassword" => "Your password reset code",
        _ => "Your verification code",
    };
    (
        subject.to_owned(),
        format!("Your verification code is {secret}\n"),
    )
}

pub(crate) fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message.into())
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    err("InvalidParameterException", message)
}

fn not_authorized(message: &str) -> ApiError {
    err("NotAuthorizedException", message)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "user pool operation failed inside the server");
    ApiError::internal()
}

fn str_of<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    str_of(input, key).ok_or_else(|| invalid(format!("{key} is required")))
}

/// A user's attributes, status and sign-out time (stored as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserRecord {
    username: String,
    attributes: Vec<(String, String)>,
    status: String,
    enabled: bool,
    /// Tokens issued before this (unix seconds) are refused: global sign-out.
    #[serde(default)]
    tokens_valid_after: i64,
    /// Software-token (TOTP) MFA is enabled for sign-in.
    #[serde(default)]
    software_token_mfa: bool,
    #[serde(default)]
    preferred_mfa: bool,
    /// Consecutive failed sign-ins, and until when (unix seconds) sign-in is locked.
    #[serde(default)]
    failed_sign_ins: u32,
    #[serde(default)]
    locked_until: i64,
    /// When the last sign-in attempt was counted: 15 quiet minutes reset the count.
    #[serde(default)]
    last_attempt_at: i64,
    /// Challenge sessions (and SRP secret blocks) answered or failing, until they expire:
    /// each is single use and tolerates few wrong answers.
    #[serde(default)]
    sessions: Vec<SessionUse>,
    /// Sessions expiring at or before this were forgotten to keep `sessions` short: refused.
    #[serde(default)]
    sessions_floor: i64,
}

/// Counts one (possibly failing) sign-in attempt into the record: refused during a lockout,
/// which starts after [`LOCKOUT_AFTER`] in a row and doubles from 1 s to 15 minutes; 15
/// quiet minutes start the count again.
fn count_failure(record: &mut UserRecord, now: i64) -> Result<(), ApiError> {
    if record.locked_until > now {
        return Err(not_authorized("Password attempts exceeded"));
    }
    if record.failed_sign_ins > 0 && now - record.last_attempt_at >= 900 {
        record.failed_sign_ins = 0;
    }
    record.failed_sign_ins = record.failed_sign_ins.saturating_add(1);
    record.last_attempt_at = now;
    if record.failed_sign_ins >= LOCKOUT_AFTER {
        let exponent = (record.failed_sign_ins - LOCKOUT_AFTER).min(10);
        record.locked_until = now + (1i64 << exponent).min(900);
    }
    Ok(())
}

/// What a user's record remembers of one challenge session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionUse {
    id: String,
    expires_at: i64,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    used: bool,
}

impl UserRecord {
    /// The state of session `id` (expiring at `expires_at`): `Err` when it was used, failed
    /// too often, or is older than what the record still remembers.
    fn session_open(&self, id: &str, expires_at: i64) -> Result<(), ApiError> {
        if expires_at <= self.sessions_floor {
            return Err(not_authorized(
                "Invalid session for the user, session is expired.",
            ));
        }
        match self.sessions.iter().find(|u| u.id == id) {
            Some(u) if u.used => Err(not_authorized(
                "Invalid session for the user, session can only be used once.",
            )),
            Some(u) if u.failures >= MAX_SESSION_FAILURES => Err(not_authorized(
                "Invalid session for the user, session is expired.",
            )),
            _ => Ok(()),
        }
    }

    /// Notes a use (`used`) or a wrong answer of session `id`, forgetting expired ones.
    fn note_session(&mut self, id: &str, expires_at: i64, used: bool, now: i64) {
        self.sessions.retain(|u| u.expires_at >= now);
        match self.sessions.iter_mut().find(|u| u.id == id) {
            Some(u) if used => u.used = true,
            Some(u) => u.failures += 1,
            None => self.sessions.push(SessionUse {
                id: id.to_owned(),
                expires_at,
                failures: u32::from(!used),
                used,
            }),
        }
        // Bounded: the oldest are forgotten, and everything as old refused.
        while self.sessions.len() > MAX_REMEMBERED_SESSIONS {
            let Some((i, oldest)) = self
                .sessions
                .iter()
                .enumerate()
                .min_by_key(|(_, u)| u.expires_at)
                .map(|(i, u)| (i, u.expires_at))
            else {
                break;
            };
            self.sessions.remove(i);
            self.sessions_floor = self.sessions_floor.max(oldest);
        }
    }
}

/// A pending confirmation code.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingCode {
    purpose: String,
    /// Hex SHA-256 of the code.
    hash: String,
    expires_at: i64,
    attempts: u32,
}

/// What is sealed per user: the password hash and a pending code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserSecrets {
    password_hash: Option<String>,
    /// The SRP salt and verifier for the same password.
    #[serde(default)]
    srp: Option<srp::Verifier>,
    code: Option<PendingCode>,
    /// A TOTP secret being set up, and the verified one.
    #[serde(default)]
    totp_pending: Option<Vec<u8>>,
    #[serde(default)]
    totp_secret: Option<Vec<u8>>,
    /// The last TOTP time step used (each code works once).
    #[serde(default)]
    totp_last_step: i64,
}

/// A pool's settings as stored (the parts of CreateUserPool's input that shape behaviour).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PoolConfig {
    #[serde(default)]
    password_policy: PasswordPolicy,
    #[serde(default)]
    username_attributes: Vec<String>,
    #[serde(default)]
    alias_attributes: Vec<String>,
    #[serde(default)]
    auto_verified_attributes: Vec<String>,
    #[serde(default = "default_true")]
    case_sensitive: bool,
    #[serde(default)]
    mfa_configuration: String,
    /// Required standard attributes and the pool's custom attributes.
    #[serde(default)]
    schema: attributes::Schema,
    /// The rest of CreateUserPool's input, returned by DescribeUserPool.
    #[serde(default)]
    extra: Map<String, Value>,
}

impl PoolConfig {
    /// Pools made before the schema was enforced kept CreateUserPool's `Schema` as given:
    /// its attributes are taken into the schema (those that are valid), so their custom
    /// attributes still exist.
    fn adopt_stored_schema(&mut self) {
        let Some(Value::Array(items)) = self.extra.remove("Schema") else {
            return;
        };
        for item in items {
            if let Err(e) = self.schema.add(std::slice::from_ref(&item), true) {
                tracing::warn!(error = %e.message, "a stored schema attribute was not adopted");
            }
        }
    }
}

fn default_true() -> bool {
    true
}

/// An app client's settings as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClientConfig {
    name: String,
    #[serde(default)]
    explicit_auth_flows: Vec<String>,
    #[serde(default)]
    prevent_user_existence_errors: bool,
    access_token_minutes: i64,
    id_token_minutes: i64,
    refresh_token_minutes: i64,
    #[serde(default)]
    extra: Map<String, Value>,
}

impl ClientConfig {
    /// The client's `WriteAttributes` (`None`: the default, the standard attributes).
    fn write_attributes(&self) -> Option<Vec<String>> {
        string_list(&Value::Object(self.extra.clone()), "WriteAttributes")
    }

    /// The client's `ReadAttributes` (`None`: every attribute).
    fn read_attributes(&self) -> Option<Vec<String>> {
        string_list(&Value::Object(self.extra.clone()), "ReadAttributes")
    }

    /// How long a challenge session lasts (`AuthSessionValidity`, minutes; 3 by default).
    fn session_secs(&self) -> i64 {
        self.extra
            .get("AuthSessionValidity")
            .and_then(Value::as_i64)
            .unwrap_or(3)
            * 60
    }
}

/// An SRP challenge in progress, sealed into `SECRET_BLOCK` (the client returns it).
#[derive(Debug, Serialize, Deserialize)]
struct SrpBlock {
    /// Single use: the user's record notes it when it is answered.
    #[serde(default)]
    id: String,
    /// The user's `sub`: a user deleted and made again under the name is another user.
    #[serde(default)]
    sub: String,
    pool_id: String,
    client_id: String,
    /// Empty for an unknown user (PreventUserExistenceErrors): no claim can succeed.
    username_key: String,
    user_id: String,
    a: String,
    b: String,
    big_b: String,
    expires_at: i64,
}

/// A ListUsers `Filter`: `attribute = "value"` (exact) or `attribute ^= "value"` (prefix).
#[derive(Debug, PartialEq, Eq)]
struct UserFilter {
    attribute: String,
    prefix: bool,
    value: String,
}

impl UserFilter {
    const ATTRIBUTES: [&'static str; 10] = [
        "username",
        "email",
        "phone_number",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "cognito:user_status",
        "status",
        "sub",
    ];

    fn parse(text: &str) -> Result<UserFilter, ApiError> {
        let bad = || invalid("Error while parsing filter.");
        let (attribute, rest, prefix) = match text.split_once("^=") {
            Some((a, r)) => (a, r, true),
            None => {
                let (a, r) = text.split_once('=').ok_or_else(bad)?;
                (a, r, false)
            }
        };
        let attribute = attribute.trim().trim_matches('"').to_owned();
        let value = rest.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(bad)?
            .replace("\\\"", "\"");
        if !Self::ATTRIBUTES.contains(&attribute.as_str()) {
            return Err(invalid(format!("Invalid search attribute: {attribute}")));
        }
        Ok(UserFilter {
            attribute,
            prefix,
            value,
        })
    }

    fn matches(&self, record: &UserRecord) -> bool {
        let actual = match self.attribute.as_str() {
            "username" => Some(record.username.as_str()),
            "cognito:user_status" => Some(record.status.as_str()),
            "status" => Some(if record.enabled {
                "Enabled"
            } else {
                "Disabled"
            }),
            other => attribute(record, other),
        };
        actual.is_some_and(|a| {
            if self.prefix {
                a.starts_with(&self.value)
            } else {
                a == self.value
            }
        })
    }
}

/// A group's settings (stored as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupRecord {
    description: Option<String>,
    precedence: Option<i64>,
    role_arn: Option<String>,
}

/// `cognito:groups`, `cognito:roles` and `cognito:preferred_role` for a user's groups: groups
/// ordered by precedence (unset last), the preferred role that of the group with the lowest
/// precedence, unless two groups with roles share it.
fn group_claims(groups: &[(String, GroupRecord)]) -> (Vec<String>, Vec<String>, Option<String>) {
    let mut ordered: Vec<&(String, GroupRecord)> = groups.iter().collect();
    ordered.sort_by_key(|(name, g)| (g.precedence.unwrap_or(i64::MAX), name.clone()));
    let names = ordered.iter().map(|(n, _)| n.clone()).collect();
    let mut roles: Vec<String> = Vec::new();
    for (_, g) in &ordered {
        if let Some(r) = &g.role_arn
            && !roles.contains(r)
        {
            roles.push(r.clone());
        }
    }
    let with_roles: Vec<&GroupRecord> = ordered
        .iter()
        .map(|(_, g)| g)
        .filter(|g| g.role_arn.is_some())
        .collect();
    let preferred = match with_roles.as_slice() {
        [first, second, ..]
            if first.precedence == second.precedence && first.role_arn != second.role_arn =>
        {
            None
        }
        [first, ..] => first.role_arn.clone(),
        [] => None,
    };
    (names, roles, preferred)
}

/// The part of a pool id after the region, which SRP mixes into its hashes.
fn pool_suffix(pool_id: &str) -> &str {
    pool_id.split_once('_').map_or(pool_id, |(_, s)| s)
}

/// A challenge in progress (sealed into the `Session` string).
#[derive(Debug, Serialize, Deserialize)]
struct ChallengeSession {
    /// Single use: the user's record notes it when it is answered.
    #[serde(default)]
    id: String,
    /// The user's `sub`: a user deleted and made again under the name is another user.
    #[serde(default)]
    sub: String,
    pool_id: String,
    client_id: String,
    username_key: String,
    challenge: String,
    expires_at: i64,
}

const CODE_LIFETIME_SECS: i64 = 24 * 3600;
/// The CreateUserPoolClient members kept in `ClientConfig`'s own fields (the others are kept
/// as given, in `extra`).
const CLIENT_FIELDS: &[&str] = &[
    "UserPoolId",
    "ClientName",
    "GenerateSecret",
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
];
/// How many times an operation whose write lost a race starts again before giving up.
const MAX_ATTEMPTS: usize = 16;
/// The code of the internal error that makes `call` start an operation again.
const STALE: &str = "cognate:StaleWrite";

/// A write that lost a race with another change of the same row: nothing was written.
fn stale() -> ApiError {
    err(STALE, "stale write")
}

/// A compare-and-swap's outcome: written, or `stale()` (the operation starts again).
fn swapped(written: Result<bool, cognate_store::StoreError>) -> Result<(), ApiError> {
    if written.map_err(internal)? {
        Ok(())
    } else {
        Err(stale())
    }
}
const MAX_CODE_ATTEMPTS: u32 = 5;
/// Answered or failing sessions a user's record remembers until they expire.
const MAX_REMEMBERED_SESSIONS: usize = 32;
/// Wrong answers a challenge session takes before it is spent.
const MAX_SESSION_FAILURES: u32 = 3;
/// Failed sign-ins in a row before the lockout starts.
const LOCKOUT_AFTER: u32 = 5;

/// One call's view of the user pool service.
pub struct UserPools<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub rng: &'a (dyn SecureRandom + Sync),
    /// Opened signing keys, shared by every call.
    pub keys: &'a KeyCache,
    pub region: &'a str,
    /// Base of every pool's issuer URL (`<public-url>`); the issuer is `<base>/<poolId>`.
    pub issuer_base: &'a str,
    pub delivery: &'a Delivery,
    pub now: time::OffsetDateTime,
    /// The signed caller's account, for administrative operations.
    pub account: Option<&'a str>,
}

impl UserPools<'_> {
    fn now(&self) -> i64 {
        self.now.unix_timestamp()
    }

    fn random_string(&self, len: usize, alphabet: &[u8]) -> Result<String, ApiError> {
        let mut bytes = vec![0u8; len];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| ApiError::internal())?;
        Ok(bytes
            .iter()
            .map(|b| {
                let i = usize::from(*b) % alphabet.len();
                char::from(alphabet.get(i).copied().unwrap_or(b'a'))
            })
            .collect())
    }

    fn account(&self) -> Result<&str, ApiError> {
        self.account.ok_or_else(ApiError::internal)
    }

    /// Runs one operation. Every change of a user (or pool, client, group) is a
    /// compare-and-swap on what the operation read; when another change came first the
    /// operation starts again from a fresh read, so it never undoes that change.
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            match self.call_once(operation, input).await {
                Err(e) if e.code == STALE => continue,
                other => return other,
            }
        }
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TooManyRequestsException",
            "Too many concurrent changes to the same resource; try again.",
        ))
    }

    async fn call_once(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        match operation {
            "CreateUserPool" => self.create_pool(input).await,
            "DescribeUserPool" => self.describe_pool(input).await,
            "DeleteUserPool" => self.delete_pool(input).await,
            "ListUserPools" => self.list_pools(input).await,
            "CreateUserPoolClient" => self.create_client(input).await,
            "DescribeUserPoolClient" => self.describe_client(input).await,
            "DeleteUserPoolClient" => self.delete_client(input).await,
            "ListUserPoolClients" => self.list_clients(input).await,
            "AdminCreateUser" => self.admin_create_user(input).await,
            "AdminGetUser" => self.admin_get_user(input).await,
            "AdminDeleteUser" => self.admin_delete_user(input).await,
            "AdminSetUserPassword" => self.admin_set_password(input).await,
            "AdminConfirmSignUp" => self.admin_confirm(input).await,
            "AdminDisableUser" => self.admin_set_enabled(input, false).await,
            "AdminEnableUser" => self.admin_set_enabled(input, true).await,
            "AdminUserGlobalSignOut" => self.admin_sign_out(input).await,
            "AdminInitiateAuth" => self.initiate_auth(input, true).await,
            "AdminRespondToAuthChallenge" => self.respond_to_challenge(input, true).await,
            "SignUp" => self.sign_up(input).await,
            "ConfirmSignUp" => self.confirm_sign_up(input).await,
            "InitiateAuth" => self.initiate_auth(input, false).await,
            "RespondToAuthChallenge" => self.respond_to_challenge(input, false).await,
            "GetUser" => self.get_user(input).await,
            "GlobalSignOut" => self.global_sign_out(input).await,
            "RevokeToken" => self.revoke_token(input).await,
            "CreateGroup" => self.create_group(input).await,
            "GetGroup" => self.get_group(input).await,
            "UpdateGroup" => self.update_group(input).await,
            "DeleteGroup" => self.delete_group(input).await,
            "ListGroups" => self.list_groups(input).await,
            "AdminAddUserToGroup" => self.set_membership(input, true).await,
            "AdminRemoveUserFromGroup" => self.set_membership(input, false).await,
            "ListUsersInGroup" => self.list_users_in_group(input).await,
            "AdminListGroupsForUser" => self.groups_for_user(input).await,
            "ForgotPassword" => self.forgot_password(input).await,
            "ConfirmForgotPassword" => self.confirm_forgot_password(input).await,
            "ChangePassword" => self.change_password(input).await,
            "ResendConfirmationCode" => self.resend_code(input).await,
            "UpdateUserAttributes" => self.update_attributes(input).await,
            "GetUserAttributeVerificationCode" => self.attribute_code(input).await,
            "VerifyUserAttribute" => self.verify_attribute(input).await,
            "DeleteUser" => self.delete_self(input).await,
            "AdminUpdateUserAttributes" => self.admin_update_attributes(input).await,
            "AdminResetUserPassword" => self.admin_reset_password(input).await,
            "ListUsers" => self.list_users(input).await,
            "AssociateSoftwareToken" => self.associate_software_token(input).await,
            "VerifySoftwareToken" => self.verify_software_token(input).await,
            "SetUserMFAPreference" => self.set_mfa_preference(input, false).await,
            "AdminSetUserMFAPreference" => self.set_mfa_preference(input, true).await,
            "UpdateUserPool" => self.update_pool(input).await,
            "UpdateUserPoolClient" => self.update_client(input).await,
            "AddCustomAttributes" => self.add_custom_attributes(input).await,
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "",
            )),
        }
    }

    // ---- pools -------------------------------------------------------------------------

    /// A pool's tags (`UserPoolTags`), for `aws:ResourceTag/…`; `None` when the caller's
    /// account has no such pool.
    pub async fn pool_tags(&self, pool_id: &str) -> Option<Value> {
        let (_, config) = self.pool(pool_id).await.ok()?;
        Some(
            config
                .extra
                .get("UserPoolTags")
                .cloned()
                .unwrap_or_else(|| json!({})),
        )
    }

    fn pool_arn(&self, pool: &PoolRow) -> String {
        format!(
            "arn:aws:cognito-idp:{}:{}:userpool/{}",
            self.region, pool.account_id, pool.pool_id
        )
    }

    /// A pool of the caller's account (administrative operations) or any pool (public ones,
    /// which name a client of it).
    async fn pool(&self, pool_id: &str) -> Result<(PoolRow, PoolConfig), ApiError> {
        let not_found = || {
            err(
                "ResourceNotFoundException",
                format!("User pool {pool_id} does not exist."),
            )
        };
        let cached = match self.keys.pool(pool_id) {
            Some(p) => p,
            None => {
                let row = self
                    .store
                    .user_pool(pool_id)
                    .await
                    .map_err(internal)?
                    .ok_or_else(not_found)?;
                let mut config: PoolConfig = serde_json::from_str(&row.config).map_err(internal)?;
                config.adopt_stored_schema();
                let pool = Arc::new((row, config));
                self.keys.insert_pool(pool.clone());
                pool
            }
        };
        if self.account.is_some_and(|a| a != cached.0.account_id) {
            return Err(not_found());
        }
        Ok((cached.0.clone(), cached.1.clone()))
    }

    async fn create_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let name = required(input, "PoolName")?;
        let policy = match input.pointer("/Policies/PasswordPolicy") {
            Some(p) => PasswordPolicy::from_input(p)?,
            None => PasswordPolicy::default(),
        };
        let strings = |key: &str| -> Vec<String> { string_list(input, key).unwrap_or_default() };
        let username_attributes = strings("UsernameAttributes");
        let alias_attributes = strings("AliasAttributes");
        if !username_attributes.is_empty() && !alias_attributes.is_empty() {
            return Err(invalid(
                "Only one of the aliasAttributes or usernameAttributes can be set in a User Pool.",
            ));
        }
        let mut schema = attributes::Schema::default();
        if let Some(items) = input.get("Schema").and_then(Value::as_array) {
            schema.add(items, true)?;
        }
        let mut extra = input.as_object().cloned().unwrap_or_default();
        for k in [
            "PoolName",
            "Policies",
            "UsernameAttributes",
            "AliasAttributes",
            "AutoVerifiedAttributes",
            "MfaConfiguration",
            "UsernameConfiguration",
            "Schema",
        ] {
            extra.remove(k);
        }
        let config = PoolConfig {
            password_policy: policy,
            username_attributes,
            alias_attributes,
            auto_verified_attributes: strings("AutoVerifiedAttributes"),
            case_sensitive: input
                .pointer("/UsernameConfiguration/CaseSensitive")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            mfa_configuration: str_of(input, "MfaConfiguration")
                .unwrap_or("OFF")
                .to_owned(),
            schema,
            extra,
        };
        let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let pool_id = format!("{}_{}", self.region, self.random_string(9, alnum)?);
        let (kid, der) = keys::generate(self.rng).map_err(internal)?;
        let key_sealed = self
            .master
            .seal(&format!("userpool-key:{pool_id}:{kid}"), &der, self.rng)
            .map_err(internal)?;
        let row = PoolRow {
            pool_id: pool_id.clone(),
            account_id: self.account()?.to_owned(),
            name: name.to_owned(),
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: self.now(),
            updated_at: self.now(),
        };
        let key = SigningKeyRow {
            pool_id: pool_id.clone(),
            kid,
            key_sealed,
            created_at: now_millis(self.now),
        };
        self.store.create_pool(&row, &key).await.map_err(internal)?;
        Ok(json!({ "UserPool": self.pool_json(&row, &config) }))
    }

    fn pool_json(&self, row: &PoolRow, config: &PoolConfig) -> Value {
        let mut out = config.extra.clone();
        out.insert("Id".into(), json!(row.pool_id));
        out.insert("Name".into(), json!(row.name));
        out.insert("Arn".into(), json!(self.pool_arn(row)));
        out.insert(
            "Policies".into(),
            json!({ "PasswordPolicy": config.password_policy.to_output() }),
        );
        if !config.username_attributes.is_empty() {
            out.insert(
                "UsernameAttributes".into(),
                json!(config.username_attributes),
            );
        }
        if !config.alias_attributes.is_empty() {
            out.insert("AliasAttributes".into(), json!(config.alias_attributes));
        }
        if !config.auto_verified_attributes.is_empty() {
            out.insert(
                "AutoVerifiedAttributes".into(),
                json!(config.auto_verified_attributes),
            );
        }
        out.insert("MfaConfiguration".into(), json!(config.mfa_configuration));
        out.insert("SchemaAttributes".into(), config.schema.to_json());
        out.insert(
            "UsernameConfiguration".into(),
            json!({ "CaseSensitive": config.case_sensitive }),
        );
        out.insert("CreationDate".into(), json!(row.created_at));
        out.insert("LastModifiedDate".into(), json!(row.updated_at));
        Value::Object(out)
    }

    /// UpdateUserPool: the settings given replace the stored ones (as on AWS, an omitted
    /// setting that has a default returns to it only where AWS says so; here omitted
    /// settings are kept).
    async fn update_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, mut config) = self.pool_to_change(required(input, "UserPoolId")?).await?;
        if let Some(p) = input.pointer("/Policies/PasswordPolicy") {
            config.password_policy = PasswordPolicy::from_input(p)?;
        }
        if let Some(m) = str_of(input, "MfaConfiguration") {
            config.mfa_configuration = m.to_owned();
        }
        if let Some(a) = string_list(input, "AutoVerifiedAttributes") {
            config.auto_verified_attributes = a;
        }
        for (k, v) in input.as_object().into_iter().flatten() {
            if !matches!(
                k.as_str(),
                "UserPoolId" | "Policies" | "MfaConfiguration" | "AutoVerifiedAttributes"
            ) {
                config.extra.insert(k.clone(), v.clone());
            }
        }
        self.change_pool(&row, &config).await?;
        Ok(json!({}))
    }

    /// A pool about to change: read from the store, not the cache, since the change is
    /// written only if the stored settings are still these.
    async fn pool_to_change(&self, pool_id: &str) -> Result<(PoolRow, PoolConfig), ApiError> {
        self.keys.forget_pool(pool_id);
        self.pool(pool_id).await
    }

    /// Writes a pool's new settings if nobody changed them since `row` was read.
    async fn change_pool(&self, row: &PoolRow, config: &PoolConfig) -> Result<(), ApiError> {
        let text = serde_json::to_string(config).map_err(internal)?;
        let written = self
            .store
            .update_user_pool(&row.pool_id, &row.config, &text, self.now())
            .await;
        self.keys.forget_pool(&row.pool_id);
        swapped(written)
    }

    async fn add_custom_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, mut config) = self.pool_to_change(required(input, "UserPoolId")?).await?;
        let items = input
            .get("CustomAttributes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        config.schema.add(&items, false)?;
        self.change_pool(&row, &config).await?;
        Ok(json!({}))
    }

    async fn describe_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, config) = self.pool(required(input, "UserPoolId")?).await?;
        Ok(json!({ "UserPool": self.pool_json(&row, &config) }))
    }

    async fn delete_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, _) = self.pool(required(input, "UserPoolId")?).await?;
        self.store
            .delete_user_pool(&row.pool_id)
            .await
            .map_err(internal)?;
        self.keys.forget_pool(&row.pool_id);
        Ok(json!({}))
    }

    async fn list_pools(&self, input: &Value) -> Result<Value, ApiError> {
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let after = str_of(input, "NextToken").unwrap_or("");
        let mut rows = self
            .store
            .user_pools_of(self.account()?, after, max + 1)
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let pools: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({ "Id": r.pool_id, "Name": r.name, "CreationDate": r.created_at, "LastModifiedDate": r.updated_at })
            })
            .collect();
        let mut out = json!({ "UserPools": pools });
        if more && let (Some(last), Some(obj)) = (rows.last(), out.as_object_mut()) {
            obj.insert("NextToken".into(), json!(last.pool_id));
        }
        Ok(out)
    }

    // ---- app clients -------------------------------------------------------------------

    async fn client(&self, client_id: &str) -> Result<(ClientRow, ClientConfig), ApiError> {
        let row = self
            .store
            .app_client(client_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                err(
                    "ResourceNotFoundException",
                    format!("User pool client {client_id} does not exist."),
                )
            })?;
        let config: ClientConfig = serde_json::from_str(&row.config).map_err(internal)?;
        Ok((row, config))
    }

    fn client_secret(&self, row: &ClientRow) -> Result<Option<String>, ApiError> {
        match &row.secret_sealed {
            None => Ok(None),
            Some(sealed) => {
                let plain = self
                    .master
                    .open(&format!("userpool-client:{}", row.client_id), sealed)
                    .map_err(internal)?;
                Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
            }
        }
    }

    fn client_json(&self, row: &ClientRow, config: &ClientConfig, secret: Option<&str>) -> Value {
        let mut out = config.extra.clone();
        out.insert("UserPoolId".into(), json!(row.pool_id));
        out.insert("ClientName".into(), json!(config.name));
        out.insert("ClientId".into(), json!(row.client_id));
        if let Some(s) = secret {
            out.insert("ClientSecret".into(), json!(s));
        }
        out.insert(
            "ExplicitAuthFlows".into(),
            json!(config.explicit_auth_flows),
        );
        out.insert(
            "PreventUserExistenceErrors".into(),
            json!(if config.prevent_user_existence_errors {
                "ENABLED"
            } else {
                "LEGACY"
            }),
        );
        out.insert(
            "AccessTokenValidity".into(),
            json!(config.access_token_minutes),
        );
        out.insert("IdTokenValidity".into(), json!(config.id_token_minutes));
        out.insert(
            "RefreshTokenValidity".into(),
            json!(config.refresh_token_minutes / (24 * 60)),
        );
        out.insert(
            "TokenValidityUnits".into(),
            json!({ "AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days" }),
        );
        out.insert("CreationDate".into(), json!(row.created_at));
        out.insert("LastModifiedDate".into(), json!(row.updated_at));
        Value::Object(out)
    }

    async fn create_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let name = required(input, "ClientName")?;
        let access = validity_minutes(input, "AccessToken").unwrap_or(60);
        let id = validity_minutes(input, "IdToken").unwrap_or(60);
        let refresh = validity_minutes(input, "RefreshToken").unwrap_or(30 * 24 * 60);
        check_validity(access, id, refresh)?;
        let flows: Vec<String> = string_list(input, "ExplicitAuthFlows").unwrap_or_else(|| {
            vec![
                "ALLOW_REFRESH_TOKEN_AUTH".into(),
                "ALLOW_USER_SRP_AUTH".into(),
                "ALLOW_CUSTOM_AUTH".into(),
            ]
        });
        let mut extra = input.as_object().cloned().unwrap_or_default();
        for k in CLIENT_FIELDS {
            extra.remove(*k);
        }
        let config = ClientConfig {
            name: name.to_owned(),
            explicit_auth_flows: flows,
            prevent_user_existence_errors: str_of(input, "PreventUserExistenceErrors")
                == Some("ENABLED"),
            access_token_minutes: access,
            id_token_minutes: id,
            refresh_token_minutes: refresh,
            extra,
        };
        self.check_client_attributes(&pool.pool_id, &config).await?;
        let client_id = self.random_string(26, b"abcdefghijklmnopqrstuvwxyz0123456789")?;
        let secret = if input.get("GenerateSecret").and_then(Value::as_bool) == Some(true) {
            Some(self.random_string(51, b"abcdefghijklmnopqrstuvwxyz0123456789")?)
        } else {
            None
        };
        let secret_sealed = match &secret {
            Some(s) => Some(
                self.master
                    .seal(
                        &format!("userpool-client:{client_id}"),
                        s.as_bytes(),
                        self.rng,
                    )
                    .map_err(internal)?,
            ),
            None => None,
        };
        let row = ClientRow {
            client_id,
            pool_id: pool.pool_id,
            secret_sealed,
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: self.now(),
            updated_at: self.now(),
        };
        if !self.store.create_app_client(&row).await.map_err(internal)? {
            return Err(err(
                "ResourceNotFoundException",
                "User pool does not exist.",
            ));
        }
        Ok(json!({ "UserPoolClient": self.client_json(&row, &config, secret.as_deref()) }))
    }

    /// A client's `ReadAttributes` and `WriteAttributes` must name attributes of its pool.
    async fn check_client_attributes(
        &self,
        pool_id: &str,
        config: &ClientConfig,
    ) -> Result<(), ApiError> {
        let (_, pool) = self.pool(pool_id).await?;
        for (list, word) in [
            (config.read_attributes(), "read"),
            (config.write_attributes(), "write"),
        ] {
            let unknown = list
                .into_iter()
                .flatten()
                .any(|a| pool.schema.attribute(&a).is_none() || (word == "write" && a == "sub"));
            if unknown {
                return Err(invalid(format!(
                    "Invalid {word} attributes specified while creating a client"
                )));
            }
        }
        Ok(())
    }

    /// A client of a pool of the caller's account.
    async fn owned_client(&self, input: &Value) -> Result<(ClientRow, ClientConfig), ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (row, config) = self.client(required(input, "ClientId")?).await?;
        if row.pool_id != pool.pool_id {
            return Err(err(
                "ResourceNotFoundException",
                "User pool client does not exist.",
            ));
        }
        Ok((row, config))
    }

    async fn update_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (mut row, mut config) = self.owned_client(input).await?;
        if let Some(name) = str_of(input, "ClientName") {
            config.name = name.to_owned();
        }
        if let Some(flows) = string_list(input, "ExplicitAuthFlows") {
            config.explicit_auth_flows = flows;
        }
        if let Some(p) = str_of(input, "PreventUserExistenceErrors") {
            config.prevent_user_existence_errors = p == "ENABLED";
        }
        if let Some(m) = validity_minutes(input, "AccessToken") {
            config.access_token_minutes = m;
        }
        if let Some(m) = validity_minutes(input, "IdToken") {
            config.id_token_minutes = m;
        }
        if let Some(m) = validity_minutes(input, "RefreshToken") {
            config.refresh_token_minutes = m;
        }
        for (k, v) in input.as_object().into_iter().flatten() {
            if !CLIENT_FIELDS.contains(&k.as_str()) && k != "ClientId" {
                config.extra.insert(k.clone(), v.clone());
            }
        }
        self.check_client_attributes(&row.pool_id, &config).await?;
        check_validity(
            config.access_token_minutes,
            config.id_token_minutes,
            config.refresh_token_minutes,
        )?;
        let expected = std::mem::replace(
            &mut row.config,
            serde_json::to_string(&config).map_err(internal)?,
        );
        row.updated_at = self.now();
        swapped(self.store.update_app_client(&row, &expected).await)?;
        let secret = self.client_secret(&row)?;
        Ok(json!({ "UserPoolClient": self.client_json(&row, &config, secret.as_deref()) }))
    }

    async fn describe_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, config) = self.owned_client(input).await?;
        let secret = self.client_secret(&row)?;
        Ok(json!({ "UserPoolClient": self.client_json(&row, &config, secret.as_deref()) }))
    }

    async fn delete_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, _) = self.owned_client(input).await?;
        self.store
            .delete_app_client(&row.client_id)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    async fn list_clients(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let after = str_of(input, "NextToken").unwrap_or("");
        let mut rows = self
            .store
            .app_clients_of(&pool.pool_id, after, max + 1)
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let mut clients = Vec::new();
        for r in &rows {
            let config: ClientConfig = serde_json::from_str(&r.config).map_err(internal)?;
            clients.push(json!({ "ClientId": r.client_id, "UserPoolId": r.pool_id, "ClientName": config.name }));
        }
        let mut out = json!({ "UserPoolClients": clients });
        if more && let (Some(last), Some(obj)) = (rows.last(), out.as_object_mut()) {
            obj.insert("NextToken".into(), json!(last.client_id));
        }
        Ok(out)
    }

    // ---- users -------------------------------------------------------------------------

    fn username_key(config: &PoolConfig, username: &str) -> String {
        if config.case_sensitive {
            username.to_owned()
        } else {
            username.to_lowercase()
        }
    }

    fn aliases(config: &PoolConfig, record: &UserRecord) -> Vec<String> {
        let mut out = Vec::new();
        for name in config
            .username_attributes
            .iter()
            .chain(config.alias_attributes.iter())
        {
            if name == "preferred_username" || name == "email" || name == "phone_number" {
                let verified = name == "preferred_username"
                    || config.username_attributes.contains(name)
                    || attribute(record, &format!("{name}_verified")) == Some("true");
                if verified && let Some(v) = attribute(record, name) {
                    out.push(format!("{name}:{}", v.to_lowercase()));
                }
            }
        }
        out
    }

    fn seal_secrets(
        &self,
        pool_id: &str,
        sub: &str,
        secrets: &UserSecrets,
    ) -> Result<Vec<u8>, ApiError> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(secrets).map_err(internal)?);
        self.master
            .seal(&format!("userpool-user:{pool_id}:{sub}"), &plain, self.rng)
            .map_err(internal)
    }

    fn open_secrets(&self, row: &UserRow) -> Result<UserSecrets, ApiError> {
        let plain = self
            .master
            .open(
                &format!("userpool-user:{}:{}", row.pool_id, row.sub),
                &row.secrets_sealed,
            )
            .map_err(internal)?;
        serde_json::from_slice(&plain).map_err(internal)
    }

    /// Finds a user by the name a caller gave: the username, or an email / phone number the
    /// pool uses as username or alias.
    async fn find_user(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        name: &str,
    ) -> Result<Option<(UserRow, UserRecord)>, ApiError> {
        let row = match self
            .store
            .pool_user(pool_id, &Self::username_key(config, name))
            .await
            .map_err(internal)?
        {
            Some(r) => Some(r),
            None => {
                let mut found = None;
                for attr in ["email", "phone_number", "preferred_username"] {
                    let used = config
                        .username_attributes
                        .iter()
                        .chain(config.alias_attributes.iter())
                        .any(|a| a == attr);
                    if used
                        && let Some(r) = self
                            .store
                            .pool_user_by_alias(pool_id, &format!("{attr}:{}", name.to_lowercase()))
                            .await
                            .map_err(internal)?
                    {
                        found = Some(r);
                        break;
                    }
                }
                found
            }
        };
        match row {
            Some(row) => {
                let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
                Ok(Some((row, record)))
            }
            None => Ok(None),
        }
    }

    async fn user_or_error(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        name: &str,
    ) -> Result<(UserRow, UserRecord), ApiError> {
        self.find_user(pool_id, config, name)
            .await?
            .ok_or_else(|| err("UserNotFoundException", "User does not exist."))
    }

    /// Writes a user's new state if it is still at the version `row` was read at, and returns
    /// the row as stored; a lost race is `stale()`, which starts the operation again.
    async fn save_user(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        record: &UserRecord,
        secrets: &UserSecrets,
    ) -> Result<UserRow, ApiError> {
        let mut row = row.clone();
        row.record = serde_json::to_string(record).map_err(internal)?;
        row.secrets_sealed = self.seal_secrets(&row.pool_id, &row.sub, secrets)?;
        row.updated_at = self.now();
        match self
            .store
            .update_pool_user(&row, &Self::aliases(config, record))
            .await
            .map_err(internal)?
        {
            Ok(true) => {
                row.version += 1;
                Ok(row)
            }
            Ok(false) => Err(err("UserNotFoundException", "User does not exist.")),
            Err(UserConflict::Stale) => Err(stale()),
            Err(_) => Err(err(
                "AliasExistsException",
                "An account with the given email already exists.",
            )),
        }
    }

    /// Builds a new user: checks its attributes against the schema and what `writer` may
    /// write, derives the username and `sub`.
    fn new_user(
        &self,
        config: &PoolConfig,
        username: &str,
        attributes: &[(String, String)],
        status: &str,
        (writer, when): (Writer<'_>, When),
    ) -> Result<(String, UserRecord), ApiError> {
        config.schema.check_writes(attributes, &[], writer, when)?;
        let mut attrs: Vec<(String, String)> = Vec::new();
        for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            attrs.retain(|(n, _)| n != name);
            attrs.push((name.clone(), value.clone()));
        }
        // A pool that signs users in by email or phone takes that as the username and
        // generates the username itself.
        let mut display = username.to_owned();
        if !config.username_attributes.is_empty() {
            let looks_like = |attr: &str| match attr {
                "email" => username.contains('@'),
                "phone_number" => username.starts_with('+'),
                _ => false,
            };
            let Some(attr) = config.username_attributes.iter().find(|a| looks_like(a)) else {
                return Err(invalid(
                    "Username should be either an email or a phone number.",
                ));
            };
            attrs.retain(|(n, _)| n != attr);
            attrs.push((attr.clone(), username.to_owned()));
            display = uuid::Uuid::new_v4().to_string();
        } else if username.contains('@') && config.alias_attributes.iter().any(|a| a == "email") {
            return Err(invalid(
                "Username cannot be of email format, since user pool is configured for email alias.",
            ));
        }
        if let Some(missing) = config.schema.missing_required(&attrs).first() {
            return Err(invalid(format!(
                "Attributes did not conform to the schema: {missing}: The attribute is required"
            )));
        }
        let sub = uuid::Uuid::new_v4().to_string();
        attrs.insert(0, ("sub".into(), sub.clone()));
        Ok((
            sub,
            UserRecord {
                username: display,
                attributes: attrs,
                status: status.to_owned(),
                enabled: true,
                tokens_valid_after: 0,
                software_token_mfa: false,
                preferred_mfa: false,
                failed_sign_ins: 0,
                locked_until: 0,
                last_attempt_at: 0,
                sessions: Vec::new(),
                sessions_floor: 0,
            },
        ))
    }

    async fn insert_user(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        sub: &str,
        record: &UserRecord,
        secrets: &UserSecrets,
    ) -> Result<UserRow, ApiError> {
        let row = UserRow {
            pool_id: pool_id.to_owned(),
            username_key: Self::username_key(config, &record.username),
            sub: sub.to_owned(),
            record: serde_json::to_string(record).map_err(internal)?,
            secrets_sealed: self.seal_secrets(pool_id, sub, secrets)?,
            created_at: self.now(),
            updated_at: self.now(),
            version: 0,
        };
        match self
            .store
            .create_pool_user(&row, &Self::aliases(config, record))
            .await
            .map_err(internal)?
        {
            Ok(()) => Ok(row),
            Err(UserConflict::Username) => {
                Err(err("UsernameExistsException", "User already exists"))
            }
            Err(UserConflict::Alias(_)) => Err(err(
                "UsernameExistsException",
                "An account with the given email already exists.",
            )),
            Err(UserConflict::Stale) => Err(stale()),
        }
    }

    fn user_json(row: &UserRow, record: &UserRecord, attributes_key: &str) -> Value {
        let attrs: Vec<Value> = record
            .attributes
            .iter()
            .map(|(n, v)| json!({ "Name": n, "Value": v }))
            .collect();
        json!({
            "Username": record.username,
            attributes_key: attrs,
            "UserCreateDate": row.created_at,
            "UserLastModifiedDate": row.updated_at,
            "Enabled": record.enabled,
            "UserStatus": record.status,
        })
    }

    fn mfa_json(record: &UserRecord, out: &mut Map<String, Value>) {
        if record.software_token_mfa {
            out.insert("UserMFASettingList".into(), json!(["SOFTWARE_TOKEN_MFA"]));
            if record.preferred_mfa {
                out.insert("PreferredMfaSetting".into(), json!("SOFTWARE_TOKEN_MFA"));
            }
        }
    }

    fn attributes_of(input: &Value, key: &str) -> Vec<(String, String)> {
        input
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| {
                        Some((
                            str_of(v, "Name")?.to_owned(),
                            str_of(v, "Value").unwrap_or("").to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes a message (a code or a temporary password) for the user.
    async fn deliver(
        &self,
        pool_id: &str,
        record: &UserRecord,
        purpose: &str,
        field: &str,
        secret: &str,
    ) -> Result<Value, ApiError> {
        let (medium, attr) = match attribute(record, "email") {
            Some(_) => ("EMAIL", "email"),
            None => ("SMS", "phone_number"),
        };
        let destination = attribute(record, attr).unwrap_or("").to_owned();
        let message = json!({
            "pool_id": pool_id,
            "username": record.username,
            "purpose": purpose,
            "delivery_medium": medium,
            "destination": destination,
            field: secret,
            "created_at": self.now(),
        });
        match self.delivery {
            Delivery::Log => {
                tracing::info!(target: "cognate::delivery", pool_id, username = %record.username, purpose, %message, "message to a user");
            }
            Delivery::Outbox(dir) => {
                std::fs::create_dir_all(dir).map_err(internal)?;
                let name = format!(
                    "{}-{}.json",
                    self.now.unix_timestamp_nanos(),
                    uuid::Uuid::new_v4().simple()
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, serde_json::to_vec_pretty(&message).map_err(internal)?)
                    .map_err(internal)?;
                std::fs::rename(&tmp, dir.join(name)).map_err(internal)?;
            }
            Delivery::Webhook { url, client } => {
                // As with Cognito's own delivery, the call succeeds even if the message could
                // not be handed over; the failure is logged (without the secret).
                let sent = client
                    .post(url)
                    .json(&message)
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if let Err(e) = sent {
                    tracing::error!(pool_id, purpose, error = %e.without_url(), "message webhook failed");
                }
            }
            Delivery::Smtp { transport, from } => {
                use lettre::AsyncTransport as _;
                let to = (medium == "EMAIL")
                    .then(|| destination.parse::<lettre::message::Mailbox>().ok())
                    .flatten();
                match to {
                    None => tracing::warn!(
                        pool_id,
                        purpose,
                        "no email address to deliver to (SMS is not configured)"
                    ),
                    Some(to) => {
                        let (subject, text) = email_text(purpose, field, secret);
                        let email = lettre::Message::builder()
                            .from(from.clone())
                            .to(to)
                            .subject(subject)
                            .body(text)
                            .map_err(internal)?;
                        if let Err(e) = transport.send(email).await {
                            tracing::error!(pool_id, purpose, error = %e, "email delivery failed");
                        }
                    }
                }
            }
        }
        Ok(json!({
            "Destination": mask(&destination),
            "DeliveryMedium": medium,
            "AttributeName": attr,
        }))
    }

    /// Stores what verifies `password`: an Argon2id hash (password sign-in) and an SRP salt
    /// and verifier (SRP sign-in). The password itself is never kept.
    async fn set_password(
        &self,
        secrets: &mut UserSecrets,
        pool_id: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ApiError> {
        let (hash, verifier) =
            password::derive_off_thread(password, pool_suffix(pool_id), username).await?;
        secrets.password_hash = Some(hash);
        secrets.srp = Some(verifier);
        Ok(())
    }

    fn new_code(&self, purpose: &str) -> Result<(String, PendingCode), ApiError> {
        let code = self.random_string(6, b"0123456789")?;
        Ok((
            code.clone(),
            PendingCode {
                purpose: purpose.to_owned(),
                hash: hex::encode(ring::digest::digest(&ring::digest::SHA256, code.as_bytes())),
                expires_at: self.now() + CODE_LIFETIME_SECS,
                attempts: 0,
            },
        ))
    }

    /// Checks a code; on a mismatch counts the attempt (the caller saves the secrets).
    fn check_code(
        &self,
        secrets: &mut UserSecrets,
        purpose: &str,
        code: &str,
    ) -> Result<(), ApiError> {
        let mismatch = || {
            err(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )
        };
        let Some(pending) = secrets.code.as_mut().filter(|c| c.purpose == purpose) else {
            return Err(mismatch());
        };
        if pending.attempts >= MAX_CODE_ATTEMPTS {
            return Err(err(
                "LimitExceededException",
                "Attempt limit exceeded, please try after some time.",
            ));
        }
        let given = hex::encode(ring::digest::digest(&ring::digest::SHA256, code.as_bytes()));
        // Compared without an early exit, so timing does not reveal a matching prefix.
        let differs = given.len() != pending.hash.len()
            || given
                .bytes()
                .zip(pending.hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differs {
            pending.attempts += 1;
            return Err(mismatch());
        }
        if pending.expires_at < self.now() {
            return Err(err(
                "ExpiredCodeException",
                "Invalid code provided, please request a code again.",
            ));
        }
        secrets.code = None;
        Ok(())
    }

    async fn admin_create_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config) = self.pool(required(input, "UserPoolId")?).await?;
        let username = required(input, "Username")?;
        let attributes = Self::attributes_of(input, "UserAttributes");
        let temporary = match str_of(input, "TemporaryPassword") {
            Some(p) => {
                config.password_policy.check(p)?;
                p.to_owned()
            }
            None => config.password_policy.generate(self.rng)?,
        };
        let (sub, record) = self.new_user(
            &config,
            username,
            &attributes,
            "FORCE_CHANGE_PASSWORD",
            (Writer::Admin, When::Create),
        )?;
        let mut secrets = UserSecrets::default();
        self.set_password(&mut secrets, &pool.pool_id, &record.username, &temporary)
            .await?;
        let row = self
            .insert_user(&pool.pool_id, &config, &sub, &record, &secrets)
            .await?;
        if str_of(input, "MessageAction") != Some("SUPPRESS") {
            self.deliver(
                &pool.pool_id,
                &record,
                "AdminCreateUser",
                "temporary_password",
                &temporary,
            )
            .await?;
        }
        Ok(json!({ "User": Self::user_json(&row, &record, "Attributes") }))
    }

    /// The pool (of the caller's account) and user an administrative call names.
    async fn admin_user(
        &self,
        input: &Value,
    ) -> Result<(PoolRow, PoolConfig, UserRow, UserRecord), ApiError> {
        let (pool, config) = self.pool(required(input, "UserPoolId")?).await?;
        let (row, record) = self
            .user_or_error(&pool.pool_id, &config, required(input, "Username")?)
            .await?;
        Ok((pool, config, row, record))
    }

    async fn admin_get_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, _, row, record) = self.admin_user(input).await?;
        let mut out = Self::user_json(&row, &record, "UserAttributes");
        if let Some(o) = out.as_object_mut() {
            o.insert("MFAOptions".into(), json!([]));
            Self::mfa_json(&record, o);
        }
        Ok(out)
    }

    async fn admin_delete_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _, row, _) = self.admin_user(input).await?;
        self.store
            .delete_pool_user(&pool.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    async fn admin_set_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, row, mut record) = self.admin_user(input).await?;
        let password = required(input, "Password")?;
        config.password_policy.check(password)?;
        let mut secrets = self.open_secrets(&row)?;
        self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
            .await?;
        record.status = if input.get("Permanent").and_then(Value::as_bool) == Some(true) {
            "CONFIRMED".into()
        } else {
            "FORCE_CHANGE_PASSWORD".into()
        };
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn admin_confirm(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, config, row, mut record) = self.admin_user(input).await?;
        if record.status != "UNCONFIRMED" {
            return Err(not_authorized(&format!(
                "User cannot be confirmed. Current status is {}",
                record.status
            )));
        }
        let mut secrets = self.open_secrets(&row)?;
        secrets.code = None;
        record.status = "CONFIRMED".into();
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn admin_set_enabled(&self, input: &Value, enabled: bool) -> Result<Value, ApiError> {
        let (pool, config, row, mut record) = self.admin_user(input).await?;
        let secrets = self.open_secrets(&row)?;
        record.enabled = enabled;
        if !enabled {
            record.tokens_valid_after = self.now();
            self.store
                .revoke_user_refresh_tokens(&pool.pool_id, &row.username_key)
                .await
                .map_err(internal)?;
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn sign_out_user(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        mut record: UserRecord,
    ) -> Result<(), ApiError> {
        let secrets = self.open_secrets(row)?;
        // Every sign-in's refresh token goes, so its access tokens fail the liveness check;
        // the time also refuses any token issued before this second.
        record.tokens_valid_after = self.now();
        self.store
            .revoke_user_refresh_tokens(&row.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        self.save_user(config, row, &record, &secrets)
            .await
            .map(|_| ())
    }

    async fn admin_sign_out(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, config, row, record) = self.admin_user(input).await?;
        self.sign_out_user(&config, &row, record).await?;
        Ok(json!({}))
    }

    /// Checks `SECRET_HASH` when the client has a secret.
    fn check_secret_hash(
        &self,
        client: &ClientRow,
        username: &str,
        given: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(secret) = self.client_secret(client)? else {
            return Ok(());
        };
        let Some(given) = given else {
            return Err(not_authorized(&format!(
                "Client {} is configured with secret but SECRET_HASH was not received",
                client.client_id
            )));
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let message = format!("{username}{}", client.client_id);
        let given = base64::engine::general_purpose::STANDARD
            .decode(given)
            .map_err(|_| {
                not_authorized(&format!(
                    "Unable to verify secret hash for client {}",
                    client.client_id
                ))
            })?;
        ring::hmac::verify(&key, message.as_bytes(), &given).map_err(|_| {
            not_authorized(&format!(
                "Unable to verify secret hash for client {}",
                client.client_id
            ))
        })
    }

    async fn sign_up(&self, input: &Value) -> Result<Value, ApiError> {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        let (pool, config) = self.pool(&client.pool_id).await?;
        let username = required(input, "Username")?;
        self.check_secret_hash(&client, username, str_of(input, "SecretHash"))?;
        let password = required(input, "Password")?;
        config.password_policy.check(password)?;
        let attributes = Self::attributes_of(input, "UserAttributes");
        let writable = client_config.write_attributes();
        let (sub, record) = self.new_user(
            &config,
            username,
            &attributes,
            "UNCONFIRMED",
            (Writer::Client(writable.as_deref()), When::SignUp),
        )?;
        let (code, pending) = self.new_code("SignUp")?;
        let mut secrets = UserSecrets {
            code: Some(pending),
            ..UserSecrets::default()
        };
        self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
            .await?;
        self.insert_user(&pool.pool_id, &config, &sub, &record, &secrets)
            .await?;
        let details = self
            .deliver(&pool.pool_id, &record, "SignUp", "code", &code)
            .await?;
        Ok(json!({ "UserConfirmed": false, "UserSub": sub, "CodeDeliveryDetails": details }))
    }

    async fn confirm_sign_up(&self, input: &Value) -> Result<Value, ApiError> {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        let (pool, config) = self.pool(&client.pool_id).await?;
        let username = required(input, "Username")?;
        self.check_secret_hash(&client, username, str_of(input, "SecretHash"))?;
        let Some((row, mut record)) = self.find_user(&pool.pool_id, &config, username).await?
        else {
            return Err(self
                .unknown_user(&pool.pool_id, &client_config, username)
                .await);
        };
        if record.status != "UNCONFIRMED" {
            return Err(not_authorized(&format!(
                "User cannot be confirmed. Current status is {}",
                record.status
            )));
        }
        let mut secrets = self.open_secrets(&row)?;
        if let Err(e) =
            self.check_code(&mut secrets, "SignUp", required(input, "ConfirmationCode")?)
        {
            self.save_user(&config, &row, &record, &secrets).await?;
            return Err(e);
        }
        record.status = "CONFIRMED".into();
        for attr in &config.auto_verified_attributes {
            let flag = format!("{attr}_verified");
            if attribute(&record, attr).is_some() {
                record.attributes.retain(|(n, _)| *n != flag);
                record.attributes.push((flag, "true".into()));
            }
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    // ---- authentication ----------------------------------------------------------------

    /// The app client an authentication call names, with its pool; the administrative forms
    /// name the pool too, which must be the client's.
    async fn auth_client(
        &self,
        input: &Value,
        admin: bool,
    ) -> Result<(ClientRow, ClientConfig, PoolRow, PoolConfig), ApiError> {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        if admin && required(input, "UserPoolId")? != client.pool_id {
            return Err(err(
                "ResourceNotFoundException",
                "User pool client does not exist.",
            ));
        }
        let (pool, config) = self.pool(&client.pool_id).await?;
        Ok((client, client_config, pool, config))
    }

    async fn initiate_auth(&self, input: &Value, admin: bool) -> Result<Value, ApiError> {
        let (client, client_config, pool, config) = self.auth_client(input, admin).await?;
        let flow = required(input, "AuthFlow")?;
        let params = input
            .get("AuthParameters")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let param = |k: &str| str_of(&params, k);
        let allowed = |name: &str| client_config.explicit_auth_flows.iter().any(|f| f == name);
        match flow {
            "USER_PASSWORD_AUTH" | "ADMIN_USER_PASSWORD_AUTH" | "ADMIN_NO_SRP_AUTH" => {
                let flag = match flow {
                    "USER_PASSWORD_AUTH" => "ALLOW_USER_PASSWORD_AUTH",
                    _ => "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                };
                if (flow == "USER_PASSWORD_AUTH") == admin || !allowed(flag) {
                    return Err(invalid(format!("{flow} flow not enabled for this client")));
                }
                let username = param("USERNAME")
                    .ok_or_else(|| invalid("Missing required parameter USERNAME"))?;
                let password = param("PASSWORD")
                    .ok_or_else(|| invalid("Missing required parameter PASSWORD"))?;
                self.check_secret_hash(&client, username, param("SECRET_HASH"))?;
                let user = self.find_user(&pool.pool_id, &config, username).await?;
                let wrong = || not_authorized("Incorrect username or password.");
                let Some((row, record)) = user else {
                    // Same work as a wrong password, so timing does not reveal the user.
                    password::verify_off_thread(password, None).await;
                    return Err(if client_config.prevent_user_existence_errors {
                        self.ghost_failed(&pool.pool_id, username, wrong()).await
                    } else {
                        err("UserNotFoundException", "User does not exist.")
                    });
                };
                let slot = self.attempt_slot(&row, &record)?;
                let secrets = self.open_secrets(&row)?;
                let ok = secrets.password_hash.is_some()
                    && password::verify_off_thread(password, secrets.password_hash.as_deref())
                        .await;
                if !ok {
                    self.attempt_failed(&config, &row, record, None).await?;
                    return Err(wrong());
                }
                let (row, record) = self.attempt_succeeded(&config, &row, record, None).await?;
                drop(slot);
                self.signed_in(&pool, &client, &client_config, &row, &record)
                    .await
            }
            "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
                if !allowed("ALLOW_REFRESH_TOKEN_AUTH") {
                    return Err(invalid("Refresh Token flow not enabled for this client"));
                }
                let token = param("REFRESH_TOKEN")
                    .ok_or_else(|| invalid("Missing required parameter REFRESH_TOKEN"))?;
                let invalid_token = || not_authorized("Invalid Refresh Token");
                let stored = self
                    .store
                    .refresh_token(&token_hash(token))
                    .await
                    .map_err(internal)?
                    .filter(|r| r.client_id == client.client_id && r.expires_at > self.now())
                    .ok_or_else(invalid_token)?;
                let row = self
                    .store
                    .pool_user(&pool.pool_id, &stored.username_key)
                    .await
                    .map_err(internal)?
                    .ok_or_else(invalid_token)?;
                let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
                if client.secret_sealed.is_some() {
                    self.check_secret_hash(
                        &client,
                        param("USERNAME").unwrap_or(&record.username),
                        param("SECRET_HASH"),
                    )?;
                }
                if !record.enabled {
                    return Err(not_authorized("User is disabled."));
                }
                let result = self
                    .issue_tokens(&pool, &client, &client_config, &row, &record, Some(&stored))
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
            "USER_SRP_AUTH" => {
                if !allowed("ALLOW_USER_SRP_AUTH") {
                    return Err(invalid("USER_SRP_AUTH flow not enabled for this client"));
                }
                let username = param("USERNAME")
                    .ok_or_else(|| invalid("Missing required parameter USERNAME"))?;
                let big_a =
                    param("SRP_A").ok_or_else(|| invalid("Missing required parameter SRP_A"))?;
                self.check_secret_hash(&client, username, param("SECRET_HASH"))?;
                let user = self.find_user(&pool.pool_id, &config, username).await?;
                let (username_key, sub, user_id, verifier) = match &user {
                    Some((row, record)) => {
                        let secrets = self.open_secrets(row)?;
                        let verifier = secrets
                            .srp
                            .ok_or_else(|| not_authorized("Incorrect username or password."))?;
                        (
                            row.username_key.clone(),
                            row.sub.clone(),
                            record.username.clone(),
                            verifier,
                        )
                    }
                    None if client_config.prevent_user_existence_errors => {
                        // A challenge like any other, which no password can answer.
                        let fake = srp::verifier(
                            pool_suffix(&pool.pool_id),
                            username,
                            &uuid::Uuid::new_v4().to_string(),
                            self.rng,
                        )
                        .ok_or_else(ApiError::internal)?;
                        (String::new(), String::new(), username.to_owned(), fake)
                    }
                    None => return Err(err("UserNotFoundException", "User does not exist.")),
                };
                let (b, big_b) = srp::server_ephemeral(&verifier.verifier_hex, self.rng)
                    .ok_or_else(ApiError::internal)?;
                let block = SrpBlock {
                    id: uuid::Uuid::new_v4().to_string(),
                    sub,
                    pool_id: pool.pool_id.clone(),
                    client_id: client.client_id.clone(),
                    username_key,
                    user_id: user_id.clone(),
                    a: big_a.to_owned(),
                    b,
                    big_b: big_b.clone(),
                    expires_at: self.now() + client_config.session_secs(),
                };
                let plain = zeroize::Zeroizing::new(serde_json::to_vec(&block).map_err(internal)?);
                let sealed = self
                    .master
                    .seal("userpool-srp", &plain, self.rng)
                    .map_err(internal)?;
                Ok(json!({
                    "ChallengeName": "PASSWORD_VERIFIER",
                    "ChallengeParameters": {
                        "SALT": verifier.salt_hex,
                        "SRP_B": big_b,
                        "SECRET_BLOCK": base64::engine::general_purpose::STANDARD.encode(sealed),
                        "USERNAME": user_id,
                        "USER_ID_FOR_SRP": user_id,
                    },
                }))
            }
            "CUSTOM_AUTH" | "USER_AUTH" => Err(invalid(format!(
                "{flow} is not supported by this server yet"
            ))),
            other => Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'authFlow' failed to satisfy constraint"
            ))),
        }
    }

    /// A wrong answer for a name that is no user, answered as a real user's would be: the
    /// same concurrency limit, lockout and durable write (`wrong` is the answer).
    async fn ghost_failed(&self, pool_id: &str, name: &str, wrong: ApiError) -> ApiError {
        let ghost_row = UserRow {
            pool_id: pool_id.to_owned(),
            username_key: format!("\0ghost:{}", name.to_lowercase()),
            sub: String::new(),
            record: String::new(),
            secrets_sealed: Vec::new(),
            created_at: 0,
            updated_at: 0,
            version: 0,
        };
        let record = self
            .keys
            .ghost(pool_id, name, |g| g.record.clone())
            .unwrap_or_default();
        let slot = match self.attempt_slot(&ghost_row, &record) {
            Ok(slot) => slot,
            Err(e) => return e,
        };
        let now = self.now();
        let counted = self
            .keys
            .ghost(pool_id, name, |g| count_failure(&mut g.record, now))
            .unwrap_or(Ok(()));
        if let Err(e) = self.decoy(pool_id, name).await {
            return e;
        }
        drop(slot);
        counted.err().unwrap_or(wrong)
    }

    /// The durable write a real user's change costs, for answering about a name that is none.
    async fn decoy(&self, pool_id: &str, name: &str) -> Result<(), ApiError> {
        let digest = self.master.digest(
            "userpool-decoy",
            format!("{pool_id}\0{}", name.to_lowercase()).as_bytes(),
        );
        let byte = |i: usize| digest.get(i).copied().unwrap_or(0);
        let slot = i64::from(u16::from_be_bytes([byte(0), byte(1)]) % 1024);
        self.store
            .decoy_write(pool_id, slot, self.now())
            .await
            .map_err(internal)
    }

    /// A code-confirming call about a user that does not exist: with PreventUserExistenceErrors
    /// the answer (and cost, and attempt limit) a wrong code gets, otherwise
    /// `UserNotFoundException`.
    async fn unknown_user(&self, pool_id: &str, client: &ClientConfig, name: &str) -> ApiError {
        if client.prevent_user_existence_errors {
            self.ghost_code(pool_id, name).await
        } else {
            err("UserNotFoundException", "User does not exist.")
        }
    }

    /// A wrong code for a name that is no user: counted as a real user's code attempts are.
    async fn ghost_code(&self, pool_id: &str, name: &str) -> ApiError {
        let spent = self
            .keys
            .ghost(pool_id, name, |g| {
                g.code_attempts += 1;
                g.code_attempts > MAX_CODE_ATTEMPTS
            })
            .unwrap_or(false);
        if let Err(e) = self.decoy(pool_id, name).await {
            return e;
        }
        if spent {
            err(
                "LimitExceededException",
                "Attempt limit exceeded, please try after some time.",
            )
        } else {
            err(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )
        }
    }

    /// Lets a password (or SRP claim) be checked: refused during a lockout, and refused
    /// (`TooManyRequestsException`, which clients retry) while the failures so far plus the
    /// checks already running for this user on this node would reach the lockout. So no more
    /// than five guesses are ever checked before the lockout starts, however many arrive at
    /// once, and a successful sign-in writes nothing when there were no failures.
    fn attempt_slot(&self, row: &UserRow, record: &UserRecord) -> Result<AttemptSlot, ApiError> {
        let now = self.now();
        if record.locked_until > now {
            return Err(not_authorized("Password attempts exceeded"));
        }
        let failures = if now - record.last_attempt_at >= 900 {
            0
        } else {
            record.failed_sign_ins
        };
        let budget = LOCKOUT_AFTER.saturating_sub(failures).max(1);
        self.keys
            .attempt_slot((row.pool_id.clone(), row.username_key.clone()), budget)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "TooManyRequestsException",
                    "Too many sign-in attempts for this user at once; try again.",
                )
            })
    }

    /// A checked password (or SRP claim) was wrong: counted (compare-and-swap) before the
    /// caller hears it. `consumes` spends a single-use SRP secret block.
    async fn attempt_failed(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        mut record: UserRecord,
        consumes: Option<(&str, i64)>,
    ) -> Result<(), ApiError> {
        let now = self.now();
        count_failure(&mut record, now)?;
        if let Some((id, expires_at)) = consumes {
            record.note_session(id, expires_at, true, now);
        }
        let secrets = self.open_secrets(row)?;
        self.save_user(config, row, &record, &secrets).await?;
        Ok(())
    }

    /// A checked password (or SRP claim) was right: failures start again from zero, unless
    /// an MFA code is still to come (wrong codes then add up across sign-ins instead of each
    /// sign-in buying new guesses). Writes only when something changed.
    async fn attempt_succeeded(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        mut record: UserRecord,
        consumes: Option<(&str, i64)>,
    ) -> Result<(UserRow, UserRecord), ApiError> {
        let mfa = config.mfa_configuration.as_str();
        let mfa_follows = record.software_token_mfa && (mfa == "ON" || mfa == "OPTIONAL");
        let reset = !mfa_follows && (record.failed_sign_ins > 0 || record.locked_until > 0);
        if reset {
            record.failed_sign_ins = 0;
            record.locked_until = 0;
        }
        if let Some((id, expires_at)) = consumes {
            record.note_session(id, expires_at, true, self.now());
        } else if !reset {
            return Ok((row.clone(), record));
        }
        let secrets = self.open_secrets(row)?;
        let row = self.save_user(config, row, &record, &secrets).await?;
        Ok((row, record))
    }

    /// After the password (or SRP claim) checked out: the user's state decides between
    /// tokens, a challenge, or an error.
    async fn signed_in(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        client_config: &ClientConfig,
        row: &UserRow,
        record: &UserRecord,
    ) -> Result<Value, ApiError> {
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        match record.status.as_str() {
            "UNCONFIRMED" => Err(err("UserNotConfirmedException", "User is not confirmed.")),
            "RESET_REQUIRED" => Err(err(
                "PasswordResetRequiredException",
                "Password reset required for the user",
            )),
            "FORCE_CHANGE_PASSWORD" => {
                let session = self.seal_session(&ChallengeSession {
                    id: uuid::Uuid::new_v4().to_string(),
                    sub: row.sub.clone(),
                    pool_id: pool.pool_id.clone(),
                    client_id: client.client_id.clone(),
                    username_key: row.username_key.clone(),
                    challenge: "NEW_PASSWORD_REQUIRED".into(),
                    expires_at: self.now() + client_config.session_secs(),
                })?;
                let attrs: Map<String, Value> = record
                    .attributes
                    .iter()
                    .filter(|(n, _)| !attributes::is_owned_claim(n) && !n.starts_with("dev:"))
                    .map(|(n, v)| (n.clone(), json!(v)))
                    .collect();
                let config: PoolConfig = serde_json::from_str(&pool.config).map_err(internal)?;
                let required: Vec<String> = config
                    .schema
                    .missing_required(&record.attributes)
                    .iter()
                    .map(|n| format!("userAttributes.{n}"))
                    .collect();
                Ok(json!({
                    "ChallengeName": "NEW_PASSWORD_REQUIRED",
                    "Session": session,
                    "ChallengeParameters": {
                        "USER_ID_FOR_SRP": record.username,
                        "requiredAttributes": json!(required).to_string(),
                        "userAttributes": Value::Object(attrs).to_string(),
                    },
                }))
            }
            _ => {
                let config: PoolConfig = serde_json::from_str(&pool.config).map_err(internal)?;
                let mfa = config.mfa_configuration.as_str();
                let challenge = if record.software_token_mfa && (mfa == "ON" || mfa == "OPTIONAL") {
                    Some("SOFTWARE_TOKEN_MFA")
                } else if mfa == "ON" {
                    Some("MFA_SETUP")
                } else {
                    None
                };
                if let Some(challenge) = challenge {
                    let session = self.seal_session(&ChallengeSession {
                        id: uuid::Uuid::new_v4().to_string(),
                        sub: row.sub.clone(),
                        pool_id: pool.pool_id.clone(),
                        client_id: client.client_id.clone(),
                        username_key: row.username_key.clone(),
                        challenge: challenge.into(),
                        expires_at: self.now() + client_config.session_secs(),
                    })?;
                    let parameters = if challenge == "MFA_SETUP" {
                        json!({ "MFAS_CAN_SETUP": "[\"SOFTWARE_TOKEN_MFA\"]" })
                    } else {
                        json!({ "USER_ID_FOR_SRP": record.username })
                    };
                    return Ok(json!({
                        "ChallengeName": challenge,
                        "Session": session,
                        "ChallengeParameters": parameters,
                    }));
                }
                let result = self
                    .issue_tokens(pool, client, client_config, row, record, None)
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
        }
    }

    /// The user an MFA setup call names: by access token, or by an `MFA_SETUP` session.
    async fn mfa_setup_user(
        &self,
        input: &Value,
    ) -> Result<(PoolConfig, UserRow, UserRecord, Option<String>), ApiError> {
        if let Some(token) = str_of(input, "AccessToken") {
            let (config, row, record) = self.access_token_user(token).await?;
            return Ok((config, row, record, None));
        }
        let session_text = required(input, "Session")?;
        let session = self.open_session(session_text)?;
        if session.challenge != "MFA_SETUP" {
            return Err(not_authorized("Invalid session for the user."));
        }
        let (_, config) = self.pool(&session.pool_id).await?;
        let row = self
            .store
            .pool_user(&session.pool_id, &session.username_key)
            .await
            .map_err(internal)?
            .ok_or_else(|| err("UserNotFoundException", "User does not exist."))?;
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        // A session that already produced tokens sets nothing up any more.
        if row.sub != session.sub {
            return Err(not_authorized("Invalid session for the user."));
        }
        record.session_open(&session.id, session.expires_at)?;
        Ok((config, row, record, Some(session_text.to_owned())))
    }

    async fn associate_software_token(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record, session) = self.mfa_setup_user(input).await?;
        let mut secrets = self.open_secrets(&row)?;
        let mut secret = vec![0u8; 20];
        self.rng
            .fill(&mut secret)
            .map_err(|_| ApiError::internal())?;
        let code = totp::base32(&secret);
        secrets.totp_pending = Some(secret);
        self.save_user(&config, &row, &record, &secrets).await?;
        let mut out = json!({ "SecretCode": code });
        if let (Some(s), Some(o)) = (session, out.as_object_mut()) {
            o.insert("Session".into(), json!(s));
        }
        Ok(out)
    }

    async fn verify_software_token(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, mut record, session) = self.mfa_setup_user(input).await?;
        let mut secrets = self.open_secrets(&row)?;
        let pending = secrets.totp_pending.clone().ok_or_else(|| {
            err(
                "InvalidParameterException",
                "User has not associated a software token.",
            )
        })?;
        let Some(step) = totp::verify(&pending, required(input, "UserCode")?, self.now(), i64::MIN)
        else {
            return Err(err("EnableSoftwareTokenMFAException", "Code mismatch"));
        };
        secrets.totp_secret = Some(pending);
        secrets.totp_pending = None;
        secrets.totp_last_step = step;
        if session.is_some() {
            // Set up during sign-in: it is the user's MFA from now on.
            record.software_token_mfa = true;
            record.preferred_mfa = true;
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        let mut out = json!({ "Status": "SUCCESS" });
        if let (Some(s), Some(o)) = (session, out.as_object_mut()) {
            o.insert("Session".into(), json!(s));
        }
        Ok(out)
    }

    async fn set_mfa_preference(&self, input: &Value, admin: bool) -> Result<Value, ApiError> {
        let (config, row, mut record) = if admin {
            let (pool, config) = self.pool(required(input, "UserPoolId")?).await?;
            let (row, record) = self
                .user_or_error(&pool.pool_id, &config, required(input, "Username")?)
                .await?;
            (config, row, record)
        } else {
            self.access_token_user(required(input, "AccessToken")?)
                .await?
        };
        let secrets = self.open_secrets(&row)?;
        if let Some(settings) = input.get("SoftwareTokenMfaSettings") {
            let enabled = settings
                .get("Enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if enabled && secrets.totp_secret.is_none() {
                return Err(invalid("User has not verified software token mfa"));
            }
            record.software_token_mfa = enabled;
            record.preferred_mfa = enabled
                && settings
                    .get("PreferredMfa")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
        }
        if input
            .pointer("/SMSMfaSettings/Enabled")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Err(invalid("SMS MFA is not supported by this server"));
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    /// `PASSWORD_VERIFIER`: checks the SRP claim against the secret block sealed at the
    /// challenge.
    async fn password_verifier(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        client_config: &ClientConfig,
        responses: &Value,
    ) -> Result<Value, ApiError> {
        let wrong = || not_authorized("Incorrect username or password.");
        let block_b64 = str_of(responses, "PASSWORD_CLAIM_SECRET_BLOCK")
            .ok_or_else(|| invalid("Missing required parameter PASSWORD_CLAIM_SECRET_BLOCK"))?;
        let signature = str_of(responses, "PASSWORD_CLAIM_SIGNATURE")
            .ok_or_else(|| invalid("Missing required parameter PASSWORD_CLAIM_SIGNATURE"))?;
        let timestamp = str_of(responses, "TIMESTAMP")
            .ok_or_else(|| invalid("Missing required parameter TIMESTAMP"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let block_bytes = b64.decode(block_b64).map_err(|_| wrong())?;
        let plain = self
            .master
            .open("userpool-srp", &block_bytes)
            .map_err(|_| wrong())?;
        let block: SrpBlock = serde_json::from_slice(&plain).map_err(|_| wrong())?;
        if block.pool_id != pool.pool_id
            || block.client_id != client.client_id
            || block.expires_at < self.now()
        {
            return Err(wrong());
        }
        self.check_secret_hash(
            client,
            str_of(responses, "USERNAME").unwrap_or(&block.user_id),
            str_of(responses, "SECRET_HASH"),
        )?;
        let user = self
            .store
            .pool_user(&pool.pool_id, &block.username_key)
            .await
            .map_err(internal)?;
        let Some(row) = user.filter(|r| !block.username_key.is_empty() && r.sub == block.sub)
        else {
            if block.username_key.is_empty() {
                // A challenge PreventUserExistenceErrors made up: the SRP work, the counting
                // and the write a real user's wrong answer costs.
                let fake = srp::verifier(
                    pool_suffix(&pool.pool_id),
                    &block.user_id,
                    &block.b,
                    self.rng,
                );
                if let Some(v) = fake {
                    let _ = srp::password_key(&block.a, &block.b, &block.big_b, &v.verifier_hex);
                }
                return Err(self
                    .ghost_failed(&pool.pool_id, &block.user_id, wrong())
                    .await);
            }
            return Err(wrong());
        };
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        if record.session_open(&block.id, block.expires_at).is_err() {
            // A recorded answer replayed: the block was spent when it was first answered.
            return Err(wrong());
        }
        let (_, config) = self.pool(&pool.pool_id).await?;
        let slot = self.attempt_slot(&row, &record)?;
        let spent = Some((block.id.as_str(), block.expires_at));
        let secrets = self.open_secrets(&row)?;
        let verifier = secrets.srp.clone().ok_or_else(wrong)?;
        let key = srp::password_key(&block.a, &block.b, &block.big_b, &verifier.verifier_hex)
            .ok_or_else(wrong)?;
        let signature = b64.decode(signature).map_err(|_| wrong())?;
        let ok = srp::verify_claim(
            &key,
            pool_suffix(&pool.pool_id),
            &block.user_id,
            &block_bytes,
            timestamp,
            &signature,
        );
        if !ok {
            self.attempt_failed(&config, &row, record, spent).await?;
            return Err(wrong());
        }
        let (row, record) = self.attempt_succeeded(&config, &row, record, spent).await?;
        drop(slot);
        self.signed_in(pool, client, client_config, &row, &record)
            .await
    }

    fn seal_session(&self, session: &ChallengeSession) -> Result<String, ApiError> {
        let plain = serde_json::to_vec(session).map_err(internal)?;
        let sealed = self
            .master
            .seal("userpool-session", &plain, self.rng)
            .map_err(internal)?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    fn open_session(&self, session: &str) -> Result<ChallengeSession, ApiError> {
        let invalid_session =
            || not_authorized("Invalid session for the user, session is expired.");
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(session)
            .map_err(|_| invalid_session())?;
        let plain = self
            .master
            .open("userpool-session", &sealed)
            .map_err(|_| invalid_session())?;
        let session: ChallengeSession =
            serde_json::from_slice(&plain).map_err(|_| invalid_session())?;
        if session.expires_at < self.now() {
            return Err(invalid_session());
        }
        Ok(session)
    }

    async fn respond_to_challenge(&self, input: &Value, admin: bool) -> Result<Value, ApiError> {
        let (client, client_config, pool, config) = self.auth_client(input, admin).await?;
        let challenge = required(input, "ChallengeName")?;
        let responses = input
            .get("ChallengeResponses")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if challenge == "PASSWORD_VERIFIER" {
            return self
                .password_verifier(&pool, &client, &client_config, &responses)
                .await;
        }
        let session = self.open_session(required(input, "Session")?)?;
        if session.client_id != client.client_id
            || session.pool_id != pool.pool_id
            || session.challenge != challenge
        {
            return Err(not_authorized("Invalid session for the user."));
        }
        let responses = input
            .get("ChallengeResponses")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let (row, mut record) = self
            .store
            .pool_user(&pool.pool_id, &session.username_key)
            .await
            .map_err(internal)?
            .map(|r| {
                let rec: Result<UserRecord, _> = serde_json::from_str(&r.record);
                rec.map(|rec| (r, rec))
            })
            .transpose()
            .map_err(internal)?
            .ok_or_else(|| err("UserNotFoundException", "User does not exist."))?;
        self.check_secret_hash(
            &client,
            str_of(&responses, "USERNAME").unwrap_or(&record.username),
            str_of(&responses, "SECRET_HASH"),
        )?;
        // A session answers once, for the user it was issued to (not another of the name),
        // and only for the state it was issued in; a disabled or locked-out user answers
        // nothing.
        if row.sub != session.sub {
            return Err(not_authorized("Invalid session for the user."));
        }
        record.session_open(&session.id, session.expires_at)?;
        if challenge == "NEW_PASSWORD_REQUIRED" && record.status != "FORCE_CHANGE_PASSWORD" {
            return Err(not_authorized(
                "Invalid session for the user, session is expired.",
            ));
        }
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        if record.locked_until > self.now() {
            return Err(not_authorized("Password attempts exceeded"));
        }
        let now = self.now();
        match challenge {
            "NEW_PASSWORD_REQUIRED" => {
                let password = str_of(&responses, "NEW_PASSWORD")
                    .ok_or_else(|| invalid("Missing required parameter NEW_PASSWORD"))?;
                config.password_policy.check(password)?;
                let mut secrets = self.open_secrets(&row)?;
                self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
                    .await?;
                record.status = "CONFIRMED".into();
                let changes: Vec<(String, String)> = responses
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix("userAttributes.")?.to_owned(),
                            v.as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                // The challenge sets the required attributes the user lacks (and any others
                // the client may write); it never replaces a required one already given.
                for (name, _) in &changes {
                    if !attributes::is_owned_claim(name)
                        && config.schema.attribute(name).is_some_and(|a| a.required)
                        && attribute(&record, name).is_some_and(|v| !v.is_empty())
                    {
                        return Err(not_authorized(&format!(
                            "Cannot modify an already provided {name}"
                        )));
                    }
                }
                let writable = client_config.write_attributes();
                Self::apply_attributes(
                    &config.schema,
                    &mut record,
                    &changes,
                    Writer::Client(writable.as_deref()),
                )?;
                if let Some(missing) = config.schema.missing_required(&record.attributes).first() {
                    return Err(invalid(format!(
                        "Invalid attributes given, {missing} is missing"
                    )));
                }
                record.note_session(&session.id, session.expires_at, true, now);
                let row = self.save_user(&config, &row, &record, &secrets).await?;
                self.signed_in(&pool, &client, &client_config, &row, &record)
                    .await
            }
            "SOFTWARE_TOKEN_MFA" => {
                let code = str_of(&responses, "SOFTWARE_TOKEN_MFA_CODE")
                    .ok_or_else(|| invalid("Missing required parameter SOFTWARE_TOKEN_MFA_CODE"))?;
                let mut secrets = self.open_secrets(&row)?;
                let secret = secrets
                    .totp_secret
                    .clone()
                    .ok_or_else(|| not_authorized("Invalid session for the user."))?;
                let Some(step) = totp::verify(&secret, code, self.now(), secrets.totp_last_step)
                else {
                    // A wrong code spends part of the session and counts towards the
                    // user's lockout, written before the answer is given.
                    count_failure(&mut record, now)?;
                    record.note_session(&session.id, session.expires_at, false, now);
                    self.save_user(&config, &row, &record, &secrets).await?;
                    return Err(err(
                        "CodeMismatchException",
                        "Invalid code received for user",
                    ));
                };
                secrets.totp_last_step = step;
                record.failed_sign_ins = 0;
                record.locked_until = 0;
                record.note_session(&session.id, session.expires_at, true, now);
                let row = self.save_user(&config, &row, &record, &secrets).await?;
                let result = self
                    .issue_tokens(&pool, &client, &client_config, &row, &record, None)
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
            "MFA_SETUP" => {
                if !record.software_token_mfa {
                    return Err(invalid(
                        "Software token MFA has not been set up for the user.",
                    ));
                }
                let secrets = self.open_secrets(&row)?;
                record.note_session(&session.id, session.expires_at, true, now);
                let row = self.save_user(&config, &row, &record, &secrets).await?;
                let result = self
                    .issue_tokens(&pool, &client, &client_config, &row, &record, None)
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
            other => Err(invalid(format!(
                "{other} is not supported by this server yet"
            ))),
        }
    }

    /// The pool's current signing key, opened.
    async fn signing_key(&self, pool_id: &str) -> Result<Arc<SigningKey>, ApiError> {
        let rows = self.store.signing_keys(pool_id).await.map_err(internal)?;
        let row = rows.last().ok_or_else(ApiError::internal)?;
        self.open_key(row)
    }

    /// Opens a stored key, once per process.
    fn open_key(&self, row: &SigningKeyRow) -> Result<Arc<SigningKey>, ApiError> {
        let id = (row.pool_id.clone(), row.kid.clone());
        if let Some(key) = self.keys.get(&id) {
            return Ok(key);
        }
        let der = self
            .master
            .open(
                &format!("userpool-key:{}:{}", row.pool_id, row.kid),
                &row.key_sealed,
            )
            .map_err(internal)?;
        let key = Arc::new(SigningKey::from_pkcs8(&row.kid, &der).map_err(internal)?);
        self.keys.insert(id, key.clone());
        Ok(key)
    }

    /// The key with `kid` of a pool: from the cache, else from the store.
    async fn verifying_key(
        &self,
        pool_id: &str,
        kid: &str,
    ) -> Result<Option<Arc<SigningKey>>, ApiError> {
        if let Some(key) = self.keys.get(&(pool_id.to_owned(), kid.to_owned())) {
            return Ok(Some(key));
        }
        let rows = self.store.signing_keys(pool_id).await.map_err(internal)?;
        match rows.iter().find(|k| k.kid == kid) {
            Some(row) => Ok(Some(self.open_key(row)?)),
            None => Ok(None),
        }
    }

    /// Mints ID and access tokens (and, on a fresh sign-in, a refresh token).
    async fn issue_tokens(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        config: &ClientConfig,
        row: &UserRow,
        record: &UserRecord,
        refreshed: Option<&RefreshTokenRow>,
    ) -> Result<Value, ApiError> {
        let key = self.signing_key(&pool.pool_id).await?;
        let now = self.now();
        let issuer = format!(
            "{}/{}",
            self.issuer_base.trim_end_matches('/'),
            pool.pool_id
        );
        let origin_jti = match refreshed {
            Some(r) => r.origin_jti.clone(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let auth_time = refreshed.map_or(now, |r| r.issued_at);
        let mut groups = Vec::new();
        for g in self
            .store
            .pool_groups_of_user(&pool.pool_id, &row.username_key)
            .await
            .map_err(internal)?
        {
            let record: GroupRecord = serde_json::from_str(&g.record).map_err(internal)?;
            groups.push((g.name, record));
        }
        let (group_names, roles, preferred_role) = group_claims(&groups);
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut id_claims = Map::new();
        let readable = config.read_attributes();
        for (name, value) in &record.attributes {
            // Claims Cognito owns come from Cognate below, never from stored attributes.
            if attributes::is_owned_claim(name)
                || name.starts_with("dev:")
                || readable.as_ref().is_some_and(|r| !r.contains(name))
            {
                continue;
            }
            let v = match name.as_str() {
                "email_verified" | "phone_number_verified" => json!(value == "true"),
                _ => json!(value),
            };
            id_claims.insert(name.clone(), v);
        }
        for (k, v) in [
            ("sub", json!(row.sub)),
            ("iss", json!(issuer)),
            ("cognito:username", json!(record.username)),
            ("origin_jti", json!(origin_jti)),
            ("aud", json!(client.client_id)),
            ("event_id", json!(event_id)),
            ("token_use", json!("id")),
            ("auth_time", json!(auth_time)),
            ("exp", json!(now + config.id_token_minutes * 60)),
            ("iat", json!(now)),
            ("jti", json!(uuid::Uuid::new_v4().to_string())),
        ] {
            id_claims.insert(k.into(), v);
        }
        let access_claims = json!({
            "sub": row.sub,
            "iss": issuer,
            "client_id": client.client_id,
            "origin_jti": origin_jti,
            "event_id": event_id,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": auth_time,
            "exp": now + config.access_token_minutes * 60,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "username": record.username,
        });
        let mut access_claims = access_claims;
        if !group_names.is_empty() {
            id_claims.insert("cognito:groups".into(), json!(group_names));
            if let Some(o) = access_claims.as_object_mut() {
                o.insert("cognito:groups".into(), json!(group_names));
            }
        }
        if !roles.is_empty() {
            id_claims.insert("cognito:roles".into(), json!(roles));
        }
        if let Some(r) = preferred_role {
            id_claims.insert("cognito:preferred_role".into(), json!(r));
        }
        let id_token = key.sign(&Value::Object(id_claims)).map_err(internal)?;
        let access_token = key.sign(&access_claims).map_err(internal)?;
        let mut out = json!({
            "AccessToken": access_token,
            "ExpiresIn": config.access_token_minutes * 60,
            "TokenType": "Bearer",
            "IdToken": id_token,
        });
        if refreshed.is_none() {
            let mut raw = [0u8; 48];
            self.rng.fill(&mut raw).map_err(|_| ApiError::internal())?;
            let refresh = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            self.store
                .insert_refresh_token(&RefreshTokenRow {
                    token_hash: token_hash(&refresh),
                    pool_id: pool.pool_id.clone(),
                    username_key: row.username_key.clone(),
                    client_id: client.client_id.clone(),
                    origin_jti,
                    issued_at: now,
                    expires_at: now + config.refresh_token_minutes * 60,
                })
                .await
                .map_err(internal)?;
            // The sign-in counts only if the user is still as it was checked: a password set,
            // a disable or a sign-out that landed meanwhile (and revoked refresh tokens
            // before this one existed) makes it start again from a fresh read.
            let current = self
                .store
                .pool_user(&pool.pool_id, &row.username_key)
                .await
                .map_err(internal)?
                .map(|r| r.version);
            if current != Some(row.version) {
                self.store
                    .revoke_refresh_token(&token_hash(&refresh))
                    .await
                    .map_err(internal)?;
                return Err(stale());
            }
            if let Some(o) = out.as_object_mut() {
                o.insert("RefreshToken".into(), json!(refresh));
            }
        }
        Ok(out)
    }

    /// Verifies an access token and returns its user: signature under one of the pool's keys,
    /// issuer, `token_use`, expiry, the user's sign-out time and the sign-in still live.
    async fn access_token_user(
        &self,
        token: &str,
    ) -> Result<(PoolConfig, UserRow, UserRecord), ApiError> {
        let invalid_token = || not_authorized("Invalid Access Token");
        let (_, claims) = keys::peek(token).ok_or_else(invalid_token)?;
        let issuer = str_of(&claims, "iss").ok_or_else(invalid_token)?;
        let pool_id = issuer
            .strip_prefix(self.issuer_base.trim_end_matches('/'))
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(invalid_token)?;
        let (_, config) = self.pool(pool_id).await.map_err(|_| invalid_token())?;
        let kid = keys::kid_of(token).ok_or_else(invalid_token)?;
        let key = self
            .verifying_key(pool_id, &kid)
            .await?
            .ok_or_else(invalid_token)?;
        let claims = key.verify(token).ok_or_else(invalid_token)?;
        if str_of(&claims, "token_use") != Some("access") {
            return Err(invalid_token());
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(invalid_token)?;
        if exp <= self.now() {
            return Err(not_authorized("Access Token has expired"));
        }
        let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
        let sub = str_of(&claims, "sub").ok_or_else(invalid_token)?;
        let origin = str_of(&claims, "origin_jti").ok_or_else(invalid_token)?;
        let revoked = || not_authorized("Access Token has been revoked");
        let (row, live) = self
            .store
            .pool_user_for_token(pool_id, sub, origin)
            .await
            .map_err(internal)?
            .ok_or_else(revoked)?;
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        if iat < record.tokens_valid_after || !live {
            return Err(revoked());
        }
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        Ok((config, row, record))
    }

    /// Verifies a pool's ID token presented to an identity pool as a login: signature under
    /// one of the pool's keys, issuer, `token_use`, expiry and an audience among `client_ids`;
    /// with `server_side_check`, also that the user is enabled, its sign-in still live and
    /// not signed out since. Returns the claims. Errors are Cognito Identity's.
    pub async fn verify_id_token(
        &self,
        pool_id: &str,
        token: &str,
        client_ids: &[String],
        server_side_check: bool,
    ) -> Result<Value, ApiError> {
        let unverifiable = || not_authorized("Invalid login token. Couldn't verify signed token.");
        let kid = keys::kid_of(token).ok_or_else(unverifiable)?;
        let key = self
            .verifying_key(pool_id, &kid)
            .await?
            .ok_or_else(unverifiable)?;
        let claims = key.verify(token).ok_or_else(unverifiable)?;
        let issuer = format!("{}/{pool_id}", self.issuer_base.trim_end_matches('/'));
        if str_of(&claims, "iss") != Some(issuer.as_str()) {
            return Err(not_authorized(
                "Invalid login token. Issuer doesn't match providerName",
            ));
        }
        let Some(aud) = str_of(&claims, "aud") else {
            return Err(not_authorized(
                "Invalid login token. Missing a required claim: aud",
            ));
        };
        if str_of(&claims, "token_use") != Some("id") {
            return Err(not_authorized(
                "Invalid login token. Not a valid OpenId Connect identity token.",
            ));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(unverifiable)?;
        if exp <= self.now() {
            return Err(err(
                "NotAuthorizedException",
                format!(
                    "Invalid login token. Token expired: {} >= {exp}",
                    self.now()
                ),
            ));
        }
        if !client_ids.iter().any(|c| c == aud) {
            return Err(not_authorized(
                "Token is not from a supported provider of this identity pool.",
            ));
        }
        if server_side_check {
            let revoked = || not_authorized("Invalid login token. Token has been revoked.");
            let sub = str_of(&claims, "sub").ok_or_else(unverifiable)?;
            let origin = str_of(&claims, "origin_jti").ok_or_else(unverifiable)?;
            let (row, live) = self
                .store
                .pool_user_for_token(pool_id, sub, origin)
                .await
                .map_err(internal)?
                .ok_or_else(revoked)?;
            let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
            let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
            if !live || iat < record.tokens_valid_after || !record.enabled {
                return Err(revoked());
            }
        }
        Ok(claims)
    }

    async fn get_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let mut out = Self::user_json(&row, &record, "UserAttributes");
        if let Some(o) = out.as_object_mut() {
            o.remove("Enabled");
            o.remove("UserStatus");
            o.remove("UserCreateDate");
            o.remove("UserLastModifiedDate");
            o.insert("MFAOptions".into(), json!([]));
            Self::mfa_json(&record, o);
        }
        Ok(out)
    }

    async fn global_sign_out(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        self.sign_out_user(&config, &row, record).await?;
        Ok(json!({}))
    }

    async fn revoke_token(&self, input: &Value) -> Result<Value, ApiError> {
        let (client, _) = self.client(required(input, "ClientId")?).await?;
        let token = required(input, "Token")?;
        if let Some(stored) = self
            .store
            .refresh_token(&token_hash(token))
            .await
            .map_err(internal)?
        {
            if stored.client_id != client.client_id {
                return Err(err(
                    "UnauthorizedException",
                    "Client is not authorized to revoke this token.",
                ));
            }
            if client.secret_sealed.is_some() {
                let secret = self.client_secret(&client)?;
                if secret.as_deref() != str_of(input, "ClientSecret") {
                    return Err(not_authorized("Client secret does not match."));
                }
            }
            self.store
                .revoke_refresh_token(&stored.token_hash)
                .await
                .map_err(internal)?;
        }
        Ok(json!({}))
    }

    // ---- self-service and attributes ---------------------------------------------------

    /// A public call's client, pool and named user (checking `SecretHash`).
    async fn client_user(
        &self,
        input: &Value,
    ) -> Result<
        (
            PoolRow,
            PoolConfig,
            ClientConfig,
            Option<(UserRow, UserRecord)>,
        ),
        ApiError,
    > {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        let (pool, config) = self.pool(&client.pool_id).await?;
        let username = required(input, "Username")?;
        self.check_secret_hash(&client, username, str_of(input, "SecretHash"))?;
        let user = self.find_user(&pool.pool_id, &config, username).await?;
        Ok((pool, config, client_config, user))
    }

    /// What ForgotPassword and ResendConfirmationCode answer, with PreventUserExistenceErrors,
    /// for a user that does not exist (or cannot be sent a code): the answer a real user would
    /// get, in shape and in cost. The destination follows the username's form and the pool's
    /// verification settings; its letters are a keyed digest of the name, the same on every
    /// call and unpredictable without the master key.
    async fn simulated_delivery(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        username: &str,
    ) -> Result<Value, ApiError> {
        let digest = self.master.digest(
            "userpool-simulated-delivery",
            format!("{pool_id}\0{}", username.to_lowercase()).as_bytes(),
        );
        let byte = |i: usize| digest.get(i).copied().unwrap_or(0);
        // The same durable write a real user's code costs.
        self.decoy(pool_id, username).await?;
        let by_sms = username.starts_with('+')
            || (!username.contains('@')
                && config
                    .auto_verified_attributes
                    .iter()
                    .any(|a| a == "phone_number")
                && !config.auto_verified_attributes.iter().any(|a| a == "email"));
        let destination = if username.contains('@') || username.starts_with('+') {
            mask(username)
        } else if by_sms {
            let digits: String = (0..4).map(|i| char::from(b'0' + byte(i) % 10)).collect();
            mask(&format!("+1555000{digits}"))
        } else {
            let letter = |i: usize| char::from(b'a' + byte(i) % 26);
            mask(&format!("{}@{}", letter(0), letter(1)))
        };
        let (medium, attr) = if by_sms {
            ("SMS", "phone_number")
        } else {
            ("EMAIL", "email")
        };
        Ok(json!({ "Destination": destination, "DeliveryMedium": medium, "AttributeName": attr }))
    }

    /// ForgotPassword's and ResendConfirmationCode's answer for a name that is no user.
    async fn simulated_answer(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let username = required(input, "Username")?;
        let details = self.simulated_delivery(pool_id, config, username).await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    async fn forgot_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, client_config, user) = self.client_user(input).await?;
        let prevent = client_config.prevent_user_existence_errors;
        let reachable = |record: &UserRecord| {
            record.enabled
                && (attribute(record, "email").is_some()
                    || attribute(record, "phone_number").is_some())
        };
        let (row, record) = match user {
            Some((row, record)) if !prevent || reachable(&record) => (row, record),
            _ if prevent => {
                return self.simulated_answer(&pool.pool_id, &config, input).await;
            }
            _ => return Err(err("UserNotFoundException", "User does not exist.")),
        };
        if attribute(&record, "email").is_none() && attribute(&record, "phone_number").is_none() {
            return Err(invalid(
                "Cannot reset password for the user as there is no registered/verified email or phone_number",
            ));
        }
        let mut secrets = self.open_secrets(&row)?;
        let (code, pending) = self.new_code("ForgotPassword")?;
        secrets.code = Some(pending);
        self.save_user(&config, &row, &record, &secrets).await?;
        let details = self
            .deliver(&pool.pool_id, &record, "ForgotPassword", "code", &code)
            .await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    async fn confirm_forgot_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, client_config, user) = self.client_user(input).await?;
        let Some((row, mut record)) = user else {
            let username = required(input, "Username")?;
            return Err(self
                .unknown_user(&pool.pool_id, &client_config, username)
                .await);
        };
        let mut secrets = self.open_secrets(&row)?;
        if let Err(e) = self.check_code(
            &mut secrets,
            "ForgotPassword",
            required(input, "ConfirmationCode")?,
        ) {
            self.save_user(&config, &row, &record, &secrets).await?;
            return Err(e);
        }
        let password = required(input, "Password")?;
        config.password_policy.check(password)?;
        self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
            .await?;
        if record.status == "RESET_REQUIRED" || record.status == "FORCE_CHANGE_PASSWORD" {
            record.status = "CONFIRMED".into();
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn change_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let mut secrets = self.open_secrets(&row)?;
        let previous = required(input, "PreviousPassword")?;
        // A stolen access token buys no more password guesses than a sign-in does.
        let slot = self.attempt_slot(&row, &record)?;
        if secrets.password_hash.is_none()
            || !password::verify_off_thread(previous, secrets.password_hash.as_deref()).await
        {
            self.attempt_failed(&config, &row, record, None).await?;
            return Err(not_authorized("Incorrect username or password."));
        }
        drop(slot);
        let proposed = required(input, "ProposedPassword")?;
        config.password_policy.check(proposed)?;
        self.set_password(&mut secrets, &row.pool_id, &record.username, proposed)
            .await?;
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn resend_code(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, client_config, user) = self.client_user(input).await?;
        let (row, record) = match user {
            Some((row, record))
                if !client_config.prevent_user_existence_errors || record.enabled =>
            {
                (row, record)
            }
            _ if client_config.prevent_user_existence_errors => {
                return self.simulated_answer(&pool.pool_id, &config, input).await;
            }
            _ => return Err(err("UserNotFoundException", "User does not exist.")),
        };
        if record.status != "UNCONFIRMED" {
            return Err(invalid("User is already confirmed."));
        }
        let mut secrets = self.open_secrets(&row)?;
        let (code, pending) = self.new_code("SignUp")?;
        secrets.code = Some(pending);
        self.save_user(&config, &row, &record, &secrets).await?;
        let details = self
            .deliver(&pool.pool_id, &record, "SignUp", "code", &code)
            .await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    /// Applies attribute changes; a changed email or phone number becomes unverified.
    /// Returns the attributes that now need verification.
    /// Every request's attribute changes pass here: the pool's schema, the writer's
    /// permissions and mutability decide before anything is applied; an empty value removes
    /// the attribute.
    fn apply_attributes(
        schema: &attributes::Schema,
        record: &mut UserRecord,
        changes: &[(String, String)],
        writer: Writer<'_>,
    ) -> Result<Vec<String>, ApiError> {
        schema.check_writes(changes, &record.attributes, writer, When::Update)?;
        let mut to_verify = Vec::new();
        for (name, value) in changes {
            let changed = attribute(record, name) != Some(value.as_str());
            record.attributes.retain(|(n, _)| n != name);
            if value.is_empty() {
                continue;
            }
            record.attributes.push((name.clone(), value.clone()));
            let explicit_flag = changes
                .iter()
                .any(|(n, _)| *n == format!("{name}_verified"));
            if changed && (name == "email" || name == "phone_number") && !explicit_flag {
                let flag = format!("{name}_verified");
                record.attributes.retain(|(n, _)| *n != flag);
                record.attributes.push((flag, "false".into()));
                to_verify.push(name.clone());
            }
        }
        Ok(to_verify)
    }

    async fn update_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let token = required(input, "AccessToken")?;
        let (config, row, mut record) = self.access_token_user(token).await?;
        // The token was issued to this client: its write permissions apply.
        let client_id = keys::peek(token)
            .and_then(|(_, claims)| str_of(&claims, "client_id").map(str::to_owned))
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let (_, client_config) = self.client(&client_id).await?;
        let writable = client_config.write_attributes();
        let changes = Self::attributes_of(input, "UserAttributes");
        let to_verify = Self::apply_attributes(
            &config.schema,
            &mut record,
            &changes,
            Writer::Client(writable.as_deref()),
        )?;
        let mut secrets = self.open_secrets(&row)?;
        let mut codes = Vec::new();
        for name in to_verify
            .iter()
            .filter(|n| config.auto_verified_attributes.contains(n))
        {
            let purpose = format!("VerifyAttribute:{name}");
            let (code, pending) = self.new_code(&purpose)?;
            secrets.code = Some(pending);
            codes.push((purpose, code));
        }
        // Written first: a change that loses a race (and runs again) sends nothing twice.
        self.save_user(&config, &row, &record, &secrets).await?;
        let mut details = Vec::new();
        for (purpose, code) in codes {
            details.push(
                self.deliver(&row.pool_id, &record, &purpose, "code", &code)
                    .await?,
            );
        }
        Ok(json!({ "CodeDeliveryDetailsList": details }))
    }

    async fn attribute_code(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let name = required(input, "AttributeName")?;
        if name != "email" && name != "phone_number" {
            return Err(invalid(format!("{name} cannot be verified")));
        }
        if attribute(&record, name).is_none() {
            return Err(invalid(format!("The user has no {name}")));
        }
        let mut secrets = self.open_secrets(&row)?;
        let purpose = format!("VerifyAttribute:{name}");
        let (code, pending) = self.new_code(&purpose)?;
        secrets.code = Some(pending);
        self.save_user(&config, &row, &record, &secrets).await?;
        let details = self
            .deliver(&row.pool_id, &record, &purpose, "code", &code)
            .await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    async fn verify_attribute(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, mut record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let name = required(input, "AttributeName")?;
        let mut secrets = self.open_secrets(&row)?;
        if let Err(e) = self.check_code(
            &mut secrets,
            &format!("VerifyAttribute:{name}"),
            required(input, "Code")?,
        ) {
            self.save_user(&config, &row, &record, &secrets).await?;
            return Err(e);
        }
        let flag = format!("{name}_verified");
        record.attributes.retain(|(n, _)| *n != flag);
        record.attributes.push((flag, "true".into()));
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn delete_self(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, row, _) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        self.store
            .delete_pool_user(&row.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    async fn admin_update_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, config, row, mut record) = self.admin_user(input).await?;
        let changes = Self::attributes_of(input, "UserAttributes");
        Self::apply_attributes(&config.schema, &mut record, &changes, Writer::Admin)?;
        let secrets = self.open_secrets(&row)?;
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    async fn admin_reset_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, row, mut record) = self.admin_user(input).await?;
        let mut secrets = self.open_secrets(&row)?;
        let (code, pending) = self.new_code("ForgotPassword")?;
        secrets.code = Some(pending);
        record.status = "RESET_REQUIRED".into();
        self.save_user(&config, &row, &record, &secrets).await?;
        self.deliver(&pool.pool_id, &record, "ForgotPassword", "code", &code)
            .await?;
        Ok(json!({}))
    }

    async fn list_users(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let filter = match str_of(input, "Filter").filter(|f| !f.trim().is_empty()) {
            Some(f) => Some(UserFilter::parse(f)?),
            None => None,
        };
        let limit =
            usize::try_from(input.get("Limit").and_then(Value::as_i64).unwrap_or(60)).unwrap_or(60);
        let mut after = str_of(input, "PaginationToken").unwrap_or("").to_owned();
        let mut users = Vec::new();
        let mut next = None;
        'pages: loop {
            let rows = self
                .store
                .pool_users(&pool.pool_id, &after, 500)
                .await
                .map_err(internal)?;
            let fetched = rows.len();
            for row in rows {
                after = row.username_key.clone();
                let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
                if filter.as_ref().is_none_or(|f| f.matches(&record)) {
                    if users.len() == limit {
                        next = users
                            .last()
                            .map(|(r, _): &(UserRow, UserRecord)| r.username_key.clone());
                        break 'pages;
                    }
                    users.push((row, record));
                }
            }
            if fetched < 500 {
                break;
            }
        }
        let wanted = string_list(input, "AttributesToGet");
        let out: Vec<Value> = users
            .iter()
            .map(|(row, record)| {
                let mut record = record.clone();
                if let Some(w) = &wanted {
                    record.attributes.retain(|(n, _)| w.contains(n));
                }
                Self::user_json(row, &record, "Attributes")
            })
            .collect();
        let mut result = json!({ "Users": out });
        if let (Some(token), Some(o)) = (next, result.as_object_mut()) {
            o.insert("PaginationToken".into(), json!(token));
        }
        Ok(result)
    }

    // ---- groups ------------------------------------------------------------------------

    fn group_json(row: &cognate_store::GroupRow, record: &GroupRecord) -> Value {
        let mut out = json!({
            "GroupName": row.name,
            "UserPoolId": row.pool_id,
            "CreationDate": row.created_at,
            "LastModifiedDate": row.updated_at,
        });
        if let Some(o) = out.as_object_mut() {
            if let Some(d) = &record.description {
                o.insert("Description".into(), json!(d));
            }
            if let Some(p) = record.precedence {
                o.insert("Precedence".into(), json!(p));
            }
            if let Some(r) = &record.role_arn {
                o.insert("RoleArn".into(), json!(r));
            }
        }
        out
    }

    async fn group_or_error(
        &self,
        pool_id: &str,
        name: &str,
    ) -> Result<(cognate_store::GroupRow, GroupRecord), ApiError> {
        let row = self
            .store
            .pool_group(pool_id, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| err("ResourceNotFoundException", "Group not found."))?;
        let record: GroupRecord = serde_json::from_str(&row.record).map_err(internal)?;
        Ok((row, record))
    }

    async fn create_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let record = GroupRecord {
            description: str_of(input, "Description").map(str::to_owned),
            precedence: input.get("Precedence").and_then(Value::as_i64),
            role_arn: str_of(input, "RoleArn").map(str::to_owned),
        };
        let row = cognate_store::GroupRow {
            pool_id: pool.pool_id.clone(),
            name: required(input, "GroupName")?.to_owned(),
            record: serde_json::to_string(&record).map_err(internal)?,
            created_at: self.now(),
            updated_at: self.now(),
        };
        match self.store.create_pool_group(&row).await {
            Ok(()) => Ok(json!({ "Group": Self::group_json(&row, &record) })),
            Err(cognate_store::StoreError::Conflict) => Err(err(
                "GroupExistsException",
                "A group with the name already exists.",
            )),
            Err(e) => Err(internal(e)),
        }
    }

    async fn get_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (row, record) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        Ok(json!({ "Group": Self::group_json(&row, &record) }))
    }

    async fn update_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (mut row, mut record) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        if let Some(d) = str_of(input, "Description") {
            record.description = Some(d.to_owned());
        }
        if let Some(p) = input.get("Precedence").and_then(Value::as_i64) {
            record.precedence = Some(p);
        }
        if let Some(r) = str_of(input, "RoleArn") {
            record.role_arn = Some(r.to_owned());
        }
        let expected = std::mem::replace(
            &mut row.record,
            serde_json::to_string(&record).map_err(internal)?,
        );
        row.updated_at = self.now();
        swapped(self.store.update_pool_group(&row, &expected).await)?;
        Ok(json!({ "Group": Self::group_json(&row, &record) }))
    }

    async fn delete_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        if !self
            .store
            .delete_pool_group(&pool.pool_id, required(input, "GroupName")?)
            .await
            .map_err(internal)?
        {
            return Err(err("ResourceNotFoundException", "Group not found."));
        }
        Ok(json!({}))
    }

    async fn list_groups(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let max = input.get("Limit").and_then(Value::as_i64).unwrap_or(60);
        let mut rows = self
            .store
            .pool_groups(
                &pool.pool_id,
                str_of(input, "NextToken").unwrap_or(""),
                max + 1,
            )
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let mut groups = Vec::new();
        for r in &rows {
            let record: GroupRecord = serde_json::from_str(&r.record).map_err(internal)?;
            groups.push(Self::group_json(r, &record));
        }
        let mut out = json!({ "Groups": groups });
        if more && let (Some(last), Some(o)) = (rows.last(), out.as_object_mut()) {
            o.insert("NextToken".into(), json!(last.name));
        }
        Ok(out)
    }

    async fn set_membership(&self, input: &Value, add: bool) -> Result<Value, ApiError> {
        let (pool, _, row, _) = self.admin_user(input).await?;
        let (group, _) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        if add {
            self.store
                .add_pool_group_member(&pool.pool_id, &group.name, &row.username_key)
                .await
        } else {
            self.store
                .remove_pool_group_member(&pool.pool_id, &group.name, &row.username_key)
                .await
        }
        .map_err(internal)?;
        Ok(json!({}))
    }

    async fn list_users_in_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (group, _) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        let max = input.get("Limit").and_then(Value::as_i64).unwrap_or(60);
        let mut rows = self
            .store
            .pool_group_members(
                &pool.pool_id,
                &group.name,
                str_of(input, "NextToken").unwrap_or(""),
                max + 1,
            )
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let mut users = Vec::new();
        for r in &rows {
            let record: UserRecord = serde_json::from_str(&r.record).map_err(internal)?;
            users.push(Self::user_json(r, &record, "Attributes"));
        }
        let mut out = json!({ "Users": users });
        if more && let (Some(last), Some(o)) = (rows.last(), out.as_object_mut()) {
            o.insert("NextToken".into(), json!(last.username_key));
        }
        Ok(out)
    }

    async fn groups_for_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _, row, _) = self.admin_user(input).await?;
        let rows = self
            .store
            .pool_groups_of_user(&pool.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        let mut groups = Vec::new();
        for r in &rows {
            let record: GroupRecord = serde_json::from_str(&r.record).map_err(internal)?;
            groups.push(Self::group_json(r, &record));
        }
        Ok(json!({ "Groups": groups }))
    }

    /// The JWKS of a pool: every key whose tokens may still be valid.
    pub async fn jwks(&self, pool_id: &str) -> Result<Value, ApiError> {
        let rows = self.store.signing_keys(pool_id).await.map_err(internal)?;
        if rows.is_empty() {
            return Err(err(
                "ResourceNotFoundException",
                "User pool does not exist.",
            ));
        }
        let mut keys = Vec::new();
        for row in &rows {
            keys.push(self.open_key(row)?.jwk.clone());
        }
        Ok(json!({ "keys": keys }))
    }

    /// The OpenID Connect discovery document of a pool.
    pub async fn openid_configuration(&self, pool_id: &str) -> Result<Value, ApiError> {
        self.store
            .user_pool(pool_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| err("ResourceNotFoundException", "User pool does not exist."))?;
        let issuer = format!("{}/{}", self.issuer_base.trim_end_matches('/'), pool_id);
        Ok(json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "email", "email_verified", "phone_number", "phone_number_verified", "cognito:username", "cognito:groups"],
        }))
    }
}

fn now_millis(now: time::OffsetDateTime) -> i64 {
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The longest an ID or access token lives: a key superseded longer ago than this signed
/// nothing still valid.
const MAX_TOKEN_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// Rotates a pool's signing key: a new key signs from now on; older keys stay published in
/// the JWKS until every token they signed has expired, then they are removed. Returns the
/// new key's id.
pub async fn rotate_key(
    store: &Store,
    master: &MasterKey,
    rng: &dyn SecureRandom,
    pool_id: &str,
    now: time::OffsetDateTime,
) -> Result<String, ApiError> {
    let (kid, der) = keys::generate(rng).map_err(internal)?;
    let key_sealed = master
        .seal(&format!("userpool-key:{pool_id}:{kid}"), &der, rng)
        .map_err(internal)?;
    let now_ms = now_millis(now);
    let added = store
        .add_signing_key(&SigningKeyRow {
            pool_id: pool_id.to_owned(),
            kid: kid.clone(),
            key_sealed,
            created_at: now_ms,
        })
        .await
        .map_err(internal)?;
    if !added {
        return Err(err(
            "ResourceNotFoundException",
            format!("User pool {pool_id} does not exist."),
        ));
    }
    let rows = store.signing_keys(pool_id).await.map_err(internal)?;
    for pair in rows.windows(2) {
        if let [old, next] = pair
            && next.created_at < now_ms - MAX_TOKEN_LIFETIME_MS
        {
            store
                .delete_signing_key(pool_id, &old.kid)
                .await
                .map_err(internal)?;
        }
    }
    Ok(kid)
}

/// A client's `<token>Validity` in minutes, read in its `TokenValidityUnits` unit (AWS's
/// default unit: hours for access and ID tokens, days for refresh tokens).
fn validity_minutes(input: &Value, token: &str) -> Option<i64> {
    let value = input.get(format!("{token}Validity"))?.as_i64()?;
    let default_unit = if token == "RefreshToken" {
        "days"
    } else {
        "hours"
    };
    let unit = input
        .pointer(&format!("/TokenValidityUnits/{token}"))
        .and_then(Value::as_str)
        .unwrap_or(default_unit);
    Some(match unit {
        "seconds" => value / 60,
        "minutes" => value,
        "hours" => value * 60,
        _ => value * 24 * 60,
    })
}

/// Keeps the first `max` of `max + 1` fetched rows; true when there were more.
fn keep_page<T>(rows: &mut Vec<T>, max: i64) -> bool {
    let max = usize::try_from(max).unwrap_or(0);
    let more = rows.len() > max;
    rows.truncate(max);
    more
}

/// Cognito's bounds on token lifetimes.
fn check_validity(access: i64, id: i64, refresh: i64) -> Result<(), ApiError> {
    if !(5..=24 * 60).contains(&access) || !(5..=24 * 60).contains(&id) {
        return Err(invalid(
            "Access and ID token validity must be between 5 minutes and 1 day.",
        ));
    }
    if !(60..=3650 * 24 * 60).contains(&refresh) {
        return Err(invalid(
            "Refresh token validity must be between 60 minutes and 10 years.",
        ));
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

fn attribute<'a>(record: &'a UserRecord, name: &str) -> Option<&'a str> {
    record
        .attributes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `a***@e***` as Cognito shows a delivery destination.
fn mask(destination: &str) -> String {
    match destination.split_once('@') {
        Some((user, domain)) => format!(
            "{}***@{}***",
            user.chars().next().map(String::from).unwrap_or_default(),
            domain.chars().next().map(String::from).unwrap_or_default()
        ),
        None => {
            let tail: String = destination
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("+*******{tail}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_stored_before_the_schema_keep_their_custom_attributes() {
        let stored = json!({"extra": {"Schema": [
            {"Name": "dept", "AttributeDataType": "String"},
            {"Name": "email", "Required": true}
        ]}});
        let mut config: PoolConfig = serde_json::from_value(stored).unwrap();
        config.adopt_stored_schema();
        assert!(config.schema.attribute("custom:dept").is_some());
        assert!(config.schema.attribute("email").unwrap().required);
        assert!(!config.extra.contains_key("Schema"));
    }

    fn g(name: &str, precedence: Option<i64>, role: Option<&str>) -> (String, GroupRecord) {
        (
            name.to_owned(),
            GroupRecord {
                description: None,
                precedence,
                role_arn: role.map(str::to_owned),
            },
        )
    }

    #[test]
    fn list_users_filters() {
        let f = UserFilter::parse("email ^= \"ali\"").unwrap();
        assert_eq!(
            (f.attribute.as_str(), f.prefix, f.value.as_str()),
            ("email", true, "ali")
        );
        let f = UserFilter::parse("\"cognito:user_status\" = \"CONFIRMED\"").unwrap();
        assert_eq!(
            (f.attribute.as_str(), f.prefix),
            ("cognito:user_status", false)
        );
        assert!(UserFilter::parse("email = ali").is_err());
        assert!(UserFilter::parse("shoe_size = \"9\"").is_err());
    }

    #[test]
    fn preferred_role_is_the_lowest_precedence_unless_tied() {
        let (names, roles, preferred) = group_claims(&[
            g("readers", Some(10), Some("arn:aws:iam::1:role/Read")),
            g("admins", Some(1), Some("arn:aws:iam::1:role/Admin")),
            g("plain", None, None),
        ]);
        assert_eq!(names, ["admins", "readers", "plain"]);
        assert_eq!(
            roles,
            ["arn:aws:iam::1:role/Admin", "arn:aws:iam::1:role/Read"]
        );
        assert_eq!(preferred.as_deref(), Some("arn:aws:iam::1:role/Admin"));
        let (_, _, tied) = group_claims(&[
            g("a", Some(1), Some("arn:aws:iam::1:role/A")),
            g("b", Some(1), Some("arn:aws:iam::1:role/B")),
        ]);
        assert_eq!(tied, None);
        assert_eq!(group_claims(&[]), (vec![], vec![], None));
    }
}
