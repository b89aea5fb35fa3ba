//! Firebase Cloud Messaging's HTTP v1 API, as SNS delivers to a `GCM` application whose
//! credential is a service account's JSON key: an OAuth 2.0 access token from the key's
//! `token_uri` (a JWT assertion signed RS256 with the key, RFC 7523), then
//! `POST <fcm>/v1/projects/<project_id>/messages:send`.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The scope FCM's send API needs.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The fields of a service account key that sending needs.
#[derive(Deserialize)]
pub(crate) struct ServiceAccount {
    pub project_id: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    private_key: String,
    pub client_email: String,
    pub token_uri: String,
}

impl Drop for ServiceAccount {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.private_key.zeroize();
    }
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads a key; `None` if it is not a service account key with an RSA private key.
    pub fn parse(json: &str) -> Option<ServiceAccount> {
        let account: ServiceAccount = serde_json::from_str(json).ok()?;
        account.key_pair()?;
        (!account.project_id.is_empty() && account.token_uri.starts_with("http")).then_some(account)
    }

    fn key_pair(&self) -> Option<RsaKeyPair> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(self.private_key.as_bytes()).ok()?;
        RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).ok()
    }

    /// The signed assertion that buys an access token, valid for an hour from `now`.
    fn assertion(&self, now: i64, rng: &dyn SecureRandom) -> Option<String> {
        let header = match &self.private_key_id {
            Some(kid) => json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            None => json!({"alg": "RS256", "typ": "JWT"}),
        };
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = self.key_pair()?;
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            rng,
            signing_input.as_bytes(),
            &mut signature,
        )
        .ok()?;
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// What a send came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    Delivered,
    /// FCM no longer knows the token: the endpoint is disabled, as SNS does.
    Unregistered,
    Failed(String),
}

/// A service account: its email and token endpoint.
type AccountKey = (String, String);

/// Access tokens by service account, until a minute before they expire (Unix seconds). One
/// fetch at a time: deliveries that find no token wait for the one being fetched instead of
/// each asking the token endpoint.
#[derive(Default)]
pub(crate) struct Tokens {
    cache: Mutex<HashMap<AccountKey, (Zeroizing<String>, i64)>>,
    fetching: tokio::sync::Mutex<()>,
}

impl Tokens {
    async fn get(
        &self,
        client: &reqwest::Client,
        account: &ServiceAccount,
        now: i64,
        rng: &(dyn SecureRandom + Sync),
    ) -> Result<Zeroizing<String>, String> {
        let key = (account.client_email.clone(), account.token_uri.clone());
        let cached = || {
            self.cache
                .lock()
                .ok()
                .and_then(|cache| cache.get(&key).filter(|(_, until)| *until > now).cloned())
                .map(|(token, _)| token)
        };
        if let Some(token) = cached() {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(token) = cached() {
            return Ok(token);
        }
        let assertion = account
            .assertion(now, rng)
            .ok_or_else(|| "the service account key cannot sign".to_owned())?;
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            #[serde(default)]
            expires_in: Option<i64>,
        }
        let response = client
            .post(&account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|_| "the token endpoint could not be reached".to_owned())?;
        if !response.status().is_success() {
            return Err(format!(
                "the token endpoint refused the service account ({})",
                response.status().as_u16()
            ));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|_| "the token endpoint's answer is not a token".to_owned())?;
        let until = now + answer.expires_in.unwrap_or(3600) - 60;
        let token = Zeroizing::new(answer.access_token);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key.clone(), (token.clone(), until));
        }
        Ok(token)
    }
}

/// What sending needs besides the message.
pub(crate) struct Fcm<'a> {
    pub client: &'a reqwest::Client,
    pub tokens: &'a Tokens,
    /// FCM's base URL.
    pub base_url: &'a str,
    pub rng: &'a (dyn SecureRandom + Sync),
}

/// Sends `message` (an FCM v1 `message` without its `token`) to `device_token`.
pub(crate) async fn send(
    fcm: &Fcm<'_>,
    account: &ServiceAccount,
    device_token: &str,
    mut message: Value,
    now: i64,
) -> Sent {
    let Fcm {
        client,
        tokens,
        base_url,
        rng,
    } = *fcm;
    let access = match tokens.get(client, account, now, rng).await {
        Ok(token) => token,
        Err(why) => return Sent::Failed(why),
    };
    if let Some(m) = message.as_object_mut() {
        m.insert("token".to_owned(), json!(device_token));
    }
    let url = format!(
        "{}/v1/projects/{}/messages:send",
        base_url.trim_end_matches('/'),
        account.project_id
    );
    let response = match client
        .post(url)
        .bearer_auth(access.as_str())
        .json(&json!({ "message": message }))
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return Sent::Failed("FCM could not be reached".to_owned()),
    };
    let status = response.status();
    if status.is_success() {
        return Sent::Delivered;
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body
        .pointer("/error/status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let unregistered = code == "UNREGISTERED"
        || status == reqwest::StatusCode::NOT_FOUND
        || body
            .pointer("/error/details")
            .and_then(Value::as_array)
            .is_some_and(|d| {
                d.iter()
                    .any(|x| x.get("errorCode").and_then(Value::as_str) == Some("UNREGISTERED"))
            });
    if unregistered {
        Sent::Unregistered
    } else {
        Sent::Failed(format!("FCM answered {} {code}", status.as_u16()))
    }
}
