//! A user's sessions: the owner field (`#[session(owner)]`), the per-owner index the server-side
//! stores keep, and the handler API to list a user's sessions and revoke them.
//!
//! A session type marks the field that holds the logged-in user with `#[session(owner)]` (one
//! field, of type `Option<K>` with `K` an integer or a `String`); the derive then implements
//! [`OwnedSession`]. Each save that sets, changes or clears that field, and each new id
//! (`regenerate`, renewal), keeps the store's index of the owner's sessions up to date; requests
//! that leave the field alone cost nothing more. A handler then lists the sessions of the user
//! of its own session ([`TypedSession::user_sessions`]) and revokes one of them by its
//! [`SessionHandle`], all of them, or all but its own.
//!
//! Revocation deletes the session's record, so it is final at once: the next request with a
//! revoked cookie gets a fresh, empty session, and a request of that session that was in flight
//! and saves afterwards does not bring it back (saves never recreate a deleted record).
//!
//! Server-side stores keep the index ([`MemoryStore`](crate::store::MemoryStore), `RedisStore`
//! on one node or a cluster, `PostgresStore` and `SqliteStore`, whose rows carry the owner in a
//! column of its own). A cookie store cannot: the record lives in each client's cookie,
//! and nothing on the server can list or delete it. The owner field still works there as plain
//! data, but every call of this API answers [`StoreError::Unsupported`](crate::store::StoreError::Unsupported): never a silent no-op.
//!
//! # Examples
//!
//! ```
//! use session_runtime::{Session, TypedSession};
//! use session_runtime::owner::SessionHandle;
//!
//! #[derive(Session)]
//! struct Account {
//!     #[session(owner)]
//!     user: Option<u64>,
//!     device: String,
//! }
//!
//! // "Log out everywhere": every session of this user, this one included.
//! async fn logout_everywhere(mut session: TypedSession<Account>) -> String {
//!     let revoked = session.revoke_all_sessions().await.unwrap_or(0);
//!     format!("{revoked} sessions ended")
//! }
//!
//! // After a password change: end every other session of the user.
//! async fn password_changed(session: TypedSession<Account>) -> Result<(), session_runtime::Error> {
//!     session.revoke_other_sessions().await?;
//!     Ok(())
//! }
//!
//! // "Where am I signed in?"
//! async fn devices(session: TypedSession<Account>) -> Result<String, session_runtime::Error> {
//!     let mut out = String::new();
//!     for info in session.user_sessions().await? {
//!         let marker = if info.is_current() { " (this device)" } else { "" };
//!         out += &format!("{} {}{marker}\n", info.handle(), info.data().device);
//!     }
//!     Ok(out)
//! }
//!
//! async fn sign_out_device(session: TypedSession<Account>, handle: SessionHandle) -> &'static str {
//!     match session.revoke_session(&handle).await {
//!         Ok(true) => "signed out",
//!         Ok(false) => "no such session of yours",
//!         Err(_) => "try again later",
//!     }
//! }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use crate::error::Error;
use crate::extract::TypedSession;
use crate::lifecycle::{decode_data, is_live};
use crate::record::{Bytes, Record, SessionId, system_time};
use crate::session::Session;
use crate::shared::Shared;
use crate::store::{ListOwned, Revoke};

/// How far apart the horizons of index entries lie, in milliseconds: one hour. An index entry
/// promises that its session expires before the entry's horizon; a save that moves a session's
/// expiry into a later hour moves the horizon too (once an hour for a session in constant use).
pub(crate) const HORIZON_STEP: u64 = 3_600_000;

/// The horizon of an index entry for a session that expires at `expires_at`: the end of the
/// hour after the one it expires in.
pub(crate) fn horizon(expires_at: u64) -> u64 {
    (expires_at / HORIZON_STEP)
        .saturating_add(2)
        .saturating_mul(HORIZON_STEP)
}

/// Whether a session whose expiry moves from `old` to `new` needs its index entry's horizon
/// moved.
pub(crate) fn passes_horizon(old: u64, new: u64) -> bool {
    new / HORIZON_STEP > old / HORIZON_STEP
}

/// A user key a store can index sessions by: the type `K` of an owner field `Option<K>`.
///
/// Implemented for the integer types and `String`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the key of a session owner",
    label = "the owner field must be `Option<K>` with `K` an integer type or `String`",
    note = "keep the user's id (a number or a string) in the owner field, not the whole user"
)]
pub trait OwnerKey: PartialEq + Send + Sync + 'static {
    /// The key as the store indexes it: the same user gives the same string, different users
    /// different ones.
    fn index_key(&self) -> String;
}

macro_rules! integer_owner_keys {
    ($($ty:ty),*) => {$(
        impl OwnerKey for $ty {
            fn index_key(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

integer_owner_keys!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

impl OwnerKey for String {
    fn index_key(&self) -> String {
        self.clone()
    }
}

/// A session type with an owner field (`#[session(owner)]`); implemented by the derive.
pub trait OwnedSession: Session {
    /// The user key: `K` of the owner field `Option<K>`.
    type Owner: OwnerKey;

    /// The user the session belongs to; `None` while nobody is logged in.
    fn owner(&self) -> Option<&Self::Owner>;
}

/// Names one session of a user in a listing, to revoke it. It is not the session id: it is
/// derived from the id by SHA-256 and cannot be turned back into a cookie that works. It stays
/// the same for as long as the session keeps its id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle {
    /// 43 characters of unpadded base64url.
    bytes: [u8; 43],
}

impl SessionHandle {
    /// The handle of the session `id`.
    pub(crate) fn of(id: &SessionId) -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(id.as_bytes());
        let mut bytes = [0; 43];
        // 32 bytes are 43 characters of unpadded base64: the buffer fits.
        let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(digest, &mut bytes);
        Self { bytes }
    }

    /// Parses a handle as [`SessionHandle::as_str`] writes it; `None` for anything else.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let bytes: [u8; 43] = value.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Self { bytes })
    }

    /// The handle as text: 43 characters of unpadded base64url.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked by `parse`, written by base64).
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionHandle")
            .field(&self.as_str())
            .finish()
    }
}

/// The error of parsing a [`SessionHandle`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a session handle")]
#[non_exhaustive]
pub struct InvalidHandle;

impl FromStr for SessionHandle {
    type Err = InvalidHandle;

    fn from_str(value: &str) -> Result<Self, InvalidHandle> {
        Self::parse(value).ok_or(InvalidHandle)
    }
}

impl serde::Serialize for SessionHandle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SessionHandle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&value).ok_or_else(|| serde::de::Error::custom("not a session handle"))
    }
}

/// One live session of a user, as [`TypedSession::user_sessions`] lists it.
pub struct SessionInfo<T> {
    handle: SessionHandle,
    created: u64,
    updated: u64,
    expires: u64,
    current: bool,
    data: T,
}

impl<T> SessionInfo<T> {
    /// The handle to revoke this session with.
    #[must_use]
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// When the session was created (its first save).
    #[must_use]
    pub fn created(&self) -> SystemTime {
        system_time(self.created)
    }

    /// When the session was last saved or touched.
    #[must_use]
    pub fn updated(&self) -> SystemTime {
        system_time(self.updated)
    }

    /// When the session expires unless it is used again.
    #[must_use]
    pub fn expires(&self) -> SystemTime {
        system_time(self.expires)
    }

    /// Whether this is the session of the request that lists it.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.current
    }

    /// The session's data, as stored.
    #[must_use]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Returns the session's data.
    #[must_use]
    pub fn into_data(self) -> T {
        self.data
    }
}

impl<T> fmt::Debug for SessionInfo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the data: it may be personal.
        f.debug_struct("SessionInfo")
            .field("handle", &self.handle)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .field("expires", &self.expires)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// One listed session that is live and belongs to the owner.
struct Owned<T> {
    info: SessionInfo<T>,
    /// The owner field's stored bytes: a revocation deletes the record only if it still holds
    /// them.
    owner_bytes: Bytes,
}

/// The live sessions of `owner`, and the index entries of sessions that are gone (deleted,
/// expired), which the caller drops from the index.
async fn live_sessions<T: OwnedSession>(
    shared: &Shared,
    owner: &T::Owner,
    key: &str,
    current: Option<&SessionHandle>,
) -> Result<(Vec<Owned<T>>, Vec<SessionHandle>), Error> {
    let now = shared.config.now();
    let listed = shared
        .store
        .list_owned(ListOwned {
            cookie_name: T::COOKIE_NAME,
            owner: key,
            now,
            codec: crate::codec::RecordCodec::of::<T::Codec>(),
        })
        .await?;
    let Some(owner_index) = T::OWNER_INDEX else {
        return Ok((Vec::new(), Vec::new()));
    };
    let owner_name = T::FIELD_NAMES[owner_index];
    let mut live = Vec::with_capacity(listed.len());
    let mut stale = Vec::new();
    for (handle, record) in listed {
        let Some(record) = record else {
            stale.push(handle);
            continue;
        };
        let Some(expires) = is_live::<T>(&record.metadata, &shared.config, now) else {
            stale.push(handle);
            continue;
        };
        if let Some(entry) = owned::<T>(&record, owner, owner_name, handle, expires, current) {
            live.push(entry);
        }
        // A renewal forward, or a session whose owner changed since it was indexed: not
        // listed; its entry goes when its horizon passes.
    }
    live.sort_by_key(|entry| (entry.info.created, entry.info.handle.as_str().to_owned()));
    Ok((live, stale))
}

/// The listing of one live record, if it belongs to `owner` and is not a renewal forward.
fn owned<T: OwnedSession>(
    record: &Record,
    owner: &T::Owner,
    owner_name: &str,
    handle: SessionHandle,
    expires: u64,
    current: Option<&SessionHandle>,
) -> Option<Owned<T>> {
    if record.is_renewed() {
        return None;
    }
    let owner_bytes = record
        .fields
        .iter()
        .find(|(name, _)| name == owner_name)?
        .1
        .clone();
    let data: T = decode_data::<T>(&record.fields);
    if data.owner() != Some(owner) {
        return None;
    }
    Some(Owned {
        info: SessionInfo {
            current: current == Some(&handle),
            handle,
            created: record.metadata.created,
            updated: record.metadata.updated,
            expires,
            data,
        },
        owner_bytes,
    })
}

/// Ends `sessions` of `owner` (each only if it still belongs to them) and drops `stale`
/// entries from the index; returns how many sessions ended.
async fn revoke<T: OwnedSession>(
    shared: &Shared,
    key: &str,
    sessions: &[(SessionHandle, Bytes)],
    stale: &[SessionHandle],
) -> Result<usize, Error> {
    if sessions.is_empty() && stale.is_empty() {
        return Ok(0);
    }
    let Some(owner_index) = T::OWNER_INDEX else {
        return Ok(0);
    };
    Ok(shared
        .store
        .revoke(Revoke {
            cookie_name: T::COOKIE_NAME,
            owner: key,
            field: T::FIELD_NAMES[owner_index],
            sessions,
            stale,
            now: shared.config.now(),
        })
        .await?)
}

/// The sessions a revocation picks out of a listing.
enum Pick<'a> {
    One(&'a SessionHandle),
    All,
    AllBut(Option<&'a SessionHandle>),
}

/// Lists the owner's sessions, then revokes those `pick` names; the stale entries go too.
async fn revoke_picked<T: OwnedSession>(
    shared: &Shared,
    owner: &T::Owner,
    current: Option<&SessionHandle>,
    pick: Pick<'_>,
) -> Result<usize, Error> {
    let key = owner.index_key();
    let (live, stale) = live_sessions::<T>(shared, owner, &key, current).await?;
    let picked: Vec<(SessionHandle, Bytes)> = live
        .into_iter()
        .filter(|entry| match pick {
            Pick::One(handle) => entry.info.handle == *handle,
            Pick::All => true,
            Pick::AllBut(keep) => Some(&entry.info.handle) != keep,
        })
        .map(|entry| (entry.info.handle, entry.owner_bytes))
        .collect();
    revoke::<T>(shared, &key, &picked, &stale).await
}

/// The per-user API, for session types with an owner field.
impl<T: OwnedSession> TypedSession<T> {
    /// Lists the live sessions of this session's user (the owner field as it is now), oldest
    /// first; empty when nobody is logged in. Expired and deleted sessions are never listed (and
    /// their index entries are dropped on the way).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails, or ([`StoreError::Unsupported`](crate::store::StoreError::Unsupported)) cannot list
    /// sessions: a cookie store, or a custom store without an owner index.
    pub async fn user_sessions(&self) -> Result<Vec<SessionInfo<T>>, Error> {
        let Some(owner) = self.data().owner() else {
            return Ok(Vec::new());
        };
        let shared = self.shared();
        let key = owner.index_key();
        let current = self.handle();
        let (live, stale) = live_sessions::<T>(shared, owner, &key, current.as_ref()).await?;
        revoke::<T>(shared, &key, &[], &stale).await?;
        Ok(live.into_iter().map(|entry| entry.info).collect())
    }

    /// Revokes one session of this session's user, named by its handle: `Ok(false)`, and
    /// nothing changes, when the handle is not one of that user's live sessions (another
    /// user's, say). Revoking the current session this way deletes its record; the response
    /// still carries the cookie, which then opens a fresh session: prefer
    /// [`TypedSession::invalidate`] for the current one.
    ///
    /// # Errors
    ///
    /// As [`TypedSession::user_sessions`].
    pub async fn revoke_session(&self, handle: &SessionHandle) -> Result<bool, Error> {
        let Some(owner) = self.data().owner() else {
            return Ok(false);
        };
        let current = self.handle();
        let revoked =
            revoke_picked::<T>(self.shared(), owner, current.as_ref(), Pick::One(handle)).await?;
        Ok(revoked > 0)
    }

    /// Revokes every session of this session's user, this one included ("log out
    /// everywhere"), and invalidates this one, so its cookie is removed with the response.
    /// Returns how many sessions ended.
    ///
    /// # Errors
    ///
    /// As [`TypedSession::user_sessions`]; nothing is invalidated then.
    pub async fn revoke_all_sessions(&mut self) -> Result<usize, Error> {
        let Some(owner) = self.data().owner() else {
            return Ok(0);
        };
        let revoked = revoke_picked::<T>(self.shared(), owner, None, Pick::All).await?;
        self.invalidate();
        Ok(revoked)
    }

    /// Revokes every session of this session's user but this one (after a password change,
    /// say). Returns how many sessions ended.
    ///
    /// # Errors
    ///
    /// As [`TypedSession::user_sessions`].
    pub async fn revoke_other_sessions(&self) -> Result<usize, Error> {
        let Some(owner) = self.data().owner() else {
            return Ok(0);
        };
        let current = self.handle();
        revoke_picked::<T>(
            self.shared(),
            owner,
            current.as_ref(),
            Pick::AllBut(current.as_ref()),
        )
        .await
    }

    /// The handle of this session, once it is stored.
    fn handle(&self) -> Option<SessionHandle> {
        self.id().map(SessionHandle::of)
    }
}
