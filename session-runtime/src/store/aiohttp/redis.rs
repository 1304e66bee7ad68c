//! aiohttp_session's `RedisStorage` format on top of [`RedisStore`]'s connection.

use std::fmt;

use redis::{AsyncCommands as _, Script};

use super::{decode_envelope, encode_envelope};
use crate::record::{IdFormat, Record};
use crate::store::{
    CookieQuoting, Delete, Load, RedisStore, Save, SaveOp, SaveOutcome, SessionStore, StoreError,
    StoreFormat, StoreKind,
};

/// Writes an existing record. `KEYS[1]` is the key; `ARGV[1]` the mode (`u`: replace the value,
/// `t`: move the expiry only); `ARGV[2]` the TTL in seconds; `ARGV[3]` the envelope. Returns 1
/// when written, 0 when the key is gone or holds `{}` (invalidated by `aiohttp_session`): a save
/// never resurrects a session.
const UPDATE: &str = r"
local value = redis.call('GET', KEYS[1])
if not value or value == '{}' then return 0 end
if ARGV[1] == 't' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
end
return 1
";

/// `aiohttp_session.redis_storage.RedisStorage`'s format: the cookie holds a 32-hex-character id
/// ([`IdFormat::Hex128`], the shape of Python's `uuid4().hex`), and the key
/// `<cookie_name>_<id>` holds the JSON envelope `{"created": <unix seconds>, "session": {...}}`
/// as a string, written with `SET … EX <max_age>`.
///
/// It runs on the connection of a [`RedisStore`] (single node or cluster; every command touches
/// one key), whose timeouts apply and whose key prefix does not: the keys are named as
/// aiohttp_session names them.
///
/// | operation | command |
/// |---|---|
/// | load | `GET` |
/// | save (new session) | `SET key envelope EX ttl NX` (a taken id is retried with another) |
/// | save (existing session) | a script: `GET`, then `SET key envelope EX ttl` unless the key is gone or holds `{}` |
/// | regenerate | `GET` of the old key (a session deleted meanwhile is not moved), `SET … NX` under the new id, then `DEL` of the old key |
/// | invalidate | `DEL` (aiohttp_session writes `{}`; to it, a missing key means the same) |
///
/// Every key gets a TTL, the session's idle timeout, even where aiohttp_session with
/// `max_age=None` writes none. It keeps no index by owner: the Python app writing the same
/// sessions would not keep one, so no listing could be complete, and the per-user API
/// ([`owner`](crate::owner)) answers [`StoreError::Unsupported`](crate::store::StoreError::Unsupported).
/// Ids from cookies that are not 32 lowercase hexadecimal characters
/// (a Python `key_factory` of another shape) are not accepted. See the [module docs](super) for
/// the semantics across servers.
///
/// # Examples
///
/// ```no_run
/// use session_runtime::SessionLayer;
/// use session_runtime::store::RedisStore;
/// use session_runtime::store::aiohttp::AiohttpRedisStore;
///
/// # async fn run() -> Result<(), session_runtime::store::StoreError> {
/// // Python: RedisStorage(redis.asyncio.from_url("redis://127.0.0.1:6379"), max_age=3600)
/// let store = AiohttpRedisStore::new(RedisStore::connect("redis://127.0.0.1:6379").await?);
/// let layer = SessionLayer::new(store);
/// # Ok(())
/// # }
/// ```
///
/// # Moving to `RedisStore` without logging anyone out
///
/// Once Python is gone, move to the native stores (field-level writes, 256-bit ids, stored
/// creation time and per-session `max_age`, ciphertexts bound to their cookie). Changing the
/// store logs everyone out once. To avoid that, give the native session type another cookie
/// name and serve both types from one store that routes by cookie name ([`SessionStore`]
/// receives it in every call): a request with a live legacy session copies it over and
/// invalidates it. After `max_age`, no legacy session is left; drop the legacy type.
///
/// ```no_run
/// use session_runtime::session::Record;
/// use session_runtime::store::aiohttp::AiohttpRedisStore;
/// use session_runtime::store::{
///     Delete, Load, RedisStore, Save, SaveOutcome, SessionStore, StoreError, StoreFormat,
///     StoreKind,
/// };
/// use session_runtime::{Session, SessionLayer, TypedSession};
///
/// #[derive(Session)]
/// #[session(cookie_name = "AIOHTTP_SESSION", max_age = 3600)]
/// struct Legacy {
///     visits: u64,
/// }
///
/// #[derive(Session)]
/// #[session(cookie_name = "__Host-session", max_age = 3600)]
/// struct Account {
///     visits: u64,
/// }
///
/// /// The legacy cookie on the aiohttp_session format, everything else on the native one.
/// struct Bridge {
///     legacy: AiohttpRedisStore,
///     native: RedisStore,
/// }
///
/// impl SessionStore for Bridge {
///     fn kind(&self) -> StoreKind {
///         StoreKind::Server // both are
///     }
///
///     fn format(&self, cookie_name: &str) -> StoreFormat {
///         match cookie_name {
///             Legacy::COOKIE_NAME => self.legacy.format(cookie_name),
///             _ => self.native.format(cookie_name),
///         }
///     }
///
///     async fn load(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
///         match load.cookie_name {
///             Legacy::COOKIE_NAME => self.legacy.load(load).await,
///             _ => self.native.load(load).await,
///         }
///     }
///
///     async fn save(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
///         match save.cookie_name {
///             Legacy::COOKIE_NAME => self.legacy.save(save).await,
///             _ => self.native.save(save).await,
///         }
///     }
///
///     async fn delete(&self, delete: Delete<'_>) -> Result<(), StoreError> {
///         match delete.cookie_name {
///             Legacy::COOKIE_NAME => self.legacy.delete(delete).await,
///             _ => self.native.delete(delete).await,
///         }
///     }
/// }
///
/// async fn visit(
///     legacy: Option<TypedSession<Legacy>>,
///     mut account: TypedSession<Account>,
/// ) -> String {
///     if let Some(mut legacy) = legacy {
///         if account.is_new() {
///             account.set_visits(*legacy.visits()); // copy every field over
///         }
///         legacy.invalidate(); // deletes the key, removes the old cookie
///     }
///     *account.visits_mut() += 1;
///     account.visits().to_string()
/// }
///
/// # async fn run() -> Result<(), StoreError> {
/// let url = "redis://127.0.0.1:6379";
/// let bridge = Bridge {
///     legacy: AiohttpRedisStore::connect(url).await?,
///     native: RedisStore::connect(url).await?,
/// };
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(visit))
///     .layer(SessionLayer::new(bridge));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AiohttpRedisStore {
    redis: RedisStore,
    update: Script,
}

impl fmt::Debug for AiohttpRedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiohttpRedisStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

/// The TTL of a write in whole seconds, at least one (`EX 0` is an error in Redis).
fn ttl_secs(save: &Save<'_>) -> u64 {
    save.expires_at
        .saturating_sub(save.now)
        .div_ceil(1000)
        .max(1)
}

impl AiohttpRedisStore {
    /// Speaks aiohttp_session's format over `redis`'s connection.
    #[must_use]
    pub fn new(redis: RedisStore) -> Self {
        Self {
            redis,
            update: Script::new(UPDATE),
        }
    }

    /// Connects to a single Redis node with [`RedisStore`]'s default settings.
    ///
    /// # Errors
    ///
    /// See [`RedisStoreBuilder::connect`](crate::store::RedisStoreBuilder::connect).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(RedisStore::connect(url).await?))
    }

    /// Returns aiohttp_session's key of a session: `<cookie_name>_<id>`.
    fn key(cookie_name: &str, id: &str) -> String {
        let mut key = String::with_capacity(cookie_name.len() + 1 + id.len());
        key.push_str(cookie_name);
        key.push('_');
        key.push_str(id);
        key
    }

    /// `SET key value EX ttl NX`: `true` when written, `false` when the key exists.
    async fn create(&self, key: String, value: &str, ttl: u64) -> Result<bool, StoreError> {
        let written: Option<String> = self
            .redis
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .arg("NX")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(written.is_some())
    }
}

impl SessionStore for AiohttpRedisStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Server
    }

    fn format(&self, _: &str) -> StoreFormat {
        StoreFormat::new()
            .with_ids(IdFormat::Hex128)
            .with_quoting(CookieQuoting::Python)
            .with_whole_records()
    }

    async fn load(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        // The runtime only passes validated ids; parse again so no other string becomes a key.
        let Some(id) = IdFormat::Hex128.parse(load.value) else {
            return Ok(None);
        };
        let key = Self::key(load.cookie_name, id.as_str());
        let value: Option<Vec<u8>> = self
            .redis
            .run(|mut conn| async move { conn.get(&key).await })
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let decoded = std::str::from_utf8(&value)
            .map_err(crate::codec::CodecError::decode)
            .and_then(decode_envelope);
        match decoded {
            Ok(record) => Ok(record),
            Err(error) => {
                tracing::warn!(
                    cookie = load.cookie_name,
                    error = &error as &dyn std::error::Error,
                    "stored aiohttp_session record does not decode; starting a fresh session"
                );
                Ok(None)
            }
        }
    }

    async fn save(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        let ttl = ttl_secs(&save);
        let name = save.cookie_name;
        match save.op {
            SaveOp::Create { id } | SaveOp::Renew { new: id, .. } => {
                let value = encode_envelope(save.record)?;
                Ok(
                    if self
                        .create(Self::key(name, id.as_str()), &value, ttl)
                        .await?
                    {
                        SaveOutcome::Saved(id.as_str().to_owned())
                    } else {
                        SaveOutcome::IdTaken
                    },
                )
            }
            SaveOp::Regenerate { old, new } => {
                // A session a logout deleted (or aiohttp_session emptied to `{}`) meanwhile does
                // not come back under a new id.
                let old_key = Self::key(name, old.as_str());
                let stored: Option<String> = self
                    .redis
                    .run(|mut conn| async move { conn.get(&old_key).await })
                    .await?;
                if stored.is_none_or(|value| value == "{}") {
                    return Ok(SaveOutcome::Missing);
                }
                let value = encode_envelope(save.record)?;
                if !self
                    .create(Self::key(name, new.as_str()), &value, ttl)
                    .await?
                {
                    return Ok(SaveOutcome::IdTaken);
                }
                self.delete(Delete {
                    cookie_name: name,
                    id: old,
                })
                .await?;
                Ok(SaveOutcome::Saved(new.as_str().to_owned()))
            }
            SaveOp::Update { id } | SaveOp::Touch { id } => {
                let touch = matches!(save.op, SaveOp::Touch { .. });
                let value = if touch {
                    String::new()
                } else {
                    encode_envelope(save.record)?
                };
                let mut invocation = self.update.key(Self::key(name, id.as_str()));
                invocation
                    .arg(if touch { "t" } else { "u" })
                    .arg(ttl)
                    .arg(value);
                let written: i64 = self
                    .redis
                    .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                    .await?;
                Ok(if written == 1 {
                    SaveOutcome::Saved(id.as_str().to_owned())
                } else {
                    SaveOutcome::Missing
                })
            }
            SaveOp::Seal => Err(StoreError::backend(
                "the aiohttp_session Redis store keeps records on the server and cannot seal a cookie",
            )),
        }
    }

    async fn delete(&self, delete: Delete<'_>) -> Result<(), StoreError> {
        let key = Self::key(delete.cookie_name, delete.id.as_str());
        self.redis
            .run(|mut conn| async move { conn.del::<_, i64>(&key).await })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_as_aiohttp_session_names_them() {
        assert_eq!(
            AiohttpRedisStore::key("AIOHTTP_SESSION", "6f8ef6f38f274a74b0f8eb8931f076ee"),
            "AIOHTTP_SESSION_6f8ef6f38f274a74b0f8eb8931f076ee"
        );
    }
}
