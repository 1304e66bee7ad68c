//! The in-memory store.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Delete, Immediate, Load, Save, SaveOp, SaveOutcome, StoreError, StoreKind};
use crate::record::{Record, SessionId};

/// A record's key: its id, kept inline (no allocation per insert), looked up by the `&str` a
/// load carries (`SessionId` hashes and compares as its text does).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Key(SessionId);

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

/// Keeps sessions in the process's memory: the embedded default for development, tests and
/// single-process apps. Sessions are lost on restart and not shared between processes.
///
/// Records expire at the time each save sets; expired records are never returned and are swept
/// when the store fills up. The store is bounded: at [`MemoryStore::with_capacity`] records it
/// first drops every expired record, then the one closest to expiry (logged as a warning).
///
/// # Examples
///
/// ```
/// use session_runtime::SessionLayer;
/// use session_runtime::store::MemoryStore;
///
/// let layer = SessionLayer::new(MemoryStore::new().with_capacity(10_000));
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    records: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
}

#[derive(Debug)]
struct Entry {
    record: Record,
    expires_at: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// Creates an empty store holding up to 100,000 sessions.
    #[must_use]
    pub fn new() -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            capacity: 100_000,
        }
    }

    /// Sets how many sessions the store holds at most. The default is 100,000.
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Returns how many records the store holds, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock cannot leave a map half-updated: every write below is a
        // single insert or remove.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn make_room(&self, records: &mut HashMap<Key, Entry>, now: u64) {
        if records.len() < self.capacity {
            return;
        }
        records.retain(|_, entry| entry.expires_at > now);
        if records.len() < self.capacity {
            return;
        }
        let soonest = records
            .iter()
            .min_by_key(|(_, entry)| entry.expires_at)
            .map(|(key, _)| key.0.clone());
        if let Some(key) = soonest {
            tracing::warn!(
                capacity = self.capacity,
                "memory session store is full; dropping the session closest to expiry"
            );
            records.remove(&Key(key));
        }
    }
}

immediate_store!(MemoryStore, StoreKind::Server);

/// The operations themselves: they never wait, so the layer calls them without a future.
impl Immediate for MemoryStore {
    fn load_now(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        let mut records = self.lock();
        match records.get(load.value) {
            Some(entry) if entry.expires_at > load.now => Ok(Some(entry.record.clone())),
            Some(_) => {
                records.remove(load.value);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn save_now(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        let mut records = self.lock();
        let id = match save.op {
            SaveOp::Create { id } | SaveOp::Regenerate { new: id, .. } => {
                if records
                    .get(&Key(id.clone()))
                    .is_some_and(|entry| entry.expires_at > save.now)
                {
                    return Ok(SaveOutcome::IdTaken);
                }
                if let SaveOp::Regenerate { old, .. } = save.op {
                    records.remove(&Key(old.clone()));
                }
                self.make_room(&mut records, save.now);
                records.insert(
                    Key(id.clone()),
                    Entry {
                        record: save.to_record(),
                        expires_at: save.expires_at,
                    },
                );
                id
            }
            SaveOp::Update { id } | SaveOp::Touch { id } => {
                let Some(entry) = records
                    .get_mut(&Key(id.clone()))
                    .filter(|entry| entry.expires_at > save.now && !entry.record.is_renewed())
                else {
                    return Ok(SaveOutcome::Missing);
                };
                save.merge_into(&mut entry.record);
                entry.expires_at = save.expires_at;
                id
            }
            SaveOp::Seal => {
                return Err(StoreError::backend(
                    "the memory store keeps records on the server and cannot seal a cookie",
                ));
            }
        };
        Ok(SaveOutcome::Saved(id.as_str().to_owned()))
    }

    fn delete_now(&self, delete: Delete<'_>) -> Result<(), StoreError> {
        self.lock().remove(&Key(delete.id.clone()));
        Ok(())
    }
}
