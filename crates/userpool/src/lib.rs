//! Cognito user pools below HTTP: pools and app clients, the user directory, sign-up with
//! confirmation codes, password sign-in, refresh and sign-out, RS256 tokens and the JWKS.
//! `UserPools::call` runs one operation on model-shaped JSON (the edge has validated it
//! against the model and, for administrative operations, authorized it with IAM).

mod attributes;
mod cache;
mod clients;
mod codes;
mod delivery;
mod groups;
pub mod keys;
mod lockout;
mod mfa;
mod password;
mod pools;
mod records;
mod refresh;
mod self_service;
mod sign_in;
pub mod srp;
mod tokens;
mod totp;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use cognate_credentials::MasterKey;
use cognate_protocol::cognito::{err, invalid, not_authorized, required, str_of};
use cognate_protocol::{ApiError, string_list};
use cognate_store::{
    ClientRow, PoolRow, RefreshTokenRow, SigningKeyRow, Store, UserConflict, UserRow,
};
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use attributes::{When, Writer};
pub use cache::KeyCache;
use cache::*;
use codes::sign_up_channel;
pub use delivery::Delivery;
use delivery::*;
pub use keys::SigningKey;
use records::*;

pub use password::PasswordPolicy;
pub use pools::pool_of_arn;

/// The `cognito-idp` operations, as the model names them.
pub use cognate_protocol::services::cognito_idp::Operation;

/// The operations implemented so far; every other Cognito operation is unknown to the edge.
/// Which of them take no SigV4 signature (the caller proves itself with a client id, a
/// password, a code or a token) is the model's `Operation::requires_signature`.
pub fn implements(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        CreateUserPool
            | DescribeUserPool
            | DeleteUserPool
            | ListUserPools
            | CreateUserPoolClient
            | DescribeUserPoolClient
            | DeleteUserPoolClient
            | ListUserPoolClients
            | AdminCreateUser
            | AdminGetUser
            | AdminDeleteUser
            | AdminSetUserPassword
            | AdminConfirmSignUp
            | AdminDisableUser
            | AdminEnableUser
            | AdminUserGlobalSignOut
            | AdminInitiateAuth
            | AdminRespondToAuthChallenge
            | SignUp
            | ConfirmSignUp
            | InitiateAuth
            | RespondToAuthChallenge
            | GetUser
            | GlobalSignOut
            | RevokeToken
            | CreateGroup
            | GetGroup
            | UpdateGroup
            | DeleteGroup
            | ListGroups
            | AdminAddUserToGroup
            | AdminRemoveUserFromGroup
            | ListUsersInGroup
            | AdminListGroupsForUser
            | ForgotPassword
            | ConfirmForgotPassword
            | ChangePassword
            | ResendConfirmationCode
            | UpdateUserAttributes
            | GetUserAttributeVerificationCode
            | VerifyUserAttribute
            | DeleteUser
            | AdminUpdateUserAttributes
            | AdminResetUserPassword
            | ListUsers
            | AssociateSoftwareToken
            | VerifySoftwareToken
            | SetUserMFAPreference
            | AdminSetUserMFAPreference
            | UpdateUserPool
            | UpdateUserPoolClient
            | AddCustomAttributes
            | SetUserPoolMfaConfig
            | GetUserPoolMfaConfig
            | GetTokensFromRefreshToken
            | DeleteUserAttributes
            | AdminDeleteUserAttributes
            | TagResource
            | UntagResource
            | ListTagsForResource
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "user pool operation failed inside the server");
    ApiError::internal()
}

/// The part of a pool id after the region, which SRP mixes into its hashes.
fn pool_suffix(pool_id: &str) -> &str {
    pool_id.split_once('_').map_or(pool_id, |(_, s)| s)
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

    fn now_ms(&self) -> i64 {
        now_millis(self.now)
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
    pub async fn call(&self, op: Operation, input: &Value) -> Result<Value, ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            match self.call_once(op, input).await {
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

    async fn call_once(&self, op: Operation, input: &Value) -> Result<Value, ApiError> {
        use Operation::*;
        match op {
            CreateUserPool => self.create_pool(input).await,
            DescribeUserPool => self.describe_pool(input).await,
            DeleteUserPool => self.delete_pool(input).await,
            ListUserPools => self.list_pools(input).await,
            CreateUserPoolClient => self.create_client(input).await,
            DescribeUserPoolClient => self.describe_client(input).await,
            DeleteUserPoolClient => self.delete_client(input).await,
            ListUserPoolClients => self.list_clients(input).await,
            AdminCreateUser => self.admin_create_user(input).await,
            AdminGetUser => self.admin_get_user(input).await,
            AdminDeleteUser => self.admin_delete_user(input).await,
            AdminSetUserPassword => self.admin_set_password(input).await,
            AdminConfirmSignUp => self.admin_confirm(input).await,
            AdminDisableUser => self.admin_set_enabled(input, false).await,
            AdminEnableUser => self.admin_set_enabled(input, true).await,
            AdminUserGlobalSignOut => self.admin_sign_out(input).await,
            AdminInitiateAuth => self.initiate_auth(input, true).await,
            AdminRespondToAuthChallenge => self.respond_to_challenge(input, true).await,
            SignUp => self.sign_up(input).await,
            ConfirmSignUp => self.confirm_sign_up(input).await,
            InitiateAuth => self.initiate_auth(input, false).await,
            RespondToAuthChallenge => self.respond_to_challenge(input, false).await,
            GetUser => self.get_user(input).await,
            GlobalSignOut => self.global_sign_out(input).await,
            RevokeToken => self.revoke_token(input).await,
            CreateGroup => self.create_group(input).await,
            GetGroup => self.get_group(input).await,
            UpdateGroup => self.update_group(input).await,
            DeleteGroup => self.delete_group(input).await,
            ListGroups => self.list_groups(input).await,
            AdminAddUserToGroup => self.set_membership(input, true).await,
            AdminRemoveUserFromGroup => self.set_membership(input, false).await,
            ListUsersInGroup => self.list_users_in_group(input).await,
            AdminListGroupsForUser => self.groups_for_user(input).await,
            ForgotPassword => self.forgot_password(input).await,
            ConfirmForgotPassword => self.confirm_forgot_password(input).await,
            ChangePassword => self.change_password(input).await,
            ResendConfirmationCode => self.resend_code(input).await,
            UpdateUserAttributes => self.update_attributes(input).await,
            GetUserAttributeVerificationCode => self.attribute_code(input).await,
            VerifyUserAttribute => self.verify_attribute(input).await,
            DeleteUser => self.delete_self(input).await,
            AdminUpdateUserAttributes => self.admin_update_attributes(input).await,
            AdminResetUserPassword => self.admin_reset_password(input).await,
            ListUsers => self.list_users(input).await,
            AssociateSoftwareToken => self.associate_software_token(input).await,
            VerifySoftwareToken => self.verify_software_token(input).await,
            SetUserMFAPreference => self.set_mfa_preference(input, false).await,
            AdminSetUserMFAPreference => self.set_mfa_preference(input, true).await,
            UpdateUserPool => self.update_pool(input).await,
            UpdateUserPoolClient => self.update_client(input).await,
            AddCustomAttributes => self.add_custom_attributes(input).await,
            SetUserPoolMfaConfig => self.set_pool_mfa_config(input).await,
            GetUserPoolMfaConfig => self.get_pool_mfa_config(input).await,
            GetTokensFromRefreshToken => self.get_tokens_from_refresh_token(input).await,
            DeleteUserAttributes => self.delete_attributes(input, false).await,
            AdminDeleteUserAttributes => self.delete_attributes(input, true).await,
            TagResource => self.tag_pool(input).await,
            UntagResource => self.untag_pool(input).await,
            ListTagsForResource => self.list_pool_tags(input).await,
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "",
            )),
        }
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
