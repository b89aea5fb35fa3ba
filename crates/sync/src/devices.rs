//! Push sync: a pool's configuration (the SNS platform applications devices register with),
//! devices registered for an identity, and the datasets each device subscribed to. The server
//! makes the SNS endpoint a device registers and sends the pushes; this module keeps the rows.

use cognate_protocol::shapes::cognito_sync as shapes;

use crate::CognitoSync;
use crate::error::{Result, SyncError};

/// The kind of pool setting the configuration is stored as.
const CONFIGURATION: &str = "configuration";

/// The stored configuration: what Get/SetIdentityPoolConfiguration show.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push_sync: Option<shapes::PushSync>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cognito_streams: Option<shapes::CognitoStreams>,
}

fn role_arn_valid(arn: &str) -> bool {
    arn.strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .is_some_and(|(account, name)| {
            !account.is_empty() && account.chars().all(|c| c.is_ascii_digit()) && !name.is_empty()
        })
}

impl CognitoSync<'_> {
    async fn configuration(&self, pool_id: &str) -> Result<(Option<String>, Stored)> {
        let stored = self.store.sync_pool_setting(pool_id, CONFIGURATION).await?;
        let parsed = match &stored {
            Some(text) => serde_json::from_str(text).map_err(SyncError::internal)?,
            None => Stored::default(),
        };
        Ok((stored, parsed))
    }

    pub async fn get_identity_pool_configuration(
        &self,
        input: shapes::GetIdentityPoolConfigurationRequest,
    ) -> Result<shapes::GetIdentityPoolConfigurationResponse> {
        self.pool(&input.identity_pool_id).await?;
        let (_, stored) = self.configuration(&input.identity_pool_id).await?;
        Ok(shapes::GetIdentityPoolConfigurationResponse {
            identity_pool_id: Some(input.identity_pool_id),
            push_sync: stored.push_sync,
            cognito_streams: stored.cognito_streams,
        })
    }

    /// Sets the pool's push sync and Cognito Streams configuration. The caller has checked
    /// what lies outside this crate: every ARN in `PushSync.ApplicationArns` names a platform
    /// application of this account, and an enabled stream exists.
    pub async fn set_identity_pool_configuration(
        &self,
        input: shapes::SetIdentityPoolConfigurationRequest,
    ) -> Result<shapes::SetIdentityPoolConfigurationResponse> {
        self.pool(&input.identity_pool_id).await?;
        if let Some(role) = input.push_sync.as_ref().and_then(|p| p.role_arn.as_deref())
            && !role_arn_valid(role)
        {
            return Err(SyncError::InvalidParameter(format!(
                "{role} is not an IAM role ARN"
            )));
        }
        if let Some(role) = input
            .cognito_streams
            .as_ref()
            .and_then(|s| s.role_arn.as_deref())
            && !role_arn_valid(role)
        {
            return Err(SyncError::InvalidParameter(format!(
                "{role} is not an IAM role ARN"
            )));
        }
        for _ in 0..crate::WRITE_ATTEMPTS {
            let (old, mut stored) = self.configuration(&input.identity_pool_id).await?;
            if let Some(push) = &input.push_sync {
                stored.push_sync = Some(push.clone());
            }
            if let Some(streams) = &input.cognito_streams {
                stored.cognito_streams = Some(streams.clone());
            }
            let text = serde_json::to_string(&stored).map_err(SyncError::internal)?;
            if self
                .store
                .write_sync_pool_setting(
                    &input.identity_pool_id,
                    CONFIGURATION,
                    old.as_deref(),
                    &text,
                )
                .await?
            {
                return Ok(shapes::SetIdentityPoolConfigurationResponse {
                    identity_pool_id: Some(input.identity_pool_id),
                    push_sync: stored.push_sync,
                    cognito_streams: stored.cognito_streams,
                });
            }
        }
        Err(crate::busy())
    }

    /// The stream each sync of the pool is published to, when streaming is enabled.
    pub async fn stream_of(&self, pool_id: &str) -> Result<Option<String>> {
        let (_, stored) = self.configuration(pool_id).await?;
        Ok(stored
            .cognito_streams
            .filter(|s| s.streaming_status.as_deref() == Some("ENABLED"))
            .and_then(|s| s.stream_name))
    }

    /// The platform applications devices of the pool register with.
    pub async fn push_applications(&self, pool_id: &str) -> Result<Vec<String>> {
        self.pool(pool_id).await?;
        let (_, stored) = self.configuration(pool_id).await?;
        Ok(stored
            .push_sync
            .and_then(|p| p.application_arns)
            .unwrap_or_default())
    }

    /// Records a device of the identity (its SNS endpoint made by the caller); registering the
    /// same endpoint again gives the same device id.
    pub async fn register_device(
        &self,
        input: &shapes::RegisterDeviceRequest,
        endpoint_arn: &str,
        new_device_id: &str,
    ) -> Result<shapes::RegisterDeviceResponse> {
        self.require_identity(&input.identity_pool_id, &input.identity_id)
            .await?;
        let device_id = self
            .store
            .register_sync_device(
                new_device_id,
                &input.identity_id,
                &input.platform,
                endpoint_arn,
            )
            .await?;
        Ok(shapes::RegisterDeviceResponse {
            device_id: Some(device_id),
        })
    }

    /// Subscribes (or unsubscribes) one of the identity's devices to one of its datasets.
    pub async fn subscribe(
        &self,
        pool_id: &str,
        identity_id: &str,
        dataset_name: &str,
        device_id: &str,
        subscribed: bool,
    ) -> Result<()> {
        self.require_identity(pool_id, identity_id).await?;
        let owner = self.store.sync_device(device_id).await?;
        if owner.as_ref().map(|(identity, _)| identity.as_str()) != Some(identity_id) {
            return Err(SyncError::ResourceNotFound(format!(
                "Device '{device_id}' not found."
            )));
        }
        if subscribed {
            // A device subscribes to a dataset that exists (it has synchronised once).
            self.live_dataset(identity_id, dataset_name).await?;
        }
        self.store
            .set_sync_subscription(identity_id, dataset_name, device_id, subscribed)
            .await?;
        Ok(())
    }

    /// The devices to tell of a change of a dataset, except the one that made it: (device id,
    /// SNS endpoint ARN).
    pub async fn subscribers(
        &self,
        identity_id: &str,
        dataset_name: &str,
        writer: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        let mut devices = self
            .store
            .sync_subscribers(identity_id, dataset_name)
            .await?;
        devices.retain(|(device, _)| Some(device.as_str()) != writer);
        Ok(devices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_iam_roles() {
        assert!(role_arn_valid(
            "arn:aws:iam::111122223333:role/CognitoSyncPush"
        ));
        assert!(!role_arn_valid("arn:aws:iam::111122223333:user/x"));
        assert!(!role_arn_valid("arn:aws:iam::abc:role/x"));
        assert!(!role_arn_valid("arn:aws:iam::1:role/"));
    }
}
