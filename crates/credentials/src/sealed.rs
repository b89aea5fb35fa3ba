//! Authenticated encryption (AES-256-GCM): secrets at rest under the master key, and session
//! tokens under a rotatable key ring.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::SessionClaims;

/// Why sealing or opening failed. Deliberately vague: callers turn every variant into "invalid".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("malformed sealed value")]
    Malformed,
    #[error("sealed under unknown key {0}")]
    UnknownKey(u32),
    #[error("sealed value failed authentication")]
    Invalid,
    #[error("random number generator failed")]
    Rng,
    #[error("key must be 32 bytes, as base64 or hex")]
    BadKey,
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| SealError::BadKey)
}

fn seal_with(
    key: &LessSafeKey,
    aad: &[u8],
    plaintext: &[u8],
    rng: &dyn SecureRandom,
    out: &mut Vec<u8>,
) -> Result<(), SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| SealError::Rng)?;
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(start);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| SealError::Invalid)?;
    out.extend_from_slice(&body);
    Ok(())
}

fn open_with(
    key: &LessSafeKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (nonce, body) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or(SealError::Malformed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| SealError::Invalid)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// The key that encrypts long-term secrets stored in the database (and, through a key derived
/// from it, gives keyed digests that only this deployment can compute).
pub struct MasterKey(LessSafeKey, ring::hmac::Key);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SealError> {
        let mac_seed = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes),
            b"cognate master key: keyed digests",
        );
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, mac_seed.as_ref());
        aead_key(bytes).map(|aead| MasterKey(aead, mac))
    }

    /// A keyed digest of `data` for `context`: the same input always gives the same bytes,
    /// which nobody without the master key can predict.
    pub fn digest(&self, context: &str, data: &[u8]) -> [u8; 32] {
        let mut ctx = ring::hmac::Context::with_key(&self.1);
        ctx.update(context.as_bytes());
        ctx.update(&[0]);
        ctx.update(data);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Reads a key written as 64 hex digits or as base64 of 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = Zeroizing::new(if text.len() == 64 {
            hex_decode(text).ok_or(SealError::BadKey)?
        } else {
            STANDARD.decode(text).map_err(|_| SealError::BadKey)?
        });
        let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| SealError::BadKey)?;
        Self::from_bytes(bytes)
    }

    /// A fresh random key, returned with its base64 text for storing.
    pub fn generate(rng: &dyn SecureRandom) -> Result<(Self, Zeroizing<String>), SealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(bytes.as_mut_slice()).map_err(|_| SealError::Rng)?;
        Ok((
            Self::from_bytes(&bytes)?,
            Zeroizing::new(STANDARD.encode(bytes.as_slice())),
        ))
    }

    /// Encrypts `plaintext`, bound to `context` (for example the row it is stored in), so a
    /// sealed value copied to another row does not open.
    pub fn seal(
        &self,
        context: &str,
        plaintext: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, SealError> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        seal_with(&self.0, context.as_bytes(), plaintext, rng, &mut out)?;
        Ok(out)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        open_with(&self.0, context.as_bytes(), sealed)
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

const TOKEN_VERSION: u8 = 1;
const TOKEN_HEADER: usize = 5;

/// The keys that seal session tokens. New tokens use the active key; every key in the ring
/// still opens the tokens it sealed, so rotation never breaks a token before it expires.
pub struct KeyRing {
    active: u32,
    keys: BTreeMap<u32, LessSafeKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Builds a ring from `(id, key bytes)` pairs; `active` must be one of them.
    pub fn new<'a>(
        keys: impl IntoIterator<Item = (u32, &'a [u8])>,
        active: u32,
    ) -> Result<Self, SealError> {
        let keys = keys
            .into_iter()
            .map(|(id, bytes)| aead_key(bytes).map(|k| (id, k)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        if !keys.contains_key(&active) {
            return Err(SealError::UnknownKey(active));
        }
        Ok(KeyRing { active, keys })
    }

    pub fn active_key_id(&self) -> u32 {
        self.active
    }

    /// Seals the claims into an opaque token (URL-safe base64).
    pub fn seal(
        &self,
        claims: &SessionClaims,
        rng: &dyn SecureRandom,
    ) -> Result<String, SealError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or(SealError::UnknownKey(self.active))?;
        let payload = Zeroizing::new(serde_json::to_vec(claims).map_err(|_| SealError::Malformed)?);
        let mut out = Vec::with_capacity(TOKEN_HEADER + NONCE_LEN + payload.len() + 16);
        out.push(TOKEN_VERSION);
        out.extend_from_slice(&self.active.to_be_bytes());
        let header = out.clone();
        seal_with(key, &header, &payload, rng, &mut out)?;
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The id of the key a token claims to be sealed under, without opening it (so a node can
    /// reload its ring when a peer has rotated).
    pub fn key_id_of(token: &str) -> Result<u32, SealError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| SealError::Malformed)?;
        match bytes.get(..TOKEN_HEADER) {
            Some([TOKEN_VERSION, a, b, c, d]) => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(SealError::Malformed),
        }
    }

    /// Opens and authenticates a token. Any change to any byte fails.
    pub fn open(&self, token: &str) -> Result<SessionClaims, SealError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| SealError::Malformed)?;
        let (header, sealed) = bytes
            .split_at_checked(TOKEN_HEADER)
            .ok_or(SealError::Malformed)?;
        let [version, a, b, c, d] = header else {
            return Err(SealError::Malformed);
        };
        if *version != TOKEN_VERSION {
            return Err(SealError::Malformed);
        }
        let id = u32::from_be_bytes([*a, *b, *c, *d]);
        let key = self.keys.get(&id).ok_or(SealError::UnknownKey(id))?;
        let payload = open_with(key, header, sealed)?;
        serde_json::from_slice(&payload).map_err(|_| SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountId, Principal};

    fn claims() -> SessionClaims {
        SessionClaims {
            access_key_id: "ASIAAAAAAAAAAAAAAAAA".into(),
            secret_access_key: "s".repeat(40),
            principal: Principal::Root {
                account: AccountId::parse("111122223333").unwrap(),
            },
            issued_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            session_policies: vec![r#"{"Version":"2012-10-17"}"#.into()],
            tags: vec![("team".into(), "blue".into())],
            transitive_tag_keys: vec!["team".into()],
            source_identity: Some("alice".into()),
            context: vec![("accounts.example.com:sub".into(), vec!["u-1".into()])],
        }
    }

    #[test]
    fn master_key_binds_ciphertext_to_context() {
        let rng = ring::rand::SystemRandom::new();
        let (key, text) = MasterKey::generate(&rng).unwrap();
        let again = MasterKey::from_text(&text).unwrap();
        let sealed = key.seal("access-key:AKIA1", b"secret", &rng).unwrap();
        assert_eq!(
            again.open("access-key:AKIA1", &sealed).unwrap().as_slice(),
            b"secret"
        );
        assert_eq!(
            key.open("access-key:AKIA2", &sealed),
            Err(SealError::Invalid)
        );
        let (other, _) = MasterKey::generate(&rng).unwrap();
        assert_eq!(
            other.open("access-key:AKIA1", &sealed),
            Err(SealError::Invalid)
        );
    }

    #[test]
    fn master_key_text_forms() {
        assert!(MasterKey::from_text(&"ab".repeat(32)).is_ok());
        assert_eq!(
            MasterKey::from_text("short").unwrap_err(),
            SealError::BadKey
        );
        assert_eq!(
            MasterKey::from_text(&"zz".repeat(32)).unwrap_err(),
            SealError::BadKey
        );
    }

    #[test]
    fn tokens_round_trip_and_survive_rotation() {
        let rng = ring::rand::SystemRandom::new();
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let ring1 = KeyRing::new([(1, &k1[..])], 1).unwrap();
        let token = ring1.seal(&claims(), &rng).unwrap();
        assert_eq!(KeyRing::key_id_of(&token), Ok(1));
        let rotated = KeyRing::new([(1, &k1[..]), (2, &k2[..])], 2).unwrap();
        assert_eq!(rotated.open(&token).unwrap(), claims());
        let newer = rotated.seal(&claims(), &rng).unwrap();
        assert_eq!(KeyRing::key_id_of(&newer), Ok(2));
        assert_eq!(ring1.open(&newer), Err(SealError::UnknownKey(2)));
    }

    #[test]
    fn every_tampered_byte_is_refused() {
        let rng = ring::rand::SystemRandom::new();
        let ring = KeyRing::new([(7, &[9u8; 32][..])], 7).unwrap();
        let token = ring.seal(&claims(), &rng).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            assert!(ring.open(&URL_SAFE_NO_PAD.encode(&t)).is_err(), "byte {i}");
        }
        assert_eq!(ring.open("not base64!"), Err(SealError::Malformed));
        assert_eq!(ring.open(""), Err(SealError::Malformed));
    }

    #[test]
    fn a_token_from_another_ring_with_the_same_key_id_is_refused() {
        let rng = ring::rand::SystemRandom::new();
        let mine = KeyRing::new([(1, &[1u8; 32][..])], 1).unwrap();
        let forged = KeyRing::new([(1, &[3u8; 32][..])], 1)
            .unwrap()
            .seal(&claims(), &rng)
            .unwrap();
        assert_eq!(mine.open(&forged), Err(SealError::Invalid));
    }
}
