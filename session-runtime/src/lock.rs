//! Per-session request serialization within one process.
//!
//! Requests that extract the same server-side session run their load → handler → save one at a
//! time, so two concurrent read-modify-writes of one field cannot lose an update. Requests that
//! do not extract the session, and other sessions, are not affected.
//!
//! A lock belongs to one session *cookie* and one id: the session types that share a cookie (a
//! type and its views, `#[session(view_of = ...)]`) share its locks, so requests through either
//! are serialized with each other. One request may hold the locks of several cookies at once, and
//! a client can send the same id in two cookies: keyed by the id alone, the second extraction
//! would wait forever for the lock the same request holds.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::record::SessionId;

/// A lock's key: the session cookie's name and the session id, with their hash computed once.
///
/// Ids come from cookies, so an attacker chooses them: the hash is the std's randomly keyed
/// `SipHash` ([`RandomState`]), as a plain `HashMap` would use. It is computed once per request
/// when the lock is taken and kept in the key, so the release (a second map operation) does not
/// hash the id again.
#[derive(Clone, PartialEq, Eq)]
struct LockKey {
    hash: u64,
    cookie: &'static str,
    id: SessionId,
}

impl Hash for LockKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Passes on the hash a [`LockKey`] carries.
#[derive(Default)]
struct Precomputed(u64);

impl Hasher for Precomputed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `LockKey`); fold anything else in rather than panic.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// The requests waiting for a held session, in arrival order.
type Waiters = VecDeque<oneshot::Sender<()>>;

/// The sessions in use, by cookie name and id. An entry exists while a request holds the
/// session; it lists the requests waiting for it. The uncontended case (nearly every request) is
/// one map insert and one map remove: no per-session mutex, no reference counting.
#[derive(Default)]
pub(crate) struct Locks {
    map: Mutex<HashMap<LockKey, Waiters, BuildHasherDefault<Precomputed>>>,
    keys: RandomState,
}

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks").finish_non_exhaustive()
    }
}

/// Held while a request uses a session; released (handed to the next waiter) on drop.
pub(crate) struct SessionGuard {
    locks: Arc<Locks>,
    key: LockKey,
}

/// A request waiting for a session. If it is dropped (the request was cancelled) after the
/// session was handed to it, it passes the session on, so a cancelled waiter never keeps it.
struct Waiting<'a> {
    rx: oneshot::Receiver<()>,
    locks: &'a Locks,
    key: &'a LockKey,
    settled: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // After `close`, a hand-off either already happened (and `try_recv` sees it) or fails on
        // the releasing side, which then tries the next waiter.
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            self.locks.release(self.key);
        }
    }
}

impl Locks {
    fn map(&self) -> MutexGuard<'_, HashMap<LockKey, Waiters, BuildHasherDefault<Precomputed>>> {
        // Every critical section is a single insert, push, pop or remove: a panic cannot leave
        // the map torn.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, cookie: &'static str, id: &SessionId) -> LockKey {
        LockKey {
            // The id alone: it is unique enough, and equality still compares the cookie.
            hash: self.keys.hash_one(id),
            cookie,
            id: id.clone(),
        }
    }

    /// Takes the lock of session `id` under cookie `cookie` if it is free, without waiting.
    pub(crate) fn try_lock(
        self: &Arc<Self>,
        cookie: &'static str,
        id: &SessionId,
    ) -> Option<SessionGuard> {
        let key = self.key(cookie, id);
        match self.map().entry(key.clone()) {
            Entry::Vacant(entry) => {
                entry.insert(VecDeque::new());
                Some(SessionGuard {
                    locks: Arc::clone(self),
                    key,
                })
            }
            Entry::Occupied(_) => None,
        }
    }

    /// Waits for the lock of session `id` under cookie `cookie`.
    pub(crate) async fn lock(
        self: &Arc<Self>,
        cookie: &'static str,
        id: &SessionId,
    ) -> SessionGuard {
        let key = self.key(cookie, id);
        loop {
            let rx = match self.map().entry(key.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(VecDeque::new());
                    None
                }
                Entry::Occupied(mut entry) => {
                    let (tx, rx) = oneshot::channel();
                    entry.get_mut().push_back(tx);
                    Some(rx)
                }
            };
            let Some(rx) = rx else {
                break;
            };
            let mut waiting = Waiting {
                rx,
                locks: self,
                key: &key,
                settled: false,
            };
            let handed = (&mut waiting.rx).await.is_ok();
            waiting.settled = true;
            if handed {
                break;
            }
            // The sender was dropped without a hand-off (cannot happen: entries are removed only
            // when no one waits); ask again rather than run unserialized.
        }
        SessionGuard {
            locks: Arc::clone(self),
            key,
        }
    }

    /// Hands the session to the first waiter still waiting, or forgets it.
    fn release(&self, key: &LockKey) {
        let mut map = self.map();
        let Some((key, mut waiters)) = map.remove_entry(key) else {
            return;
        };
        while let Some(waiter) = waiters.pop_front() {
            if waiter.send(()).is_ok() {
                map.insert(key, waiters);
                return;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.locks.release(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serializes_one_id_and_forgets_it_after() {
        let a = "a";
        let locks = Arc::new(Locks::default());
        let id = SessionId::generate().unwrap();
        let first = locks.lock(a, &id).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            let id = id.clone();
            tokio::spawn(async move { drop(locks.lock(a, &id).await) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the second request waits");
        let other = locks.lock(a, &SessionId::generate().unwrap()).await;
        drop(first);
        waiter.await.unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
    }

    /// Regression (fuzz target `cookie_header`): a client sent the id of one session type in the
    /// cookie of another, and a handler that extracted both types waited forever for the lock
    /// its own request held.
    #[tokio::test]
    async fn one_id_under_two_cookies_does_not_wait() {
        let locks = Arc::new(Locks::default());
        let id = SessionId::generate().unwrap();
        let first = locks.lock("a", &id).await;
        let second = {
            let locks = Arc::clone(&locks);
            let id = id.clone();
            tokio::spawn(async move { drop(locks.lock("b", &id).await) })
        };
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        assert!(second.is_finished(), "the other session type waited");
        second.await.unwrap();
        drop(first);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_never_keeps_the_session() {
        use std::future::Future as _;
        use std::task::{Context, Waker};

        let locks = Arc::new(Locks::default());
        let kind = "kind";
        let id = SessionId::generate().unwrap();
        let first = locks.lock(kind, &id).await;
        // Cancelled while waiting, before any hand-off: skipped.
        let early = {
            let locks = Arc::clone(&locks);
            let id = id.clone();
            tokio::spawn(async move { drop(locks.lock(kind, &id).await) })
        };
        tokio::task::yield_now().await;
        early.abort();
        let _ = early.await;
        // Queued, handed the session, then cancelled before it ran: it passes the session on.
        let mut late = Box::pin(locks.lock(kind, &id));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(late.as_mut().poll(&mut cx).is_pending());
        drop(first);
        drop(late);
        assert_eq!(locks.len(), 0);
        drop(locks.lock(kind, &id).await);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn try_lock_never_waits_and_leaves_no_entry() {
        let a = "a";
        let locks = Arc::new(Locks::default());
        let id = SessionId::generate().unwrap();
        let held = locks.lock(a, &id).await;
        assert!(locks.try_lock(a, &id).is_none(), "taken: no guard, no wait");
        drop(held);
        let free = locks.try_lock(a, &id).expect("free: taken at once");
        drop(free);
        assert_eq!(locks.len(), 0);
    }
}
