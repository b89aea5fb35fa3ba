//! Any token text is inspected and verified (or refused) by every JWT reader: web identity
//! tokens against a JWKS (STS and identity pools), user pool tokens under a pool key, never a
//! panic, and no forged token verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Keys {
    pool: cognate_userpool::SigningKey,
    jwks: jsonwebtoken::jwk::JwkSet,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        let (kid, der) = cognate_userpool::keys::generate(&rng).unwrap();
        let pool = cognate_userpool::SigningKey::from_pkcs8(&kid, &der).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({
            "keys": [pool.jwk.clone()]
        }))
        .unwrap();
        Keys { pool, jwks }
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let keys = keys();
    let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    if let Ok(unverified) = cognate_sts::web_identity::inspect(&token) {
        let verified =
            cognate_sts::web_identity::verify(&token, &unverified, &keys.jwks, &["aud".to_owned()], now);
        assert!(verified.is_err(), "a token nobody signed verified");
    }
    let _ = cognate_userpool::keys::peek(&token);
    let _ = cognate_userpool::keys::kid_of(&token);
    assert!(keys.pool.verify(&token).is_none(), "a token nobody signed verified");
});
