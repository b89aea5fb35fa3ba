//! Delivery to the push providers, after Publish has answered (SNS delivers asynchronously
//! too): FCM for `GCM` applications. An endpoint whose token the provider no longer knows is
//! disabled (`Enabled` = `false`), as SNS does; later publishes to it get `EndpointDisabled`.

use std::sync::Arc;

use cognate_store::Store;
use ring::rand::SystemRandom;
use serde_json::Value;

use crate::fcm::{self, Sent, ServiceAccount};

/// Where the providers are, and what delivery keeps between messages.
pub struct Push {
    client: reqwest::Client,
    fcm_url: String,
    tokens: fcm::Tokens,
    rng: SystemRandom,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("fcm_url", &self.fcm_url)
            .finish_non_exhaustive()
    }
}

/// One message on its way to one endpoint.
pub(crate) struct Delivery {
    pub endpoint_arn: String,
    pub device_token: String,
    pub account: ServiceAccount,
    /// The FCM v1 `message`, without its `token`.
    pub message: Value,
}

impl Push {
    /// `fcm_url`: FCM's base URL (`https://fcm.googleapis.com`, or a stand-in).
    pub fn new(fcm_url: &str) -> Self {
        Push {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            fcm_url: fcm_url.trim_end_matches('/').to_owned(),
            tokens: fcm::Tokens::default(),
            rng: SystemRandom::new(),
        }
    }

    /// Sends in the background; a dead token disables its endpoint.
    pub(crate) fn send(self: &Arc<Self>, store: Store, delivery: Delivery) {
        let push = self.clone();
        tokio::spawn(async move {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let fcm = fcm::Fcm {
                client: &push.client,
                tokens: &push.tokens,
                base_url: &push.fcm_url,
                rng: &push.rng,
            };
            let sent = fcm::send(
                &fcm,
                &delivery.account,
                &delivery.device_token,
                delivery.message,
                now,
            )
            .await;
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
