//! Accepting connections with limits an unauthenticated client cannot get around: at most
//! `max_connections` at once (the rest wait in the kernel's listen backlog, holding none of
//! our descriptors) and `max_connections_per_ip` from one address (one client cannot take
//! every slot), headers within `header_timeout_secs` (which also closes connections idle
//! that long between requests), and graceful shutdown that finishes requests in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::config::Config;

/// How long shutdown waits for requests in flight before it closes their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Drives a connection until it ends, or until shutdown, when it finishes the request in
/// flight and closes.
macro_rules! until_stopped {
    ($conn:ident, $stopping:ident) => {{
        let mut conn = std::pin::pin!($conn);
        let mut stopping = $stopping;
        tokio::select! {
            _ = conn.as_mut() => {}
            () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }};
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    config: &Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // A TLS handshake gets the time a request's headers get: a client that opens a connection
    // and says nothing holds it no longer.
    let handshake_timeout = Duration::from_secs(config.header_timeout_secs.max(1));
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_timeout_secs.max(1)))
        .max_buf_size(64 * 1024);
    // Shutdown tells every connection to finish its request in flight and close.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let per_ip = Arc::new(PerAddress {
        limit: config.max_connections_per_ip.max(1),
        open: std::sync::Mutex::new(std::collections::HashMap::new()),
    });
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(address_slot) = PerAddress::enter(&per_ip, peer.ip()) else {
            // Over its address's share: closed at once, the global slot given back.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let stopping = stopping.clone();
        let http = http.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // Clients that go away, fail their handshake, or time out sending headers end
            // here; none of that is ours. A connection upgraded to a WebSocket (the Cognito
            // Sync live channel) leaves this slot when it upgrades.
            match tls {
                None => {
                    let conn = http
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    until_stopped!(conn, stopping);
                }
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                    {
                        let conn = http
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        until_stopped!(conn, stopping);
                    }
                }
            }
            drop(address_slot);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: all slots back means all requests done.
    let all = u32::try_from(config.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period");
    }
    Ok(())
}

/// Connections open per client address.
struct PerAddress {
    limit: usize,
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    owner: Arc<PerAddress>,
    ip: std::net::IpAddr,
}

impl PerAddress {
    fn enter(this: &Arc<PerAddress>, ip: std::net::IpAddr) -> Option<AddressSlot> {
        let mut open = this.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= this.limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            owner: this.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A request body that fails when its client sends nothing for `idle`: a slow or stalled
/// upload cannot hold a request (and its connection slot) open forever.
pub(crate) struct IdleTimeout {
    inner: axum::body::Body,
    idle: Duration,
    /// Armed only while the body is waiting for its client: a body that arrives at once
    /// (nearly every request) costs no timer.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for too long")]
pub(crate) struct BodyStalled;

impl IdleTimeout {
    pub(crate) fn new(inner: axum::body::Body, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            timer: None,
        }
    }
}

impl http_body::Body for IdleTimeout {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyStalled)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body error (however wrapped) is a stalled body.
pub(crate) fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(e) = current {
        if e.is::<BodyStalled>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_slot() {
        let limits = Arc::new(PerAddress {
            limit: 2,
            open: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        let a: std::net::IpAddr = [10, 0, 0, 1].into();
        let b: std::net::IpAddr = [10, 0, 0, 2].into();
        let first = PerAddress::enter(&limits, a).unwrap();
        let _second = PerAddress::enter(&limits, a).unwrap();
        assert!(PerAddress::enter(&limits, a).is_none());
        assert!(PerAddress::enter(&limits, b).is_some());
        drop(first);
        assert!(PerAddress::enter(&limits, a).is_some());
    }
}
