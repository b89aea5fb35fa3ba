//! Delivery to the push providers, after Publish has answered (SNS delivers asynchronously
//! too): FCM for `GCM` applications. An endpoint whose token the provider no longer knows is
//! disabled (`Enabled` = `false`), as SNS does; later publishes to it get `EndpointDisabled`.

use std::sync::Arc;

use cognate_store::Store;
use ring::rand::SystemRandom;
use serde_json::Value;

use crate::apns::{self, SigningKey};
use crate::fcm::{self, Sent, ServiceAccount};

/// Where the providers are, and what delivery keeps between messages.
pub struct Push {
    client: reqwest::Client,
    fcm_url: String,
    tokens: fcm::Tokens,
    apns: reqwest::Client,
    apns_url: String,
    apns_sandbox: reqwest::Client,
    apns_sandbox_url: String,
    apns_tokens: apns::Tokens,
    rng: SystemRandom,
}

/// The provider's URLs: FCM, APNs, APNs' sandbox.
#[derive(Debug, Clone)]
pub struct Providers {
    pub fcm_url: String,
    pub apns_url: String,
    pub apns_sandbox_url: String,
}

impl Default for Providers {
    fn default() -> Self {
        Providers {
            fcm_url: "https://fcm.googleapis.com".to_owned(),
            apns_url: "https://api.push.apple.com".to_owned(),
            apns_sandbox_url: "https://api.sandbox.push.apple.com".to_owned(),
        }
    }
}

/// An HTTP/2 client for APNs: over TLS it negotiates HTTP/2; a plain `http://` stand-in is
/// spoken to in HTTP/2 from the first byte.
fn http2_client(url: &str) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    let builder = if url.starts_with("http://") {
        builder.http2_prior_knowledge()
    } else {
        builder
    };
    builder.build().unwrap_or_default()
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("fcm_url", &self.fcm_url)
            .finish_non_exhaustive()
    }
}

/// How an application reaches its devices.
pub(crate) enum Credential {
    Fcm(ServiceAccount),
    Apns { key: SigningKey, sandbox: bool },
}

/// One message on its way to one endpoint.
pub(crate) struct Delivery {
    pub endpoint_arn: String,
    pub device_token: String,
    pub credential: Credential,
    /// FCM: the v1 `message` without its `token`; APNs: the payload.
    pub message: Value,
}

impl Push {
    pub fn new(providers: &Providers) -> Self {
        let trim = |u: &str| u.trim_end_matches('/').to_owned();
        Push {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            fcm_url: trim(&providers.fcm_url),
            tokens: fcm::Tokens::default(),
            apns: http2_client(&providers.apns_url),
            apns_url: trim(&providers.apns_url),
            apns_sandbox: http2_client(&providers.apns_sandbox_url),
            apns_sandbox_url: trim(&providers.apns_sandbox_url),
            apns_tokens: apns::Tokens::default(),
            rng: SystemRandom::new(),
        }
    }

    /// Sends in the background; a dead token disables its endpoint.
    pub(crate) fn send(self: &Arc<Self>, store: Store, delivery: Delivery) {
        let push = self.clone();
        tokio::spawn(async move {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let sent = match &delivery.credential {
                Credential::Fcm(account) => {
                    let fcm = fcm::Fcm {
                        client: &push.client,
                        tokens: &push.tokens,
                        base_url: &push.fcm_url,
                        rng: &push.rng,
                    };
                    fcm::send(&fcm, account, &delivery.device_token, delivery.message, now).await
                }
                Credential::Apns { key, sandbox } => {
                    let (client, base_url) = if *sandbox {
                        (&push.apns_sandbox, &push.apns_sandbox_url)
                    } else {
                        (&push.apns, &push.apns_url)
                    };
                    let apns = apns::Apns {
                        client,
                        tokens: &push.apns_tokens,
                        base_url,
                        rng: &push.rng,
                    };
                    apns::send(&apns, key, &delivery.device_token, &delivery.message, now).await
                }
            };
            match sent {
                Sent::Delivered => {}
                Sent::Unregistered => {
                    tracing::info!(endpoint = %delivery.endpoint_arn, "the provider no longer knows this token; endpoint disabled");
                    if let Err(e) = crate::disable_endpoint(&store, &delivery.endpoint_arn).await {
                        tracing::error!(error = %e, "could not disable an endpoint");
                    }
                }
                Sent::Failed(why) => {
                    tracing::warn!(endpoint = %delivery.endpoint_arn, reason = %why, "push delivery failed");
                }
            }
        });
    }
}
