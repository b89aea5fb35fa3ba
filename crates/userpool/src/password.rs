//! Password policies and password hashing (Argon2id; the password itself is never stored).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use cognate_protocol::ApiError;
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Argon2id at 8 MiB, one pass, one lane. Below OWASP's 19 MiB × 2 on purpose: Cognito's
/// SRP requires storing a verifier that costs an attacker one modular exponentiation per
/// guess (~1 ms, see the `srp_verifier` bench), so a hash many times dearer than that buys
/// nothing, while it caps sign-ins per core. Both sit sealed under the master key: an
/// attacker needs the database and the key to try guesses at all.
fn hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a password as a PHC string.
pub(crate) fn hash(password: &str, rng: &dyn SecureRandom) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| ApiError::internal())?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| ApiError::internal())?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ApiError::internal())
}

pub(crate) fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the time of one verification, for unknown users.
pub(crate) fn verify_dummy(password: &str) {
    const DUMMY: &str = "$argon2id$v=19$m=8192,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let _ = verify(password, DUMMY);
}

/// At most one Argon2 computation per core at a time: each touches 8 MiB, and more of them
/// at once only fight over the caches (measured at 19 MiB: 64 concurrent ran at a quarter of
/// the rate).
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
    })
}

/// Checks a password (or, for an unknown user, spends the same time) on a blocking thread:
/// Argon2 takes milliseconds, which must not stall the request loop.
pub(crate) async fn verify_off_thread(password: &str, phc: Option<&str>) -> bool {
    let password = zeroize::Zeroizing::new(password.to_owned());
    let phc = phc.map(str::to_owned);
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || match phc {
        Some(h) => verify(&password, &h),
        None => {
            verify_dummy(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Derives what is stored for a new password (the Argon2id hash and the SRP verifier) on a
/// blocking thread.
pub(crate) async fn derive_off_thread(
    password: &str,
    pool_suffix: &str,
    username: &str,
) -> Result<(String, crate::srp::Verifier), ApiError> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    let (suffix, username) = (pool_suffix.to_owned(), username.to_owned());
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(move || {
        let rng = ring::rand::SystemRandom::new();
        let hashed = hash(&password, &rng)?;
        let verifier = crate::srp::verifier(&suffix, &username, &password, &rng)
            .ok_or_else(ApiError::internal)?;
        Ok((hashed, verifier))
    })
    .await
    .map_err(|_| ApiError::internal())?
}

/// A pool's password policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub minimum_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
    pub temporary_password_validity_days: i64,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            minimum_length: 8,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_symbols: true,
            temporary_password_validity_days: 7,
        }
    }
}

/// Cognito's special characters.
const SYMBOLS: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-";

fn invalid_password(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidPasswordException",
        format!("Password did not conform with policy: {message}"),
    )
}

impl PasswordPolicy {
    pub(crate) fn from_input(v: &Value) -> Result<Self, ApiError> {
        let d = PasswordPolicy::default();
        let flag = |k: &str, default: bool| v.get(k).and_then(Value::as_bool).unwrap_or(default);
        let min = v
            .get("MinimumLength")
            .and_then(Value::as_u64)
            .map_or(d.minimum_length, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
        if !(6..=99).contains(&min) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterException",
                "Password policy MinimumLength must be between 6 and 99",
            ));
        }
        Ok(PasswordPolicy {
            minimum_length: min,
            require_uppercase: flag("RequireUppercase", d.require_uppercase),
            require_lowercase: flag("RequireLowercase", d.require_lowercase),
            require_numbers: flag("RequireNumbers", d.require_numbers),
            require_symbols: flag("RequireSymbols", d.require_symbols),
            temporary_password_validity_days: v
                .get("TemporaryPasswordValidityDays")
                .and_then(Value::as_i64)
                .unwrap_or(d.temporary_password_validity_days),
        })
    }

    pub(crate) fn to_output(&self) -> Value {
        json!({
            "MinimumLength": self.minimum_length,
            "RequireUppercase": self.require_uppercase,
            "RequireLowercase": self.require_lowercase,
            "RequireNumbers": self.require_numbers,
            "RequireSymbols": self.require_symbols,
            "TemporaryPasswordValidityDays": self.temporary_password_validity_days,
        })
    }

    /// Checks a password with Cognito's messages.
    pub fn check(&self, password: &str) -> Result<(), ApiError> {
        if password.chars().count() < self.minimum_length {
            return Err(invalid_password("Password not long enough"));
        }
        if self.require_lowercase && !password.chars().any(|c| c.is_lowercase()) {
            return Err(invalid_password("Password must have lowercase characters"));
        }
        if self.require_uppercase && !password.chars().any(|c| c.is_uppercase()) {
            return Err(invalid_password("Password must have uppercase characters"));
        }
        if self.require_numbers && !password.chars().any(|c| c.is_ascii_digit()) {
            return Err(invalid_password("Password must have numeric characters"));
        }
        if self.require_symbols && !password.chars().any(|c| SYMBOLS.contains(c)) {
            return Err(invalid_password("Password must have symbol characters"));
        }
        Ok(())
    }

    /// A random temporary password that satisfies the policy.
    pub(crate) fn generate(&self, rng: &dyn SecureRandom) -> Result<String, ApiError> {
        let classes: [&[u8]; 4] = [
            b"ABCDEFGHJKLMNPQRSTUVWXYZ",
            b"abcdefghijkmnopqrstuvwxyz",
            b"23456789",
            b"^$*.!@#%&",
        ];
        let len = self.minimum_length.max(12);
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes).map_err(|_| ApiError::internal())?;
        let out: String = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let class = classes.get(i % 4).copied().unwrap_or(b"a");
                char::from(
                    class
                        .get(usize::from(*b) % class.len())
                        .copied()
                        .unwrap_or(b'a'),
                )
            })
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_messages_and_generated_passwords() {
        let p = PasswordPolicy::default();
        assert!(p.check("Sh0rt!").is_err());
        assert!(
            p.check("alllowercase1!")
                .unwrap_err()
                .message
                .contains("uppercase")
        );
        assert!(
            p.check("NoNumbers!!")
                .unwrap_err()
                .message
                .contains("numeric")
        );
        assert!(
            p.check("NoSymbols123")
                .unwrap_err()
                .message
                .contains("symbol")
        );
        assert!(p.check("Correct-Horse-9").is_ok());
        let rng = ring::rand::SystemRandom::new();
        for _ in 0..20 {
            assert!(p.check(&p.generate(&rng).unwrap()).is_ok());
        }
    }

    #[test]
    fn hashes_verify_only_the_right_password() {
        let rng = ring::rand::SystemRandom::new();
        let h = hash("Correct-Horse-9", &rng).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("Correct-Horse-9"));
        assert!(verify("Correct-Horse-9", &h));
        assert!(!verify("correct-horse-9", &h));
        verify_dummy("anything");
    }
}
