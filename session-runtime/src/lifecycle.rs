//! The state of one session in one request ([`Inner`]): loaded from the request's cookie, changed
//! through its handle, then planned into the writes a save needs (synchronous: encodes the
//! fields); [`execute`](crate::execute) runs the plan against the store.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use http::HeaderMap;

use crate::codec::RecordCodec;
use crate::config::SessionConfig;
use crate::cookie_header::{CookieAction, find_cookies};
use crate::error::Error;
use crate::lock::SessionGuard;
use crate::owner;
use crate::plan::{Executed, Plan, Saved, Write, WriteOp};
use crate::record::{Bytes, Metadata, RENEWED_FIELD, Record, SessionId};
use crate::rejection::SessionRejection;
use crate::renewal::{self, MAX_FORWARDS};
use crate::session::{FieldDecode, Session, SessionView};
use crate::shared::Shared;
use crate::state::{DirtySet, Fields, State};
use crate::store::{Immediate, Load, StoreError, StoreFormat, StoreKind};

/// How far in the future a session's last save may lie, in milliseconds, before it is refused:
/// servers whose clocks disagree by more than this would otherwise stretch the idle timeout.
const MAX_CLOCK_SKEW: u64 = 60_000;

/// The state of one session type in one request.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent lifecycle flags, each read at save time"
)]
pub(crate) struct Inner<T: Session> {
    fields: T::Fields,
    meta: Metadata,
    /// `set_max_age` changed the metadata.
    meta_dirty: bool,
    /// The id of the stored record (server stores), once one exists.
    id: Option<SessionId>,
    /// No stored record backs this session (never saved, expired, or invalidated).
    is_new: bool,
    /// A stored record to delete at the next save (set by `invalidate`).
    delete: Option<SessionId>,
    /// The client holds a cookie that an invalidation must remove.
    remove_cookie: bool,
    /// `regenerate` was called on a stored session.
    regenerate: bool,
    /// The store asked for the record to be written back (e.g. re-sealed with the primary key).
    rewrite: bool,
    /// The cookie an explicit `save().await` produced, sent unless a later save replaces it.
    cookie: Option<CookieAction>,
    /// This request's turn on the session (see [`SessionConfig::with_serialized_requests`]).
    lock: Option<SessionGuard>,
    /// The stored fields as they were loaded (and as later saves of this request wrote them):
    /// a save writes them back as they are, overlaid with the fields the handler changed.
    loaded: Vec<(Cow<'static, str>, Bytes)>,
}

/// How a load takes the session's request lock.
#[derive(Clone, Copy, Debug)]
enum LockMode {
    /// Not at all (serialization off, a cookie store, or only probing a candidate).
    None,
    /// Waits for it.
    Wait,
    /// Takes it only if it is free.
    Try,
}

impl LockMode {
    /// Takes the request lock of a server-side session as this mode says.
    async fn acquire(
        self,
        shared: &Shared,
        id: Option<&SessionId>,
        cookie_name: &'static str,
    ) -> Option<SessionGuard> {
        if let Ok(guard) = self.acquire_now(shared, id, cookie_name) {
            return guard;
        }
        // Waiting is boxed, so that its state does not weigh on every load's future.
        Some(Box::pin(shared.locks.lock(cookie_name, id?)).await)
    }

    /// [`acquire`](Self::acquire) without waiting: [`WouldWait`] when this mode waits and the
    /// lock is taken.
    fn acquire_now(
        self,
        shared: &Shared,
        id: Option<&SessionId>,
        cookie_name: &'static str,
    ) -> Result<Option<SessionGuard>, WouldWait> {
        let Some(id) = id else {
            return Ok(None);
        };
        match self {
            Self::None => Ok(None),
            Self::Wait => shared
                .locks
                .try_lock(cookie_name, id)
                .map(Some)
                .ok_or(WouldWait),
            Self::Try => {
                let guard = shared.locks.try_lock(cookie_name, id);
                if guard.is_none() {
                    tracing::debug!(
                        cookie = cookie_name,
                        "session in use by another request, and this request holds another session: going on unserialized rather than risk a deadlock"
                    );
                }
                Ok(guard)
            }
        }
    }
}

/// The request lock is taken by another request, and the load waits for it.
struct WouldWait;

/// The cookie's value is no session id of the store's format.
struct MalformedId;

impl<T: Session> Inner<T> {
    pub(crate) fn fresh(now: u64) -> Self {
        Self {
            fields: T::Fields::from_state(State::new(T::new_default())),
            meta: Metadata::new(now),
            meta_dirty: false,
            id: None,
            is_new: true,
            delete: None,
            remove_cookie: false,
            regenerate: false,
            rewrite: false,
            cookie: None,
            lock: None,
            loaded: Vec::new(),
        }
    }

    /// The idle timeout in seconds: the session's own, else the type's, else the layer's.
    pub(crate) fn idle_secs(&self, config: &SessionConfig) -> u64 {
        idle_secs::<T>(&self.meta, config)
    }

    /// Loads the session named by the request's cookie. Anything wrong with the cookie or the
    /// record gives a fresh session; only a store failure is an error.
    ///
    /// Several cookies of this name (a cookie tossed in by a sibling subdomain with a longer
    /// path, say) are each tried, up to [`MAX_CANDIDATES`](crate::cookie_header::MAX_CANDIDATES): exactly one live session among them
    /// is used; two different live sessions are never merged nor picked between, the request
    /// gets a fresh session.
    ///
    /// With serialized requests, the session's request lock is awaited only when `may_wait`,
    /// that is when the request holds no other session (and so no other lock). A request that
    /// already holds one only *tries* this lock, and goes on without it when it is taken: waiting
    /// while holding would let two requests that extract two session types in opposite orders
    /// wait for each other forever. Such a request is then not serialized for this session.
    pub(crate) async fn load(
        headers: &HeaderMap,
        shared: &Shared,
        may_wait: bool,
    ) -> Result<Self, SessionRejection> {
        let config = &shared.config;
        shared
            .validate_for(T::COOKIE_NAME)
            .map_err(SessionRejection::Misconfigured)?;
        let now = config.now();
        let lock = match (config.serialize, may_wait) {
            (false, _) => LockMode::None,
            (true, true) => LockMode::Wait,
            (true, false) => LockMode::Try,
        };
        // In a block of its own: the candidates are then not kept in the future's state while
        // the load below waits.
        let value = {
            let (candidates, count) = find_cookies(headers, T::COOKIE_NAME);
            match &candidates[..count] {
                [] => return Ok(Self::fresh(now)),
                [one] => {
                    if let Some(store) = shared.store.immediate() {
                        if shared.store.kind() == StoreKind::Cookie {
                            return Self::open_sealed(one, store, shared, now);
                        }
                        if let Some(loaded) = Self::load_now(one, store, shared, now, lock) {
                            return loaded;
                        }
                    }
                    *one
                }
                // Rare (a cookie tossed in by a sibling subdomain, say), and its future holds a
                // second load's: boxed, so that every other load's future stays small.
                many => return Box::pin(Self::load_candidates(many, shared, now, lock)).await,
            }
        };
        Ok(Self::load_value(value, shared, now, lock)
            .await?
            .unwrap_or_else(|| Self::fresh(now)))
    }

    /// [`load`](Self::load) with several cookies of this name: the one that holds a live
    /// session, loaded again under `lock`; a fresh session if none or two do.
    async fn load_candidates(
        candidates: &[&str],
        shared: &Shared,
        now: u64,
        lock: LockMode,
    ) -> Result<Self, SessionRejection> {
        let mut live = None;
        for value in candidates {
            if Self::load_value(value, shared, now, LockMode::None)
                .await?
                .is_some()
                && live.replace(*value).is_some()
            {
                tracing::warn!(
                    cookie = T::COOKIE_NAME,
                    "request carries two different live sessions under one cookie name (cookie tossing?); starting a fresh session"
                );
                return Ok(Self::fresh(now));
            }
        }
        let Some(value) = live else {
            return Ok(Self::fresh(now));
        };
        Ok(Self::load_value(value, shared, now, lock)
            .await?
            .unwrap_or_else(|| Self::fresh(now)))
    }

    /// Loads the session in one cookie value: `None` when the value is oversized, malformed,
    /// unknown, does not open or is expired. Takes the session's request lock as `lock` says.
    async fn load_value(
        value: &str,
        shared: &Shared,
        now: u64,
        lock: LockMode,
    ) -> Result<Option<Self>, SessionRejection> {
        let config = &shared.config;
        let format = shared.store.format(T::COOKIE_NAME);
        let Some(unquoted) = Self::cookie_value(value, format, config) else {
            return Ok(None);
        };
        let value = &*unquoted;
        let Ok(mut id) = Self::id_of(value, shared, format) else {
            return Ok(None);
        };
        let mut guard = lock.acquire(shared, id.as_ref(), T::COOKIE_NAME).await;
        // The codec is made where it is used (a constant), not kept across the waits.
        let codec = || RecordCodec::of::<T::Codec>();
        let mut forwards = 0;
        let record = loop {
            // In a block of its own: the record and its forward are then not kept in the
            // future's state while the next id's lock is awaited (a rare path).
            let new = {
                let lookup = id.as_ref().map_or(value, SessionId::as_str);
                let Some(record) = Self::fetch(lookup, shared, now, codec()).await? else {
                    return Ok(None);
                };
                // A renewed-away id: its record forwards to the session's new id for a grace
                // period.
                let forward = id.as_ref().and_then(|old| {
                    let (_, bytes) = record
                        .fields
                        .iter()
                        .find(|(name, _)| name == RENEWED_FIELD)?;
                    Some(renewal::decode(codec(), old, bytes, format.ids()))
                });
                match forward {
                    None => break record,
                    Some(Some((until, new))) if until > now && forwards < MAX_FORWARDS => new,
                    Some(_) => {
                        tracing::debug!(
                            cookie = T::COOKIE_NAME,
                            "renewed session id past its grace period; starting a fresh session"
                        );
                        return Ok(None);
                    }
                }
            };
            forwards += 1;
            id = Some(new);
            // Never wait for the new id's lock while holding the old one's.
            drop(guard.take());
            guard = lock.acquire(shared, id.as_ref(), T::COOKIE_NAME).await;
        };
        let mut inner = Self::from_record(record, id, guard);
        // A client that came by a forward moves to the new id with this response, even when
        // nothing else is written.
        if forwards > 0 {
            inner.cookie = inner.id.as_ref().map(|id| CookieAction::Set {
                value: format.quoting().quote(id.as_str()).into_owned(),
                max_age: inner
                    .meta
                    .expires_at(inner.idle_secs(config), T::ABSOLUTE_MAX_AGE)
                    .saturating_sub(now)
                    .div_ceil(1000),
            });
        }
        Ok(Some(inner))
    }

    /// The session a loaded record holds. Fields that no longer decode start from their default.
    #[expect(
        clippy::inline_always,
        reason = "called by the load's future and by the immediate loads; inlined into each, the future's path stays as short as with one caller"
    )]
    #[inline(always)]
    fn from_record(record: Record, id: Option<SessionId>, lock: Option<SessionGuard>) -> Self {
        let data = decode_data::<T>(&record.fields);
        Self {
            fields: T::Fields::from_state(State::new(data)),
            meta: record.metadata,
            meta_dirty: false,
            id,
            is_new: false,
            delete: None,
            remove_cookie: false,
            regenerate: false,
            rewrite: record.rewrite,
            cookie: None,
            lock,
            loaded: record.fields,
        }
    }

    /// Loads the record named by `value` (an id, or a sealed cookie) and checks its timestamps:
    /// `None` when there is none, it is expired, or it was saved in the future.
    ///
    /// Not an `async fn`, which would keep its arguments in its state beside the store's
    /// future: this one holds only that future (a pointer) and what the check needs, and it is
    /// part of the extractor's future, which axum allocates for every request.
    fn fetch<'a>(
        value: &'a str,
        shared: &'a Shared,
        now: u64,
        codec: RecordCodec,
    ) -> impl Future<Output = Result<Option<Record>, SessionRejection>> + Send + 'a {
        let mut loaded = shared.store.load(Self::load_of(value, now, codec));
        let config = &shared.config;
        std::future::poll_fn(move |cx| {
            Pin::new(&mut loaded)
                .poll(cx)
                .map(|loaded| Self::checked(loaded, config, now))
        })
    }

    /// [`load_value`](Self::load_value) on a server store that never waits (the memory
    /// store): one call of the store's function, without a future. `None` when the load has to
    /// wait after all, and so needs `load_value`: the session's request lock is taken by another
    /// request (`lock` waits for it), or the record forwards a renewed-away id to the session's
    /// new one (`load_value` follows it under the new id's lock).
    fn load_now(
        value: &str,
        store: &dyn Immediate,
        shared: &Shared,
        now: u64,
        lock: LockMode,
    ) -> Option<Result<Self, SessionRejection>> {
        let config = &shared.config;
        let format = shared.store.format(T::COOKIE_NAME);
        let Some(value) = Self::cookie_value(value, format, config) else {
            return Some(Ok(Self::fresh(now)));
        };
        let Ok(id) = Self::id_of(&value, shared, format) else {
            return Some(Ok(Self::fresh(now)));
        };
        let guard = lock.acquire_now(shared, id.as_ref(), T::COOKIE_NAME).ok()?;
        let codec = RecordCodec::of::<T::Codec>();
        // The id's text is the value it was parsed from.
        debug_assert!(
            id.as_ref()
                .is_some_and(|id| id.as_bytes() == value.as_bytes())
        );
        let loaded = store.load_now(Self::load_of(&value, now, codec));
        Some(match Self::checked(loaded, config, now) {
            Ok(Some(record)) if record.is_renewed() => return None,
            Ok(Some(record)) => Ok(Self::from_record(record, id, guard)),
            Ok(None) => Ok(Self::fresh(now)),
            Err(rejection) => Err(rejection),
        })
    }

    /// Opens a session sealed in a cookie, on a cookie store that never waits (this crate's
    /// cookie stores): no id, no request lock, no renewal forwards, so one call of the store's
    /// function, without the future of [`Inner::load_value`].
    fn open_sealed(
        value: &str,
        store: &dyn Immediate,
        shared: &Shared,
        now: u64,
    ) -> Result<Self, SessionRejection> {
        let format = shared.store.format(T::COOKIE_NAME);
        let Some(value) = Self::cookie_value(value, format, &shared.config) else {
            return Ok(Self::fresh(now));
        };
        let codec = RecordCodec::of::<T::Codec>();
        let loaded = store.load_now(Self::load_of(&value, now, codec));
        Ok(match Self::checked(loaded, &shared.config, now)? {
            Some(record) => Self::from_record(record, None, None),
            None => Self::fresh(now),
        })
    }

    /// The session id in a cookie's (unquoted) value on a server store, `None` on a cookie
    /// store (the value is the sealed session).
    #[expect(
        clippy::inline_always,
        reason = "called by the load's future and by the immediate loads; inlined into each, the future's path stays as short as with one caller"
    )]
    #[inline(always)]
    fn id_of(
        value: &str,
        shared: &Shared,
        format: StoreFormat,
    ) -> Result<Option<SessionId>, MalformedId> {
        match shared.store.kind() {
            StoreKind::Server => {
                let Some(id) = format.ids().parse(value) else {
                    tracing::debug!(
                        cookie = T::COOKIE_NAME,
                        "malformed session id; starting a fresh session"
                    );
                    return Err(MalformedId);
                };
                Ok(Some(id))
            }
            StoreKind::Cookie => Ok(None),
        }
    }

    /// The cookie's value as the store reads it (unquoted), `None` when it is over the size
    /// limit.
    #[expect(
        clippy::inline_always,
        reason = "called by the load's future and by the immediate loads; inlined into each, the future's path stays as short as with one caller"
    )]
    #[inline(always)]
    fn cookie_value<'v>(
        value: &'v str,
        format: StoreFormat,
        config: &SessionConfig,
    ) -> Option<Cow<'v, str>> {
        if T::COOKIE_NAME.len() + value.len() > config.max_cookie_size {
            tracing::debug!(
                cookie = T::COOKIE_NAME,
                size = value.len(),
                "session cookie over the size limit; starting a fresh session"
            );
            return None;
        }
        Some(format.quoting().unquote(value))
    }

    /// The store's load of the record named by `value`, with every name `T` reads.
    fn load_of(value: &str, now: u64, codec: RecordCodec) -> Load<'_> {
        Load {
            cookie_name: T::COOKIE_NAME,
            value,
            now,
            codec,
            names: T::LOAD_NAMES,
        }
    }

    /// What a load gave, checked: `None` when there is no record, it is expired, or it was
    /// saved in the future; a store failure is the rejection.
    #[expect(
        clippy::inline_always,
        reason = "called by the load's future and by the immediate loads; inlined into each, the future's path stays as short as with one caller"
    )]
    #[inline(always)]
    fn checked(
        loaded: Result<Option<Record>, StoreError>,
        config: &SessionConfig,
        now: u64,
    ) -> Result<Option<Record>, SessionRejection> {
        let record = match loaded {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::debug!(
                    cookie = T::COOKIE_NAME,
                    "unknown session; starting a fresh session"
                );
                return Ok(None);
            }
            Err(error) => {
                tracing::error!(
                    cookie = T::COOKIE_NAME,
                    error = &error as &dyn std::error::Error,
                    "session store failed on load"
                );
                return Err(SessionRejection::StoreUnavailable(error));
            }
        };
        if is_live::<T>(&record.metadata, config, now).is_none() {
            tracing::debug!(
                cookie = T::COOKIE_NAME,
                "session expired or saved in the future; starting a fresh session"
            );
            return Ok(None);
        }
        Ok(Some(record))
    }

    pub(crate) fn is_dirty(&self) -> bool {
        !self.fields.state().dirty().is_empty() || self.meta_dirty
    }

    pub(crate) fn invalidate(&mut self, now: u64) {
        let had_record = !self.is_new;
        let delete = self.id.take().or(self.delete.take());
        let cookie_set = matches!(self.cookie, Some(CookieAction::Set { .. }));
        let lock = self.lock.take();
        *self = Self::fresh(now);
        self.lock = lock;
        self.delete = delete;
        self.remove_cookie = had_record || cookie_set;
    }

    /// The companion type that holds the data, its dirty bits and the accessors.
    pub(crate) fn fields(&self) -> &T::Fields {
        &self.fields
    }

    /// The companion type, for changing the data.
    pub(crate) fn fields_mut(&mut self) -> &mut T::Fields {
        &mut self.fields
    }

    /// The id of the stored record (server stores), once one exists.
    pub(crate) fn id(&self) -> Option<&SessionId> {
        self.id.as_ref()
    }

    /// Whether no stored record backs this session (never saved, expired, or invalidated).
    pub(crate) fn is_new(&self) -> bool {
        self.is_new
    }

    /// When the session was created, Unix milliseconds.
    pub(crate) fn created(&self) -> u64 {
        self.meta.created
    }

    /// Sets the per-session idle timeout, in seconds.
    pub(crate) fn set_max_age(&mut self, secs: u64) {
        self.meta.max_age = Some(secs);
        self.meta_dirty = true;
    }

    /// Asks for a new id at the next save, if a stored record backs the session.
    pub(crate) fn regenerate(&mut self) {
        if !self.is_new {
            self.regenerate = true;
        }
    }

    /// Whether a save has anything to do: changed data, or a delete, a regeneration or a cookie
    /// removal asked for.
    pub(crate) fn has_writes(&self) -> bool {
        self.is_dirty() || self.delete.is_some() || self.regenerate || self.remove_cookie
    }

    /// Forgets every write asked for since the last successful save, keeping the data as it is
    /// now and the cookie that save produced: after a failed `save().await`, the layer must not
    /// retry what the handler was told had failed.
    pub(crate) fn discard_writes(&mut self) {
        self.fields.state_mut().dirty_mut().clear();
        self.meta_dirty = false;
        self.regenerate = false;
        self.rewrite = false;
        self.delete = None;
        self.remove_cookie = false;
    }

    /// Encodes what must be written. Leaves `self` unchanged; [`Inner::applied`] records the
    /// result of a successful execution.
    pub(crate) fn plan(&self, shared: &Shared) -> Result<Plan, Error> {
        let config = &shared.config;
        let now = config.now();
        let server = shared.store.kind() == StoreKind::Server;
        let whole = shared.store.format(T::COOKIE_NAME).writes_whole_records();
        let dirty = self.is_dirty();
        let touch = !self.is_new
            && config
                .rolling
                .is_some_and(|after| now.saturating_sub(self.meta.updated) >= after);
        let renew = server
            && !whole
            && !self.is_new
            && config
                .renewal
                .is_some_and(|renewal| renewal.due(self.meta.created, self.meta.updated, now));
        let op = if self.is_new {
            dirty.then_some(if server {
                WriteOp::Create
            } else {
                WriteOp::Seal
            })
        } else if !server {
            (dirty || self.regenerate || self.rewrite || touch).then_some(WriteOp::Seal)
        } else if let Some(id) = self.id.clone().filter(|_| self.regenerate) {
            Some(WriteOp::Regenerate(id))
        } else if let Some(id) = self.id.clone().filter(|_| renew) {
            Some(WriteOp::Renew(id))
        } else if dirty || self.rewrite {
            self.id.clone().map(WriteOp::Update)
        } else if touch && whole {
            // The record's timestamps live inside its one value: a touch rewrites it.
            self.id.clone().map(WriteOp::Update)
        } else if touch {
            self.id.clone().map(WriteOp::Touch)
        } else {
            None
        };
        let write = op
            .map(|op| {
                let state = self.fields.state();
                // What the save carries. A new session: every declared field. A loaded one:
                // the fields the handler changed; and, where the store writes the record whole
                // (a cookie, a whole-record format, a new id), the loaded fields as they
                // are beside them, so nothing the handler did not touch is lost or added.
                let purge = !T::KEEP_UNDECLARED
                    && matches!(
                        op,
                        WriteOp::Update(_) | WriteOp::Regenerate(_) | WriteOp::Renew(_)
                    );
                let whole_write = !matches!(op, WriteOp::Update(_)) || self.rewrite || whole;
                let (fields, kept) = match op {
                    WriteOp::Touch(_) => (Vec::new(), Vec::new()),
                    _ if self.is_new => (self.encode(|_| true)?, Vec::new()),
                    _ => {
                        let fields = self.encode(|index| state.dirty().contains(index))?;
                        let kept = if whole_write {
                            self.kept(&fields)
                        } else {
                            Vec::new()
                        };
                        (fields, kept)
                    }
                };
                let metadata = Metadata {
                    updated: now,
                    ..self.meta
                };
                let expires_at = metadata.expires_at(self.idle_secs(config), T::ABSOLUTE_MAX_AGE);
                let owner = self.owner_entry(&op, &fields, expires_at, config);
                Ok::<_, Error>(Box::new(Write {
                    op,
                    metadata,
                    fields,
                    kept,
                    purge: purge.then_some(T::LOAD_NAMES),
                    expires_at,
                    codec: RecordCodec::of::<T::Codec>(),
                    owner,
                }))
            })
            .transpose()?;
        Ok(Plan {
            cookie_name: T::COOKIE_NAME,
            codec: RecordCodec::of::<T::Codec>(),
            now,
            delete: self.delete.clone(),
            write,
            remove_cookie: self.remove_cookie,
            previous: self.cookie.clone(),
        })
    }

    /// The per-owner index entry a write keeps, for a type with an owner field (see
    /// [`OwnerEntry`](crate::store::OwnerEntry)): under a new id, the owner if there is one; on
    /// an update, the owner (or none) when it changed, and when the expiry moves past the
    /// entry's horizon. `None` otherwise: a request that leaves the owner alone costs nothing.
    fn owner_entry(
        &self,
        op: &WriteOp,
        fields: &[(&'static str, Vec<u8>)],
        expires_at: u64,
        config: &SessionConfig,
    ) -> Option<(Option<String>, u64)> {
        let index = T::OWNER_INDEX?;
        let name = T::FIELD_NAMES.get(index)?;
        let data = self.fields.state().data();
        let until = owner::horizon(expires_at);
        match op {
            WriteOp::Seal => None,
            WriteOp::Create | WriteOp::Regenerate(_) | WriteOp::Renew(_) => {
                data.owner_key().map(|key| (Some(key), until))
            }
            WriteOp::Update(_) | WriteOp::Touch(_) => {
                let loaded = self
                    .loaded
                    .iter()
                    .rev()
                    .find(|(loaded, _)| loaded == name)
                    .map(|(_, value)| &value[..]);
                let changed = fields
                    .iter()
                    .find(|(encoded, _)| encoded == name)
                    .is_some_and(|(_, value)| loaded != Some(&value[..]));
                if changed {
                    return Some((data.owner_key(), until));
                }
                let old_expiry = self
                    .meta
                    .expires_at(self.idle_secs(config), T::ABSOLUTE_MAX_AGE);
                (self.meta_dirty || owner::passes_horizon(old_expiry, expires_at))
                    .then(|| data.owner_key().map(|key| (Some(key), until)))
                    .flatten()
            }
        }
    }

    /// Encodes the stored fields whose index `include` accepts.
    fn encode(
        &self,
        include: impl Fn(usize) -> bool,
    ) -> Result<Vec<(&'static str, Vec<u8>)>, Error> {
        let data = self.fields.state().data();
        (0..T::FIELD_NAMES.len())
            .filter(|index| include(*index))
            .map(|index| Ok((T::FIELD_NAMES[index], data.encode_field(index)?)))
            .collect()
    }

    /// The loaded fields a whole-record save carries as they are: all but those it encodes
    /// anew, and, for a type that purges what it does not declare, only declared ones.
    fn kept(&self, fields: &[(&'static str, Vec<u8>)]) -> Vec<(Cow<'static, str>, Bytes)> {
        self.loaded
            .iter()
            .filter(|(name, _)| !fields.iter().any(|(encoded, _)| *encoded == &**name))
            .filter_map(|(name, value)| {
                // A name the type reads is carried as its `&'static` name: no copy of the name.
                let name = match T::LOAD_NAMES.iter().find(|known| **known == &**name) {
                    Some(known) => Cow::Borrowed(*known),
                    None if T::KEEP_UNDECLARED => name.clone(),
                    None => return None,
                };
                Some((name, value.clone()))
            })
            .collect()
    }

    /// Records a successful execution of a plan made from `self`.
    pub(crate) fn applied(&mut self, executed: Executed) {
        self.delete = None;
        self.remove_cookie = false;
        self.regenerate = false;
        self.rewrite = false;
        self.meta_dirty = false;
        self.fields.state_mut().dirty_mut().clear();
        if let Some(metadata) = executed.metadata {
            self.meta = metadata;
        }
        if executed.purged {
            self.loaded
                .retain(|(name, _)| T::LOAD_NAMES.contains(&&**name));
        }
        for (name, value) in executed.written {
            // Every stored copy of the name goes (a record may hold one twice), then the value
            // just written.
            self.loaded.retain(|(loaded, _)| loaded != name);
            self.loaded.push((Cow::Borrowed(name), Bytes::from(value)));
        }
        match executed.saved {
            Saved::Stored(id) => {
                self.is_new = false;
                self.id = id;
            }
            Saved::Missing => {
                self.is_new = true;
                self.id = None;
                self.loaded.clear();
            }
            Saved::Nothing => {}
        }
        self.cookie = executed.cookie;
    }
}

/// The session data a record's fields hold. Fields that no longer decode start from their
/// default, with a warning.
#[inline]
pub(crate) fn decode_data<T: Session>(fields: &[(Cow<'static, str>, Bytes)]) -> T {
    let mut data = T::new_default();
    // A type with aliases decodes the names that are not current ones first, so that where a
    // record holds a field under both names the current name wins, whatever order the store
    // keeps them in (an aiohttp envelope comes back sorted by name).
    let has_aliases = T::LOAD_NAMES.len() != T::FIELD_NAMES.len();
    let passes: &[Option<bool>] = if has_aliases {
        &[Some(false), Some(true)]
    } else {
        &[None]
    };
    // Where the next field is in `LOAD_NAMES` if the record keeps the type's order, as a
    // store that loads by name and a record the runtime wrote do: then each field is found
    // with one comparison (of pointers, for the names the runtime wrote).
    let mut next = 0;
    for current in passes {
        for (name, bytes) in fields {
            if current.is_some_and(|current| T::FIELD_NAMES.contains(&&**name) != current) {
                continue;
            }
            let position = match T::LOAD_NAMES.get(next) {
                Some(expected) if same_name(expected, name) => Some(next),
                _ => T::LOAD_NAMES
                    .iter()
                    .position(|known| same_name(known, name)),
            };
            let Some(position) = position else {
                continue;
            };
            next = position + 1;
            if let FieldDecode::Failed(error) = data.decode_loaded(position, bytes) {
                tracing::warn!(
                    cookie = T::COOKIE_NAME,
                    field = &**name,
                    error = &error as &dyn std::error::Error,
                    "stored session field no longer decodes; it starts from its default"
                );
            }
        }
    }
    data
}

/// Whether two field names are equal, first by address: a name the runtime stored is one of
/// the type's own `&'static str`s.
#[inline]
fn same_name(known: &str, name: &str) -> bool {
    std::ptr::eq(known, name) || known == name
}

/// What a view's session holds as the type it views: the data, its changed fields, and the
/// stored fields as loaded (see [`Inner::root_parts`]).
pub(crate) struct RootParts<R> {
    data: R,
    dirty: DirtySet,
    loaded: Vec<(Cow<'static, str>, Bytes)>,
}

impl<V: SessionView> Inner<V> {
    /// The session as the type `V` views, the view's changes overlaid: for a stored session on
    /// a server store, that type's fields are loaded again by id (under the request lock this
    /// session holds); otherwise they come from what the view loaded, which is the whole record
    /// (a cookie) or nothing (a new session). Changes nothing, so that on an error the view's
    /// session is saved as it is.
    pub(crate) async fn root_parts(&self, shared: &Shared) -> Result<RootParts<V::Root>, Error> {
        let refetched = match (&self.id, shared.store.kind()) {
            (Some(id), StoreKind::Server) if !self.is_new => {
                let load = Load {
                    cookie_name: V::COOKIE_NAME,
                    value: id.as_str(),
                    now: shared.config.now(),
                    codec: RecordCodec::of::<V::Codec>(),
                    names: V::Root::LOAD_NAMES,
                };
                // Gone meanwhile (revoked, say): what the view loaded, which its save will not
                // bring back.
                shared.store.load(load).await?.map(|record| record.fields)
            }
            _ => None,
        };
        let loaded = refetched.unwrap_or_else(|| self.loaded.clone());
        let mut data = decode_data::<V::Root>(&loaded);
        let mut dirty = DirtySet::default();
        let state = self.fields.state();
        for (index, name) in V::FIELD_NAMES.iter().enumerate() {
            if !state.dirty().contains(index) {
                continue;
            }
            let bytes = state.data().encode_field(index)?;
            if let FieldDecode::Failed(error) = data.decode_field(name, &bytes) {
                return Err(Error::Codec(error));
            }
            if let Some(root_index) = V::Root::FIELD_NAMES.iter().position(|root| root == name) {
                dirty.insert(root_index);
            }
        }
        Ok(RootParts {
            data,
            dirty,
            loaded,
        })
    }

    /// This session as the type `V` views, from [`Inner::root_parts`]: the same id, metadata,
    /// pending operations and request lock.
    pub(crate) fn into_root(self, parts: RootParts<V::Root>) -> Inner<V::Root> {
        let mut state = State::new(parts.data);
        *state.dirty_mut() = parts.dirty;
        Inner {
            fields: <V::Root as Session>::Fields::from_state(state),
            meta: self.meta,
            meta_dirty: self.meta_dirty,
            id: self.id,
            is_new: self.is_new,
            delete: self.delete,
            remove_cookie: self.remove_cookie,
            regenerate: self.regenerate,
            rewrite: self.rewrite,
            cookie: self.cookie,
            lock: self.lock,
            loaded: parts.loaded,
        }
    }
}

/// When a session with metadata `meta` expires, if it is live at `now`: `None` when it expired,
/// or its timestamps are inconsistent or lie in the future (a clock off by more than
/// [`MAX_CLOCK_SKEW`]).
pub(crate) fn is_live<T: Session>(
    meta: &Metadata,
    config: &SessionConfig,
    now: u64,
) -> Option<u64> {
    let expires_at = meta.expires_at(idle_secs::<T>(meta, config), T::ABSOLUTE_MAX_AGE);
    (meta.created <= meta.updated
        && meta.updated <= now.saturating_add(MAX_CLOCK_SKEW)
        && expires_at > now)
        .then_some(expires_at)
}

/// The idle timeout in seconds of a session of type `T` with metadata `meta`: its own
/// (`set_max_age`), else the type's `max_age`, else the layer's default.
fn idle_secs<T: Session>(meta: &Metadata, config: &SessionConfig) -> u64 {
    meta.max_age
        .or(T::MAX_AGE)
        .unwrap_or(config.default_max_age)
}
