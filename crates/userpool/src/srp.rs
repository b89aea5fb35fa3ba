//! Cognito's SRP-6a variant (`USER_SRP_AUTH` / `PASSWORD_VERIFIER`), as
//! amazon-cognito-identity-js and pycognito implement the client: the 3072-bit group of
//! RFC 5054 with g = 2, SHA-256, hex-string padding rules, an HKDF-derived 16-byte key and an
//! HMAC over the pool, the user, the secret block and a timestamp. Big-number arithmetic is
//! `num-bigint-dig`'s; hashing and HMAC are ring's.

use std::sync::OnceLock;

use num_bigint_dig::BigUint;
use num_traits::Zero as _;
use ring::rand::SecureRandom;

const N_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64",
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B",
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31",
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

struct Group {
    n: BigUint,
    g: BigUint,
    k: BigUint,
}

fn group() -> &'static Group {
    static GROUP: OnceLock<Group> = OnceLock::new();
    GROUP.get_or_init(|| {
        let n = BigUint::parse_bytes(N_HEX.as_bytes(), 16).unwrap_or_default();
        let k = from_digest(&hex_hash(&format!("00{N_HEX}02")));
        Group {
            n,
            g: BigUint::from(2u32),
            k,
        }
    })
}

fn to_hex(n: &BigUint) -> String {
    n.to_str_radix(16)
}

/// The clients' `padHex`: an even number of digits, and a leading `00` when the first digit
/// would read as a sign bit.
fn pad_hex(hex: &str) -> String {
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else if hex.starts_with([
        '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'A', 'B', 'C', 'D', 'E', 'F',
    ]) {
        format!("00{hex}")
    } else {
        hex.to_owned()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// SHA-256 of the bytes a hex string spells (an odd or invalid string hashes as empty).
fn hex_hash(hex_string: &str) -> [u8; 32] {
    sha256(&hex::decode(hex_string).unwrap_or_default())
}

fn from_digest(d: &[u8]) -> BigUint {
    BigUint::from_bytes_be(d)
}

/// What is stored for a password: a salt and the verifier `g^x mod N`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verifier {
    pub salt_hex: String,
    pub verifier_hex: String,
}

/// `x = H(padHex(salt) || hex(H(poolSuffix || username || ":" || password)))`.
fn x_of(pool_suffix: &str, username: &str, password: &str, salt_hex: &str) -> BigUint {
    let inner = hex::encode(sha256(
        format!("{pool_suffix}{username}:{password}").as_bytes(),
    ));
    from_digest(&hex_hash(&format!("{}{inner}", pad_hex(salt_hex))))
}

/// Computes the verifier for a password. `username` is the user's `USER_ID_FOR_SRP`.
pub fn verifier(
    pool_suffix: &str,
    username: &str,
    password: &str,
    rng: &dyn SecureRandom,
) -> Option<Verifier> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).ok()?;
    let salt_hex = to_hex(&BigUint::from_bytes_be(&salt));
    let x = x_of(pool_suffix, username, password, &salt_hex);
    let g = group();
    let v = g.g.modpow(&x, &g.n);
    Some(Verifier {
        salt_hex,
        verifier_hex: to_hex(&v),
    })
}

/// Whether `password` is the one `stored` was computed from: the verifier is computed again
/// with the stored salt and compared in constant time. This is how a password sign-in
/// (`USER_PASSWORD_AUTH`) is checked, so that a stored verifier is the only thing kept per
/// password and costs an offline guess exactly what it costs here.
pub fn matches(pool_suffix: &str, username: &str, password: &str, stored: &Verifier) -> bool {
    use subtle::ConstantTimeEq as _;
    let x = x_of(pool_suffix, username, password, &stored.salt_hex);
    let g = group();
    let v = g.g.modpow(&x, &g.n).to_bytes_be();
    let Some(expected) = BigUint::parse_bytes(stored.verifier_hex.as_bytes(), 16) else {
        return false;
    };
    bool::from(v.ct_eq(&expected.to_bytes_be()))
}

/// The server's ephemeral values: secret `b` and public `B = k·v + g^b mod N` (hex).
pub fn server_ephemeral(verifier_hex: &str, rng: &dyn SecureRandom) -> Option<(String, String)> {
    let g = group();
    let v = BigUint::parse_bytes(verifier_hex.as_bytes(), 16)?;
    loop {
        let mut bytes = [0u8; 128];
        rng.fill(&mut bytes).ok()?;
        let b = BigUint::from_bytes_be(&bytes);
        let big_b = (&g.k * &v + g.g.modpow(&b, &g.n)) % &g.n;
        if !big_b.is_zero() {
            return Some((to_hex(&b), to_hex(&big_b)));
        }
    }
}

/// The 16-byte key both sides derive; `None` when `A` is invalid (`A mod N = 0`) or `u = 0`.
pub fn password_key(
    a_hex: &str,
    b_hex: &str,
    big_b_hex: &str,
    verifier_hex: &str,
) -> Option<[u8; 16]> {
    let g = group();
    let big_a = BigUint::parse_bytes(a_hex.as_bytes(), 16)?;
    if (&big_a % &g.n).is_zero() {
        return None;
    }
    let b = BigUint::parse_bytes(b_hex.as_bytes(), 16)?;
    let big_b = BigUint::parse_bytes(big_b_hex.as_bytes(), 16)?;
    let v = BigUint::parse_bytes(verifier_hex.as_bytes(), 16)?;
    let u = from_digest(&hex_hash(&format!(
        "{}{}",
        pad_hex(&to_hex(&big_a)),
        pad_hex(&to_hex(&big_b))
    )));
    if u.is_zero() {
        return None;
    }
    let s = (big_a * v.modpow(&u, &g.n)).modpow(&b, &g.n);
    let ikm = hex::decode(pad_hex(&to_hex(&s))).ok()?;
    let salt = hex::decode(pad_hex(&to_hex(&u))).ok()?;
    // HKDF-SHA256 (extract, then the first block of expand) with Cognito's info string.
    let prk = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &salt), &ikm);
    let okm = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, prk.as_ref()),
        b"Caldera Derived Key\x01",
    );
    let mut key = [0u8; 16];
    key.copy_from_slice(okm.as_ref().get(..16)?);
    Some(key)
}

/// Checks the client's `PASSWORD_CLAIM_SIGNATURE` in constant time.
pub fn verify_claim(
    key: &[u8; 16],
    pool_suffix: &str,
    user_id_for_srp: &str,
    secret_block: &[u8],
    timestamp: &str,
    signature: &[u8],
) -> bool {
    let mut message = Vec::with_capacity(
        pool_suffix.len() + user_id_for_srp.len() + secret_block.len() + timestamp.len(),
    );
    message.extend_from_slice(pool_suffix.as_bytes());
    message.extend_from_slice(user_id_for_srp.as_bytes());
    message.extend_from_slice(secret_block);
    message.extend_from_slice(timestamp.as_bytes());
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        &message,
        signature,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The client side, as pycognito computes it, to check the server against.
    fn client_key(
        pool_suffix: &str,
        username: &str,
        password: &str,
        salt_hex: &str,
        a: &BigUint,
        big_b_hex: &str,
    ) -> [u8; 16] {
        let g = group();
        let big_a = g.g.modpow(a, &g.n);
        let big_b = BigUint::parse_bytes(big_b_hex.as_bytes(), 16).unwrap();
        let u = from_digest(&hex_hash(&format!(
            "{}{}",
            pad_hex(&to_hex(&big_a)),
            pad_hex(&to_hex(&big_b))
        )));
        let x = x_of(pool_suffix, username, password, salt_hex);
        // S = (B - k·g^x)^(a + u·x) mod N, with the subtraction kept non-negative.
        let kgx = (&g.k * g.g.modpow(&x, &g.n)) % &g.n;
        let base = ((&big_b + &g.n) - kgx) % &g.n;
        let s = base.modpow(&(a + &u * &x), &g.n);
        let ikm = hex::decode(pad_hex(&to_hex(&s))).unwrap();
        let salt = hex::decode(pad_hex(&to_hex(&u))).unwrap();
        let prk = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &salt), &ikm);
        let okm = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, prk.as_ref()),
            b"Caldera Derived Key\x01",
        );
        okm.as_ref()[..16].try_into().unwrap()
    }

    #[test]
    fn both_sides_derive_the_same_key_only_with_the_right_password() {
        let rng = ring::rand::SystemRandom::new();
        let v = verifier("AbC123xyz", "alice", "Correct-Horse-9", &rng).unwrap();
        let a = BigUint::from_bytes_be(&[7u8; 128]);
        let g = group();
        let big_a = to_hex(&g.g.modpow(&a, &g.n));
        let (b, big_b) = server_ephemeral(&v.verifier_hex, &rng).unwrap();
        let server = password_key(&big_a, &b, &big_b, &v.verifier_hex).unwrap();
        assert_eq!(
            server,
            client_key(
                "AbC123xyz",
                "alice",
                "Correct-Horse-9",
                &v.salt_hex,
                &a,
                &big_b
            )
        );
        assert_ne!(
            server,
            client_key("AbC123xyz", "alice", "wrong", &v.salt_hex, &a, &big_b)
        );
        let block = b"secret block";
        let ts = "Mon Nov 23 10:00:00 UTC 2026";
        let sig = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &server),
            &[b"AbC123xyz".as_slice(), b"alice", block, ts.as_bytes()].concat(),
        );
        assert!(verify_claim(
            &server,
            "AbC123xyz",
            "alice",
            block,
            ts,
            sig.as_ref()
        ));
        assert!(!verify_claim(
            &server,
            "AbC123xyz",
            "alice",
            block,
            "Mon Nov 23 10:00:01 UTC 2026",
            sig.as_ref()
        ));
        // A = 0 (mod N) would make the key independent of the password: refused.
        assert!(password_key("0", &b, &big_b, &v.verifier_hex).is_none());
        assert!(password_key(N_HEX, &b, &big_b, &v.verifier_hex).is_none());
    }

    #[test]
    fn a_verifier_matches_only_its_own_password_user_and_pool() {
        let rng = ring::rand::SystemRandom::new();
        let v = verifier("AbC123xyz", "alice", "Correct-Horse-9", &rng).unwrap();
        assert!(matches("AbC123xyz", "alice", "Correct-Horse-9", &v));
        assert!(!matches("AbC123xyz", "alice", "Correct-Horse-8", &v));
        assert!(!matches("AbC123xyz", "bob", "Correct-Horse-9", &v));
        assert!(!matches("XbC123xyz", "alice", "Correct-Horse-9", &v));
        let resalted = Verifier {
            salt_hex: "1234".into(),
            ..v.clone()
        };
        assert!(!matches("AbC123xyz", "alice", "Correct-Horse-9", &resalted));
        let garbage = Verifier {
            verifier_hex: "not hex".into(),
            ..v
        };
        assert!(!matches("AbC123xyz", "alice", "Correct-Horse-9", &garbage));
    }

    #[test]
    fn pad_hex_follows_the_clients() {
        assert_eq!(pad_hex("abc"), "0abc");
        assert_eq!(pad_hex("ab"), "00ab");
        assert_eq!(pad_hex("7f"), "7f");
    }
}
