//! The replay cache: signature nonces seen recently.
//!
//! A signed request carries a timestamp and a random nonce. The timestamp alone lets a
//! captured request be replayed for as long as it stays within the allowed skew; the
//! nonce closes that window: the server remembers every nonce of an *accepted* request
//! and refuses a second request with the same one.
//!
//! A request is acceptable only while `|now - timestamp| <= skew`, and its timestamp is
//! at least `now - skew` when it is first accepted, so a nonce never needs to be kept
//! longer than `2 × skew` after it was first seen; after that a replay fails the
//! timestamp check on its own. Entries are evicted by that expiry time, oldest first.
//!
//! Memory is bounded twice over: each entry is a fixed 16-byte digest of (key id, nonce)
//! plus an expiry, whatever the nonce's length, and the number of entries is capped.
//! When the cap is reached the new request is refused ([`AuthError::ReplayCacheFull`])
//! rather than evicting a still-live nonce, which would reopen the replay window.
//!
//! Nonces are scoped by access key, so one key's holder cannot burn another's nonces,
//! and they are recorded only after the signature verified, so an unauthenticated
//! client cannot fill the cache at all.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::error::AuthError;

/// Default entry cap: about 80 MB at most, enough for ~550 signed requests per second
/// sustained over a 30-minute window.
pub const DEFAULT_NONCE_CAPACITY: usize = 1_000_000;

/// A fixed-size digest of (access key id, nonce).
type NonceKey = [u8; 16];

/// Recently used nonces with their expiry, in unix seconds.
pub(crate) struct NonceCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    /// Nonce → expiry. The authority on whether a nonce is live.
    live: HashMap<NonceKey, i64>,
    /// Insertion order with the expiry given at insertion, for eviction. May hold stale
    /// entries (a nonce re-inserted after it expired); those are skipped on removal.
    order: VecDeque<(i64, NonceKey)>,
}

impl NonceCache {
    /// An empty cache holding at most `capacity` nonces.
    pub(crate) fn new(capacity: usize) -> Self {
        NonceCache {
            inner: Mutex::new(Inner {
                live: HashMap::new(),
                order: VecDeque::new(),
            }),
            capacity,
        }
    }

    /// Records `nonce` for `key_id` until `now + retention_secs`, or fails with
    /// [`AuthError::NonceUsed`] if it is still remembered.
    pub(crate) fn check_and_insert(
        &self,
        key_id: &str,
        nonce: &str,
        now: i64,
        retention_secs: i64,
    ) -> Result<(), AuthError> {
        let key = digest(key_id, nonce);
        let expiry = now.saturating_add(retention_secs);
        let mut inner = self.inner.lock();
        inner.evict(now);
        if let Some(&until) = inner.live.get(&key) {
            if until > now {
                return Err(AuthError::NonceUsed(nonce.to_owned()));
            }
        }
        // Count the queue, not the map: the queue is what actually holds memory, and it is
        // never shorter than the map.
        if inner.order.len() >= self.capacity {
            tracing::warn!(
                capacity = self.capacity,
                "replay cache full; refusing signed requests until nonces expire"
            );
            return Err(AuthError::ReplayCacheFull);
        }
        inner.live.insert(key, expiry);
        inner.order.push_back((expiry, key));
        Ok(())
    }

    /// Number of remembered nonces (including ones expired but not yet evicted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().order.len()
    }
}

impl Inner {
    /// Drops every entry at the front of the queue whose expiry has passed. A clock that
    /// steps backwards only delays eviction; it never removes a live entry early.
    fn evict(&mut self, now: i64) {
        while let Some(&(expiry, key)) = self.order.front() {
            if expiry > now {
                break;
            }
            self.order.pop_front();
            // Only remove the map entry this queue entry created; a later re-insertion of
            // the same nonce has a different expiry and stays.
            if self.live.get(&key) == Some(&expiry) {
                self.live.remove(&key);
            }
        }
    }
}

/// SHA-256 of the length-prefixed key id and the nonce, truncated to 128 bits: fixed size
/// whatever the client sends, and no two (id, nonce) pairs share an encoding.
fn digest(key_id: &str, nonce: &str) -> NonceKey {
    let mut hasher = Sha256::new();
    hasher.update((key_id.len() as u64).to_le_bytes());
    hasher.update(key_id.as_bytes());
    hasher.update(nonce.as_bytes());
    let full = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_refused_until_expiry() {
        let cache = NonceCache::new(10);
        assert!(cache.check_and_insert("k", "n1", 1000, 60).is_ok());
        assert_eq!(
            cache.check_and_insert("k", "n1", 1030, 60),
            Err(AuthError::NonceUsed("n1".into()))
        );
        // Another key may use the same nonce string.
        assert!(cache.check_and_insert("k2", "n1", 1030, 60).is_ok());
        // After the retention, the entry is gone (the timestamp check rejects replays then).
        assert!(cache.check_and_insert("k", "n1", 1060, 60).is_ok());
    }

    #[test]
    fn eviction_keeps_memory_bounded() {
        let cache = NonceCache::new(3);
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            cache.check_and_insert("k", n, 100 + i as i64, 10).unwrap();
        }
        assert_eq!(
            cache.check_and_insert("k", "d", 105, 10),
            Err(AuthError::ReplayCacheFull)
        );
        // "a" expires at 110: room again, and "a" may be used again.
        assert!(cache.check_and_insert("k", "d", 110, 10).is_ok());
        assert_eq!(cache.len(), 3);
        assert_eq!(
            cache.check_and_insert("k", "b", 110, 10),
            Err(AuthError::NonceUsed("b".into()))
        );
    }

    #[test]
    fn clock_stepping_back_keeps_live_entries() {
        let cache = NonceCache::new(10);
        cache.check_and_insert("k", "x", 1000, 60).unwrap();
        cache.check_and_insert("k", "y", 900, 60).unwrap();
        assert!(cache.check_and_insert("k", "x", 950, 60).is_err());
        assert!(cache.check_and_insert("k", "y", 950, 60).is_err());
        // Far in the future everything is evicted.
        cache.check_and_insert("k", "z", 5000, 60).unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn digest_separates_key_and_nonce() {
        assert_ne!(digest("ab", "c"), digest("a", "bc"));
    }
}
