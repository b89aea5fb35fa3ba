//! Single flight: callers that need the same thing at once (an issuer's keys, one token's
//! introspection) share one fetch of it instead of each making their own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

/// The fetches running now, by key.
pub struct Flights<K, V: Clone> {
    running: Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>,
}

impl<K, V> Default for Flights<K, V>
where
    V: Clone,
{
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
{
    /// The outcome of the fetch for `key`: one already running is joined; otherwise `fetch`
    /// starts one, which every caller arriving before it ends shares. The fetch runs to its end
    /// as long as one caller still waits for it.
    pub async fn run<F>(&self, key: K, fetch: impl FnOnce() -> F) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let flight = {
            let Ok(mut running) = self.running.lock() else {
                return fetch().await;
            };
            running
                .entry(key.clone())
                .or_insert_with(|| fetch().boxed().shared())
                .clone()
        };
        let outcome = flight.clone().await;
        if let Ok(mut running) = self.running.lock()
            && running.get(&key).is_some_and(|f| f.ptr_eq(&flight))
        {
            running.remove(&key);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
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
            assert_eq!(caller.await.unwrap(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(flights.running.lock().unwrap().is_empty());
        let again = flights.run("issuer", || async { 2 }).await;
        assert_eq!(again, 2);
    }
}
