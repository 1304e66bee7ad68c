//! What the SQL stores share: the fields as one JSON object, the table name, errors, the
//! per-operation deadline and the background deletion of expired rows.

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::value::RawValue;

use super::{RecordCodec, StoreError};
use crate::owner::SessionHandle;
use crate::record::{Bytes, Metadata, RENEWED_FIELD, Record, RecordRef, SessionId};

/// How many expired rows one `DELETE` of [`delete_expired`](super::PostgresStore::delete_expired)
/// removes at most, so no statement holds locks on a large part of the table.
pub(super) const DELETE_BATCH: i64 = 1_000;

/// The key of a session's row: the SHA-256 of its id in unpadded base64url, as the Redis store
/// keys its hash, so a dump of the table does not hand out sessions. It is also the session's
/// [`SessionHandle`].
pub(super) fn row_key(id: &SessionId) -> SessionHandle {
    SessionHandle::of(id)
}

/// A table name as SQL names it: one identifier, or `schema.table` where the database has
/// schemas; each part letters, digits and underscores, not starting with a digit, at most 63
/// bytes. Returned quoted (`"schema"."table"`), with the bare name for index names.
pub(super) fn table_name(name: &str, schemas: bool) -> Result<(String, String), StoreError> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid = |part: &&str| {
        !part.is_empty()
            && part.len() <= 63
            && !part.as_bytes()[0].is_ascii_digit()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let shape_ok = match parts.len() {
        1 => true,
        2 => schemas,
        _ => false,
    };
    if !shape_ok || !parts.iter().all(valid) {
        return Err(StoreError::Unsupported(if schemas {
            "use this table name: expected `table` or `schema.table`, each of letters, digits and underscores"
        } else {
            "use this table name: expected letters, digits and underscores"
        }));
    }
    let quoted = parts
        .iter()
        .map(|part| format!("\"{part}\""))
        .collect::<Vec<_>>()
        .join(".");
    Ok((quoted, parts.join("_")))
}

/// The save's fields as one JSON object (name to value): the values of a JSON codec as they
/// are, others as base64url strings. Later pairs win over earlier ones of the same name.
pub(super) fn fields_object<'a>(
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
    codec: RecordCodec,
) -> Result<String, StoreError> {
    let mut object = serde_json::Map::new();
    for (name, value) in fields {
        object.insert(name.to_owned(), field_value(value, codec)?);
    }
    serde_json::to_string(&object).map_err(|error| StoreError::Codec(codec_error(&error)))
}

/// One field value as JSON (see [`fields_object`]).
pub(super) fn field_value(
    value: &[u8],
    codec: RecordCodec,
) -> Result<serde_json::Value, StoreError> {
    if codec.writes_json() {
        serde_json::from_slice(value).map_err(|error| StoreError::Codec(codec_error(&error)))
    } else {
        use base64::Engine as _;
        Ok(serde_json::Value::String(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        ))
    }
}

fn codec_error(error: &serde_json::Error) -> crate::codec::CodecError {
    crate::codec::CodecError::encode(format!("a session field is not valid JSON: {error}"))
}

/// The fields of a row's JSON object, as the codec's bytes; `None` when the object or a
/// value is malformed.
pub(super) fn parse_fields(
    text: &str,
    codec: RecordCodec,
) -> Option<Vec<(Cow<'static, str>, Bytes)>> {
    let object: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(text).ok()?;
    let mut fields = Vec::with_capacity(object.len());
    for (name, value) in object {
        let bytes = if codec.writes_json() {
            Bytes::from(value.get().as_bytes().to_vec())
        } else {
            use base64::Engine as _;
            let text: String = serde_json::from_str(value.get()).ok()?;
            Bytes::from(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()?,
            )
        };
        let name = if name == RENEWED_FIELD {
            Cow::Borrowed(RENEWED_FIELD)
        } else {
            Cow::Owned(name)
        };
        fields.push((name, bytes));
    }
    Some(fields)
}

/// A record out of a row's columns; `None` (with a warning) when they are malformed.
pub(super) fn record(
    fields: &str,
    created: i64,
    updated: i64,
    max_age: Option<i64>,
    codec: RecordCodec,
    cookie_name: &str,
) -> Option<Record> {
    let parsed = (|| {
        let metadata = Metadata {
            created: u64::try_from(created).ok()?,
            updated: u64::try_from(updated).ok()?,
            max_age: match max_age {
                Some(max_age) => Some(u64::try_from(max_age).ok()?),
                None => None,
            },
        };
        Some(Record::from_parts(metadata, parse_fields(fields, codec)?))
    })();
    if parsed.is_none() {
        tracing::warn!(
            cookie = cookie_name,
            "stored session row is malformed; starting a fresh session"
        );
    }
    parsed
}

/// The record in a row whose columns from `first` on are `fields` (JSON text), `created`,
/// `updated` and `max_age`; `None` (with a warning) when they are malformed.
pub(super) fn row_record<R>(
    row: &R,
    first: usize,
    codec: RecordCodec,
    cookie_name: &str,
) -> Result<Option<Record>, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let fields: String = row.try_get(first).map_err(StoreError::backend)?;
    Ok(record(
        &fields,
        row.try_get(first + 1).map_err(StoreError::backend)?,
        row.try_get(first + 2).map_err(StoreError::backend)?,
        row.try_get::<Option<i64>, _>(first + 3)
            .map_err(StoreError::backend)?,
        codec,
        cookie_name,
    ))
}

/// The answer of `list_owned` out of rows of `id` (the handle) and the columns of
/// [`row_record`].
pub(super) fn owned_records<R>(
    rows: Vec<R>,
    codec: RecordCodec,
    cookie_name: &str,
) -> Result<super::OwnedRecords, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get(0).map_err(StoreError::backend)?;
        let Some(handle) = SessionHandle::parse(&key) else {
            continue;
        };
        out.push((handle, row_record(&row, 1, codec, cookie_name)?));
    }
    Ok(out)
}

/// The fields a save writes: every field of the record it carries.
pub(super) fn save_fields(record: RecordRef<'_>, codec: RecordCodec) -> Result<String, StoreError> {
    fields_object(record.iter(), codec)
}

/// A time or duration for an `BIGINT` column (they all fit: Unix milliseconds until the year
/// 292 million).
pub(super) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Maps an error of sqlx to a store error: connection trouble is an outage (503 on load),
/// a timeout a timeout, everything else the database's answer.
pub(super) fn map_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::unavailable(error),
        other => StoreError::backend(other),
    }
}

/// Whether `error` is the database refusing a second row with one key (a taken id).
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Runs one operation with the store's deadline.
pub(super) async fn bounded<T>(
    timeout: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, operation)
        .await
        .unwrap_or(Err(StoreError::Timeout))
}

/// The background deletion of expired rows: aborted when dropped, which happens with the last
/// clone of its store.
#[derive(Debug, Default)]
pub(super) struct Cleanup(Mutex<Option<tokio::task::AbortHandle>>);

impl Cleanup {
    /// Starts deleting expired rows every `every`, replacing a task started before. The task
    /// holds the store weakly, and ends when the store is gone.
    pub(super) fn start<S, F, Fut>(&self, store: Weak<S>, every: Duration, run: F)
    where
        S: Send + Sync + 'static,
        F: Fn(std::sync::Arc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<u64, StoreError>> + Send,
    {
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(store) = store.upgrade() else {
                    return;
                };
                match run(store).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "deleted expired sessions"),
                    Err(error) => tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "could not delete expired sessions; trying again later"
                    ),
                }
            }
        });
        let previous = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task.abort_handle());
        if let Some(previous) = previous {
            previous.abort();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(task) = self
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}
