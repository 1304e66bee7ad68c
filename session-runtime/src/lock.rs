//! Per-session request serialization within one process.
//!
//! Requests that extract the same server-side session run their load → handler → save one at a
//! time, so two concurrent read-modify-writes of one field cannot lose an update. Requests that
//! do not extract the session, and other sessions, are not affected.
//!
//! A lock belongs to one session *type* and one id. One request may hold the locks of several
//! session types at once, and a client can send the same id in two cookies (one per type): keyed
//! by the id alone, the second extraction would wait forever for the lock the same request holds.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::session::SessionId;

/// A lock's key: the session type and the session id.
type LockKey = (TypeId, SessionId);

/// The locks of the sessions in use, by session type and id. Entries are removed when their last
/// holder or waiter is gone, so the map holds only sessions with a request in flight.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    map: Mutex<HashMap<LockKey, Weak<AsyncMutex<()>>>>,
}

/// Held while a request uses a session; released on drop.
pub(crate) struct SessionGuard {
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<Locks>,
    key: LockKey,
}

impl Locks {
    /// Waits for the lock of session `id` of the session type `session_type`.
    pub(crate) async fn lock(
        self: &Arc<Self>,
        session_type: TypeId,
        id: &SessionId,
    ) -> SessionGuard {
        let key = (session_type, id.clone());
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(mutex) = map.get(&key).and_then(Weak::upgrade) {
                mutex
            } else {
                let mutex = Arc::new(AsyncMutex::new(()));
                map.insert(key.clone(), Arc::downgrade(&mutex));
                mutex
            }
        };
        SessionGuard {
            guard: Some(mutex.lock_owned().await),
            locks: Arc::clone(self),
            key,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        // Release first, then forget the entry if nobody else holds or awaits it.
        drop(self.guard.take());
        let mut map = self
            .locks
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&self.key)
            .is_some_and(|weak| weak.strong_count() == 0)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TypeA;
    struct TypeB;

    #[tokio::test]
    async fn serializes_one_id_and_forgets_it_after() {
        let a = TypeId::of::<TypeA>();
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
    async fn one_id_under_two_session_types_does_not_wait() {
        let locks = Arc::new(Locks::default());
        let id = SessionId::generate().unwrap();
        let first = locks.lock(TypeId::of::<TypeA>(), &id).await;
        let second = {
            let locks = Arc::clone(&locks);
            let id = id.clone();
            tokio::spawn(async move { drop(locks.lock(TypeId::of::<TypeB>(), &id).await) })
        };
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        assert!(second.is_finished(), "the other session type waited");
        second.await.unwrap();
        drop(first);
        assert_eq!(locks.len(), 0);
    }
}
