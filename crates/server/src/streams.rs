//! Cognito Streams' transport: each sync as a record on a NATS JetStream stream (in place of
//! the Kinesis stream AWS writes to), at the server `--nats-url` names. A record is published
//! to the first subject the stream captures, with `Nats-Expected-Stream` naming the stream, and
//! counts as written once JetStream acknowledges it.

use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::OnceCell;

/// How long a publish may wait for JetStream's acknowledgement.
const ACK_WAIT: Duration = Duration::from_secs(5);

pub struct Streams {
    url: Option<String>,
    context: OnceCell<jetstream::Context>,
}

impl Streams {
    pub fn new(config: &crate::config::Config) -> Self {
        Streams {
            url: config.nats_url.clone(),
            context: OnceCell::new(),
        }
    }

    async fn jetstream(&self) -> Result<&jetstream::Context, String> {
        let Some(url) = &self.url else {
            return Err("this server has no --nats-url".to_owned());
        };
        self.context
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(ACK_WAIT)
                    .connect(url.as_str())
                    .await
                    .map_err(|e| format!("NATS could not be reached: {e}"))?;
                Ok(jetstream::new(client))
            })
            .await
    }

    /// The subject records for `stream` are published on: the first literal subject it
    /// captures.
    pub async fn subject_of(&self, stream: &str) -> Result<String, String> {
        let js = self.jetstream().await?;
        let mut found = js
            .get_stream(stream)
            .await
            .map_err(|_| format!("there is no JetStream stream named {stream}"))?;
        let info = found
            .info()
            .await
            .map_err(|e| format!("the stream {stream} could not be read: {e}"))?;
        info.config
            .subjects
            .iter()
            .find(|s| !s.contains('*') && !s.contains('>'))
            .cloned()
            .ok_or_else(|| format!("the stream {stream} captures no literal subject"))
    }

    /// Publishes one record to `stream` and waits for its acknowledgement.
    pub async fn publish(&self, stream: &str, record: &serde_json::Value) -> Result<(), String> {
        let subject = self.subject_of(stream).await?;
        let js = self.jetstream().await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Expected-Stream", stream);
        let payload = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let ack = js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(|e| format!("the record could not be sent: {e}"))?;
        tokio::time::timeout(ACK_WAIT, ack)
            .await
            .map_err(|_| "JetStream did not acknowledge the record in time".to_owned())?
            .map_err(|e| format!("JetStream refused the record: {e}"))?;
        Ok(())
    }
}
