//! What the service keeps in memory between calls: opened signing keys, parsed pools, the
//! password checks running per user, and what is counted for names that are no user.

use crate::*;

/// What the user pool service keeps in memory between calls: opened signing keys by
/// (pool, kid) (a key is unsealed and parsed once; keys never change), and pools with their
/// settings parsed (dropped on every pool change; `clear` on other nodes' changes).
#[derive(Debug, Default)]
pub struct KeyCache {
    pub(crate) keys:
        std::sync::RwLock<std::collections::HashMap<(String, String), Arc<SigningKey>>>,
    /// With the generation they were read in, raised by every clear and removal: a read that
    /// raced a change is not cached (it would put the old pool back until the next change).
    pub(crate) pools: std::sync::RwLock<(u64, Pools)>,
    /// Password checks running now, per (pool, user): what bounds concurrent guesses.
    pub(crate) attempts: Arc<std::sync::Mutex<std::collections::HashMap<(String, String), u32>>>,
    /// Failure counts of names that are no user (PreventUserExistenceErrors), so that they
    /// lock out and run out of code attempts as real users do; bounded.
    pub(crate) ghosts: std::sync::Mutex<std::collections::HashMap<(String, String), Ghost>>,
}

/// Parsed pools by id.
pub(crate) type Pools = std::collections::HashMap<String, Arc<(PoolRow, PoolConfig)>>;

/// What is counted for a name that is no user.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ghost {
    pub(crate) record: UserRecord,
    pub(crate) code_attempts: u32,
}

/// Most names without users remembered at once (then forgotten all together).
pub(crate) const MAX_GHOSTS: usize = 10_000;

/// One password check running for a user; the slot is given back when this drops.
pub(crate) struct AttemptSlot {
    pub(crate) user: (String, String),
    pub(crate) attempts: Arc<std::sync::Mutex<std::collections::HashMap<(String, String), u32>>>,
}

impl Drop for AttemptSlot {
    fn drop(&mut self) {
        if let Ok(mut running) = self.attempts.lock()
            && let Some(n) = running.get_mut(&self.user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.user);
            }
        }
    }
}

impl KeyCache {
    /// Runs `f` on the ghost of `name` in `pool_id`.
    pub(crate) fn ghost<T>(
        &self,
        pool_id: &str,
        name: &str,
        f: impl FnOnce(&mut Ghost) -> T,
    ) -> Option<T> {
        let mut ghosts = self.ghosts.lock().ok()?;
        if ghosts.len() >= MAX_GHOSTS {
            ghosts.clear();
        }
        let ghost = ghosts
            .entry((pool_id.to_owned(), name.to_lowercase()))
            .or_default();
        Some(f(ghost))
    }

    /// A slot for one more password check of `user`, if fewer than `budget` are running.
    pub(crate) fn attempt_slot(&self, user: (String, String), budget: u32) -> Option<AttemptSlot> {
        let mut running = self.attempts.lock().ok()?;
        let n = running.entry(user.clone()).or_insert(0);
        if *n >= budget {
            return None;
        }
        *n += 1;
        Some(AttemptSlot {
            user,
            attempts: self.attempts.clone(),
        })
    }

    /// Forgets cached pools (after a change on another node).
    pub fn clear(&self) {
        if let Ok(mut pools) = self.pools.write() {
            pools.0 += 1;
            pools.1.clear();
        }
    }

    /// The cached pool, or the generation to read it in.
    pub(crate) fn pool(&self, id: &str) -> Result<Arc<(PoolRow, PoolConfig)>, u64> {
        let pools = self.pools.read().map_err(|_| u64::MAX)?;
        pools.1.get(id).cloned().ok_or(pools.0)
    }

    /// Caches a pool read in `generation`, unless the cache changed since.
    pub(crate) fn insert_pool(&self, generation: u64, pool: Arc<(PoolRow, PoolConfig)>) {
        if let Ok(mut pools) = self.pools.write() {
            if pools.0 != generation {
                return;
            }
            if pools.1.len() >= 10_000 {
                pools.1.clear();
            }
            pools.1.insert(pool.0.pool_id.clone(), pool);
        }
    }

    pub(crate) fn forget_pool(&self, id: &str) {
        if let Ok(mut pools) = self.pools.write() {
            pools.0 += 1;
            pools.1.remove(id);
        }
    }

    pub(crate) fn get(&self, id: &(String, String)) -> Option<Arc<SigningKey>> {
        self.keys.read().ok()?.get(id).cloned()
    }

    pub(crate) fn insert(&self, id: (String, String), key: Arc<SigningKey>) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(id, key);
        }
    }
}
