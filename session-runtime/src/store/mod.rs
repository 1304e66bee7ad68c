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
//! Periodic id renewal ([`SessionConfig::with_renewal`](crate::config::SessionConfig::with_renewal))
//! asks one thing more of a server store that writes single fields: the runtime creates the
//! record under the new id ([`SaveOp::Renew`]), then updates the old one ([`SaveOp::Update`])
//! with the reserved field [`RENEWED_FIELD`], a forward to the new id until the grace period
//! ends, and sets the old record's expiry to that moment. The store must refuse to update or
//! touch a record that holds that field ([`Record::is_renewed`], answered with
//! [`SaveOutcome::Missing`]) in the same atomic step as the write, so that a request which
//! loaded the old record before the renewal, or a second renewal racing the first, is sent to
//! the new id instead of writing into the old record.
//!
//! A store that must speak someone else's wire format (the `aiohttp` module of feature
//! `aiohttp-compat`, say) declares it with [`SessionStore::format`]: the shape of its ids
//! ([`IdFormat`]), how its cookie values are quoted ([`CookieQuoting`]) and whether it can write
//! single fields. The default suits every store of this crate's own formats, so most stores never
//! implement it.
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
//!             SaveOp::Create { id }
//!             | SaveOp::Regenerate { new: id, .. }
//!             | SaveOp::Renew { new: id, .. } => {
//!                 if map.contains_key(id.as_str()) {
//!                     return Ok(SaveOutcome::IdTaken);
//!                 }
//!                 if let SaveOp::Regenerate { old, .. } | SaveOp::Renew { old, .. } = save.op {
//!                     // Never resurrect a session a logout deleted meanwhile.
//!                     if !map.get(old.as_str()).is_some_and(|(old, _)| !old.is_renewed()) {
//!                         return Ok(SaveOutcome::Missing);
//!                     }
//!                 }
//!                 if let SaveOp::Regenerate { old, .. } = save.op {
//!                     map.remove(old.as_str());
//!                 }
//!                 map.insert(id.as_str().to_owned(), (save.to_record(), save.expires_at));
//!                 id
//!             }
//!             SaveOp::Update { id } | SaveOp::Touch { id } => {
//!                 // Never resurrect a deleted session, never write into a renewed-away one.
//!                 let Some((record, expires_at)) = map
//!                     .get_mut(id.as_str())
//!                     .filter(|(record, _)| !record.is_renewed())
//!                 else {
//!                     return Ok(SaveOutcome::Missing);
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

use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::Future;

use crate::codec::CodecError;
#[doc(inline)]
pub use crate::codec::RecordCodec;
#[doc(inline)]
pub use crate::cookie_header::CookieQuoting;
#[doc(inline)]
pub use crate::owner::SessionHandle;
#[doc(inline)]
pub use crate::record::RENEWED_FIELD;
use crate::record::{Bytes, IdFormat, Record, RecordRef, SessionId};

pub(crate) mod erased;

/// Where a store keeps a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The whole record travels in the cookie.
    Cookie,
    /// The record lives on the server; the cookie carries its [`SessionId`].
    Server,
}

/// How a store's wire format looks to the runtime; returned by [`SessionStore::format`].
///
/// # Examples
///
/// ```
/// use session_runtime::session::IdFormat;
/// use session_runtime::store::{CookieQuoting, StoreFormat};
///
/// let format = StoreFormat::new()
///     .with_ids(IdFormat::Hex128)
///     .with_quoting(CookieQuoting::Python)
///     .with_whole_records();
/// assert_eq!(format.ids(), IdFormat::Hex128);
/// assert!(format.writes_whole_records());
/// assert!(!StoreFormat::new().writes_whole_records());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFormat {
    ids: IdFormat,
    quoting: CookieQuoting,
    whole_records: bool,
}

impl Default for StoreFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreFormat {
    /// Returns the format of this crate's own stores: [`IdFormat::Base64Url256`] ids,
    /// [`CookieQuoting::Plain`] and single-field writes.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            ids: IdFormat::Base64Url256,
            quoting: CookieQuoting::Plain,
            whole_records: false,
        }
    }

    /// Sets the shape of the ids the runtime generates for this store and accepts from cookies.
    /// The default is [`IdFormat::Base64Url256`].
    #[must_use]
    pub const fn with_ids(mut self, ids: IdFormat) -> Self {
        self.ids = ids;
        self
    }

    /// Sets how cookie values are quoted. The default is [`CookieQuoting::Plain`].
    #[must_use]
    pub const fn with_quoting(mut self, quoting: CookieQuoting) -> Self {
        self.quoting = quoting;
        self
    }

    /// Declares that the store keeps each record as one value and so needs every field on every
    /// write: [`SaveOp::Update`] then carries all fields, not only the changed ones, and a
    /// rolling-expiry touch becomes an [`SaveOp::Update`] (the record's timestamps live inside
    /// the value). The default is single-field writes.
    #[must_use]
    pub const fn with_whole_records(mut self) -> Self {
        self.whole_records = true;
        self
    }

    /// Returns the id format.
    #[must_use]
    pub const fn ids(&self) -> IdFormat {
        self.ids
    }

    /// Returns the cookie quoting.
    #[must_use]
    pub const fn quoting(&self) -> CookieQuoting {
        self.quoting
    }

    /// Returns whether every write carries the whole record.
    #[must_use]
    pub const fn writes_whole_records(&self) -> bool {
        self.whole_records
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
    /// The field names the session type reads ([`Session::LOAD_NAMES`](crate::Session::LOAD_NAMES)):
    /// a store may load only these (and the reserved fields it keeps, such as
    /// [`RENEWED_FIELD`]). Empty when the runtime only follows a renewal forward.
    pub names: &'a [&'static str],
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
    /// If the record no longer exists (expired, deleted by a logout elsewhere), or is the
    /// forward of a renewed-away id ([`Record::is_renewed`]), write nothing and answer
    /// [`SaveOutcome::Missing`]: a save never resurrects a session, and never writes into a
    /// record another request has renewed away (the runtime follows the forward instead).
    Update {
        /// The record's id.
        id: &'a SessionId,
    },
    /// Moves the expiry (and the metadata's `updated`) of an existing record without rewriting
    /// its fields; [`SaveOutcome::Missing`] if it is gone or renewed away, as for
    /// [`SaveOp::Update`].
    Touch {
        /// The record's id.
        id: &'a SessionId,
    },
    /// Writes the record under `new` (never overwriting), then deletes `old`. If `old` is gone
    /// (a logout elsewhere during the request) or renewed away ([`Record::is_renewed`]), write
    /// nothing and answer [`SaveOutcome::Missing`]: a regeneration never resurrects a session.
    ///
    /// The save carries every field the runtime loaded, overlaid with the changed ones. A store
    /// whose loads return only [`Load::names`] must also copy the other stored fields of `old`
    /// (those the session type does not declare, unless [`Save::purge`]), so they move with the
    /// session.
    Regenerate {
        /// The id being retired.
        old: &'a SessionId,
        /// The new id.
        new: &'a SessionId,
    },
    /// Periodic id renewal (see
    /// [`SessionConfig::with_renewal`](crate::config::SessionConfig::with_renewal)): writes the
    /// record under `new` as [`SaveOp::Regenerate`] does, but leaves `old` in place; the runtime
    /// turns it into a forward to `new` next.
    Renew {
        /// The id being renewed.
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
    /// The metadata and the fields to write. A new session's first save carries every field.
    /// After that, [`SaveOp::Update`] carries only the changed fields (in [`RecordRef::encoded`]),
    /// unless the store writes whole records ([`StoreFormat::with_whole_records`]) or asked for
    /// a rewrite ([`Record::rewrite`]); [`SaveOp::Touch`] carries none; every other save carries
    /// the record as it was loaded ([`RecordRef::kept`]) overlaid with the changed fields.
    pub record: RecordRef<'a>,
    /// When the record expires, Unix milliseconds; set it in the same write.
    pub expires_at: u64,
    /// `Some(names)` when the session type purges the stored fields it does not declare
    /// (`#[session(purge_undeclared)]`): the record keeps only stored fields named in `names`
    /// (the type's [`Session::LOAD_NAMES`](crate::Session::LOAD_NAMES)) besides the store's own
    /// reserved ones. An [`SaveOp::Update`] drops the others as it writes; a
    /// [`SaveOp::Regenerate`] or [`SaveOp::Renew`] does not carry them to the new id. `None`
    /// for every other type and for touches.
    pub purge: Option<&'a [&'static str]>,
    /// The current time, Unix milliseconds.
    pub now: u64,
    /// The session type's envelope codec.
    pub codec: RecordCodec,
    /// `Some` when this save must update the per-owner index of a session type with an owner
    /// field (see [`OwnerEntry`]); `None` for every other save, which must not touch the index.
    pub owner: Option<OwnerEntry<'a>>,
}

/// How a save keeps the per-owner index (session types with `#[session(owner)]`; see
/// [`owner`](crate::owner)). The index of an owner is per cookie name; its entries name
/// sessions by [`SessionHandle`] and each carries a *horizon*, `until`, a time the session
/// surely expires before, so that entries past their horizon can be dropped unread.
///
/// A save carries one when the record is written under a new id ([`SaveOp::Create`],
/// [`SaveOp::Regenerate`], [`SaveOp::Renew`]) and has an owner; when an
/// [`SaveOp::Update`] changes the owner (to another user or to none); and when an
/// [`SaveOp::Update`] or [`SaveOp::Touch`] moves the expiry past the horizon the entry had.
/// What the store must do:
/// - `owner: Some(key)`: index the saved record (its new id for a new-id save) under `key`
///   with horizon `until` (raising an existing entry's horizon, never lowering it). Do it so
///   that the record is never live with an owner without its entry: for a new id, after the
///   record is written (nothing else knows the new id yet); for an update, before. For a
///   [`SaveOp::Regenerate`] or [`SaveOp::Renew`], the old id's entry may go in the same step.
/// - `owner: None`: the record has no owner any more; its entry may go (or be left to be
///   dropped when listed or past its horizon).
///
/// Entries of records that are gone need not be removed at once: [`SessionStore::list_owned`]
/// answers them as missing and the runtime drops them with [`SessionStore::revoke`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct OwnerEntry<'a> {
    /// The owner's index key ([`OwnerKey::index_key`](crate::owner::OwnerKey::index_key)), or
    /// `None` when the record no longer has an owner.
    pub owner: Option<&'a str>,
    /// The entry's horizon, Unix milliseconds: later than [`Save::expires_at`].
    pub until: u64,
}

/// A request to list the records an owner's index names.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ListOwned<'a> {
    /// The cookie name of the session type.
    pub cookie_name: &'a str,
    /// The owner's index key.
    pub owner: &'a str,
    /// The current time, Unix milliseconds. Entries past their horizon may be dropped.
    pub now: u64,
    /// The session type's envelope codec.
    pub codec: RecordCodec,
}

/// The answer of [`SessionStore::list_owned`]: each indexed session's handle and its record,
/// `None` when the record is gone.
pub type OwnedRecords = Vec<(SessionHandle, Option<Record>)>;

/// A request to end sessions of one owner and to drop index entries.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Revoke<'a> {
    /// The cookie name of the session type.
    pub cookie_name: &'a str,
    /// The owner's index key.
    pub owner: &'a str,
    /// The stored name of the owner field.
    pub field: &'static str,
    /// The sessions to end, with the bytes their owner field held when they were listed: delete
    /// each record (and its entry) only if its `field` still holds them, in one atomic step, so a
    /// session that changed hands meanwhile is not ended for its new owner.
    pub sessions: &'a [(SessionHandle, Bytes)],
    /// Entries of sessions that are gone or expired: drop them from the owner's index.
    pub stale: &'a [SessionHandle],
    /// The current time, Unix milliseconds.
    pub now: u64,
}

impl Save<'_> {
    /// Returns the record this save describes, as an owned [`Record`]. The field names are
    /// borrowed (`'static`); the values are copied once, into shared buffers.
    #[must_use]
    pub fn to_record(&self) -> Record {
        Record {
            metadata: *self.record.metadata,
            fields: self.owned_fields().collect(),
            rewrite: false,
        }
    }

    /// Applies this save's metadata and fields to a stored record, replacing fields by name and
    /// keeping the others, except those [`Save::purge`] drops.
    pub fn merge_into(&self, record: &mut Record) {
        record.metadata = *self.record.metadata;
        if let Some(names) = self.purge {
            record.fields.retain(|(name, _)| names.contains(&&**name));
        }
        for (name, value) in self.owned_fields() {
            match record.fields.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => record.fields.push((name, value)),
            }
        }
    }

    /// The save's fields as a record holds them: kept fields shared, encoded ones copied once.
    fn owned_fields(&self) -> impl Iterator<Item = (Cow<'static, str>, Bytes)> + '_ {
        self.record.kept.iter().cloned().chain(
            self.record
                .encoded
                .iter()
                .map(|(name, value)| (Cow::Borrowed(*name), Bytes::copy_from_slice(value))),
        )
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
    /// [`SaveOp::Create`], [`SaveOp::Regenerate`] or [`SaveOp::Renew`] found its new id taken;
    /// nothing was written.
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

    /// Describes this store's wire format for the cookie `cookie_name`: its id shape, its cookie
    /// quoting and whether it writes single fields. The runtime generates and validates ids,
    /// quotes and unquotes cookie values, and decides what a save carries accordingly. (The
    /// cookie name lets a store that routes session types to different backends, during a
    /// migration say, answer for each.)
    ///
    /// The default, [`StoreFormat::new`], is right for any store that keeps records in a format
    /// of its own: 256-bit base64url ids, cookie values as they are, single-field writes.
    fn format(&self, cookie_name: &str) -> StoreFormat {
        let _ = cookie_name;
        StoreFormat::new()
    }

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
    /// Returns [`StoreError`] when nothing could be written; the response loses its `Set-Cookie`
    /// and becomes a 503 for [`StoreError::Unavailable`] and [`StoreError::Timeout`] (an outage:
    /// say `Unavailable` for a write refused for now, a replica during a failover, say), a 500
    /// for the others.
    fn save(&self, save: Save<'_>) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Deletes a server-side record; deleting a missing record succeeds.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be reached.
    fn delete(&self, delete: Delete<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lists the records that the index of [`ListOwned::owner`] names, each with its handle:
    /// `None` for an entry whose record is gone. The runtime checks expiry and ownership, and
    /// drops the entries of records that are gone with [`SessionStore::revoke`].
    ///
    /// The default answers [`StoreError::Unsupported`]: a store keeps an index only if it
    /// implements this and [`SessionStore::revoke`], and follows [`Save::owner`].
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot answer.
    fn list_owned(
        &self,
        list: ListOwned<'_>,
    ) -> impl Future<Output = Result<OwnedRecords, StoreError>> + Send {
        let _ = list;
        std::future::ready(Err(StoreError::Unsupported(
            "list a user's sessions (it keeps no index by owner)",
        )))
    }

    /// Ends the sessions [`Revoke::sessions`] names (each only if its owner field still holds
    /// the given bytes) and drops [`Revoke::stale`] from the owner's index. Returns how many
    /// sessions ended.
    ///
    /// The default answers [`StoreError::Unsupported`], as [`SessionStore::list_owned`] does.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot answer.
    fn revoke(&self, revoke: Revoke<'_>) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let _ = revoke;
        std::future::ready(Err(StoreError::Unsupported(
            "revoke a user's sessions (it keeps no index by owner)",
        )))
    }

    /// The stores of this crate that never wait answer with their operations as plain
    /// functions, which the layer then calls without a future. Other stores cannot implement
    /// `Immediate` and keep this default.
    #[doc(hidden)]
    fn __immediate(&self) -> Option<&dyn Immediate> {
        None
    }
}

mod sealed {
    use super::{
        Delete, ListOwned, Load, OwnedRecords, Record, Revoke, Save, SaveOutcome, StoreError,
    };

    /// The operations of a store of this crate that never waits, as plain functions. Sealed:
    /// nothing outside this crate can name it.
    pub trait Immediate {
        fn load_now(&self, load: Load<'_>) -> Result<Option<Record>, StoreError>;
        fn save_now(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError>;
        fn delete_now(&self, delete: Delete<'_>) -> Result<(), StoreError>;
        /// [`SessionStore::list_owned`](super::SessionStore::list_owned); unsupported unless
        /// the store keeps an owner index.
        fn list_owned_now(&self, list: ListOwned<'_>) -> Result<OwnedRecords, StoreError> {
            let _ = list;
            Err(StoreError::Unsupported(
                "list a user's sessions (they live in the clients' cookies)",
            ))
        }
        /// [`SessionStore::revoke`](super::SessionStore::revoke); unsupported unless the store
        /// keeps an owner index.
        fn revoke_now(&self, revoke: Revoke<'_>) -> Result<usize, StoreError> {
            let _ = revoke;
            Err(StoreError::Unsupported(
                "revoke a user's sessions (they live in the clients' cookies)",
            ))
        }
    }
}

pub(crate) use sealed::Immediate;

/// Implements [`SessionStore`] for a store of this crate that never waits: every operation calls
/// the store's [`Immediate`] function, and the hook hands those functions to the layer.
#[cfg_attr(
    not(any(
        feature = "memory-store",
        feature = "cookie-store",
        feature = "aiohttp-compat"
    )),
    allow(unused_macros, reason = "no store that never waits is built")
)]
macro_rules! immediate_store {
    ($store:ty, $kind:expr $(, $format:expr)?) => {
        impl $crate::store::SessionStore for $store {
            fn kind(&self) -> $crate::store::StoreKind {
                $kind
            }

            $(
            fn format(&self, _: &str) -> $crate::store::StoreFormat {
                $format
            }
            )?

            async fn load(
                &self,
                load: $crate::store::Load<'_>,
            ) -> Result<Option<$crate::record::Record>, $crate::store::StoreError> {
                $crate::store::Immediate::load_now(self, load)
            }

            async fn save(
                &self,
                save: $crate::store::Save<'_>,
            ) -> Result<$crate::store::SaveOutcome, $crate::store::StoreError> {
                $crate::store::Immediate::save_now(self, save)
            }

            async fn delete(
                &self,
                delete: $crate::store::Delete<'_>,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::Immediate::delete_now(self, delete)
            }

            async fn list_owned(
                &self,
                list: $crate::store::ListOwned<'_>,
            ) -> Result<$crate::store::OwnedRecords, $crate::store::StoreError> {
                $crate::store::Immediate::list_owned_now(self, list)
            }

            async fn revoke(
                &self,
                revoke: $crate::store::Revoke<'_>,
            ) -> Result<usize, $crate::store::StoreError> {
                $crate::store::Immediate::revoke_now(self, revoke)
            }

            fn __immediate(&self) -> Option<&dyn $crate::store::Immediate> {
                Some(self)
            }
        }
    };
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
    /// The store cannot do this at all: a cookie store cannot list or revoke a user's sessions,
    /// which live in the clients' cookies.
    #[error("this session store cannot {0}")]
    Unsupported(&'static str),
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

#[cfg(feature = "aiohttp-compat")]
#[cfg_attr(docsrs, doc(cfg(feature = "aiohttp-compat")))]
pub mod aiohttp;

#[cfg(feature = "cookie-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie-store")))]
mod cookie;
#[cfg(feature = "redis-store")]
mod deadline;
#[cfg(feature = "memory-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory-store")))]
mod memory;
#[cfg(feature = "postgres-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-store")))]
mod postgres;
#[cfg(feature = "redis-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-store")))]
pub(crate) mod redis;
#[cfg(any(feature = "postgres-store", feature = "sqlite-store"))]
mod sql;
#[cfg(feature = "sqlite-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite-store")))]
mod sqlite;

#[cfg(feature = "cookie-store")]
#[doc(inline)]
pub use cookie::{EncryptedCookieStore, Key, KeyError, SimpleCookieStore};
#[cfg(feature = "memory-store")]
#[doc(inline)]
pub use memory::MemoryStore;
#[cfg(feature = "postgres-store")]
#[doc(inline)]
pub use postgres::PostgresStore;
#[cfg(feature = "redis-store")]
#[doc(inline)]
pub use redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite-store")]
#[doc(inline)]
pub use sqlite::SqliteStore;
