//! Apple's push notification service (the HTTP/2 provider API) with token authentication, as
//! SNS delivers to an `APNS` / `APNS_SANDBOX` application: a provider token (a JWT signed
//! ES256 with the `.p8` signing key, `kid` = the key id, `iss` = the team id), then
//! `POST <apns>/3/device/<token>` with `apns-topic` = the bundle id.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::fcm::Sent;

/// How long a provider token is used (Apple refuses ones older than an hour and asks that
/// they be renewed at most every 20 minutes).
const TOKEN_SECONDS: i64 = 40 * 60;

/// A signing key as an application holds it.
pub(crate) struct SigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    pub key_id: String,
    pub team_id: String,
    pub bundle_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A `.p8` key (PKCS#8 PEM, P-256) with its ids; `None` if the key is not one.
    pub fn parse(pem: &str, key_id: &str, team_id: &str, bundle_id: &str) -> Option<SigningKey> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).ok()?;
        let key = SigningKey {
            pkcs8: Zeroizing::new(der.secret_pkcs8_der().to_vec()),
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            bundle_id: bundle_id.to_owned(),
        };
        let ids = [key_id, team_id, bundle_id];
        (ids.iter().all(|id| !id.is_empty()) && key.key_pair().is_some()).then_some(key)
    }

    fn key_pair(&self) -> Option<EcdsaKeyPair> {
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .ok()
    }

    fn provider_token(&self, now: i64, rng: &dyn SecureRandom) -> Option<String> {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let claims = json!({"iss": self.team_id, "iat": now});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key_pair()?.sign(rng, signing_input.as_bytes()).ok()?;
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// Provider tokens by (team, key), with when they were made.
#[derive(Default)]
pub(crate) struct Tokens(Mutex<HashMap<(String, String), (String, i64)>>);

impl Tokens {
    fn get(&self, key: &SigningKey, now: i64, rng: &dyn SecureRandom) -> Option<String> {
        let id = (key.team_id.clone(), key.key_id.clone());
        if let Ok(cache) = self.0.lock()
            && let Some((token, made)) = cache.get(&id)
            && now - made < TOKEN_SECONDS
        {
            return Some(token.clone());
        }
        let token = key.provider_token(now, rng)?;
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(id, (token.clone(), now));
        }
        Some(token)
    }
}

/// What sending needs besides the payload.
pub(crate) struct Apns<'a> {
    pub client: &'a reqwest::Client,
    pub tokens: &'a Tokens,
    /// The provider API's base URL (production or sandbox).
    pub base_url: &'a str,
    pub rng: &'a (dyn SecureRandom + Sync),
}

/// Sends an APNs payload to a device.
pub(crate) async fn send(
    apns: &Apns<'_>,
    key: &SigningKey,
    device_token: &str,
    payload: &Value,
    now: i64,
) -> Sent {
    let Apns {
        client,
        tokens,
        base_url,
        rng,
    } = *apns;
    let Some(token) = tokens.get(key, now, rng) else {
        return Sent::Failed("the signing key cannot sign".to_owned());
    };
    let alert = payload.pointer("/aps/alert").is_some();
    let url = format!(
        "{}/3/device/{}",
        base_url.trim_end_matches('/'),
        device_token
    );
    let response = match client
        .post(url)
        .header("authorization", format!("bearer {token}"))
        .header("apns-topic", &key.bundle_id)
        .header("apns-push-type", if alert { "alert" } else { "background" })
        .header("apns-priority", if alert { "10" } else { "5" })
        .json(payload)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return Sent::Failed("APNs could not be reached".to_owned()),
    };
    let status = response.status();
    if status.is_success() {
        return Sent::Delivered;
    }
    let reason = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if status == reqwest::StatusCode::GONE || reason == "BadDeviceToken" || reason == "Unregistered"
    {
        Sent::Unregistered
    } else {
        Sent::Failed(format!("APNs answered {} {reason}", status.as_u16()))
    }
}
