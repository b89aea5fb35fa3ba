//! AWS STS: the service logic behind plain functions. Callers pass the authenticated
//! principal, the time and the randomness; nothing here reads HTTP or storage. Whether a
//! caller may assume a role (its trust policy) is decided by the authorizer before these run.

pub mod web_identity;

use cognate_credentials::{
    AccountId, KeyRing, Principal, SessionClaims, TEMPORARY_KEY_PREFIX, generate_key_id,
    generate_secret_access_key,
};
use cognate_policy::{Policy, PolicyUse, significant_len};
use cognate_protocol::ApiError;
use http::StatusCode;
use ring::rand::SecureRandom;
use time::OffsetDateTime;

/// STS's errors, each owning its AWS error code and status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// A parameter is outside its allowed values.
    #[error("{0}")]
    Validation(String),
    /// The caller may not do this.
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    PackedPolicyTooLarge(String),
    /// A web identity token that is not valid (signature, issuer, audience, algorithm).
    #[error("{0}")]
    InvalidIdentityToken(String),
    /// A web identity token past its expiry.
    #[error("{0}")]
    ExpiredToken(String),
    /// The identity provider could not be reached for its keys.
    #[error("{0}")]
    IdpCommunication(String),
    /// Randomness or sealing failed: never the caller's fault, never detailed.
    #[error("internal failure")]
    Internal,
}

impl From<StsError> for ApiError {
    fn from(e: StsError) -> ApiError {
        match e {
            StsError::Validation(m) => ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", m),
            StsError::AccessDenied(m) => ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", m),
            StsError::MalformedPolicyDocument(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", m)
            }
            StsError::PackedPolicyTooLarge(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "PackedPolicyTooLarge", m)
            }
            StsError::InvalidIdentityToken(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidIdentityToken", m)
            }
            StsError::ExpiredToken(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "ExpiredTokenException", m)
            }
            StsError::IdpCommunication(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "IDPCommunicationError", m)
            }
            StsError::Internal => ApiError::internal(),
        }
    }
}

/// `GetCallerIdentity`'s result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

/// Who is calling: works for every principal and needs no permission (as in AWS).
pub fn get_caller_identity(principal: &Principal) -> CallerIdentity {
    CallerIdentity {
        user_id: principal.user_id(),
        account: principal.account().to_string(),
        arn: principal.arn(),
    }
}

/// Temporary credentials as STS returns them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: OffsetDateTime,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// What a session carries besides its principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOptions {
    pub policies: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<String>,
    pub context: Vec<(String, Vec<String>)>,
}

/// Mints temporary credentials for `principal`, valid for `duration_secs` from `now`, sealed
/// under the key ring's active key.
pub fn mint_credentials(
    principal: Principal,
    duration_secs: i64,
    options: SessionOptions,
    now: OffsetDateTime,
    ring: &KeyRing,
    rng: &dyn SecureRandom,
) -> Result<Credentials, StsError> {
    let access_key_id = generate_key_id(TEMPORARY_KEY_PREFIX, principal.account(), rng)
        .map_err(|_| StsError::Internal)?;
    let secret_access_key = generate_secret_access_key(rng).map_err(|_| StsError::Internal)?;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let expiration = now + time::Duration::seconds(duration_secs);
    let claims = SessionClaims {
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
        principal,
        issued_at: now.unix_timestamp(),
        expires_at: expiration.unix_timestamp(),
        session_policies: options.policies,
        tags: options.tags,
        transitive_tag_keys: options.transitive_tag_keys,
        source_identity: options.source_identity,
        context: options.context,
    };
    let session_token = ring.seal(&claims, rng).map_err(|_| StsError::Internal)?;
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    })
}

/// `GetSessionToken`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetSessionTokenInput {
    pub duration_seconds: Option<i64>,
}

/// The root user's sessions last one hour at most (and by default).
const ROOT_MAX_SESSION_SECS: i64 = 3600;
const MIN_SESSION_SECS: i64 = 900;
/// IAM users' sessions: 12 hours by default, 36 at most.
const USER_DEFAULT_SESSION_SECS: i64 = 43_200;
const USER_MAX_SESSION_SECS: i64 = 129_600;
/// Role sessions: one hour by default, and at most one hour when a role session assumes a role.
const ROLE_DEFAULT_SESSION_SECS: i64 = 3600;
const CHAINED_MAX_SESSION_SECS: i64 = 3600;
/// The plaintext of all session policies together.
const SESSION_POLICY_MAX: usize = 2048;

/// `GetSessionToken`: temporary credentials for the long-term identity that signed the call.
/// `from_session` is true when the caller itself used temporary credentials, which AWS refuses.
pub fn get_session_token(
    principal: &Principal,
    from_session: bool,
    input: &GetSessionTokenInput,
    now: OffsetDateTime,
    ring: &KeyRing,
    rng: &dyn SecureRandom,
) -> Result<Credentials, StsError> {
    let (max, default) = match principal {
        Principal::Root { .. } => (ROOT_MAX_SESSION_SECS, ROOT_MAX_SESSION_SECS),
        Principal::User { .. } => (USER_MAX_SESSION_SECS, USER_DEFAULT_SESSION_SECS),
        Principal::AssumedRole { .. } => (0, 0),
    };
    if from_session || max == 0 {
        return Err(StsError::AccessDenied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    let duration = input.duration_seconds.unwrap_or(default);
    if duration < MIN_SESSION_SECS {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {MIN_SESSION_SECS}"
        )));
    }
    if duration > USER_MAX_SESSION_SECS {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {USER_MAX_SESSION_SECS}"
        )));
    }
    // AWS caps (rather than refuses) a root session longer than an hour.
    mint_credentials(
        principal.clone(),
        duration.min(max),
        SessionOptions::default(),
        now,
        ring,
        rng,
    )
}

/// The role being assumed, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub account: AccountId,
    pub name: String,
    pub id: String,
    pub path: String,
    pub max_session_secs: i64,
}

/// `AssumeRole`'s parameters (managed session policies already resolved to documents).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssumeRoleInput {
    pub role_session_name: String,
    pub duration_seconds: Option<i64>,
    pub policy: Option<String>,
    pub managed_policy_documents: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<String>,
}

/// `AssumeRole`'s result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    pub credentials: Credentials,
    /// `AROA…:<session>`
    pub assumed_role_id: String,
    pub arn: String,
    /// Percentage of the allowed size the session policies and tags use.
    pub packed_policy_size: Option<i64>,
}

/// Mints a role session once the authorizer has admitted the caller through the role's
/// trust policy. `caller_session` is the caller's own session when it is one (role chaining:
/// one hour at most, and its transitive tags carry over).
pub fn assume_role(
    caller: &Principal,
    caller_session: Option<&SessionClaims>,
    role: &Role,
    input: AssumeRoleInput,
    now: OffsetDateTime,
    ring: &KeyRing,
    rng: &dyn SecureRandom,
) -> Result<AssumedRole, StsError> {
    let chained = matches!(caller, Principal::AssumedRole { .. });
    role_session(
        chained,
        caller_session,
        role,
        input,
        Vec::new(),
        now,
        ring,
        rng,
    )
}

/// `AssumeRoleWithWebIdentity`, once the token is verified and the trust policy admitted its
/// provider: the session carries the token's condition keys (`context`).
pub fn assume_role_with_web_identity(
    role: &Role,
    input: AssumeRoleInput,
    context: Vec<(String, Vec<String>)>,
    now: OffsetDateTime,
    ring: &KeyRing,
    rng: &dyn SecureRandom,
) -> Result<AssumedRole, StsError> {
    role_session(false, None, role, input, context, now, ring, rng)
}

#[allow(clippy::too_many_arguments)]
fn role_session(
    chained: bool,
    caller_session: Option<&SessionClaims>,
    role: &Role,
    input: AssumeRoleInput,
    context: Vec<(String, Vec<String>)>,
    now: OffsetDateTime,
    ring: &KeyRing,
    rng: &dyn SecureRandom,
) -> Result<AssumedRole, StsError> {
    let duration = input.duration_seconds.unwrap_or(ROLE_DEFAULT_SESSION_SECS);
    if chained && duration > CHAINED_MAX_SESSION_SECS {
        return Err(StsError::Validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
        ));
    }
    if duration > role.max_session_secs {
        return Err(StsError::Validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    let mut policies = Vec::new();
    if let Some(doc) = &input.policy {
        Policy::parse(doc, PolicyUse::Identity)
            .map_err(|e| StsError::MalformedPolicyDocument(e.message))?;
        policies.push(doc.clone());
    }
    policies.extend(input.managed_policy_documents.iter().cloned());
    let packed: usize = policies.iter().map(|p| significant_len(p)).sum::<usize>()
        + input
            .tags
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    if packed > SESSION_POLICY_MAX {
        return Err(StsError::PackedPolicyTooLarge(format!(
            "Packed size of the session policies and tags is {}% of the allowed maximum.",
            packed * 100 / SESSION_POLICY_MAX
        )));
    }
    // Transitive tags of the calling session pass on; the new session's own tags join them.
    let mut tags: Vec<(String, String)> = caller_session
        .map(|s| {
            s.tags
                .iter()
                .filter(|(k, _)| {
                    s.transitive_tag_keys
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(k))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in input.tags {
        tags.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&k));
        tags.push((k, v));
    }
    let mut transitive = caller_session
        .map(|s| s.transitive_tag_keys.clone())
        .unwrap_or_default();
    transitive.extend(input.transitive_tag_keys);
    let principal = Principal::AssumedRole {
        account: role.account.clone(),
        role_name: role.name.clone(),
        role_id: role.id.clone(),
        role_path: role.path.clone(),
        session_name: input.role_session_name.clone(),
    };
    let arn = principal.arn();
    let assumed_role_id = principal.user_id();
    let source_identity = input
        .source_identity
        .or_else(|| caller_session.and_then(|s| s.source_identity.clone()));
    let options = SessionOptions {
        policies,
        tags,
        transitive_tag_keys: transitive,
        source_identity,
        context,
    };
    let credentials = mint_credentials(principal, duration, options, now, ring, rng)?;
    let packed_policy_size =
        (packed > 0).then(|| i64::try_from(packed * 100 / SESSION_POLICY_MAX).unwrap_or(100));
    Ok(AssumedRole {
        credentials,
        assumed_role_id,
        arn,
        packed_policy_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Principal {
        Principal::Root {
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    fn ring() -> KeyRing {
        KeyRing::new([(1, &[5u8; 32][..])], 1).unwrap()
    }

    fn role() -> Role {
        Role {
            account: AccountId::parse("444455556666").unwrap(),
            name: "LogReader".into(),
            id: "AROAEXAMPLEEXAMPLE00".into(),
            path: "/".into(),
            max_session_secs: 7200,
        }
    }

    #[test]
    fn caller_identity_of_root() {
        let id = get_caller_identity(&root());
        assert_eq!(id.account, "111122223333");
        assert_eq!(id.arn, "arn:aws:iam::111122223333:root");
        assert_eq!(id.user_id, "111122223333");
    }

    #[test]
    fn session_token_carries_the_principal_and_expiry() {
        let rng = ring::rand::SystemRandom::new();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let creds = get_session_token(
            &root(),
            false,
            &GetSessionTokenInput {
                duration_seconds: Some(900),
            },
            now,
            &ring(),
            &rng,
        )
        .unwrap();
        assert!(creds.access_key_id.starts_with("ASIA"));
        assert_eq!(creds.secret_access_key.len(), 40);
        assert_eq!(creds.expiration.unix_timestamp(), 1_700_000_900);
        let claims = ring().open(&creds.session_token).unwrap();
        assert_eq!(claims.principal, root());
        assert_eq!(claims.access_key_id, creds.access_key_id);
        assert_eq!(claims.secret_access_key, creds.secret_access_key);
        assert!(!format!("{creds:?}").contains(&creds.secret_access_key));
    }

    #[test]
    fn root_sessions_last_an_hour_at_most() {
        let rng = ring::rand::SystemRandom::new();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let default = get_session_token(
            &root(),
            false,
            &GetSessionTokenInput::default(),
            now,
            &ring(),
            &rng,
        )
        .unwrap();
        assert_eq!(default.expiration.unix_timestamp(), 1_700_003_600);
        let long = get_session_token(
            &root(),
            false,
            &GetSessionTokenInput {
                duration_seconds: Some(129_600),
            },
            now,
            &ring(),
            &rng,
        )
        .unwrap();
        assert_eq!(long.expiration.unix_timestamp(), 1_700_003_600);
    }

    #[test]
    fn short_durations_and_session_callers_are_refused() {
        let rng = ring::rand::SystemRandom::new();
        let now = OffsetDateTime::now_utc();
        let err = get_session_token(
            &root(),
            false,
            &GetSessionTokenInput {
                duration_seconds: Some(899),
            },
            now,
            &ring(),
            &rng,
        )
        .unwrap_err();
        assert_eq!(ApiError::from(err).code, "ValidationError");
        let err = get_session_token(
            &root(),
            true,
            &GetSessionTokenInput::default(),
            now,
            &ring(),
            &rng,
        )
        .unwrap_err();
        assert_eq!(ApiError::from(err).code, "AccessDenied");
    }

    #[test]
    fn assumed_role_sessions_carry_policies_tags_and_identity() {
        let rng = ring::rand::SystemRandom::new();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let input = AssumeRoleInput {
            role_session_name: "alice".into(),
            policy: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into()),
            tags: vec![("team".into(), "blue".into())],
            transitive_tag_keys: vec!["team".into()],
            ..AssumeRoleInput::default()
        };
        let out = assume_role(&root(), None, &role(), input, now, &ring(), &rng).unwrap();
        assert_eq!(
            out.arn,
            "arn:aws:sts::444455556666:assumed-role/LogReader/alice"
        );
        assert_eq!(out.assumed_role_id, "AROAEXAMPLEEXAMPLE00:alice");
        assert_eq!(out.credentials.expiration.unix_timestamp(), 1_700_003_600);
        assert!(out.packed_policy_size.is_some());
        let claims = ring().open(&out.credentials.session_token).unwrap();
        assert_eq!(claims.session_policies.len(), 1);
        assert_eq!(claims.tags, vec![("team".to_owned(), "blue".to_owned())]);

        // Chaining: at most an hour, and the transitive tag carries over.
        let caller = claims.principal.clone();
        let long = AssumeRoleInput {
            role_session_name: "again".into(),
            duration_seconds: Some(3601),
            ..AssumeRoleInput::default()
        };
        let err =
            assume_role(&caller, Some(&claims), &role(), long, now, &ring(), &rng).unwrap_err();
        assert!(matches!(err, StsError::Validation(m) if m.contains("role chaining")));
        let next = AssumeRoleInput {
            role_session_name: "again".into(),
            ..AssumeRoleInput::default()
        };
        let chained =
            assume_role(&caller, Some(&claims), &role(), next, now, &ring(), &rng).unwrap();
        let chained_claims = ring().open(&chained.credentials.session_token).unwrap();
        assert_eq!(
            chained_claims.tags,
            vec![("team".to_owned(), "blue".to_owned())]
        );
    }

    #[test]
    fn assume_role_validates_duration_and_policy() {
        let rng = ring::rand::SystemRandom::new();
        let now = OffsetDateTime::now_utc();
        let too_long = AssumeRoleInput {
            role_session_name: "s".into(),
            duration_seconds: Some(7201),
            ..AssumeRoleInput::default()
        };
        let err = assume_role(&root(), None, &role(), too_long, now, &ring(), &rng).unwrap_err();
        assert!(matches!(err, StsError::Validation(m) if m.contains("MaxSessionDuration")));
        let bad = AssumeRoleInput {
            role_session_name: "s".into(),
            policy: Some("{".into()),
            ..AssumeRoleInput::default()
        };
        let err = assume_role(&root(), None, &role(), bad, now, &ring(), &rng).unwrap_err();
        assert_eq!(ApiError::from(err).code, "MalformedPolicyDocument");
        let huge = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
            "b".repeat(3000)
        );
        let big = AssumeRoleInput {
            role_session_name: "s".into(),
            policy: Some(huge),
            ..AssumeRoleInput::default()
        };
        let err = assume_role(&root(), None, &role(), big, now, &ring(), &rng).unwrap_err();
        assert_eq!(ApiError::from(err).code, "PackedPolicyTooLarge");
    }
}
