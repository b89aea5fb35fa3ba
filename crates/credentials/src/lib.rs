//! Accounts, principals and credentials: account ids, access keys, the sealed session tokens
//! that carry a temporary credential's whole context, and encryption of secrets at rest.
//!
//! Pure: no I/O and no clock; randomness comes from the `SecureRandom` the caller passes.

mod ids;
mod principal;
mod sealed;
mod session;

pub use ids::{
    AccountId, InvalidAccountId, account_of_key_id, generate_id, generate_key_id,
    generate_secret_access_key,
};
pub use principal::Principal;
pub use sealed::{KeyRing, MasterKey, SealError};
pub use session::SessionClaims;

/// Prefix of long-term access key ids.
pub const LONG_TERM_KEY_PREFIX: &str = "AKIA";
/// Prefix of temporary (session) access key ids.
pub const TEMPORARY_KEY_PREFIX: &str = "ASIA";

/// The context a long-term secret access key is sealed under in storage: binds the
/// ciphertext to its key id, so a sealed secret cannot be moved to another key's row.
pub fn access_key_secret_context(access_key_id: &str) -> String {
    format!("access-key:{access_key_id}")
}
