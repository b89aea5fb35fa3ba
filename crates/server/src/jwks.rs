//! Identity providers' signing keys: fetched from the issuer's OpenID discovery document and
//! JWKS, cached, and fetched again when a token names a key id the cache has not seen (at
//! most once per [`REFETCH_INTERVAL`] per issuer, so forged key ids cannot hammer a provider).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cognate_sts::StsError;
use jsonwebtoken::jwk::JwkSet;

const TTL: Duration = Duration::from_secs(3600);
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 256 * 1024;

struct Entry {
    keys: Arc<JwkSet>,
    fetched: Instant,
    /// When an unknown key id last forced a fetch.
    refetched: Option<Instant>,
}

/// The JWKS cache, shared by every request.
pub struct Jwks {
    client: reqwest::Client,
    entries: Mutex<HashMap<String, Entry>>,
}

fn unreachable_idp() -> StsError {
    StsError::IdpCommunication("Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements".into())
}

/// `http://` is allowed only for loopback issuers (local development and tests).
pub fn allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost" || host.starts_with("127.") || host.starts_with("[::1]")
}

impl Jwks {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Jwks {
            client,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The issuer's keys (found through its discovery document), containing `kid` if the
    /// issuer has it.
    pub async fn keys(&self, issuer: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, StsError> {
        self.cached(issuer, kid, false).await
    }

    /// The keys at a JWKS URL (providers whose JWKS location is configured, not discovered).
    pub async fn keys_at(&self, url: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, StsError> {
        self.cached(url, kid, true).await
    }

    /// The HTTP client for identity providers (time-limited, no redirects).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    async fn cached(
        &self,
        source: &str,
        kid: Option<&str>,
        direct: bool,
    ) -> Result<Arc<JwkSet>, StsError> {
        let cache_key = if direct {
            format!("jwks {source}")
        } else {
            source.to_owned()
        };
        let issuer = cache_key.as_str();
        let now = Instant::now();
        let mut refetch = false;
        if let Ok(entries) = self.entries.lock()
            && let Some(entry) = entries.get(issuer)
        {
            let fresh = now.duration_since(entry.fetched) < TTL;
            let has_kid = kid.is_none_or(|k| entry.keys.find(k).is_some());
            let refetched_recently = entry
                .refetched
                .is_some_and(|t| now.duration_since(t) < REFETCH_INTERVAL);
            if fresh && (has_kid || refetched_recently) {
                return Ok(entry.keys.clone());
            }
            refetch = fresh;
        }
        let keys = Arc::new(if direct {
            self.get_json(source).await?
        } else {
            self.fetch(source).await?
        });
        if let Ok(mut entries) = self.entries.lock() {
            let refetched = refetch.then_some(now);
            entries.insert(
                issuer.to_owned(),
                Entry {
                    keys: keys.clone(),
                    fetched: now,
                    refetched,
                },
            );
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, StsError> {
        if !allowed(url) {
            return Err(unreachable_idp());
        }
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|_| unreachable_idp())?;
        if !response.status().is_success() {
            return Err(unreachable_idp());
        }
        let body = response.bytes().await.map_err(|_| unreachable_idp())?;
        if body.len() > MAX_DOCUMENT {
            return Err(unreachable_idp());
        }
        serde_json::from_slice(&body).map_err(|_| unreachable_idp())
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, StsError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let discovery: Discovery = self
            .get_json(&format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ))
            .await?;
        self.get_json(&discovery.jwks_uri).await
    }
}
