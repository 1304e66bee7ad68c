//! The SQLite store: one row per session, the fields as one JSON text merged field by field.

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, SqlSafeStr as _, SqlStr};

use super::sql::{self, Cleanup, DELETE_BATCH, int, map_error, row_key};
use super::{
    Delete, ListOwned, Load, OwnedRecords, Revoke, Save, SaveOp, SaveOutcome, SessionStore,
    StoreError, StoreKind,
};
use crate::record::{Record, SessionId};

/// Keeps sessions in an SQLite database, through a sqlx pool: the embedded database of small
/// deployments. Only the session id travels in the cookie.
///
/// One row per session as in [`PostgresStore`](super::PostgresStore) (keyed by the SHA-256 of
/// the id; the fields as one JSON object in a `TEXT` column; `created`, `updated`, `max_age`,
/// `expires`, the owner; indexes on `expires` and the owner), created by
/// [`SqliteStore::migrate`]. A save sets only the changed fields, with `json_set` (SQLite's
/// `json_patch` would merge objects inside a field and drop `null` values), and moves the expiry
/// in the same `UPDATE` of a live row, so concurrent requests that change different fields both
/// land and a deleted session is never recreated; `regenerate` is one transaction. Expired rows
/// never load; [`SqliteStore::delete_expired`] and [`SqliteStore::with_cleanup`] delete them.
///
/// [`SqliteStore::connect`] opens the file in WAL mode (readers do not wait for the writer),
/// creating it if missing, with a busy timeout equal to the store's timeout.
///
/// # Examples
///
/// ```no_run
/// use session_runtime::SessionLayer;
/// use session_runtime::store::SqliteStore;
///
/// # async fn run() -> Result<(), session_runtime::store::StoreError> {
/// let store = SqliteStore::connect("sqlite://sessions.db").await?;
/// store.migrate().await?;
/// let layer = SessionLayer::new(store.with_cleanup(std::time::Duration::from_secs(600)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    timeout: Duration,
    table: String,
    bare: String,
    queries: Queries,
    cleanup: Cleanup,
}

/// The statements that do not depend on the fields a save carries.
struct Queries {
    load: SqlStr,
    create: SqlStr,
    delete: SqlStr,
    list: SqlStr,
    delete_expired: SqlStr,
}

/// A statement built from the validated table name and field names the store checked: no user
/// data goes into it.
fn statement(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}

/// A live row: not expired, not a renewal forward.
const LIVE: &str = "expires > ? AND json_type(fields, '$.\"__renewed\"') IS NULL";

impl Queries {
    fn new(t: &str) -> Self {
        Self {
            load: statement(format!(
                "SELECT fields, created, updated, max_age FROM {t} WHERE id = ? AND expires > ?"
            )),
            create: statement(format!(
                "INSERT INTO {t} (id, cookie, fields, created, updated, max_age, expires, owner) \
                 VALUES (?, ?, json(?), ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
            )),
            delete: statement(format!("DELETE FROM {t} WHERE id = ?")),
            list: statement(format!(
                "SELECT id, fields, created, updated, max_age FROM {t} \
                 WHERE cookie = ? AND owner = ? AND expires > ?"
            )),
            delete_expired: statement(format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires <= ? LIMIT ?)"
            )),
        }
    }
}

/// `fields` with the save's fields set: `json_set(fields, path, value, ...)`, one pair of
/// parameters per field (the path, then the value: `json(?)` for a JSON codec's values, a
/// string for others).
fn set_fields(fields: &str, count: usize, json: bool) -> String {
    if count == 0 {
        return fields.to_owned();
    }
    let value = if json { "json(?)" } else { "?" };
    let mut out = format!("json_set({fields}");
    for _ in 0..count {
        out.push_str(", ?, ");
        out.push_str(value);
    }
    out.push(')');
    out
}

/// The fields of `fields` named in the JSON array parameter, the others dropped (a purge).
fn purged(fields: &str) -> String {
    format!(
        "(SELECT json_group_object(key, CASE type WHEN 'true' THEN json('true') \
         WHEN 'false' THEN json('false') WHEN 'object' THEN json(value) \
         WHEN 'array' THEN json(value) ELSE value END) FROM json_each({fields}) \
         WHERE key IN (SELECT value FROM json_each(?)))"
    )
}

/// The JSON path of a field: `$."name"`. Names with a `"` or a `\` cannot be written this way.
fn path(name: &str) -> Result<String, StoreError> {
    if name.contains(['"', '\\']) {
        return Err(StoreError::Codec(crate::codec::CodecError::encode(
            "the SQLite store cannot keep a field whose name contains `\"` or `\\`",
        )));
    }
    Ok(format!("$.\"{name}\""))
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.inner.table)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Uses `pool`, with the table `sessions` and a timeout of one second per operation.
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self::build(
            pool,
            "\"sessions\"".to_owned(),
            "sessions".to_owned(),
            Duration::from_secs(1),
        )
    }

    /// Opens the database at `url` (`sqlite://PATH`, created if missing; `sqlite::memory:` for
    /// a database that lives as long as the pool) in WAL mode, with a pool of up to 8
    /// connections whose acquire and busy timeouts are the store's timeout (one second).
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the URL is invalid or the file cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let timeout = Duration::from_secs(1);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(timeout)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(map_error)?;
        Ok(Self::new(pool))
    }

    fn build(pool: SqlitePool, table: String, bare: String, timeout: Duration) -> Self {
        let queries = Queries::new(&table);
        Self {
            inner: Arc::new(Inner {
                pool,
                timeout,
                table,
                bare,
                queries,
                cleanup: Cleanup::default(),
            }),
        }
    }

    /// Uses the table `name` (letters, digits and underscores).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] for any other name: it goes into SQL statements.
    pub fn with_table(self, name: &str) -> Result<Self, StoreError> {
        let (table, bare) = sql::table_name(name, false)?;
        Ok(Self::build(
            self.inner.pool.clone(),
            table,
            bare,
            self.inner.timeout,
        ))
    }

    /// Sets how long one operation may take before it fails with [`StoreError::Timeout`]. The
    /// default is one second.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let inner = &self.inner;
        Self::build(
            inner.pool.clone(),
            inner.table.clone(),
            inner.bare.clone(),
            timeout,
        )
    }

    /// Deletes expired rows every `every` in a background task (tokio), in batches of 1,000;
    /// the task ends when the last clone of this store is dropped. Call it last: `with_table`
    /// and `with_timeout` return a store of their own, without the task.
    #[must_use]
    pub fn with_cleanup(self, every: Duration) -> Self {
        let weak = Arc::downgrade(&self.inner);
        self.inner
            .cleanup
            .start(weak, every, |inner: Arc<Inner>| async move {
                SqliteStore { inner }.delete_expired().await
            });
        self
    }

    /// The table, as the statements name it (quoted).
    #[must_use]
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Creates the table and its indexes if they do not exist (idempotent).
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the database refuses.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let Inner { table, bare, .. } = &*self.inner;
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id TEXT PRIMARY KEY NOT NULL, \
                 cookie TEXT NOT NULL, \
                 fields TEXT NOT NULL, \
                 created INTEGER NOT NULL, \
                 updated INTEGER NOT NULL, \
                 max_age INTEGER, \
                 expires INTEGER NOT NULL, \
                 owner TEXT)"
            ),
            format!("CREATE INDEX IF NOT EXISTS \"{bare}_expires\" ON {table} (expires)"),
            format!(
                "CREATE INDEX IF NOT EXISTS \"{bare}_owner\" ON {table} (cookie, owner) WHERE owner IS NOT NULL"
            ),
        ];
        let pool = &self.inner.pool;
        sql::bounded(self.inner.timeout.max(Duration::from_secs(10)), async {
            for sql in statements {
                sqlx::query(AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .map_err(map_error)?;
            }
            Ok(())
        })
        .await
    }

    /// Deletes the rows that expired (in batches of 1,000); returns how many.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the database fails; rows deleted before stay deleted.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        use crate::config::Clock as _;
        self.delete_expired_before(crate::config::SystemClock.now_millis())
            .await
    }

    /// [`SqliteStore::delete_expired`] with another idea of the current time (Unix
    /// milliseconds), for a layer that runs on a clock of its own.
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::delete_expired`].
    pub async fn delete_expired_before(&self, now: u64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = sql::bounded(self.inner.timeout, async {
                sqlx::query(self.inner.queries.delete_expired.clone())
                    .bind(int(now))
                    .bind(DELETE_BATCH)
                    .execute(&self.inner.pool)
                    .await
                    .map_err(map_error)
            })
            .await?
            .rows_affected();
            total += deleted;
            if deleted < DELETE_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }

    /// The (path, value) parameters of a save's fields.
    fn field_params(save: &Save<'_>) -> Result<Vec<(String, String)>, StoreError> {
        save.record
            .iter()
            .map(|(name, value)| {
                let value = if save.codec.writes_json() {
                    std::str::from_utf8(value)
                        .map_err(|_| {
                            StoreError::Codec(crate::codec::CodecError::encode(
                                "a JSON field value is not UTF-8",
                            ))
                        })?
                        .to_owned()
                } else {
                    match sql::field_value(value, save.codec)? {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    }
                };
                Ok((path(name)?, value))
            })
            .collect()
    }

    /// Runs the write of `save`: `Ok(rows)`, or `Err(())` (inside) when a new key was taken.
    #[expect(
        clippy::too_many_lines,
        reason = "one statement per operation, side by side"
    )]
    async fn write(&self, save: &Save<'_>) -> Result<Result<u64, ()>, StoreError> {
        let t = &self.inner.table;
        let meta = save.record.metadata;
        let owner = save.owner.and_then(|entry| entry.owner);
        let json = save.codec.writes_json();
        let params = match save.op {
            SaveOp::Touch { .. } => Vec::new(),
            _ => Self::field_params(save)?,
        };
        let purge = save
            .purge
            .map(|names| serde_json::to_string(names).unwrap_or_default());
        let pool = &self.inner.pool;
        sql::bounded(self.inner.timeout, async {
            match save.op {
                SaveOp::Create { id } => {
                    let object = sql::save_fields(save.record, save.codec)?;
                    let done = sqlx::query(self.inner.queries.create.clone())
                        .bind(row_key(id).as_str().to_owned())
                        .bind(save.cookie_name)
                        .bind(object)
                        .bind(int(meta.created))
                        .bind(int(meta.updated))
                        .bind(meta.max_age.map(int))
                        .bind(int(save.expires_at))
                        .bind(owner)
                        .execute(pool)
                        .await
                        .map_err(map_error)?;
                    Ok(Ok(done.rows_affected()))
                }
                SaveOp::Update { id } | SaveOp::Touch { id } => {
                    let base = if purge.is_some() {
                        purged("fields")
                    } else {
                        "fields".to_owned()
                    };
                    let sql = format!(
                        "UPDATE {t} SET fields = {}, updated = ?, max_age = COALESCE(?, max_age), \
                         expires = ?, owner = CASE WHEN ? THEN ? ELSE owner END \
                         WHERE id = ? AND cookie = ? AND {LIVE}",
                        set_fields(&base, params.len(), json)
                    );
                    let mut query = sqlx::query(statement(sql));
                    if let Some(names) = &purge {
                        query = query.bind(names.clone());
                    }
                    for (path, value) in &params {
                        query = query.bind(path.clone()).bind(value.clone());
                    }
                    let done = query
                        .bind(int(meta.updated))
                        .bind(meta.max_age.map(int))
                        .bind(int(save.expires_at))
                        .bind(save.owner.is_some())
                        .bind(owner)
                        .bind(row_key(id).as_str().to_owned())
                        .bind(save.cookie_name)
                        .bind(int(save.now))
                        .execute(pool)
                        .await
                        .map_err(map_error)?;
                    Ok(Ok(done.rows_affected()))
                }
                SaveOp::Regenerate { old, new } | SaveOp::Renew { old, new } => {
                    let base = if purge.is_some() {
                        purged("fields")
                    } else {
                        "fields".to_owned()
                    };
                    let sql = format!(
                        "INSERT INTO {t} (id, cookie, fields, created, updated, max_age, expires, owner) \
                         SELECT ?, cookie, {}, ?, ?, COALESCE(?, max_age), ?, ? FROM {t} \
                         WHERE id = ? AND cookie = ? AND {LIVE}",
                        set_fields(&base, params.len(), json)
                    );
                    let mut query = sqlx::query(statement(sql)).bind(row_key(new).as_str().to_owned());
                    if let Some(names) = &purge {
                        query = query.bind(names.clone());
                    }
                    for (path, value) in &params {
                        query = query.bind(path.clone()).bind(value.clone());
                    }
                    let query = query
                        .bind(int(meta.created))
                        .bind(int(meta.updated))
                        .bind(meta.max_age.map(int))
                        .bind(int(save.expires_at))
                        .bind(owner)
                        .bind(row_key(old).as_str().to_owned())
                        .bind(save.cookie_name)
                        .bind(int(save.now));
                    // One transaction: the new row, then the old one's delete (a regeneration).
                    let mut tx = pool
                        .begin_with("BEGIN IMMEDIATE")
                        .await
                        .map_err(map_error)?;
                    let inserted = match query.execute(&mut *tx).await {
                        Ok(done) => done.rows_affected(),
                        Err(error) if sql::is_unique_violation(&error) => return Ok(Err(())),
                        Err(error) => return Err(map_error(error)),
                    };
                    if inserted == 1 && matches!(save.op, SaveOp::Regenerate { .. }) {
                        sqlx::query(self.inner.queries.delete.clone())
                            .bind(row_key(old).as_str().to_owned())
                            .execute(&mut *tx)
                            .await
                            .map_err(map_error)?;
                    }
                    tx.commit().await.map_err(map_error)?;
                    Ok(Ok(inserted))
                }
                SaveOp::Seal => Err(StoreError::backend(
                    "the SQLite store keeps records on the server and cannot seal a cookie",
                )),
            }
        })
        .await
    }
}

impl SessionStore for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Server
    }

    async fn load(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        let Some(id) = SessionId::parse(load.value) else {
            return Ok(None);
        };
        let query = sqlx::query(self.inner.queries.load.clone())
            .bind(row_key(&id).as_str().to_owned())
            .bind(int(load.now));
        let row = sql::bounded(self.inner.timeout, async {
            query
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(map_error)
        })
        .await?;
        match row {
            Some(row) => Ok(sql::row_record(&row, 0, load.codec, load.cookie_name)?),
            None => Ok(None),
        }
    }

    async fn save(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        let id = match save.op {
            SaveOp::Create { id }
            | SaveOp::Update { id }
            | SaveOp::Touch { id }
            | SaveOp::Regenerate { new: id, .. }
            | SaveOp::Renew { new: id, .. } => id,
            SaveOp::Seal => {
                return Err(StoreError::backend(
                    "the SQLite store keeps records on the server and cannot seal a cookie",
                ));
            }
        };
        Ok(match self.write(&save).await? {
            Ok(0) if matches!(save.op, SaveOp::Create { .. }) => SaveOutcome::IdTaken,
            Ok(0) => SaveOutcome::Missing,
            Ok(_) => SaveOutcome::Saved(id.as_str().to_owned()),
            Err(()) => SaveOutcome::IdTaken,
        })
    }

    async fn delete(&self, delete: Delete<'_>) -> Result<(), StoreError> {
        let query = sqlx::query(self.inner.queries.delete.clone())
            .bind(row_key(delete.id).as_str().to_owned());
        sql::bounded(self.inner.timeout, async {
            query.execute(&self.inner.pool).await.map_err(map_error)
        })
        .await?;
        Ok(())
    }

    async fn list_owned(&self, list: ListOwned<'_>) -> Result<OwnedRecords, StoreError> {
        let query = sqlx::query(self.inner.queries.list.clone())
            .bind(list.cookie_name)
            .bind(list.owner)
            .bind(int(list.now));
        let rows = sql::bounded(self.inner.timeout, async {
            query.fetch_all(&self.inner.pool).await.map_err(map_error)
        })
        .await?;
        sql::owned_records(rows, list.codec, list.cookie_name)
    }

    async fn revoke(&self, revoke: Revoke<'_>) -> Result<usize, StoreError> {
        if revoke.sessions.is_empty() {
            return Ok(0);
        }
        // The owner column is the index: a row belongs to the owner while it holds the key.
        let keys: Vec<&str> = revoke
            .sessions
            .iter()
            .map(|(handle, _)| handle.as_str())
            .collect();
        let keys = serde_json::to_string(&keys).unwrap_or_default();
        let sql = format!(
            "DELETE FROM {} WHERE id IN (SELECT value FROM json_each(?)) AND cookie = ? AND owner = ?",
            self.inner.table
        );
        let query = sqlx::query(statement(sql))
            .bind(keys)
            .bind(revoke.cookie_name)
            .bind(revoke.owner);
        let done = sql::bounded(self.inner.timeout, async {
            query.execute(&self.inner.pool).await.map_err(map_error)
        })
        .await?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }
}
