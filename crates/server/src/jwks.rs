//! Identity providers' signing keys: fetched from the issuer's OpenID discovery document and
//! JWKS, cached, and fetched again when a token names a key id the cache has not seen (at
//! most once per [`REFETCH_INTERVAL`] per issuer, so forged key ids cannot hammer a provider).
//! Callers that miss at once share one fetch ([`Flights`]); after a failed fetch the issuer is
//! not asked again until a backoff (1 s, doubling to [`MAX_BACKOFF`]) has passed, and callers
//! in between are answered at once, so an issuer that stalls or fails sees one request, not
//! one per caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::flight::Flights;
use std::time::{Duration, Instant};

use cognate_sts::StsError;
use jsonwebtoken::jwk::JwkSet;

const TTL: Duration = Duration::from_secs(3600);
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 256 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Entry {
    keys: Arc<JwkSet>,
    fetched: Instant,
    /// When an unknown key id last forced a fetch.
    refetched: Option<Instant>,
}

/// An issuer whose last fetch failed: not asked again before `until`.
struct Failure {
    until: Instant,
    backoff: Duration,
}

/// What is known of each issuer (by cache key): its keys, or its last failure.
#[derive(Default)]
struct Known {
    entries: HashMap<String, Entry>,
    failures: HashMap<String, Failure>,
}

/// The JWKS cache, shared by every request.
pub struct Jwks {
    client: reqwest::Client,
    known: Arc<Mutex<Known>>,
    /// Fetches running now, by cache key; `None` is a failed (or backed-off) fetch.
    flights: Flights<String, Option<Arc<JwkSet>>>,
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
            known: Arc::default(),
            flights: Flights::default(),
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
        if let Ok(known) = self.known.lock()
            && let Some(entry) = known.entries.get(issuer)
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
        let (client, source, known, key) = (
            self.client.clone(),
            source.to_owned(),
            self.known.clone(),
            cache_key.clone(),
        );
        // The fetch notes its outcome before it ends, so a caller that misses after it ended
        // finds the keys or the backoff, and never starts a fetch of its own early.
        let fetched = self
            .flights
            .run(cache_key.clone(), move || async move {
                if known.lock().is_ok_and(|k| {
                    k.failures
                        .get(&key)
                        .is_some_and(|f| Instant::now() < f.until)
                }) {
                    return None;
                }
                let keys = if direct {
                    get_json(&client, &source).await
                } else {
                    fetch(&client, &source).await
                };
                let keys = keys.ok().map(Arc::new);
                if let Ok(mut known) = known.lock() {
                    match &keys {
                        Some(keys) => {
                            known.failures.remove(&key);
                            let fetched = Instant::now();
                            known.entries.insert(
                                key,
                                Entry {
                                    keys: keys.clone(),
                                    fetched,
                                    refetched: refetch.then_some(fetched),
                                },
                            );
                        }
                        None => {
                            let backoff = known
                                .failures
                                .get(&key)
                                .map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
                            let until = Instant::now() + backoff;
                            known.failures.insert(key, Failure { until, backoff });
                        }
                    }
                }
                keys
            })
            .await
            .flatten();
        fetched.ok_or_else(unreachable_idp)
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, StsError> {
    if !allowed(url) {
        return Err(unreachable_idp());
    }
    let response = client
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

/// An issuer's keys, found through its discovery document.
async fn fetch(client: &reqwest::Client, issuer: &str) -> Result<JwkSet, StsError> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        jwks_uri: String,
    }
    let discovery: Discovery = get_json(
        client,
        &format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
    )
    .await?;
    get_json(client, &discovery.jwks_uri).await
}
