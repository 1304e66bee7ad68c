//! Session stores: where session records live between requests.
//!
//! One trait, [`SessionStore`], serves both kinds of store:
//! - **server stores** ([`StoreKind::Server`]) keep records by [`SessionId`]; the cookie carries
//!   only the id. The runtime generates and validates ids, so a store never sees a malformed
//!   one. A save receives **only the changed fields** ([`SaveOp::Update`]), whether the record is
//!   new ([`SaveOp::Create`], which must never overwrite), and the expiry to set in the same
//!   write ([`Save::expires_at`]).
//! - **cookie stores** ([`StoreKind::Cookie`]) keep the whole record in the cookie value; every
//!   save is a [`SaveOp::Seal`] of all fields and returns the new cookie value.
//!
//! The runtime enforces expiry from the record's [`Metadata`](crate::session::Metadata) itself;
//! a store's own TTL only cleans up.
//!
//! # Implementing a custom store
//!
//! A server store that keeps records in a map (see [`MemoryStore`] for a bounded one):
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use session_runtime::session::Record;
//! use session_runtime::store::{
//!     Delete, Load, Save, SaveOp, SaveOutcome, SessionStore, StoreError, StoreKind,
//! };
//!
//! #[derive(Debug, Default)]
//! struct MapStore(Mutex<HashMap<String, (Record, u64)>>);
//!
//! impl SessionStore for MapStore {
//!     fn kind(&self) -> StoreKind {
//!         StoreKind::Server
//!     }
//!
//!     async fn load(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map
//!             .get(load.value)
//!             .filter(|(_, expires_at)| *expires_at > load.now)
//!             .map(|(record, _)| record.clone()))
//!     }
//!
//!     async fn save(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         let id = match save.op {
//!             SaveOp::Create { id } | SaveOp::Regenerate { new: id, .. } => {
//!                 if map.contains_key(id.as_str()) {
//!                     return Ok(SaveOutcome::IdTaken);
//!                 }
//!                 if let SaveOp::Regenerate { old, .. } = save.op {
//!                     map.remove(old.as_str());
//!                 }
//!                 map.insert(id.as_str().to_owned(), (save.to_record(), save.expires_at));
//!                 id
//!             }
//!             SaveOp::Update { id } | SaveOp::Touch { id } => {
//!                 let Some((record, expires_at)) = map.get_mut(id.as_str()) else {
//!                     return Ok(SaveOutcome::Missing); // never resurrect a deleted session
//!                 };
//!                 save.merge_into(record);
//!                 *expires_at = save.expires_at;
//!                 id
//!             }
//!             // Only cookie stores are asked to seal; answer with an error, never a panic.
//!             SaveOp::Seal => return Err(StoreError::backend("MapStore cannot seal a cookie")),
//!         };
//!         Ok(SaveOutcome::Saved(id.as_str().to_owned()))
//!     }
//!
//!     async fn delete(&self, delete: Delete<'_>) -> Result<(), StoreError> {
//!         self.0.lock().unwrap().remove(delete.id.as_str());
//!         Ok(())
//!     }
//! }
//!
//! # #[derive(session_runtime::Session)]
//! # struct Visits { count: u64 }
//! let layer = session_runtime::SessionLayer::new(MapStore::default());
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::codec::{Codec, CodecError};
use crate::session::{Record, RecordRef, SessionId};

#[cfg(feature = "cookie-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie-store")))]
mod cookie;
#[cfg(feature = "memory-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory-store")))]
mod memory;
#[cfg(feature = "redis-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-store")))]
mod redis;

#[cfg(feature = "cookie-store")]
#[doc(inline)]
pub use cookie::{EncryptedCookieStore, Key, KeyError, SimpleCookieStore};
#[cfg(feature = "memory-store")]
#[doc(inline)]
pub use memory::MemoryStore;
#[cfg(feature = "redis-store")]
#[doc(inline)]
pub use redis::{RedisStore, RedisStoreBuilder};

/// Where a store keeps a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The whole record travels in the cookie.
    Cookie,
    /// The record lives on the server; the cookie carries its [`SessionId`].
    Server,
}

/// Encodes and decodes whole records with the session type's codec (the *envelope*).
#[derive(Clone, Copy)]
pub struct RecordCodec {
    encode: fn(RecordRef<'_>) -> Result<Vec<u8>, CodecError>,
    decode: fn(&[u8]) -> Result<Record, CodecError>,
}

impl RecordCodec {
    pub(crate) fn of<C: Codec>() -> Self {
        Self {
            encode: C::encode_record,
            decode: C::decode_record,
        }
    }

    /// Encodes a record as one value.
    ///
    /// # Errors
    ///
    /// Returns the codec's error.
    pub fn encode(&self, record: RecordRef<'_>) -> Result<Vec<u8>, CodecError> {
        (self.encode)(record)
    }

    /// Decodes a record written by [`RecordCodec::encode`].
    ///
    /// # Errors
    ///
    /// Returns the codec's error.
    pub fn decode(&self, bytes: &[u8]) -> Result<Record, CodecError> {
        (self.decode)(bytes)
    }
}

impl fmt::Debug for RecordCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordCodec").finish_non_exhaustive()
    }
}

/// A request to load a session.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Load<'a> {
    /// The cookie's name.
    pub cookie_name: &'a str,
    /// The cookie's value: a validated [`SessionId`] for server stores, the sealed record for
    /// cookie stores (already checked against the size limit).
    pub value: &'a str,
    /// The current time, Unix milliseconds.
    pub now: u64,
    /// The session type's envelope codec.
    pub codec: RecordCodec,
}

/// What a save does.
#[derive(Debug, Clone, Copy)]
pub enum SaveOp<'a> {
    /// Writes a new record. Must never overwrite an existing one: answer
    /// [`SaveOutcome::IdTaken`] and the runtime retries with another id.
    Create {
        /// The new record's id.
        id: &'a SessionId,
    },
    /// Writes the changed fields and the metadata of an existing record and sets its expiry.
    /// If the record no longer exists (expired, deleted by a logout elsewhere), write nothing and
    /// answer [`SaveOutcome::Missing`]: a save never resurrects a session.
    Update {
        /// The record's id.
        id: &'a SessionId,
    },
    /// Moves the expiry (and the metadata's `updated`) of an existing record without rewriting
    /// its fields; [`SaveOutcome::Missing`] if it is gone.
    Touch {
        /// The record's id.
        id: &'a SessionId,
    },
    /// Writes the whole record under `new` (never overwriting), then deletes `old`.
    Regenerate {
        /// The id being retired.
        old: &'a SessionId,
        /// The new id.
        new: &'a SessionId,
    },
    /// Cookie stores only: encode the whole record into a new cookie value.
    Seal,
}

/// A request to save a session.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Save<'a> {
    /// The cookie's name.
    pub cookie_name: &'a str,
    /// What to do.
    pub op: SaveOp<'a>,
    /// The metadata and the fields to write: only the changed ones for [`SaveOp::Update`], none
    /// for [`SaveOp::Touch`], all of them otherwise.
    pub record: RecordRef<'a>,
    /// When the record expires, Unix milliseconds; set it in the same write.
    pub expires_at: u64,
    /// The current time, Unix milliseconds.
    pub now: u64,
    /// The session type's envelope codec.
    pub codec: RecordCodec,
}

impl Save<'_> {
    /// Returns the record this save describes, as an owned [`Record`].
    #[must_use]
    pub fn to_record(&self) -> Record {
        Record {
            metadata: *self.record.metadata,
            fields: self
                .record
                .fields
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            rewrite: false,
        }
    }

    /// Applies this save's metadata and fields to a stored record, replacing fields by name and
    /// keeping the others.
    pub fn merge_into(&self, record: &mut Record) {
        record.metadata = *self.record.metadata;
        for (name, value) in self.record.fields {
            match record.fields.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1.clone_from(value),
                None => record.fields.push(((*name).to_owned(), value.clone())),
            }
        }
    }
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Written; the cookie's new value (the id for server stores, the sealed record for cookie
    /// stores).
    Saved(String),
    /// The record to update or touch no longer exists; nothing was written.
    Missing,
    /// [`SaveOp::Create`] or [`SaveOp::Regenerate`] found its new id taken; nothing was written.
    IdTaken,
}

/// A request to delete a server-side record.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Delete<'a> {
    /// The cookie's name.
    pub cookie_name: &'a str,
    /// The record's id.
    pub id: &'a SessionId,
}

/// The backend of sessions. See the [module docs](self) for the contract and an example.
pub trait SessionStore: Send + Sync + 'static {
    /// Says whether records live in the cookie or on the server.
    fn kind(&self) -> StoreKind;

    /// Loads a record. `Ok(None)` means there is none (unknown id, expired, or a cookie that does
    /// not open): the client gets a fresh session.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot answer; the request is then rejected (503)
    /// and the client's cookie is left alone.
    fn load(
        &self,
        load: Load<'_>,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Saves a record; see [`SaveOp`] for what each operation must do.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when nothing could be written; the response becomes a 500 without
    /// `Set-Cookie`.
    fn save(&self, save: Save<'_>) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Deletes a server-side record; deleting a missing record succeeds.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be reached.
    fn delete(&self, delete: Delete<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The error of a [`SessionStore`]. The backend's own error is kept as the
/// [`source`](StdError::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached.
    #[error("session store is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// The store did not answer in time.
    #[error("session store timed out")]
    Timeout,
    /// The store answered with an error.
    #[error("session store rejected the operation")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
    /// The record could not be encoded for this store.
    #[error("failed to encode the session record")]
    Codec(#[from] CodecError),
}

impl StoreError {
    /// Wraps a connection error.
    pub fn unavailable(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Unavailable(error.into())
    }

    /// Wraps an error the backend answered with.
    pub fn backend(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of [`SessionStore`] that the layer keeps.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn kind(&self) -> StoreKind;
    fn load<'a>(&'a self, load: Load<'a>) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    fn save<'a>(&'a self, save: Save<'a>) -> BoxFuture<'a, Result<SaveOutcome, StoreError>>;
    fn delete<'a>(&'a self, delete: Delete<'a>) -> BoxFuture<'a, Result<(), StoreError>>;
}

impl<S: SessionStore> DynStore for S {
    fn kind(&self) -> StoreKind {
        SessionStore::kind(self)
    }
    fn load<'a>(&'a self, load: Load<'a>) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(SessionStore::load(self, load))
    }
    fn save<'a>(&'a self, save: Save<'a>) -> BoxFuture<'a, Result<SaveOutcome, StoreError>> {
        Box::pin(SessionStore::save(self, save))
    }
    fn delete<'a>(&'a self, delete: Delete<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::delete(self, delete))
    }
}
