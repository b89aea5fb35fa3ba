//! Single flight: callers that need the same thing at once (an issuer's keys, one token's
//! introspection) share one fetch of it instead of each making their own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

type Running<K, V> = Arc<Mutex<HashMap<K, Shared<BoxFuture<'static, Option<V>>>>>>;

/// The fetches running now, by key.
pub struct Flights<K, V: Clone> {
    running: Running<K, V>,
}

impl<K, V: Clone> Default for Flights<K, V> {
    fn default() -> Self {
        Flights {
            running: Arc::default(),
        }
    }
}

/// Takes a fetch's key out of the map when the fetch ends, however it ends (a panic too).
struct Landing<K: Hash + Eq, V: Clone> {
    running: Running<K, V>,
    key: Option<K>,
}

impl<K: Hash + Eq, V: Clone> Drop for Landing<K, V> {
    fn drop(&mut self) {
        if let (Ok(mut running), Some(key)) = (self.running.lock(), self.key.take()) {
            running.remove(&key);
        }
    }
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The outcome of the fetch for `key`: one already running is joined; otherwise `fetch`
    /// starts one, which every caller arriving before it ends shares. The fetch runs as its
    /// own task, so it ends (and leaves the map) even when every caller has gone; `None` if
    /// it panicked.
    pub async fn run<F>(&self, key: K, fetch: impl FnOnce() -> F) -> Option<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let flight = {
            let Ok(mut running) = self.running.lock() else {
                return Some(fetch().await);
            };
            running
                .entry(key.clone())
                .or_insert_with(|| {
                    // The task's landing waits for this lock, so it cannot remove the key
                    // before it is inserted.
                    let landing = Landing {
                        running: self.running.clone(),
                        key: Some(key),
                    };
                    let fetch = fetch();
                    let task = tokio::spawn(async move {
                        let _landing = landing;
                        fetch.await
                    });
                    async move { task.await.ok() }.boxed().shared()
                })
                .clone()
        };
        flight.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn callers_at_once_share_one_fetch_and_later_ones_fetch_again() {
        let flights: Arc<Flights<&str, usize>> = Arc::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut callers = Vec::new();
        for _ in 0..16 {
            let (flights, fetches, gate) = (flights.clone(), fetches.clone(), gate.clone());
            callers.push(tokio::spawn(async move {
                flights
                    .run("issuer", move || async move {
                        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                        let mut gate = gate;
                        let _ = gate.wait_for(|open| *open).await;
                        n
                    })
                    .await
            }));
        }
        while flights.running.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Some(1));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(flights.running.lock().unwrap().is_empty());
        let again = flights.run("issuer", || async { 2 }).await;
        assert_eq!(again, Some(2));
    }

    #[tokio::test]
    async fn a_fetch_every_caller_left_still_ends_and_leaves_no_entry() {
        let flights: Arc<Flights<String, usize>> = Arc::default();
        let (release, gate) = tokio::sync::watch::channel(false);
        let caller = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run("token".to_owned(), move || async move {
                        let mut gate = gate;
                        let _ = gate.wait_for(|open| *open).await;
                        7
                    })
                    .await
            })
        };
        while flights.running.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        caller.abort(); // the client hung up
        release.send(true).unwrap();
        while !flights.running.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        // A fetch that panics leaves no entry either, and its callers get `None`.
        let panicked = flights
            .run("token".to_owned(), || async { panic!("fetch failed") })
            .await;
        assert_eq!(panicked, None);
        assert!(flights.running.lock().unwrap().is_empty());
        assert_eq!(
            flights.run("token".to_owned(), || async { 8 }).await,
            Some(8)
        );
    }
}
