//! The Redis store: one hash per session, field-level writes, one round trip per operation.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncCommands as _, Client, ErrorKind, ParsingError, RedisError, Script, ServerErrorKind, Value,
};

use futures_util::FutureExt as _;
use futures_util::future::Either;

use super::deadline::Deadlines;
use super::{
    Delete, ListOwned, Load, OwnedRecords, OwnerEntry, RENEWED_FIELD, Revoke, Save, SaveOp,
    SaveOutcome, SessionHandle, SessionStore, StoreError, StoreKind,
};
use crate::record::{Bytes, Metadata, Record, SessionId};

/// The hash field of the timestamps: `<created>.<updated>`, Unix milliseconds in decimal.
/// Struct fields cannot start with `__` (the derive refuses them), so it never collides with
/// data. One field rather than two keeps every load's reply an element shorter, and the client's
/// parser pays per element. A rolling touch rewrites it whole, which is safe: `created` never
/// changes under one key.
const META: &str = "__meta";

/// The hash field of the per-session idle timeout set with `set_max_age`, in seconds. A field
/// of its own, written only by saves that carry one and never by a rolling touch, so that a
/// touch from a request that loaded the session earlier cannot undo another request's
/// `set_max_age` (requests are serialized per process, not across processes).
const MAX_AGE: &str = "__max_age";

/// Formats the timestamps field's value without allocating.
fn format_meta(meta: &Metadata, buf: &mut [u8; 48]) -> usize {
    // Two u64 in decimal and a dot take at most 41 bytes.
    let mut number = itoa::Buffer::new();
    let created = number.format(meta.created).as_bytes();
    buf[..created.len()].copy_from_slice(created);
    let mut len = created.len();
    buf[len] = b'.';
    len += 1;
    let updated = number.format(meta.updated).as_bytes();
    buf[len..len + updated.len()].copy_from_slice(updated);
    len + updated.len()
}

/// A decimal `u64` as written: digits only (`u64::from_str` would also take a leading `+`).
#[expect(
    clippy::needless_bitwise_bool,
    reason = "`&` keeps the loop free of branches"
)]
fn parse_number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    // One pass, no UTF-8 check: a fifth of `str::parse`'s instructions on a timestamp.
    if bytes.len() <= 19 {
        // Nineteen digits stay below 10^19 < 2^64: no overflow to check, and every byte is
        // checked at once after the loop.
        let (n, all_digits) = bytes.iter().fold((0u64, true), |(n, all), &b| {
            let digit = b.wrapping_sub(b'0');
            (
                n.wrapping_mul(10).wrapping_add(u64::from(digit)),
                all & (digit < 10),
            )
        });
        return all_digits.then_some(n);
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?
    })
}

/// Parses the timestamps field and the optional `max_age` field; `None` when either is
/// malformed.
fn parse_meta(meta: &[u8], max_age: Option<&[u8]>) -> Option<Metadata> {
    let (created, updated) = meta.split_at(meta.iter().position(|&b| b == b'.')?);
    Some(Metadata {
        created: parse_number(created)?,
        updated: parse_number(&updated[1..])?,
        max_age: match max_age {
            Some(max_age) => Some(parse_number(max_age)?),
            None => None,
        },
    })
}

/// The one write script. `KEYS[1]` is the session's hash; `ARGV[1]` the mode (`c`: create,
/// never overwriting; `u`: update an existing record, never recreating it nor writing into a
/// renewed-away one; `p`: as `u`, but first delete every stored field not named in the list
/// that follows); `ARGV[2]` the expiry in Unix milliseconds; for `p`, `ARGV[3]` the count of
/// names and the names; the rest are field/value pairs to set (a later pair wins over an earlier
/// one of the same name). Returns 1 when written, 0 when a create found the key taken, -1 when
/// an update found the key gone or holding a renewal forward (`__renewed`).
const WRITE: &str = r"
local exists = redis.call('EXISTS', KEYS[1])
if ARGV[1] == 'c' then
  if exists == 1 then return 0 end
elseif exists == 0 or redis.call('HEXISTS', KEYS[1], '__renewed') == 1 then
  return -1
end
local first = 3
if ARGV[1] == 'p' then
  local keep = { __meta = true, __max_age = true }
  local count = tonumber(ARGV[3])
  for i = 4, 3 + count do keep[ARGV[i]] = true end
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not keep[field] then redis.call('HDEL', KEYS[1], field) end
  end
  first = 4 + count
end
-- In slices of 500 pairs: unpack() fails past a few thousand values, and a record that
-- carries fields another version stored may hold many.
for i = first, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
";

/// The owner index script. `KEYS[1]` is an owner's index, a sorted set of session handles
/// scored by each entry's horizon (a time its session surely expires before). `ARGV[1]` is the
/// current time in Unix milliseconds; entries past their horizon are dropped first. `ARGV[2]` is
/// the mode: `a` adds (or raises the horizon of) handle `ARGV[4]` with horizon `ARGV[3]` and
/// drops handle `ARGV[5]` if given (the old id of a regenerated session); `r` drops the handles
/// `ARGV[3..]`; `l` lists. The key then expires with its latest horizon (Redis deletes an empty
/// sorted set by itself). Returns the handles for `l`, an empty array otherwise.
const INDEX: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if ARGV[2] == 'a' then
  redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[4])
  if ARGV[5] then redis.call('ZREM', KEYS[1], ARGV[5]) end
elseif ARGV[2] == 'r' then
  for i = 3, #ARGV, 1000 do
    redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then return {} end
redis.call('PEXPIREAT', KEYS[1], last[2])
if ARGV[2] == 'l' then return redis.call('ZRANGE', KEYS[1], 0, -1) end
return {}
";

/// Revokes one session: `KEYS[1]` is its hash; deleted only if its owner field `ARGV[1]` still
/// holds `ARGV[2]`. Returns 1 when deleted.
const REVOKE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Keeps a Redis Cluster connection alive across failovers. redis-rs's cluster connection (1.2,
/// and 1.8.2 still, in one failover of three in our tests) can stop serving a dead primary's
/// slots for good once its replica took over: requests keep failing until a new connection is
/// made. So after [`Revival::FAILURES`] operations in a row fail
/// as outages, the store builds a new connection (a fresh slot map) in the background, at most
/// once per connect timeout, and uses it from then on.
struct Revival {
    client: redis::cluster::ClusterClient,
    current: std::sync::RwLock<ClusterConnection>,
    failures: std::sync::atomic::AtomicU32,
    reconnecting: std::sync::atomic::AtomicBool,
    connect_timeout: Duration,
}

impl Revival {
    /// How many operations in a row must fail before the connection is replaced.
    const FAILURES: u32 = 3;

    fn connection(&self) -> ClusterConnection {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn succeeded(&self) {
        use std::sync::atomic::Ordering;
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    fn failed(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < Self::FAILURES || self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let revival = Arc::clone(self);
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            match tokio::time::timeout(
                revival.connect_timeout,
                revival.client.get_async_connection(),
            )
            .await
            {
                Ok(Ok(connection)) => {
                    *revival
                        .current
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = connection;
                    revival.failures.store(0, Ordering::Relaxed);
                    tracing::warn!(
                        "Redis Cluster connection kept failing; replaced it with a new one"
                    );
                }
                Ok(Err(error)) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "Redis Cluster connection kept failing, and a new one could not be made"
                ),
                Err(_) => {
                    tracing::warn!(
                        "Redis Cluster connection kept failing, and a new one timed out"
                    );
                }
            }
            // At most one new connection per connect timeout.
            tokio::time::sleep_until(started + revival.connect_timeout).await;
            revival.reconnecting.store(false, Ordering::Release);
        });
    }
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Keeps sessions in Redis, on a single node or a Redis Cluster. Only the session id travels in
/// the cookie.
///
/// Each session is one hash, `<prefix><SHA-256 of the id, base64url>` ([`RedisStore::key_of`]):
/// one hash field per struct field (by stored name; fields another version of the app stored,
/// which this type does not declare, stay beside them untouched) plus `__meta` (`<created ms>.<updated ms>`)
/// and, once `set_max_age` was called, `__max_age` (seconds). The id itself, the bearer secret in the cookie, is never sent to Redis: a dump
/// of the keys, a `MONITOR` or a slow log does not hand out sessions. Every command touches one
/// key, so it works unchanged on a cluster; a request costs these round trips:
///
/// | operation | command |
/// |---|---|
/// | load | `HMGET` of `__meta`, `__max_age`, `__renewed` and the type's stored names and aliases ([`Session::LOAD_NAMES`](crate::Session::LOAD_NAMES)) |
/// | save (new session) | the write script (`EVALSHA`): fails if the key exists, `HSET` all fields, `PEXPIREAT` |
/// | save (changed fields) | the write script: fails if the key is gone (no resurrection), `HSET` **only the changed fields** and the metadata, `PEXPIREAT` |
/// | rolling touch | the write script with `__meta` only |
/// | regenerate | `HGETALL` of the old id (its fields the type does not declare move along), the write script under the new id, then `DEL` of the old id (two keys, two slots, three round trips) |
/// | periodic renewal | as regenerate, with the old id's forward (a second script) instead of the `DEL` |
/// | invalidate | `DEL` |
/// | login (with an owner field, `#[session(owner)]`) | as regenerate, plus the index script on the owner's index between the write and the `DEL` |
///
/// **Owner index.** A session type with an owner field gets one sorted set per owner,
/// `<prefix>owner:<SHA-256 of cookie name and owner key, base64url>`, in a slot of its own:
/// members are the sessions' handles ([`SessionHandle`](crate::owner::SessionHandle), the
/// part of their key after the prefix), scores a *horizon* each session surely expires before
/// (the end of the hour after the hour it expires in). The key expires with its latest horizon,
/// so it lives at least as long as the owner's longest session and never forever. A save that
/// sets or changes the owner writes the index once; a save that moves an owned session's expiry
/// into a later hour raises its horizon, one more command (a round trip before the write) at
/// most once an hour per session in use; every other request sends nothing more. Entries past
/// their horizon are dropped by every index write; entries of sessions that are gone are dropped
/// when the owner's sessions are listed or revoked (listing reads each session with `HGETALL`,
/// concurrently; revoking deletes each with a one-key script that checks the owner first).
///
/// A request that extracts no session sends nothing; a read sends one command; a write two (load
/// and script). The script is sent with `EVALSHA` and loaded once on `NOSCRIPT`.
///
/// Every operation is bounded by the response timeout (see [`RedisStoreBuilder::response_timeout`]); a failure rejects the request with 503
/// (load and save alike: an outage, not a server error) and leaves the client's cookie alone. The single-node connection
/// reconnects by itself when Redis comes back. On a cluster, the store builds a new connection
/// (with a fresh slot map) in the background after three operations in a row fail as outages,
/// at most once per connect timeout: redis-rs's cluster connection can stay stuck on a dead
/// primary's slots after a failover (see `docs/operations.md`).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use session_runtime::SessionLayer;
/// use session_runtime::store::RedisStore;
///
/// # async fn run() -> Result<(), session_runtime::store::StoreError> {
/// let store = RedisStore::builder()
///     .key_prefix("myapp:session:")
///     .response_timeout(Duration::from_millis(500))
///     .connect("redis://127.0.0.1:6379")
///     .await?;
/// let layer = SessionLayer::new(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    /// On a cluster: the connection in use, replaced when it keeps failing.
    revival: Option<Arc<Revival>>,
    prefix: String,
    deadlines: Arc<Deadlines>,
    /// Replicas to wait for after each write, and for how long ([`RedisStoreBuilder::wait_for_replicas`]).
    wait: Option<(u32, Duration)>,
    script: Script,
    index: Script,
    revoke: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field(
                "connection",
                &match self.connection {
                    Connection::Single(_) => "single",
                    Connection::Cluster(_) => "cluster",
                },
            )
            .field("prefix", &self.prefix)
            .field("deadlines", &self.deadlines)
            .finish_non_exhaustive()
    }
}

/// Settings for connecting a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    wait: Option<(u32, Duration)>,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: "session:".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            wait: None,
        }
    }
}

fn map_error(error: RedisError) -> StoreError {
    // Answers that mean "not now" rather than "never": a node that is a replica (a failover is
    // under way), a cluster that is down or resharding, a primary without its link, a node
    // still loading its data, a script gone again right after it was loaded (a flush or a
    // failover in between). They are outages (503), like a node that does not answer.
    let not_now = matches!(
        error.kind(),
        ErrorKind::Server(
            ServerErrorKind::ReadOnly
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::NoScript
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        )
    );
    if error.is_timeout() {
        StoreError::Timeout
    } else if not_now
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        StoreError::unavailable(error)
    } else {
        StoreError::backend(error)
    }
}

impl RedisStoreBuilder {
    /// Sets the prefix of every key. The default is `session:`.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long connecting (and reconnecting) may take. The default is one second.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long one operation may take before it fails with [`StoreError::Timeout`]. The
    /// default is one second. The deadline is kept by one task per store that ticks four times
    /// per timeout, not by a timer per operation (cheaper on the request path), so an operation
    /// fails between one and one and a quarter timeouts after it started.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Makes every write (save, delete, owner index) wait until `replicas` replicas of the node
    /// that took it have acknowledged it (Redis's `WAIT`, sent after the write on the same
    /// connection), for at most `timeout`. Redis replicates asynchronously: without this, a write
    /// acknowledged to the client just before its primary dies can be lost in the failover
    /// (the replica promoted in its place never received it); with it, an acknowledged save is
    /// on `replicas` more nodes.
    ///
    /// A write that fewer replicas acknowledge in time (no replica attached, a replica lagging,
    /// the primary just promoted and alone until one rejoins) fails the save as an outage:
    /// 503 without `Set-Cookie`, though the write itself may have landed on the primary. It
    /// costs one round trip per write, plus the replication delay (sub-millisecond on one
    /// machine, the network's round trip between hosts). Redis holds every later command of a
    /// connection behind its `WAIT`, and the store shares one connection per node among all
    /// requests, so a slow acknowledgement delays the requests queued behind it by up to
    /// `timeout`: keep `timeout` well below the response timeout (half of it or less). Off by
    /// default.
    #[must_use]
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some((replicas, timeout));
        self
    }

    /// Connects to a single Redis node, e.g. `redis://127.0.0.1:6379`, through a connection that
    /// reconnects by itself.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the URL is invalid or Redis cannot be reached in time.
    pub async fn connect(self, url: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(StoreError::backend)?;
        // No response timeout of the client's own: every operation already runs under the
        // store's deadline (`RedisStore::run`), which also bounds a wait for a reconnection;
        // a second timer per command would only cost time.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_max_delay(self.connect_timeout);
        let manager = bounded(
            self.connect_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await?;
        Ok(self.build(Connection::Single(manager)))
    }

    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]`.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the URLs are invalid or no node answers in time.
    pub async fn connect_cluster<I, U>(self, urls: I) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let client = ClusterClientBuilder::new(urls)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            .retries(1)
            .build()
            .map_err(StoreError::backend)?;
        let connection = bounded(self.connect_timeout, client.get_async_connection()).await?;
        let revival = Arc::new(Revival {
            client,
            current: std::sync::RwLock::new(connection.clone()),
            failures: std::sync::atomic::AtomicU32::new(0),
            reconnecting: std::sync::atomic::AtomicBool::new(false),
            connect_timeout: self.connect_timeout,
        });
        let mut store = self.build(Connection::Cluster(connection));
        store.revival = Some(revival);
        Ok(store)
    }

    fn build(self, connection: Connection) -> RedisStore {
        RedisStore {
            connection,
            revival: None,
            prefix: self.prefix,
            deadlines: Deadlines::start(self.response_timeout),
            wait: self.wait,
            script: Script::new(WRITE),
            index: Script::new(INDEX),
            revoke: Script::new(REVOKE),
        }
    }
}

/// Runs a Redis future with a deadline, mapping both kinds of failure.
async fn bounded<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(map_error),
        Err(_) => Err(StoreError::Timeout),
    }
}

impl RedisStore {
    /// Returns a builder: key prefix, connect and response timeouts.
    #[must_use]
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to a single node with the default settings.
    ///
    /// # Errors
    ///
    /// See [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// Returns the Redis key of the session `id`: the prefix and the SHA-256 of the id in
    /// unpadded base64url. For operators and tests (to inspect or delete one session); the id is
    /// never sent to Redis as it is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use session_runtime::session::SessionId;
    /// use session_runtime::store::RedisStore;
    ///
    /// # async fn run() -> Result<(), session_runtime::store::StoreError> {
    /// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let id = SessionId::generate().unwrap();
    /// let key = store.key_of(&id);
    /// assert!(key.starts_with("session:") && !key.contains(id.as_str()));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn key_of(&self, id: &SessionId) -> String {
        self.key_arg(id).to_text()
    }

    /// The key of the session `id` as a command argument written in place: a load and a write
    /// name it once each, so they build no `String` for it.
    fn key_arg(&self, id: &SessionId) -> KeyArg<'_> {
        KeyArg::new(&self.prefix, id)
    }

    /// Runs one operation on a clone of the connection (cheap: both kinds are handles) with the
    /// response deadline.
    ///
    /// Not an `async fn`: one would keep `operation` in its state beside the future it makes
    /// (a command's buffers, twice), and a load's future is allocated on every request.
    pub(super) fn run<T, F, Fut>(
        &self,
        operation: F,
    ) -> impl Future<Output = Result<T, StoreError>> + use<'_, T, F, Fut>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let connection = match &self.revival {
            Some(revival) => Connection::Cluster(revival.connection()),
            None => self.connection.clone(),
        };
        self.deadlines
            .bound(operation(Conn(connection)))
            .map(move |outcome| {
                let result = match outcome {
                    Some(result) => result.map_err(map_error),
                    None => Err(StoreError::Timeout),
                };
                if let Some(revival) = &self.revival {
                    match &result {
                        Err(StoreError::Timeout | StoreError::Unavailable(_)) => revival.failed(),
                        _ => revival.succeeded(),
                    }
                }
                result
            })
    }

    /// The stored fields of `old` that a load of the session type does not read (the type does
    /// not declare them) and the save does not carry, which a new id must hold too; `None` when
    /// `old` is gone or renewed away, so the session must not move. One `HGETALL`, a round trip
    /// of its own: on a cluster the two keys live in different slots.
    async fn undeclared_fields(
        &self,
        old: &SessionId,
        save: &Save<'_>,
    ) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>, StoreError> {
        let key = self.key_of(old);
        let mut stored: Vec<(Vec<u8>, Vec<u8>)> = self
            .run(|mut conn| async move { conn.hgetall(&key).await })
            .await?;
        let live = stored.iter().any(|(name, _)| name == META.as_bytes())
            && !stored
                .iter()
                .any(|(name, _)| name == RENEWED_FIELD.as_bytes());
        if !live {
            return Ok(None);
        }
        if save.purge.is_some() {
            return Ok(Some(Vec::new()));
        }
        stored.retain(|(name, _)| {
            name.as_slice() != META.as_bytes()
                && name.as_slice() != MAX_AGE.as_bytes()
                && name.as_slice() != RENEWED_FIELD.as_bytes()
                && !save
                    .record
                    .iter()
                    .any(|(carried, _)| carried.as_bytes() == name)
        });
        Ok(Some(stored))
    }

    /// Runs the write script on `id`'s hash in `mode` (see [`WRITE`]): `copied` pairs first (the
    /// fields of a record the session moves from), then the metadata and the save's fields.
    async fn write(
        &self,
        id: &SessionId,
        mode: &str,
        save: &Save<'_>,
        metadata_only: bool,
        copied: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<i64, StoreError> {
        let key = self.key_arg(id);
        let mut buf = [0; 48];
        let len = format_meta(save.record.metadata, &mut buf);
        let meta = &buf[..len];
        // `EVALSHA` built as one command, as `Script::invoke_async` would send it, but without
        // its `ScriptInvocation`, which keeps every argument in a `Vec` of its own before
        // copying them all into the command.
        let purge = if mode == "p" {
            save.purge.unwrap_or_default()
        } else {
            &[]
        };
        let mut args = 7 + 2 * copied.len();
        let mut bytes = 40 + 3 * NUMBER + key.len() + mode.len() + META.len() + len;
        if mode == "p" {
            args += 1 + purge.len();
            bytes += NUMBER + purge.iter().map(|name| name.len()).sum::<usize>();
        }
        for (name, value) in copied {
            bytes += name.len() + value.len();
        }
        if !metadata_only {
            args += 2 * (1 + save.record.iter().count());
            bytes += MAX_AGE.len() + NUMBER;
            for (name, value) in save.record.iter() {
                bytes += name.len() + value.len();
            }
        }
        let mut evalsha = command("EVALSHA", args, bytes);
        evalsha
            .arg(self.script.get_hash())
            .arg(1)
            .arg(&key)
            .arg(mode)
            .arg(save.expires_at);
        if mode == "p" {
            evalsha.arg(purge.len()).arg(purge);
        }
        for (name, value) in copied {
            evalsha.arg(name.as_slice()).arg(value.as_slice());
        }
        evalsha.arg(META).arg(meta);
        if !metadata_only {
            if let Some(max_age) = save.record.metadata.max_age {
                evalsha.arg(MAX_AGE).arg(max_age);
            }
            for (name, value) in save.record.iter() {
                evalsha.arg(name).arg(value);
            }
        }
        let outcome = self
            .run(|mut conn| async move {
                match evalsha.query_async::<i64>(&mut conn).await {
                    // Not in Redis's script cache (a restart, a failover, `SCRIPT FLUSH`): load
                    // it and retry, as `Script::invoke_async` does.
                    Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        redis::cmd("SCRIPT")
                            .arg("LOAD")
                            .arg(WRITE)
                            .query_async::<String>(&mut conn)
                            .await?;
                        evalsha.query_async::<i64>(&mut conn).await
                    }
                    result => result,
                }
            })
            .await?;
        if outcome == 1 && self.wait.is_some() {
            self.replicated(&key.to_text()).await?;
        }
        Ok(outcome)
    }
}

impl RedisStore {
    /// With [`RedisStoreBuilder::wait_for_replicas`], waits until that many replicas of the node
    /// holding `key` acknowledged the writes sent before on its connection: `WAIT`, routed to
    /// that node's primary on a cluster. Fewer acknowledgements in time is an outage.
    async fn replicated(&self, key: &str) -> Result<(), StoreError> {
        let Some((replicas, timeout)) = self.wait else {
            return Ok(());
        };
        // Boxed: its future (the cluster's routed command) is about 3.5 KB, and every write's
        // future would carry that much unused state without it.
        Box::pin(self.wait_for_replicas(key, replicas, timeout)).await
    }

    /// [`RedisStore::replicated`]'s `WAIT`.
    async fn wait_for_replicas(
        &self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let millis = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(millis);
        let acked: i64 = self
            .run(|conn| async move {
                let value = match conn.0 {
                    Connection::Single(mut single) => {
                        wait.query_async::<Value>(&mut single).await?
                    }
                    Connection::Cluster(mut cluster) => {
                        use redis::cluster_routing::{
                            Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
                        };
                        let route = Route::with_key(key, SlotAddr::Master);
                        cluster
                            .route_command(
                                wait,
                                RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                            )
                            .await?
                    }
                };
                // `route_command` hands an error reply back as a value (`WAIT` on a node that
                // turned replica, say): make it the error it is.
                redis::from_redis_value(value.extract_error()?).map_err(RedisError::from)
            })
            .await
            // Any refusal of `WAIT` (it reached a node that is a replica now, during a failover)
            // leaves the write unconfirmed: an outage, like too few acknowledgements.
            .map_err(|error| match error {
                StoreError::Backend(error) => StoreError::Unavailable(error),
                other => other,
            })?;
        if acked >= i64::from(replicas) {
            return Ok(());
        }
        Err(StoreError::unavailable(format!(
            "the write was acknowledged by {acked} of the {replicas} replicas asked for within {millis} ms"
        )))
    }

    /// The key of the owner index of `owner` for the cookie `cookie_name`.
    fn index_key(&self, cookie_name: &str, owner: &str) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let mut digest = sha2::Sha256::new();
        // The cookie name's length first, so that no pair of names reads as another.
        digest.update(cookie_name.len().to_string().as_bytes());
        digest.update(b":");
        digest.update(cookie_name.as_bytes());
        digest.update(b":");
        digest.update(owner.as_bytes());
        let mut key = String::with_capacity(self.prefix.len() + 49);
        key.push_str(&self.prefix);
        key.push_str("owner:");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(digest.finalize(), &mut key);
        key
    }

    /// The key of the session `handle` names (a handle is the hash a session key ends in).
    fn key_of_handle(&self, handle: &SessionHandle) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 43);
        key.push_str(&self.prefix);
        key.push_str(handle.as_str());
        key
    }

    /// Runs the index script on `owner`'s index with `args` after the time: see [`INDEX`].
    async fn run_index(
        &self,
        cookie_name: &str,
        owner: &str,
        now: u64,
        args: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        let key = self.index_key(cookie_name, owner);
        let mut invocation = self.index.prepare_invoke();
        invocation.key(&key).arg(now);
        for arg in args {
            invocation.arg(*arg);
        }
        let listed = self
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        if args.first() != Some(&"l") {
            self.replicated(&key).await?;
        }
        Ok(listed)
    }

    /// Indexes the session `id` under the owner `entry` names, if any, dropping the entry of
    /// `old` (a regenerated or renewed id) in the same step.
    async fn index(
        &self,
        save: &Save<'_>,
        id: &SessionId,
        old: Option<&SessionId>,
    ) -> Result<(), StoreError> {
        let Some(OwnerEntry {
            owner: Some(owner),
            until,
            ..
        }) = save.owner
        else {
            return Ok(());
        };
        let handle = SessionHandle::of(id);
        let until = until.to_string();
        let old = old.map(SessionHandle::of);
        let mut args = vec!["a", &until, handle.as_str()];
        if let Some(old) = &old {
            args.push(old.as_str());
        }
        // Boxed, as `replicated` is: only sessions with an owner wait here.
        Box::pin(self.run_index(save.cookie_name, owner, save.now, &args))
            .await
            .map(drop)
    }

    /// Moves the session `old` to the id `new` (a renewal or a regeneration of `save`): the
    /// write script's outcome, or `None` when `old` is gone or renewed away. A regeneration
    /// deletes `old` once `new` holds the session; a renewal leaves it, for the runtime to turn into
    /// a forward.
    async fn move_session(
        &self,
        old: &SessionId,
        new: &SessionId,
        save: &Save<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let Some(copied) = self.undeclared_fields(old, save).await? else {
            return Ok(None);
        };
        let outcome = self.create_indexed(new, Some(old), save, &copied).await?;
        if outcome == 1 && matches!(save.op, SaveOp::Regenerate { .. }) {
            let key = self.key_of(old);
            let del = &key;
            self.run(|mut conn| async move { conn.del::<_, i64>(del).await })
                .await?;
            self.replicated(&key).await?;
        }
        Ok(Some(outcome))
    }

    /// Writes a record under a new id, then indexes it (never before: a record nobody holds
    /// the id of is harmless, an owned record without its entry is not). If indexing fails, the
    /// new record is deleted again and the save fails.
    async fn create_indexed(
        &self,
        new: &SessionId,
        old: Option<&SessionId>,
        save: &Save<'_>,
        copied: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<i64, StoreError> {
        let outcome = self.write(new, "c", save, false, copied).await?;
        if outcome == 1 {
            if let Err(error) = self.index(save, new, old).await {
                let key = self.key_of(new);
                let _ = self
                    .run(|mut conn| async move { conn.del::<_, i64>(&key).await })
                    .await;
                return Err(error);
            }
        }
        Ok(outcome)
    }
}

/// Reads an `HGETALL` reply into a record; `None` when the key is gone or its metadata is
/// missing or malformed.
fn record_from_hash(hash: Vec<(Vec<u8>, Vec<u8>)>) -> Option<Record> {
    let mut meta = None;
    let mut max_age = None;
    let mut fields = Vec::with_capacity(hash.len());
    for (name, value) in hash {
        match &name[..] {
            b"__meta" => meta = Some(value),
            b"__max_age" => max_age = Some(value),
            _ => {
                let name = String::from_utf8(name).ok()?;
                let name = if name == RENEWED_FIELD {
                    Cow::Borrowed(RENEWED_FIELD)
                } else {
                    Cow::Owned(name)
                };
                fields.push((name, Bytes::from(value)));
            }
        }
    }
    let metadata = parse_meta(&meta?, max_age.as_deref())?;
    Some(Record::from_parts(metadata, fields))
}

/// A connection handle of either kind.
pub(super) struct Conn(Connection);

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match &mut self.0 {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The most bytes a number argument takes (`u64::MAX` has 20 digits).
const NUMBER: usize = 20;

/// The length of a key's hash part: SHA-256 in unpadded base64url.
const DIGEST_LEN: usize = 43;

/// A session's key ([`RedisStore::key_of`]) as one command argument, written straight into the
/// command's buffer.
struct KeyArg<'a> {
    prefix: &'a str,
    digest: [u8; DIGEST_LEN],
}

impl<'a> KeyArg<'a> {
    /// The key of the session `id` under `prefix`.
    fn new(prefix: &'a str, id: &SessionId) -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(id.as_bytes());
        let mut encoded = [0; DIGEST_LEN];
        let written = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(digest, &mut encoded)
            .expect("32 bytes are 43 characters of unpadded base64");
        debug_assert_eq!(written, DIGEST_LEN);
        Self {
            prefix,
            digest: encoded,
        }
    }

    fn len(&self) -> usize {
        self.prefix.len() + DIGEST_LEN
    }

    /// The key as text ([`RedisStore::key_of`]).
    fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.len());
        text.push_str(self.prefix);
        // Base64url is ASCII.
        text.extend(self.digest.iter().map(|&b| char::from(b)));
        text
    }
}

impl redis::ToRedisArgs for KeyArg<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        // A command's buffer is a `Vec`: writing to it does not fail.
        let written = arg
            .write_all(self.prefix.as_bytes())
            .and_then(|()| arg.write_all(&self.digest));
        debug_assert!(written.is_ok());
    }
}

/// A command with room for `args` more arguments of `bytes` bytes in all, so that building it
/// does not grow its buffers again and again (each growth is a reallocation and a copy, on
/// every request).
fn command(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut command = redis::Cmd::with_capacity(1 + args, name.len() + bytes);
    command.arg(name);
    command
}

/// The reply to a load's `HMGET key __meta __renewed <names...>`.
#[derive(Debug)]
enum Reply {
    /// No such key: every value is nil.
    Empty,
    /// The record, or `None` when the key exists but its metadata is missing or malformed.
    Record(Option<Record>),
}

/// Reads the reply to a load's `HMGET` (`__meta`, `__max_age`, `__renewed`, then `names`) into a record, moving the values' buffers into it. The
/// names come from the session type (`names`), so none is allocated or checked.
fn read_reply(value: Value, names: &[&'static str]) -> Result<Reply, ParsingError> {
    fn bytes(value: Value) -> Result<Option<Vec<u8>>, ParsingError> {
        match value {
            Value::BulkString(bytes) => Ok(Some(bytes)),
            Value::SimpleString(text) => Ok(Some(text.into_bytes())),
            Value::Nil => Ok(None),
            _ => Err(ParsingError::from(
                "a hash value is not a string".to_owned(),
            )),
        }
    }
    let items = match value {
        Value::Array(items) => items,
        Value::Attribute { data, .. } => return read_reply(*data, names),
        _ => return Err(ParsingError::from("not an HMGET reply".to_owned())),
    };
    if items.len() != names.len() + 3 {
        return Err(ParsingError::from(
            "an HMGET reply with the wrong number of values".to_owned(),
        ));
    }
    let mut items = items.into_iter();
    let meta = items.next().map_or(Ok(None), bytes)?;
    let max_age = items.next().map_or(Ok(None), bytes)?;
    let mut fields = Vec::with_capacity(names.len() + 1);
    if let Some(forward) = items.next().map_or(Ok(None), bytes)? {
        fields.push((Cow::Borrowed(RENEWED_FIELD), Bytes::from(forward)));
    }
    for (name, item) in names.iter().zip(items) {
        if let Some(value) = bytes(item)? {
            fields.push((Cow::Borrowed(*name), Bytes::from(value)));
        }
    }
    Ok(match meta {
        None if fields.is_empty() && max_age.is_none() => Reply::Empty,
        None => Reply::Record(None),
        Some(meta) => Reply::Record(
            parse_meta(&meta, max_age.as_deref()).map(|meta| Record::from_parts(meta, fields)),
        ),
    })
}

/// [`read_reply`] for the fuzz target: `None` for no record, a malformed reply or metadata.
#[cfg(any(test, feature = "internals"))]
pub(crate) fn read_reply_record(value: Value, names: &[&'static str]) -> Option<Record> {
    match read_reply(value, names) {
        Ok(Reply::Record(record)) => record,
        Ok(Reply::Empty) | Err(_) => None,
    }
}

impl SessionStore for RedisStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Server
    }

    // Not an `async fn`: the command is built before the future, which then holds only the
    // operation under its deadline, not the `Load` and the key beside it; the layer allocates
    // this future on every request. The deadline counts from this call (the layer polls the
    // future at once).
    fn load(
        &self,
        load: Load<'_>,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        // The runtime only passes validated ids; parse again so no other string becomes a key.
        let Some(id) = SessionId::parse(load.value) else {
            return Either::Left(std::future::ready(Ok(None)));
        };
        let key = self.key_arg(&id);
        // Only the fields the type reads: a reply of two values plus one per name, where
        // `HGETALL` would send every name too (redis-rs's parser pays per element).
        let mut hmget = command(
            "HMGET",
            4 + load.names.len(),
            key.len()
                + META.len()
                + MAX_AGE.len()
                + RENEWED_FIELD.len()
                + load.names.iter().map(|name| name.len()).sum::<usize>(),
        );
        hmget
            .arg(&key)
            .arg(META)
            .arg(MAX_AGE)
            .arg(RENEWED_FIELD)
            .arg(load.names);
        let (names, cookie_name) = (load.names, load.cookie_name);
        Either::Right(
            self.run(move |mut conn| async move { hmget.query_async::<Value>(&mut conn).await })
                .map(move |reply| {
                    let reply = read_reply(reply?, names)
                        .map_err(|error| StoreError::backend(RedisError::from(error)))?;
                    let Reply::Record(record) = reply else {
                        return Ok(None);
                    };
                    if record.is_none() {
                        tracing::warn!(
                            cookie = cookie_name,
                            "stored session has no valid metadata; starting a fresh session"
                        );
                    }
                    Ok(record)
                }),
        )
    }

    async fn save(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        let (id, outcome) = match save.op {
            SaveOp::Create { id } => (id, self.create_indexed(id, None, &save, &[]).await?),
            SaveOp::Update { id } => {
                // The entry first: an owned record is never live without it.
                self.index(&save, id, None).await?;
                let mode = if save.purge.is_some() { "p" } else { "u" };
                (id, self.write(id, mode, &save, false, &[]).await?)
            }
            SaveOp::Touch { id } => {
                self.index(&save, id, None).await?;
                (id, self.write(id, "u", &save, true, &[]).await?)
            }
            // Rare, and the largest: boxed, so that every other save's future stays small.
            SaveOp::Renew { old, new } | SaveOp::Regenerate { old, new } => {
                let Some(outcome) = Box::pin(self.move_session(old, new, &save)).await? else {
                    return Ok(SaveOutcome::Missing);
                };
                (new, outcome)
            }
            SaveOp::Seal => {
                return Err(StoreError::backend(
                    "the Redis store keeps records on the server and cannot seal a cookie",
                ));
            }
        };
        Ok(match outcome {
            1 => SaveOutcome::Saved(id.as_str().to_owned()),
            0 => SaveOutcome::IdTaken,
            _ => SaveOutcome::Missing,
        })
    }

    async fn delete(&self, delete: Delete<'_>) -> Result<(), StoreError> {
        let key = self.key_of(delete.id);
        let del = &key;
        self.run(|mut conn| async move { conn.del::<_, i64>(del).await })
            .await?;
        self.replicated(&key).await
    }

    async fn list_owned(&self, list: ListOwned<'_>) -> Result<OwnedRecords, StoreError> {
        let handles = self
            .run_index(list.cookie_name, list.owner, list.now, &["l"])
            .await?;
        let handles: Vec<SessionHandle> = handles
            .iter()
            .filter_map(|handle| SessionHandle::parse(handle))
            .collect();
        // One `HGETALL` per session, all at once: on one node they share the connection's
        // pipeline; on a cluster each goes to its slot's node.
        let reads = handles.iter().map(|handle| {
            let key = self.key_of_handle(handle);
            self.run(
                |mut conn| async move { conn.hgetall::<_, Vec<(Vec<u8>, Vec<u8>)>>(&key).await },
            )
        });
        let hashes = futures_util::future::try_join_all(reads).await?;
        Ok(handles
            .into_iter()
            .zip(hashes)
            .map(|(handle, hash)| (handle, record_from_hash(hash)))
            .collect())
    }

    async fn revoke(&self, revoke: Revoke<'_>) -> Result<usize, StoreError> {
        let revocations = revoke.sessions.iter().map(|(handle, owner_bytes)| {
            let key = self.key_of_handle(handle);
            let mut invocation = self.revoke.prepare_invoke();
            invocation.key(&key).arg(revoke.field).arg(&owner_bytes[..]);
            async move {
                let deleted = self
                    .run(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
                    .await?;
                self.replicated(&key).await?;
                Ok::<_, StoreError>(deleted)
            }
        });
        let deleted = futures_util::future::try_join_all(revocations).await?;
        let mut args = vec!["r"];
        args.extend(revoke.sessions.iter().map(|(handle, _)| handle.as_str()));
        args.extend(revoke.stale.iter().map(SessionHandle::as_str));
        self.run_index(revoke.cookie_name, revoke.owner, revoke.now, &args)
            .await?;
        Ok(deleted.into_iter().filter(|deleted| *deleted == 1).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_prefix_and_the_ids_hash() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let id = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let key = KeyArg::new("session:", &id);
        let expected = format!(
            "session:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(id.as_bytes()))
        );
        assert_eq!(key.to_text(), expected);
        assert_eq!(key.len(), expected.len());
        // Pinned (Python: urlsafe_b64encode(sha256(id))): stored records must keep their keys.
        assert_eq!(
            expected,
            "session:DwBzhbb51LfusnSGBa_hqYSgo7-j8BTQnip4TOnlzRo"
        );
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key);
        let args: Vec<_> = cmd.args_iter().collect();
        assert!(
            matches!(args[..], [_, redis::Arg::Simple(written)] if written == expected.as_bytes())
        );
    }

    #[test]
    fn a_key_argument_is_written_whole_in_one_argument() {
        use redis::ToRedisArgs as _;
        let key = KeyArg {
            prefix: "session:",
            digest: [b'A'; DIGEST_LEN],
        };
        let args = key.to_redis_args();
        assert_eq!(args.len(), 1);
        assert_eq!(
            args[0],
            format!("session:{}", "A".repeat(DIGEST_LEN)).into_bytes()
        );
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key).arg(META);
        let packed = String::from_utf8(cmd.get_packed_command()).unwrap();
        assert_eq!(
            packed,
            format!(
                "*3\r\n$5\r\nHMGET\r\n$51\r\nsession:{}\r\n$6\r\n__meta\r\n",
                "A".repeat(DIGEST_LEN)
            )
        );
    }

    fn reply(values: &[Option<&[u8]>]) -> Value {
        Value::Array(
            values
                .iter()
                .map(|v| v.map_or(Value::Nil, |v| Value::BulkString(v.to_vec())))
                .collect(),
        )
    }

    #[test]
    fn reads_hmget_replies() {
        const NAMES: &[&str] = &["colour", "visits", "theme"];
        let good = [
            Some(&b"5.9"[..]),
            None,
            None,
            None,
            Some(b"3"),
            Some(b"\"dark\""),
        ];
        let Ok(Reply::Record(Some(record))) = read_reply(reply(&good), NAMES) else {
            panic!("a record");
        };
        assert_eq!(
            record.metadata,
            Metadata {
                created: 5,
                updated: 9,
                max_age: None
            }
        );
        assert_eq!(
            record.fields,
            [
                ("visits".into(), Bytes::from_static(b"3")),
                ("theme".into(), Bytes::from_static(b"\"dark\""))
            ],
            "nil values are absent, names in the order asked"
        );
        let mut with_max_age = good;
        with_max_age[1] = Some(b"60");
        let Ok(Reply::Record(Some(record))) = read_reply(reply(&with_max_age), NAMES) else {
            panic!("a record");
        };
        assert_eq!(record.metadata.max_age, Some(60));
        assert!(matches!(
            read_reply(reply(&[None; 6]), NAMES),
            Ok(Reply::Empty)
        ));
        let mut forward = good;
        forward[2] = Some(b"\"r1.x\"");
        let Ok(Reply::Record(Some(record))) = read_reply(reply(&forward), NAMES) else {
            panic!("a record");
        };
        assert!(record.is_renewed());
        let mut no_meta = good;
        no_meta[0] = None;
        assert!(matches!(
            read_reply(reply(&no_meta), NAMES),
            Ok(Reply::Record(None))
        ));
        // Malformed timestamps (index 0) or max_age (index 1): the key exists, the record is refused.
        let bad_meta = [
            &b"x"[..],
            b"5",
            b"5.",
            b".9",
            b"5.9.",
            b"5.9.1",
            b"+5.9",
            b"5.-9",
            b"5.99999999999999999999",
        ];
        let bad_max_age = [
            &b""[..],
            b"x",
            b"+1",
            b"-1",
            b"1.5",
            b"99999999999999999999",
        ];
        let cases = bad_meta.iter().map(|bad| (0, *bad));
        for (index, bad) in cases.chain(bad_max_age.iter().map(|bad| (1, *bad))) {
            let mut values = good;
            values[index] = Some(bad);
            assert!(
                matches!(read_reply(reply(&values), NAMES), Ok(Reply::Record(None))),
                "value {index}: {bad:?}"
            );
        }
        assert!(read_reply(reply(&good[..5]), NAMES).is_err(), "too short");
        assert!(read_reply(Value::Int(1), NAMES).is_err());
        assert!(
            read_reply(
                Value::Array(vec![
                    Value::Int(1),
                    Value::Nil,
                    Value::Nil,
                    Value::Nil,
                    Value::Nil,
                    Value::Nil
                ]),
                NAMES
            )
            .is_err()
        );
    }

    #[test]
    fn refusals_for_now_are_outages() {
        for kind in [
            ServerErrorKind::ReadOnly,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::TryAgain,
            ServerErrorKind::MasterDown,
            ServerErrorKind::BusyLoading,
            ServerErrorKind::NoScript,
            ServerErrorKind::Moved,
            ServerErrorKind::Ask,
        ] {
            let error = RedisError::from((ErrorKind::Server(kind), "refused"));
            assert!(
                matches!(map_error(error), StoreError::Unavailable(_)),
                "{kind:?}"
            );
        }
        let oom = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "OOM"));
        assert!(matches!(map_error(oom), StoreError::Backend(_)));
    }

    #[test]
    fn metadata_round_trips() {
        for (created, updated) in [
            (0, 0),
            (1_700_000_000_000, 1_700_000_000_123),
            (u64::MAX, u64::MAX),
        ] {
            let meta = Metadata {
                created,
                updated,
                max_age: None,
            };
            let mut buf = [0; 48];
            let len = format_meta(&meta, &mut buf);
            assert_eq!(&buf[..len], format!("{created}.{updated}").as_bytes());
            assert_eq!(parse_meta(&buf[..len], None), Some(meta));
        }
    }

    #[test]
    fn numbers_parse_up_to_u64_max() {
        assert_eq!(parse_number(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_number(b"007"), Some(7));
        for bad in [
            &b"18446744073709551616"[..],
            b"99999999999999999999",
            b"",
            b"+1",
            b"1 ",
        ] {
            assert_eq!(parse_number(bad), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn digits_parse_as_str_parse(text in "[0-9]{1,22}") {
            proptest::prop_assert_eq!(parse_number(text.as_bytes()), text.parse::<u64>().ok());
        }

        #[test]
        fn numbers_parse_as_digits_only(text in "[0-9+ a-]{0,22}") {
            let expected = if text.bytes().all(|b| b.is_ascii_digit()) {
                text.parse::<u64>().ok()
            } else {
                None
            };
            proptest::prop_assert_eq!(parse_number(text.as_bytes()), expected);
        }
    }
}
