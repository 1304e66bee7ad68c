//! Per-session request serialization within one process.
//!
//! Requests that extract the same server-side session run their load → handler → save one at a
//! time, so two concurrent read-modify-writes of one field cannot lose an update. Requests that
//! do not extract the session, and other sessions, are not affected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::session::SessionId;

/// The locks of the sessions in use, by id. Entries are removed when their last holder or waiter
/// is gone, so the map holds only sessions with a request in flight.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    map: Mutex<HashMap<SessionId, Weak<AsyncMutex<()>>>>,
}

/// Held while a request uses a session; released on drop.
pub(crate) struct SessionGuard {
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<Locks>,
    id: SessionId,
}

impl Locks {
    pub(crate) async fn lock(self: &Arc<Self>, id: &SessionId) -> SessionGuard {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(mutex) = map.get(id).and_then(Weak::upgrade) {
                mutex
            } else {
                let mutex = Arc::new(AsyncMutex::new(()));
                map.insert(id.clone(), Arc::downgrade(&mutex));
                mutex
            }
        };
        SessionGuard {
            guard: Some(mutex.lock_owned().await),
            locks: Arc::clone(self),
            id: id.clone(),
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
            .get(&self.id)
            .is_some_and(|weak| weak.strong_count() == 0)
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serializes_one_id_and_forgets_it_after() {
        let locks = Arc::new(Locks::default());
        let id = SessionId::generate().unwrap();
        let first = locks.lock(&id).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            let id = id.clone();
            tokio::spawn(async move { drop(locks.lock(&id).await) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the second request waits");
        let other = locks.lock(&SessionId::generate().unwrap()).await;
        drop(first);
        waiter.await.unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
    }
}
