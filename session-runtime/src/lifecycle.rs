//! The life of one session in one request: load, then plan the writes (synchronous: encodes the
//! fields), then execute them against the store (asynchronous, type-erased).

use std::any::TypeId;
use std::borrow::Cow;
use std::fmt::Write as _;

use http::HeaderMap;
use http::header::COOKIE;

use crate::config::{SameSite, SessionConfig};
use crate::error::Error;
use crate::extract::SessionRejection;
use crate::lock::SessionGuard;
use crate::private::{Fields, State};
use crate::renewal;
use crate::service::Shared;
use crate::session::{FieldDecode, Metadata, Record, RecordRef, Session, SessionId};
use crate::store::RENEWED_FIELD;
use crate::store::{Delete, Load, RecordCodec, Save, SaveOp, SaveOutcome, StoreKind};

/// How many fresh ids a create tries before giving up (a collision of 256-bit ids means a broken
/// random source or a broken store, not bad luck).
const CREATE_ATTEMPTS: usize = 3;

/// How far in the future a session's last save may lie, in milliseconds, before it is refused:
/// servers whose clocks disagree by more than this would otherwise stretch the idle timeout.
const MAX_CLOCK_SKEW: u64 = 60_000;

/// How many cookies of one name a request may carry that are tried as the session.
const MAX_CANDIDATES: usize = 4;

/// How many renewal forwards a load follows (two renewals within one grace period).
const MAX_FORWARDS: usize = 2;

/// The state of one session type in one request.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent lifecycle flags, each read at save time"
)]
pub(crate) struct Inner<T: Session> {
    pub(crate) fields: T::Fields,
    pub(crate) meta: Metadata,
    /// `set_max_age` changed the metadata.
    pub(crate) meta_dirty: bool,
    /// The id of the stored record (server stores), once one exists.
    pub(crate) id: Option<SessionId>,
    /// No stored record backs this session (never saved, expired, or invalidated).
    pub(crate) is_new: bool,
    /// A stored record to delete at the next save (set by `invalidate`).
    pub(crate) delete: Option<SessionId>,
    /// The client holds a cookie that an invalidation must remove.
    pub(crate) remove_cookie: bool,
    /// `regenerate` was called on a stored session.
    pub(crate) regenerate: bool,
    /// The store asked for the record to be written back (e.g. re-sealed with the primary key).
    pub(crate) rewrite: bool,
    /// The cookie an explicit `save().await` produced, sent unless a later save replaces it.
    pub(crate) cookie: Option<CookieAction>,
    /// This request's turn on the session (see [`SessionConfig::with_serialized_requests`]).
    pub(crate) lock: Option<SessionGuard>,
}

/// What to do with the client's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieAction {
    Set { value: String, max_age: u64 },
    Remove,
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
        session_type: TypeId,
        id: Option<&SessionId>,
        cookie_name: &str,
    ) -> Option<SessionGuard> {
        let id = id?;
        match self {
            Self::None => None,
            Self::Wait => Some(shared.locks.lock(session_type, id).await),
            Self::Try => {
                let guard = shared.locks.try_lock(session_type, id);
                if guard.is_none() {
                    tracing::debug!(
                        cookie = cookie_name,
                        "session in use by another request, and this request holds another session: going on unserialized rather than risk a deadlock"
                    );
                }
                guard
            }
        }
    }
}

/// Finds a cookie by name in the request's `Cookie` headers without allocating. The first match
/// wins (browsers send the most specific path first); quotes around the value are dropped.
#[allow(
    dead_code,
    reason = "the layer uses `find_cookies`; this stays for the unit tests and the benchmarks"
)]
pub(crate) fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_values(headers, name).next()
}

/// The values of the cookies named `name` in the request's `Cookie` headers, in order, with
/// surrounding quotes dropped; headers that are not visible ASCII are skipped.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

/// Finds the distinct values of the cookies named `name`, in order, at most [`MAX_CANDIDATES`]
/// of them, without allocating.
pub(crate) fn find_cookies<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> ([&'a str; MAX_CANDIDATES], usize) {
    let mut found = [""; MAX_CANDIDATES];
    let mut count = 0;
    for value in cookie_values(headers, name) {
        if found[..count].contains(&value) {
            continue;
        }
        found[count] = value;
        count += 1;
        if count == MAX_CANDIDATES {
            break;
        }
    }
    (found, count)
}

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
        }
    }

    pub(crate) fn idle_secs(&self, config: &SessionConfig) -> u64 {
        self.meta
            .max_age
            .or(T::MAX_AGE)
            .unwrap_or(config.default_max_age)
    }

    /// Loads the session named by the request's cookie. Anything wrong with the cookie or the
    /// record gives a fresh session; only a store failure is an error.
    ///
    /// Several cookies of this name (a cookie tossed in by a sibling subdomain with a longer
    /// path, say) are each tried, up to [`MAX_CANDIDATES`]: exactly one live session among them
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
        let (candidates, count) = find_cookies(headers, T::COOKIE_NAME);
        let value = match &candidates[..count] {
            [] => return Ok(Self::fresh(now)),
            [one] => *one,
            many => {
                let mut live = None;
                for value in many {
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
                value
            }
        };
        let lock = match (config.serialize, may_wait) {
            (false, _) => LockMode::None,
            (true, true) => LockMode::Wait,
            (true, false) => LockMode::Try,
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
        if T::COOKIE_NAME.len() + value.len() > config.max_cookie_size {
            tracing::debug!(
                cookie = T::COOKIE_NAME,
                size = value.len(),
                "session cookie over the size limit; starting a fresh session"
            );
            return Ok(None);
        }
        let format = shared.store.format(T::COOKIE_NAME);
        let unquoted = format.quoting().unquote(value);
        let value = &*unquoted;
        let mut id = match shared.store.kind() {
            StoreKind::Server => {
                let Some(id) = format.ids().parse(value) else {
                    tracing::debug!(
                        cookie = T::COOKIE_NAME,
                        "malformed session id; starting a fresh session"
                    );
                    return Ok(None);
                };
                Some(id)
            }
            StoreKind::Cookie => None,
        };
        let mut guard = lock
            .acquire(shared, TypeId::of::<T>(), id.as_ref(), T::COOKIE_NAME)
            .await;
        let codec = RecordCodec::of::<T::Codec>();
        let mut forwards = 0;
        let record = loop {
            let lookup = id.as_ref().map_or(value, SessionId::as_str);
            let Some(record) = Self::fetch(lookup, shared, now, codec).await? else {
                return Ok(None);
            };
            // A renewed-away id: its record forwards to the session's new id for a grace period.
            let forward = id.as_ref().and_then(|old| {
                let (_, bytes) = record
                    .fields
                    .iter()
                    .find(|(name, _)| name == RENEWED_FIELD)?;
                Some(renewal::decode(codec, old, bytes, format.ids()))
            });
            match forward {
                None => break record,
                Some(Some((until, new))) if until > now && forwards < MAX_FORWARDS => {
                    forwards += 1;
                    id = Some(new);
                    // Never wait for the new id's lock while holding the old one's.
                    drop(guard.take());
                    guard = lock
                        .acquire(shared, TypeId::of::<T>(), id.as_ref(), T::COOKIE_NAME)
                        .await;
                }
                Some(_) => {
                    tracing::debug!(
                        cookie = T::COOKIE_NAME,
                        "renewed session id past its grace period; starting a fresh session"
                    );
                    return Ok(None);
                }
            }
        };
        let mut inner = Self::from_record(&record, id, guard);
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
    fn from_record(record: &Record, id: Option<SessionId>, lock: Option<SessionGuard>) -> Self {
        let mut data = T::new_default();
        for (name, bytes) in &record.fields {
            if let FieldDecode::Failed(error) = data.decode_field(name, bytes) {
                tracing::warn!(
                    cookie = T::COOKIE_NAME,
                    field = &**name,
                    error = &error as &dyn std::error::Error,
                    "stored session field no longer decodes; it starts from its default"
                );
            }
        }
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
        }
    }

    /// Loads the record named by `value` (an id, or a sealed cookie) and checks its timestamps:
    /// `None` when there is none, it is expired, or it was saved in the future.
    async fn fetch(
        value: &str,
        shared: &Shared,
        now: u64,
        codec: RecordCodec,
    ) -> Result<Option<Record>, SessionRejection> {
        let load = Load {
            cookie_name: T::COOKIE_NAME,
            value,
            now,
            codec,
            names: T::LOAD_NAMES,
        };
        let record = match shared.store.load(load).await {
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
        let meta = record.metadata;
        let idle = meta
            .max_age
            .or(T::MAX_AGE)
            .unwrap_or(shared.config.default_max_age);
        if meta.created > meta.updated
            || meta.updated > now.saturating_add(MAX_CLOCK_SKEW)
            || meta.expires_at(idle, T::ABSOLUTE_MAX_AGE) <= now
        {
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
                let partial = matches!(op, WriteOp::Update(_)) && !self.rewrite && !whole;
                let fields = match op {
                    WriteOp::Touch(_) => Vec::new(),
                    _ => (0..T::FIELD_NAMES.len())
                        .filter(|index| !partial || state.dirty().contains(*index))
                        .map(|index| Ok((T::FIELD_NAMES[index], state.data().encode_field(index)?)))
                        .collect::<Result<Vec<_>, Error>>()?,
                };
                // A renewal that loses a race re-applies only the changed fields (see `execute`).
                let dirty = if matches!(op, WriteOp::Renew(_)) {
                    (0..T::FIELD_NAMES.len())
                        .filter(|index| state.dirty().contains(*index))
                        .map(|index| T::FIELD_NAMES[index])
                        .collect()
                } else {
                    Vec::new()
                };
                let metadata = Metadata {
                    updated: now,
                    ..self.meta
                };
                let expires_at = metadata.expires_at(self.idle_secs(config), T::ABSOLUTE_MAX_AGE);
                Ok::<_, Error>(Write {
                    op,
                    metadata,
                    fields,
                    dirty,
                    expires_at,
                    codec: RecordCodec::of::<T::Codec>(),
                })
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
        match executed.saved {
            Saved::Stored(id) => {
                self.is_new = false;
                self.id = id;
            }
            Saved::Missing => {
                self.is_new = true;
                self.id = None;
            }
            Saved::Nothing => {}
        }
        self.cookie = executed.cookie;
    }
}

/// The writes one session needs at the end of a request (or on `save().await`).
pub(crate) struct Plan {
    cookie_name: &'static str,
    codec: RecordCodec,
    now: u64,
    delete: Option<SessionId>,
    write: Option<Write>,
    remove_cookie: bool,
    previous: Option<CookieAction>,
}

struct Write {
    op: WriteOp,
    metadata: Metadata,
    fields: Vec<(&'static str, Vec<u8>)>,
    /// For a renewal: the names of the changed fields.
    dirty: Vec<&'static str>,
    expires_at: u64,
    codec: RecordCodec,
}

impl Write {
    fn save<'a>(&'a self, cookie_name: &'a str, op: SaveOp<'a>, now: u64) -> Save<'a> {
        self.save_fields(cookie_name, op, now, &self.fields)
    }

    /// A save of this write's metadata and expiry with other fields.
    fn save_fields<'a>(
        &'a self,
        cookie_name: &'a str,
        op: SaveOp<'a>,
        now: u64,
        fields: &'a [(&'static str, Vec<u8>)],
    ) -> Save<'a> {
        Save {
            cookie_name,
            op,
            record: RecordRef {
                metadata: &self.metadata,
                fields,
            },
            expires_at: self.expires_at,
            now,
            codec: self.codec,
        }
    }
}

enum WriteOp {
    Create,
    Update(SessionId),
    Touch(SessionId),
    Regenerate(SessionId),
    /// A periodic renewal: the whole record under a new id, then a forward in the old record.
    Renew(SessionId),
    Seal,
}

impl Plan {
    /// Whether executing this plan touches the store or the cookie at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.delete.is_none() && self.write.is_none() && !self.remove_cookie
    }

    /// The cookie to send if nothing is executed.
    pub(crate) fn previous_cookie(&self) -> Option<&CookieAction> {
        self.previous.as_ref()
    }

    pub(crate) fn cookie_name(&self) -> &'static str {
        self.cookie_name
    }
}

pub(crate) enum Saved {
    Stored(Option<SessionId>),
    Missing,
    Nothing,
}

/// The result of executing a plan.
pub(crate) struct Executed {
    pub(crate) cookie: Option<CookieAction>,
    saved: Saved,
    metadata: Option<Metadata>,
}

/// Runs a plan against the store.
pub(crate) async fn execute(plan: Plan, shared: &Shared) -> Result<Executed, Error> {
    let store = &*shared.store;
    let name = plan.cookie_name;
    let format = store.format(name);
    // Stores that write single fields can hold renewal forwards (see `SessionConfig::with_renewal`).
    let forwards = shared.config.renewal.is_some() && !format.writes_whole_records();
    if let Some(id) = &plan.delete {
        delete(id, name, plan.codec, forwards, shared, plan.now).await?;
    }
    let Some(write) = plan.write else {
        return Ok(Executed {
            cookie: if plan.remove_cookie {
                Some(CookieAction::Remove)
            } else {
                plan.previous
            },
            saved: Saved::Nothing,
            metadata: None,
        });
    };
    let (outcome, id) = match &write.op {
        WriteOp::Create | WriteOp::Regenerate(_) | WriteOp::Renew(_) => {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let new = format.ids().generate().map_err(Error::Random)?;
                let op = match &write.op {
                    WriteOp::Regenerate(old) => SaveOp::Regenerate { old, new: &new },
                    _ => SaveOp::Create { id: &new },
                };
                match store.save(write.save(name, op, plan.now)).await? {
                    SaveOutcome::IdTaken if attempt < CREATE_ATTEMPTS => {}
                    SaveOutcome::IdTaken => return Err(Error::IdCollision),
                    outcome => break (outcome, Some(new)),
                }
            }
        }
        WriteOp::Update(id) => (
            store
                .save(write.save(name, SaveOp::Update { id }, plan.now))
                .await?,
            Some(id.clone()),
        ),
        WriteOp::Touch(id) => (
            store
                .save(write.save(name, SaveOp::Touch { id }, plan.now))
                .await?,
            Some(id.clone()),
        ),
        WriteOp::Seal => (
            store.save(write.save(name, SaveOp::Seal, plan.now)).await?,
            None,
        ),
    };
    let (outcome, id) = if forwards {
        follow_renewal(&write, name, outcome, id, plan.now, shared).await?
    } else {
        (outcome, id)
    };
    match outcome {
        SaveOutcome::Saved(value) => {
            // Quoted as the store's cookies are (Python's `http.cookies` for aiohttp ones).
            let value = match format.quoting().quote(&value) {
                Cow::Borrowed(_) => value,
                Cow::Owned(quoted) => quoted,
            };
            let size = name.len() + value.len();
            if size > shared.config.max_cookie_size {
                return Err(Error::CookieTooLarge {
                    size,
                    limit: shared.config.max_cookie_size,
                });
            }
            let max_age = write.expires_at.saturating_sub(plan.now).div_ceil(1000);
            Ok(Executed {
                cookie: Some(CookieAction::Set { value, max_age }),
                saved: Saved::Stored(id),
                metadata: Some(write.metadata),
            })
        }
        SaveOutcome::Missing => {
            tracing::warn!(
                cookie = name,
                "session record expired or was deleted during the request; not recreating it"
            );
            Ok(Executed {
                cookie: None,
                saved: Saved::Missing,
                metadata: None,
            })
        }
        SaveOutcome::IdTaken => Err(Error::IdCollision),
    }
}

/// The second half of a renewal, once the record is stored under `new`: turns the record under
/// `old` into a forward to `new` that lasts the grace period. Returns `false` when the old record
/// is gone (a logout elsewhere during this request) or already forwards (another request renewed
/// it first; stores refuse to update a forward): the new record is then deleted again, so a
/// renewal never resurrects a session nor splits it in two.
async fn leave_forward(
    write: &Write,
    cookie_name: &str,
    old: &SessionId,
    new: &SessionId,
    now: u64,
    shared: &Shared,
) -> Result<bool, Error> {
    let store = &*shared.store;
    let whole = store.format(cookie_name).writes_whole_records();
    let grace = shared.config.renewal.map_or(0, |renewal| renewal.grace);
    let until = now.saturating_add(grace).min(write.expires_at);
    let forward = renewal::encode(write.codec, old, new, until)?;
    // A store that keeps whole records gets them whole; the forward field makes loads ignore the
    // data, which stays only until the old record expires.
    let mut fields = if whole {
        write.fields.clone()
    } else {
        Vec::new()
    };
    fields.push((RENEWED_FIELD, forward));
    let save = Save {
        cookie_name,
        op: SaveOp::Update { id: old },
        record: RecordRef {
            metadata: &write.metadata,
            fields: &fields,
        },
        expires_at: until,
        now,
        codec: write.codec,
    };
    if let SaveOutcome::Saved(_) = store.save(save).await? {
        return Ok(true);
    }
    tracing::debug!(
        cookie = cookie_name,
        "session renewed or deleted by another request during this renewal"
    );
    store
        .delete(Delete {
            cookie_name,
            id: new,
        })
        .await?;
    Ok(false)
}

/// Deletes the record `id`; with `forwards`, first the records it forwards to, so a logout that
/// loaded the session just before another request renewed its id also ends the renewed session.
async fn delete(
    id: &SessionId,
    cookie_name: &str,
    codec: RecordCodec,
    forwards: bool,
    shared: &Shared,
    now: u64,
) -> Result<(), Error> {
    let store = &*shared.store;
    if forwards {
        let mut next = follow(id, cookie_name, codec, shared, now).await?;
        for _ in 0..MAX_FORWARDS {
            let Some(renewed) = next.take() else { break };
            store
                .delete(Delete {
                    cookie_name,
                    id: &renewed,
                })
                .await?;
            next = follow(&renewed, cookie_name, codec, shared, now).await?;
        }
    }
    store.delete(Delete { cookie_name, id }).await?;
    Ok(())
}

/// Completes a write on a store that can hold renewal forwards: a renewal leaves its forward, and
/// a write that lost a race against another request's renewal is re-applied where that renewal
/// put the session.
async fn follow_renewal(
    write: &Write,
    name: &str,
    outcome: SaveOutcome,
    id: Option<SessionId>,
    now: u64,
    shared: &Shared,
) -> Result<(SaveOutcome, Option<SessionId>), Error> {
    match (&write.op, &outcome, &id) {
        (WriteOp::Renew(old), SaveOutcome::Saved(_), Some(new)) => {
            if leave_forward(write, name, old, new, now, shared).await? {
                return Ok((outcome, id));
            }
            // Another request renewed (or ended) the session first: apply this request's
            // changes to the session where that renewal put it.
            let changed: Vec<_> = write
                .fields
                .iter()
                .filter(|(field, _)| write.dirty.contains(field))
                .cloned()
                .collect();
            redirect(write, name, old, Some(&changed), now, shared).await
        }
        // The loaded id was renewed away by a request this one did not wait for (another
        // process, or serialization off): follow the forward instead of losing the write.
        (WriteOp::Update(old), SaveOutcome::Missing, _) => {
            redirect(write, name, old, Some(&write.fields), now, shared).await
        }
        (WriteOp::Touch(old), SaveOutcome::Missing, _) => {
            redirect(write, name, old, None, now, shared).await
        }
        _ => Ok((outcome, id)),
    }
}

/// The id that `id`'s record forwards to, if it is a renewed-away record within its grace period.
async fn follow(
    id: &SessionId,
    cookie_name: &str,
    codec: RecordCodec,
    shared: &Shared,
    now: u64,
) -> Result<Option<SessionId>, Error> {
    let load = Load {
        cookie_name,
        value: id.as_str(),
        now,
        codec,
        // Only the forward is read.
        names: &[],
    };
    let Some(record) = shared.store.load(load).await? else {
        return Ok(None);
    };
    let ids = shared.store.format(cookie_name).ids();
    Ok(record
        .fields
        .iter()
        .find(|(name, _)| name == RENEWED_FIELD)
        .and_then(|(_, bytes)| renewal::decode(codec, id, bytes, ids))
        .filter(|(until, _)| *until > now)
        .map(|(_, new)| new))
}

/// Re-applies a write whose id was renewed away to the id it forwards to: an update with
/// `fields`, or a touch when `None`. `Missing` when there is no forward (the session is gone).
async fn redirect(
    write: &Write,
    cookie_name: &str,
    old: &SessionId,
    fields: Option<&[(&'static str, Vec<u8>)]>,
    now: u64,
    shared: &Shared,
) -> Result<(SaveOutcome, Option<SessionId>), Error> {
    let Some(new) = follow(old, cookie_name, write.codec, shared, now).await? else {
        return Ok((SaveOutcome::Missing, None));
    };
    let save = match fields {
        Some(fields) => write.save_fields(cookie_name, SaveOp::Update { id: &new }, now, fields),
        None => write.save_fields(cookie_name, SaveOp::Touch { id: &new }, now, &[]),
    };
    let outcome = shared.store.save(save).await?;
    Ok((outcome, Some(new)))
}

/// Renders a `Set-Cookie` value. The removal cookie repeats every attribute of the cookie it
/// removes, so `__Host-`/`__Secure-` cookies are really removed.
pub(crate) fn render(name: &str, action: &CookieAction, config: &SessionConfig) -> String {
    let (value, max_age) = match action {
        CookieAction::Set { value, max_age } => (value.as_str(), *max_age),
        CookieAction::Remove => ("", 0),
    };
    let mut out = String::with_capacity(rendered_len(name, value, max_age, action, config));
    let _ = write!(out, "{name}={value}; Path={}", config.path);
    if let Some(domain) = &config.domain {
        let _ = write!(out, "; Domain={domain}");
    }
    let _ = write!(out, "; Max-Age={max_age}");
    if matches!(action, CookieAction::Remove) {
        out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    if config.http_only {
        out.push_str("; HttpOnly");
    }
    if config.secure {
        out.push_str("; Secure");
    }
    out.push_str(match config.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    if config.partitioned {
        out.push_str("; Partitioned");
    }
    out
}

/// The exact length of what [`render`] writes: the header value then takes the `String`'s buffer
/// as it is (a `String` with spare capacity costs `http` one more allocation).
fn rendered_len(
    name: &str,
    value: &str,
    max_age: u64,
    action: &CookieAction,
    config: &SessionConfig,
) -> usize {
    let digits = max_age.checked_ilog10().map_or(1, |log| log as usize + 1);
    let same_site = match config.same_site {
        SameSite::Strict => "; SameSite=Strict".len(),
        SameSite::Lax => "; SameSite=Lax".len(),
        SameSite::None => "; SameSite=None".len(),
    };
    name.len()
        + 1
        + value.len()
        + "; Path=".len()
        + config.path.len()
        + config
            .domain
            .as_ref()
            .map_or(0, |domain| "; Domain=".len() + domain.len())
        + "; Max-Age=".len()
        + digits
        + if matches!(action, CookieAction::Remove) {
            "; Expires=Thu, 01 Jan 1970 00:00:00 GMT".len()
        } else {
            0
        }
        + if config.http_only {
            "; HttpOnly".len()
        } else {
            0
        }
        + if config.secure { "; Secure".len() } else { 0 }
        + same_site
        + if config.partitioned {
            "; Partitioned".len()
        } else {
            0
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn render_sizes_its_buffer_exactly() {
        let set = |max_age| CookieAction::Set {
            value: "v".repeat(43),
            max_age,
        };
        for config in [
            SessionConfig::default(),
            SessionConfig::default()
                .with_domain("example.com")
                .with_path("/app")
                .with_same_site(SameSite::Strict)
                .with_partitioned(true),
        ] {
            for action in [
                set(0),
                set(9),
                set(10),
                set(86_400),
                set(u64::MAX),
                CookieAction::Remove,
            ] {
                let out = render("session", &action, &config);
                assert_eq!(out.len(), out.capacity(), "{out}");
            }
        }
    }

    #[test]
    fn finds_cookies_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sess=\"x\" ; b=2"));
        headers.append(COOKIE, HeaderValue::from_static("other=3;sess=y"));
        assert_eq!(find_cookie(&headers, "sess"), Some("x"));
        assert_eq!(find_cookie(&headers, "other"), Some("3"));
        assert_eq!(find_cookie(&headers, "se"), None);
        headers.insert(COOKIE, HeaderValue::from_bytes(b"sess=\xff").unwrap());
        assert_eq!(find_cookie(&headers, "sess"), None);
    }

    #[test]
    fn finds_every_distinct_candidate_up_to_the_cap() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("s=a; s=b; t=z; s=a"));
        headers.append(COOKIE, HeaderValue::from_static("s=\"c\"; S=x; s=d; s=e"));
        let (found, count) = find_cookies(&headers, "s");
        assert_eq!(&found[..count], ["a", "b", "c", "d"]);
        let (_, count) = find_cookies(&headers, "none");
        assert_eq!(count, 0);
    }

    #[test]
    fn removal_mirrors_the_attributes() {
        let config = SessionConfig::default().with_domain("example.com");
        let set = render(
            "__Secure-s",
            &CookieAction::Set {
                value: "v".into(),
                max_age: 60,
            },
            &config,
        );
        assert_eq!(
            set,
            "__Secure-s=v; Path=/; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
        let removal = render("__Secure-s", &CookieAction::Remove, &config);
        assert_eq!(
            removal,
            "__Secure-s=; Path=/; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
