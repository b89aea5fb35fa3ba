//! AWS STS: the service logic behind plain functions. Callers pass the authenticated
//! principal, the time and the randomness; nothing here reads HTTP or storage.

use cognate_credentials::{
    KeyRing, Principal, SessionClaims, TEMPORARY_KEY_PREFIX, generate_id,
    generate_secret_access_key,
};
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
    /// Randomness or sealing failed: never the caller's fault, never detailed.
    #[error("internal failure")]
    Internal,
}

impl From<StsError> for ApiError {
    fn from(e: StsError) -> ApiError {
        match e {
            StsError::Validation(m) => ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", m),
            StsError::AccessDenied(m) => ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", m),
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

/// Mints temporary credentials for `principal`, valid for `duration_secs` from `now`, sealed
/// under the key ring's active key.
pub fn mint_credentials(
    principal: Principal,
    duration_secs: i64,
    now: OffsetDateTime,
    ring: &KeyRing,
    rng: &dyn SecureRandom,
) -> Result<Credentials, StsError> {
    let access_key_id = generate_id(TEMPORARY_KEY_PREFIX, rng).map_err(|_| StsError::Internal)?;
    let secret_access_key = generate_secret_access_key(rng).map_err(|_| StsError::Internal)?;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let expiration = now + time::Duration::seconds(duration_secs);
    let claims = SessionClaims {
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
        principal,
        issued_at: now.unix_timestamp(),
        expires_at: expiration.unix_timestamp(),
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
    if from_session {
        return Err(StsError::AccessDenied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    let (max, default) = match principal {
        Principal::Root { .. } => (ROOT_MAX_SESSION_SECS, ROOT_MAX_SESSION_SECS),
        Principal::User { .. } => (USER_MAX_SESSION_SECS, USER_DEFAULT_SESSION_SECS),
    };
    let duration = input.duration_seconds.unwrap_or(default);
    if duration > USER_MAX_SESSION_SECS {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {USER_MAX_SESSION_SECS}"
        )));
    }
    if duration < MIN_SESSION_SECS {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {MIN_SESSION_SECS}"
        )));
    }
    // AWS caps (rather than refuses) a root session longer than an hour.
    mint_credentials(principal.clone(), duration.min(max), now, ring, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_credentials::AccountId;

    fn root() -> Principal {
        Principal::Root {
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    fn ring() -> KeyRing {
        KeyRing::new([(1, &[5u8; 32][..])], 1).unwrap()
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
}
