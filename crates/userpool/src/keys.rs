//! Token signing keys (RSA-2048 per pool, sealed at rest), RS256 JWTs, and the JWKS.

use base64::Engine as _;
use ring::rand::SecureRandom;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

/// `rand_core` 0.6 over ring's system RNG, for RSA key generation.
struct RingRng<'a>(&'a dyn SecureRandom);

impl rand_core::RngCore for RingRng<'_> {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // ring's system RNG does not fail on supported platforms; if it did, the key would be
        // refused below by `try_fill_bytes`'s caller path, so report it there instead.
        let _ = self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0
            .fill(dest)
            .map_err(|_| rand_core::Error::from(std::num::NonZeroU32::MIN))
    }
}

impl rand_core::CryptoRng for RingRng<'_> {}

/// A pool's signing key, opened: ring's RSA key pair (signing is ring's, about twice as
/// fast as the `rsa` crate's) and the public components for verifying and for the JWKS.
pub struct SigningKey {
    pub kid: String,
    alg: Alg,
    pair: ring::signature::RsaKeyPair,
    public: ring::signature::RsaPublicKeyComponents<Vec<u8>>,
    /// The public key as a JWK.
    pub jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The RSA signature algorithm a key signs with: user pools sign RS256, the identity pools'
/// built-in provider RS512 (as Cognito's do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs512,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs512 => "RS512",
        }
    }

    fn signing(self) -> &'static dyn ring::signature::RsaEncoding {
        match self {
            Alg::Rs256 => &ring::signature::RSA_PKCS1_SHA256,
            Alg::Rs512 => &ring::signature::RSA_PKCS1_SHA512,
        }
    }

    fn verification(self) -> &'static ring::signature::RsaParameters {
        match self {
            Alg::Rs256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs512 => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("random number generator failed")]
    Rng,
    #[error("RSA key: {0}")]
    Rsa(String),
}

/// Generates an RSA-2048 key; returns its kid and PKCS#8 DER (to be sealed).
pub fn generate(rng: &dyn SecureRandom) -> Result<(String, zeroize::Zeroizing<Vec<u8>>), KeyError> {
    let key = rsa::RsaPrivateKey::new(&mut RingRng(rng), 2048)
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let mut id = [0u8; 16];
    rng.fill(&mut id).map_err(|_| KeyError::Rng)?;
    let kid = base64::engine::general_purpose::STANDARD.encode(id);
    Ok((kid, zeroize::Zeroizing::new(der.as_bytes().to_vec())))
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl SigningKey {
    /// Opens an RS256 key from its PKCS#8 DER.
    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<SigningKey, KeyError> {
        Self::from_pkcs8_with(kid, der, Alg::Rs256)
    }

    /// Opens a key that signs with `alg` from its PKCS#8 DER.
    pub fn from_pkcs8_with(kid: &str, der: &[u8], alg: Alg) -> Result<SigningKey, KeyError> {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der)
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        let key =
            rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| KeyError::Rsa(e.to_string()))?;
        let n = key.n().to_bytes_be();
        let e = key.e().to_bytes_be();
        let jwk = json!({ "alg": alg.name(), "e": B64.encode(&e), "kid": kid, "kty": "RSA", "n": B64.encode(&n), "use": "sig" });
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            pair,
            public: ring::signature::RsaPublicKeyComponents { n, e },
            jwk,
        })
    }

    /// Signs claims as a JWT (JWS compact serialization) with this key's algorithm and kid.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let header = json!({ "alg": self.alg.name(), "kid": self.kid, "typ": "JWT" });
        let mut token = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                self.alg.signing(),
                &ring::rand::SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Rsa("signing failed".into()))?;
        token.push('.');
        token.push_str(&B64.encode(signature));
        Ok(token)
    }

    /// Verifies a JWT's signature under this key and returns its claims. Any algorithm but
    /// the key's own is refused; expiry and the issuer are the caller's to check.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        let header: Value = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
        if header.get("alg").and_then(Value::as_str) != Some(self.alg.name()) {
            return None;
        }
        let signature = B64.decode(signature).ok()?;
        self.public
            .verify(self.alg.verification(), signed.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&B64.decode(payload).ok()?).ok()
    }
}

/// A JWT's header and claims, unverified (to find the key that must verify it).
pub fn peek(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let header = serde_json::from_slice(&B64.decode(parts.next()?).ok()?).ok()?;
    let claims = serde_json::from_slice(&B64.decode(parts.next()?).ok()?).ok()?;
    Some((header, claims))
}

/// The `kid` a JWT's header names, without verifying anything.
pub fn kid_of(token: &str) -> Option<String> {
    peek(token)?.0.get("kid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_tokens_verify_only_under_their_key() {
        let rng = ring::rand::SystemRandom::new();
        let (kid, der) = generate(&rng).unwrap();
        let key = SigningKey::from_pkcs8(&kid, &der).unwrap();
        let token = key
            .sign(&json!({"sub": "abc", "token_use": "access"}))
            .unwrap();
        assert_eq!(kid_of(&token).as_deref(), Some(kid.as_str()));
        assert_eq!(key.verify(&token).unwrap()["sub"], "abc");
        // Another key, a changed payload and an alg=none token are all refused.
        let (kid2, der2) = generate(&rng).unwrap();
        let other = SigningKey::from_pkcs8(&kid2, &der2).unwrap();
        assert!(other.verify(&token).is_none());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"admin","token_use":"access"}"#);
        parts[1] = &forged;
        assert!(key.verify(&parts.join(".")).is_none());
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            forged
        );
        assert!(key.verify(&none).is_none());
        assert_eq!(key.jwk["kty"], "RSA");
    }

    #[test]
    fn a_key_verifies_only_its_own_algorithm() {
        let rng = ring::rand::SystemRandom::new();
        let (kid, der) = generate(&rng).unwrap();
        let rs512 = SigningKey::from_pkcs8_with(&kid, &der, Alg::Rs512).unwrap();
        let rs256 = SigningKey::from_pkcs8(&kid, &der).unwrap();
        let token = rs512.sign(&json!({"sub": "abc"})).unwrap();
        assert_eq!(peek(&token).unwrap().0["alg"], "RS512");
        assert_eq!(rs512.jwk["alg"], "RS512");
        assert_eq!(rs512.verify(&token).unwrap()["sub"], "abc");
        // The same RSA key under the other algorithm refuses the token, both ways.
        assert!(rs256.verify(&token).is_none());
        assert!(rs512.verify(&rs256.sign(&json!({})).unwrap()).is_none());
    }
}
