//! Cognito Sync push on this node: the live channels open here, by identity, and the notice a
//! dataset change sends them. Notices from other nodes arrive through the store (PostgreSQL
//! NOTIFY) and are published here as this node's own are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

/// What a device is told when a dataset of its identity changed: the push payload Cognito
/// Sync sends, with `source` = `cognito-sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Push {
    pub source: String,
    pub identity_pool_id: String,
    pub identity_id: String,
    pub dataset_name: String,
    pub sync_count: i64,
}

/// A change as it travels: the payload and the device that made it (not told of its own
/// write).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    pub push: Push,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The node that published it, so it is not published there twice.
    pub node: String,
}

/// Notices a live channel may fall behind by before it is closed (its device then reconnects
/// and synchronises).
const BACKLOG: usize = 64;

/// The live channels of this node.
pub struct Hub {
    identities: Mutex<HashMap<String, broadcast::Sender<Arc<Notice>>>>,
    slots: Arc<Semaphore>,
    /// This node's id in the notices it sends.
    pub node: String,
}

/// One open live channel: its notices, and its place among the open channels (both given
/// back when it is dropped).
pub struct Subscription {
    pub notices: broadcast::Receiver<Arc<Notice>>,
    hub: Arc<Hub>,
    identity_id: String,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Under the lock nobody subscribes: when this is the identity's last channel, the
        // identity is forgotten.
        if let Ok(mut map) = self.hub.identities.lock()
            && map
                .get(&self.identity_id)
                .is_some_and(|s| s.receiver_count() <= 1)
        {
            map.remove(&self.identity_id);
        }
    }
}

impl Hub {
    pub fn new(max_channels: usize, node: String) -> Self {
        Hub {
            identities: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(max_channels.max(1))),
            node,
        }
    }

    /// Opens a channel for an identity's notices; `None` when as many are open as allowed.
    pub fn subscribe(self: &Arc<Self>, identity_id: &str) -> Option<Subscription> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        let notices = {
            let mut map = self.identities.lock().ok()?;
            map.entry(identity_id.to_owned())
                .or_insert_with(|| broadcast::channel(BACKLOG).0)
                .subscribe()
        };
        Some(Subscription {
            notices,
            hub: self.clone(),
            identity_id: identity_id.to_owned(),
            _slot: slot,
        })
    }

    /// Tells this node's channels of the notice's identity.
    pub fn publish(&self, notice: Arc<Notice>) {
        if let Ok(map) = self.identities.lock()
            && let Some(sender) = map.get(&notice.push.identity_id)
        {
            // No receiver left is not an error: the channel closes on its own.
            let _ = sender.send(notice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(identity: &str, count: i64) -> Arc<Notice> {
        Arc::new(Notice {
            push: Push {
                source: "cognito-sync".into(),
                identity_pool_id: "us-east-1:p".into(),
                identity_id: identity.into(),
                dataset_name: "d".into(),
                sync_count: count,
            },
            device_id: None,
            node: "n".into(),
        })
    }

    #[tokio::test]
    async fn notices_reach_their_identity_only_and_channels_are_bounded() {
        let hub = Arc::new(Hub::new(2, "n".into()));
        let mut a = hub.subscribe("a").unwrap();
        let mut b = hub.subscribe("b").unwrap();
        assert!(hub.subscribe("c").is_none(), "over the limit");
        hub.publish(notice("a", 1));
        hub.publish(notice("b", 2));
        assert_eq!(a.notices.recv().await.unwrap().push.sync_count, 1);
        assert_eq!(b.notices.recv().await.unwrap().push.sync_count, 2);
        assert!(a.notices.try_recv().is_err());
        let second = hub.subscribe("b");
        assert!(second.is_none(), "still over the limit");
        drop(a);
        assert!(hub.identities.lock().unwrap().get("a").is_none());
        assert!(
            hub.subscribe("c").is_some(),
            "a closed channel gives back its slot"
        );
    }

    #[test]
    fn the_payload_has_the_documented_names() {
        let json = serde_json::to_value(&notice("a", 3).push).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source": "cognito-sync", "identityPoolId": "us-east-1:p",
                "identityId": "a", "datasetName": "d", "syncCount": 3})
        );
    }
}
