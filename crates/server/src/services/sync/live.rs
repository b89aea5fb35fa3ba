//! The live channel: a WebSocket on Cognate's port that tells a device, at once, that a
//! dataset of its identity changed (Cognate's own push transport, beside the mobile pushes).
//!
//! `GET /_cognate/sync/live?IdentityPoolId=…&IdentityId=…&DeviceId=…[&DatasetName=…]…`,
//! presigned with SigV4 for the service `cognito-sync` with the credentials an identity pool
//! gave that identity. `DatasetName` may repeat; without one, every dataset of the identity
//! is watched. The caller must be allowed `cognito-sync:SubscribeToDataset` on each dataset
//! (on `…/identity/<id>/dataset/*` when it names none). Each change arrives as one text
//! message, the push payload:
//! `{"source":"cognito-sync","identityPoolId":…,"identityId":…,"datasetName":…,"syncCount":N}`;
//! the device whose `DeviceId` an UpdateRecords named is not told of its own write. The server
//! pings every 30 seconds and closes a channel that has not answered for 90, that fell more
//! than 64 notices behind (close code 1013: synchronise and reconnect), or whose credentials
//! expired (1008).

use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use cognate_protocol::{ApiError, Protocol, services};
use cognate_sigv4::{self as sigv4, PathStyle};
use http::StatusCode;
use tokio::sync::broadcast::error::RecvError;

use super::{IDENTITY_KEY, POOL_KEY, not_authorized, session_value};
use crate::context::Ctx;
use crate::push::Subscription;

/// Where the live channel is opened.
pub(crate) const LIVE_PATH: &str = "/_cognate/sync/live";

const PING_EVERY: Duration = Duration::from_secs(30);
const SILENT_FOR: Duration = Duration::from_secs(90);

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterException",
        message,
    )
}

fn valid_id(id: &str) -> bool {
    (1..=55).contains(&id.len())
        && id.split_once(':').is_some_and(|(region, rest)| {
            !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
        })
}

fn valid_dataset(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

/// What a channel watches.
struct Watch {
    device_id: String,
    /// Empty: every dataset.
    datasets: Vec<String>,
    /// When the credentials that opened it expire (Unix seconds), if they do.
    expires_at: Option<i64>,
}

/// Authenticates, authorizes and opens a live channel.
pub(crate) async fn open(
    ctx: &mut Ctx<'_>,
    upgrade: Option<WebSocketUpgrade>,
) -> Result<http::Response<Body>, ApiError> {
    ctx.outcome.service = services::cognito_sync::SIGNING_NAME;
    ctx.outcome.operation = "LiveChannel".to_owned();
    let caller = ctx
        .caller(
            Protocol::RestJson,
            services::cognito_sync::SIGNING_NAME,
            PathStyle::Normalized,
            &sigv4::sha256_hex(b""),
            true,
        )
        .await?
        .ok_or_else(ApiError::internal)?;
    let params: Vec<(String, String)> =
        form_urlencoded::parse(ctx.parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let one = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| invalid(format!("{name} is required")))
    };
    let pool = one("IdentityPoolId")?;
    let identity = one("IdentityId")?;
    let device_id = one("DeviceId")?;
    if !valid_id(&pool) || !valid_id(&identity) {
        return Err(invalid("IdentityPoolId and IdentityId must be Cognito ids"));
    }
    if !(1..=256).contains(&device_id.len()) {
        return Err(invalid("DeviceId must be 1 to 256 characters"));
    }
    let datasets: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "DatasetName")
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(bad) = datasets.iter().find(|d| !valid_dataset(d)) {
        return Err(invalid(format!("'{bad}' is not a dataset name")));
    }
    let Some(own) = session_value(&caller, IDENTITY_KEY) else {
        return Err(not_authorized(
            "A live channel can only be opened with credentials provided by Cognito Identity",
        ));
    };
    let pool_matches = session_value(&caller, POOL_KEY).is_none_or(|aud| aud == pool);
    if own != identity || !pool_matches {
        return Err(not_authorized(format!(
            "Access to Identity '{identity}' is forbidden."
        )));
    }
    let account = caller.principal.account().to_string();
    let base = format!(
        "arn:aws:cognito-sync:{}:{account}:identitypool/{pool}/identity/{identity}/dataset/",
        ctx.state.region
    );
    let resources: Vec<String> = if datasets.is_empty() {
        vec![format!("{base}*")]
    } else {
        datasets.iter().map(|d| format!("{base}{d}")).collect()
    };
    for resource in &resources {
        crate::authz::authorize(
            ctx,
            &caller,
            Protocol::RestJson,
            "cognito-sync:SubscribeToDataset",
            resource,
            &[],
            None,
        )
        .await?;
    }
    let Some(upgrade) = upgrade else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "The live channel is a WebSocket: the request must ask to upgrade to one",
        ));
    };
    let Some(subscription) = ctx.state.hub.subscribe(&identity) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "As many live channels are open as this server allows; try again later",
        ));
    };
    let watch = Watch {
        device_id,
        datasets,
        expires_at: caller.session.as_ref().map(|s| s.expires_at),
    };
    let now = ctx.now.unix_timestamp();
    // Notices are small and a device sends next to nothing: small buffers keep thousands of
    // idle channels cheap (the WebSocket layer's defaults are 128 KiB each way), and each
    // notice is written at once.
    Ok(upgrade
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(4096)
        .max_frame_size(4096)
        .on_upgrade(move |socket| pump(socket, subscription, watch, now)))
}

/// Relays notices to the socket until either side is done.
async fn pump(mut socket: WebSocket, mut subscription: Subscription, watch: Watch, opened: i64) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let lifetime = watch
        .expires_at
        .map_or(u64::MAX / 4, |at| at.saturating_sub(opened).max(0) as u64);
    let expiry = tokio::time::sleep(Duration::from_secs(lifetime));
    tokio::pin!(expiry);
    let mut heard = tokio::time::Instant::now();
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            notice = subscription.notices.recv() => match notice {
                Ok(notice) => {
                    let own_write = notice.device_id.as_deref() == Some(watch.device_id.as_str());
                    let watched = watch.datasets.is_empty()
                        || watch.datasets.contains(&notice.push.dataset_name);
                    if own_write || !watched {
                        continue;
                    }
                    let Ok(text) = serde_json::to_string(&notice.push) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = socket.send(close(1013, "fell behind: synchronise and reconnect")).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                // Pings are answered by the WebSocket layer; anything else only shows the
                // device is there.
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    return;
                }
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            () = &mut expiry => {
                let _ = socket.send(close(1008, "the credentials expired")).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_checked_as_the_model_shapes_them() {
        assert!(valid_id("us-east-1:0c1ba052-7a7c-4f5b-8e3a-4b8e1d7f9a10"));
        assert!(!valid_id("us-east-1:XYZ"));
        assert!(!valid_id("no-colon"));
        assert!(!valid_id(&format!("us-east-1:{}", "a".repeat(60))));
        assert!(valid_dataset("profile.us-east-1:0c1b"));
        assert!(!valid_dataset("bad name"));
        assert!(!valid_dataset(""));
    }
}
