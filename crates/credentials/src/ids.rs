//! Identifiers in AWS's formats: 12-digit accounts, `AKIA…`/`ASIA…` key ids, unique ids.

use std::fmt;

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

/// A 12-digit AWS account id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

/// The text was not a 12-digit account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account id must be exactly 12 digits")]
pub struct InvalidAccountId;

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, InvalidAccountId> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(InvalidAccountId)
        }
    }

    /// A random account id (never starting with 0, so it reads as a number everywhere).
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, ring::error::Unspecified> {
        let mut bytes = [0u8; 12];
        rng.fill(&mut bytes)?;
        let digits: String = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let d = if i == 0 { 1 + b % 9 } else { b % 10 };
                char::from(b'0' + d)
            })
            .collect();
        Ok(AccountId(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = InvalidAccountId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AccountId::parse(&s)
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The alphabet's character for a random byte. Both alphabets' sizes divide 256, so every
/// character is equally likely.
fn pick(alphabet: &[u8], byte: u8) -> char {
    let i = usize::from(byte) % alphabet.len();
    char::from(alphabet.get(i).copied().unwrap_or(b'A'))
}

/// An AWS-style identifier: a four-letter prefix (`AKIA`, `ASIA`, `AIDA`, `AROA`, …) and 16
/// characters of upper-case base32, 20 in all.
pub fn generate_id(
    prefix: &str,
    rng: &dyn SecureRandom,
) -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)?;
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    id.extend(bytes.iter().map(|b| pick(BASE32, *b)));
    Ok(id)
}

/// An access key id that carries its account, as AWS's do: after the prefix, 16 base32
/// characters (80 bits) whose first 48 bits hold the account id shifted left by 7, the rest
/// random. [`account_of_key_id`] reads it back without any lookup.
pub fn generate_key_id(
    prefix: &str,
    account: &AccountId,
    rng: &dyn SecureRandom,
) -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes)?;
    let number: u64 = account.as_str().parse().unwrap_or(0);
    let low7 = u64::from(bytes[5] & 0x7f);
    let packed = (number << 7) | low7;
    let be = packed.to_be_bytes();
    bytes[..6].copy_from_slice(&be[2..8]);
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    id.push_str(&base32(&bytes));
    Ok(id)
}

/// The account an access key id was issued for (see [`generate_key_id`]).
pub fn account_of_key_id(access_key_id: &str) -> Option<AccountId> {
    let body = access_key_id.get(4..)?;
    if body.len() != 16 {
        return None;
    }
    let bytes = unbase32(body)?;
    let mut be = [0u8; 8];
    be[2..8].copy_from_slice(bytes.get(..6)?);
    let account = (u64::from_be_bytes(be) & 0x7fff_ffff_ff80) >> 7;
    AccountId::parse(&format!("{account:012}")).ok()
}

fn base32(bytes: &[u8; 10]) -> String {
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..16)
        .rev()
        .map(|i| {
            let index = usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0);
            char::from(BASE32.get(index).copied().unwrap_or(b'A'))
        })
        .collect()
}

fn unbase32(text: &str) -> Option<[u8; 10]> {
    let mut bits: u128 = 0;
    for c in text.bytes() {
        let v = BASE32.iter().position(|b| *b == c)?;
        bits = (bits << 5) | u128::try_from(v).ok()?;
    }
    let mut out = [0u8; 10];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::try_from((bits >> (8 * (9 - i))) & 0xff).ok()?;
    }
    Some(out)
}

/// A 40-character secret access key drawn from the base64 alphabet, as AWS issues them.
pub fn generate_secret_access_key(
    rng: &dyn SecureRandom,
) -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 40];
    rng.fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| pick(BASE64, *b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("111122223333").is_ok());
        assert!(AccountId::parse("11112222333").is_err());
        assert!(AccountId::parse("1111222233334").is_err());
        assert!(AccountId::parse("11112222333a").is_err());
        let rng = ring::rand::SystemRandom::new();
        let a = AccountId::generate(&rng).unwrap();
        assert!(AccountId::parse(a.as_str()).is_ok());
        assert_ne!(a.as_str().as_bytes()[0], b'0');
    }

    #[test]
    fn key_ids_carry_their_account() {
        let rng = ring::rand::SystemRandom::new();
        for account in ["111122223333", "000000000001", "999999999999"] {
            let account = AccountId::parse(account).unwrap();
            for _ in 0..50 {
                let id = generate_key_id("ASIA", &account, &rng).unwrap();
                assert_eq!(id.len(), 20);
                assert!(
                    id.bytes()
                        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
                    "{id}"
                );
                assert_eq!(account_of_key_id(&id), Some(account.clone()), "{id}");
            }
        }
        // AWS's documented example key decodes to its documented account.
        assert_eq!(
            account_of_key_id("ASIAY34FZKBOKMUTVV7A").unwrap().as_str(),
            "609629065308"
        );
        assert_eq!(account_of_key_id("short"), None);
    }

    #[test]
    fn key_ids_and_secrets_have_aws_shapes() {
        let rng = ring::rand::SystemRandom::new();
        let id = generate_id("AKIA", &rng).unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        let secret = generate_secret_access_key(&rng).unwrap();
        assert_eq!(secret.len(), 40);
        assert_ne!(secret, generate_secret_access_key(&rng).unwrap());
    }
}
