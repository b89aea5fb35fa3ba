//! Password policies and password checks. What is kept per password is Cognito's SRP salt
//! and verifier, which SRP sign-in needs anyway; a password sign-in computes the verifier
//! again and compares. The password itself is never stored.

use cognate_protocol::ApiError;
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::records::UserSecrets;
use crate::srp;

/// Checks an Argon2id hash stored before verifiers were the one check (its parameters are in
/// the PHC string).
fn legacy_matches(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Whether `password` is the user's (`username` is its `USER_ID_FOR_SRP`). With no secrets
/// (an unknown user) the same work is spent on a verifier no password matches, so timing does
/// not tell users apart.
///
/// Why the verifier and no separate slow hash: Cognito's SRP requires storing a verifier that
/// costs an attacker one modular exponentiation per offline guess (~1 ms, the `srp_verifier`
/// bench), and any hash kept beside it is only as strong as it. The Argon2id hash Cognate kept
/// too (2.3 ms at 8 MiB) bought no strength and cost two thirds of a sign-in's CPU. Both
/// forms sit sealed under the master key: guessing needs the database and the key.
pub(crate) fn matches(
    password: &str,
    pool_suffix: &str,
    username: &str,
    secrets: Option<&UserSecrets>,
) -> bool {
    match secrets {
        Some(UserSecrets { srp: Some(v), .. }) => srp::matches(pool_suffix, username, password, v),
        Some(UserSecrets {
            srp: None,
            password_hash: Some(phc),
            ..
        }) => legacy_matches(password, phc),
        _ => {
            let nobody = srp::Verifier {
                salt_hex: "0".into(),
                verifier_hex: "0".into(),
            };
            srp::matches(pool_suffix, username, password, &nobody)
        }
    }
}

/// At most one password computation per core at a time, on blocking threads: each takes about
/// a millisecond, and more of them at once would only take the cores from every other request.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
    })
}

/// [`matches`] on a blocking thread: it takes a millisecond, which must not stall the request
/// loop.
pub(crate) async fn verify_off_thread(
    password: &str,
    pool_suffix: &str,
    username: &str,
    secrets: Option<&UserSecrets>,
) -> bool {
    let password = zeroize::Zeroizing::new(password.to_owned());
    let (suffix, username) = (pool_suffix.to_owned(), username.to_owned());
    let secrets = secrets.cloned();
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || matches(&password, &suffix, &username, secrets.as_ref()))
        .await
        .unwrap_or(false)
}

/// Derives what is stored for a new password (the SRP salt and verifier) on a blocking thread.
pub(crate) async fn derive_off_thread(
    password: &str,
    pool_suffix: &str,
    username: &str,
) -> Result<srp::Verifier, ApiError> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    let (suffix, username) = (pool_suffix.to_owned(), username.to_owned());
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(move || {
        let rng = ring::rand::SystemRandom::new();
        srp::verifier(&suffix, &username, &password, &rng).ok_or_else(ApiError::internal)
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
    fn passwords_are_checked_against_the_verifier_or_a_legacy_hash() {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let rng = ring::rand::SystemRandom::new();
        let v = srp::verifier("AbC", "alice", "Correct-Horse-9", &rng).unwrap();
        let mut secrets = UserSecrets {
            srp: Some(v),
            ..UserSecrets::default()
        };
        assert!(matches("Correct-Horse-9", "AbC", "alice", Some(&secrets)));
        assert!(!matches("correct-horse-9", "AbC", "alice", Some(&secrets)));
        // Rows written before verifiers were the one check hold an Argon2id hash only.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = argon2::Argon2::default()
            .hash_password(b"Correct-Horse-9", &salt)
            .unwrap()
            .to_string();
        secrets.srp = None;
        secrets.password_hash = Some(phc);
        assert!(matches("Correct-Horse-9", "AbC", "alice", Some(&secrets)));
        assert!(!matches("Correct-Horse-8", "AbC", "alice", Some(&secrets)));
        // No secrets, or no password set: nothing matches.
        assert!(!matches("Correct-Horse-9", "AbC", "alice", None));
        assert!(!matches("", "AbC", "alice", Some(&UserSecrets::default())));
    }
}
