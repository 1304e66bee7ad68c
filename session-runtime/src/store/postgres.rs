//! The PostgreSQL store: one row per session, the fields as one `jsonb` object merged field by
//! field.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr as _, SqlStr};

use super::sql::{self, Cleanup, DELETE_BATCH, int, map_error, row_key};
use super::{
    Delete, ListOwned, Load, OwnedRecords, Revoke, Save, SaveOp, SaveOutcome, SessionStore,
    StoreError, StoreKind,
};
use crate::record::{Record, SessionId};

/// Keeps sessions in a PostgreSQL table, through a sqlx pool. Only the session id travels in
/// the cookie.
///
/// One row per session, keyed by the SHA-256 of the id (base64url; a dump of the table does not
/// hand out sessions): the cookie name, the fields as one `jsonb` object (a JSON codec's values
/// as they are, other codecs' as base64 strings), `created`, `updated`, `max_age`, `expires`
/// (Unix milliseconds) and the owner (`#[session(owner)]`), with indexes on `expires` and on
/// the owner. [`PostgresStore::migrate`] creates them.
///
/// | operation | statements (one round trip each) |
/// |---|---|
/// | load | `SELECT` of the row, if it has not expired |
/// | save (new session) | `INSERT … ON CONFLICT DO NOTHING` (never overwrites) |
/// | save (changed fields) | `UPDATE … SET fields = fields \|\| $changed, expires = …` of a live row only: concurrent requests that change different fields both land, and a deleted session is not recreated |
/// | rolling touch | the same `UPDATE` with no field |
/// | regenerate | one statement: `DELETE` of the old row `RETURNING` its fields, `INSERT` under the new key (atomic: a taken key rolls the delete back) |
/// | periodic renewal | `INSERT … SELECT` from the old row |
/// | invalidate | `DELETE` |
///
/// A request that extracts no session costs nothing, a read one round trip, a write two.
/// Expired rows never load; [`PostgresStore::delete_expired`] deletes them in batches, and
/// [`PostgresStore::with_cleanup`] does it in the background. Every operation is bounded by
/// [`PostgresStore::with_timeout`] (one second by default): an unreachable database answers 503
/// on load and on save (without `Set-Cookie`) within it, and the pool reconnects by itself.
///
/// # Examples
///
/// ```no_run
/// use session_runtime::SessionLayer;
/// use session_runtime::store::PostgresStore;
///
/// # async fn run() -> Result<(), session_runtime::store::StoreError> {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app")
///     .await?
///     .with_table("auth.sessions")?;
/// store.migrate().await?;
/// let store = store.with_cleanup(std::time::Duration::from_secs(600));
/// let layer = SessionLayer::new(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    timeout: Duration,
    /// The quoted table name and the bare one for index names.
    table: String,
    bare: String,
    queries: Queries,
    cleanup: Cleanup,
}

/// The statements, built once per table name (a clone is a reference count).
struct Queries {
    load: SqlStr,
    create: SqlStr,
    update: SqlStr,
    purge: SqlStr,
    regenerate: SqlStr,
    renew: SqlStr,
    delete: SqlStr,
    list: SqlStr,
    revoke: SqlStr,
    delete_expired: SqlStr,
}

/// A statement built from the (validated, quoted) table name: no user data goes into it.
fn statement(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}

impl Queries {
    fn new(t: &str) -> Self {
        // A live row: not expired ($now), not a renewal forward.
        let live = |now: &str, row: &str| {
            format!("{row}expires > {now} AND NOT ({row}fields ? '__renewed')")
        };
        // The row's fields, without those not named in `names` when `names` is not null.
        let purged = |fields: &str, names: &str| {
            format!(
                "(SELECT COALESCE(jsonb_object_agg(key, value), '{{}}'::jsonb) FROM jsonb_each({fields}) \
                 WHERE {names}::text[] IS NULL OR key = ANY({names}::text[]))"
            )
        };
        // $1 key, $2 cookie, $3 fields, $4 updated, $5 max_age, $6 expires, $7 whether to set
        // the owner, $8 the owner, $9 now (, $10 the names a purge keeps).
        let update = |fields: String| {
            format!(
                "UPDATE {t} SET fields = {fields} || $3::jsonb, updated = $4, \
                 max_age = COALESCE($5, max_age), expires = $6, \
                 owner = CASE WHEN $7 THEN $8 ELSE owner END \
                 WHERE id = $1 AND cookie = $2 AND {}",
                live("$9", "")
            )
        };
        // $1 new key, $2 cookie, $3 fields, $4 created, $5 updated, $6 max_age, $7 expires,
        // $8 owner, $9 now, $10 old key, $11 the names a purge keeps (null: keep all).
        let insert = format!(
            "INSERT INTO {t} (id, cookie, fields, created, updated, max_age, expires, owner) \
             SELECT $1, $2, {} || $3::jsonb, $4, $5, COALESCE($6, old.max_age), $7, $8",
            purged("old.fields", "$11")
        );
        Self {
            load: statement(format!(
                "SELECT fields::text, created, updated, max_age FROM {t} WHERE id = $1 AND expires > $2"
            )),
            create: statement(format!(
                "INSERT INTO {t} (id, cookie, fields, created, updated, max_age, expires, owner) \
                 VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING"
            )),
            update: statement(update("fields".to_owned())),
            purge: statement(update(purged("fields", "$10"))),
            regenerate: statement(format!(
                "WITH old AS (DELETE FROM {t} WHERE id = $10 AND cookie = $2 AND {} \
                 RETURNING fields, max_age) {insert} FROM old",
                live("$9", "")
            )),
            renew: statement(format!(
                "{insert} FROM {t} AS old WHERE old.id = $10 AND old.cookie = $2 AND {}",
                live("$9", "old.")
            )),
            delete: statement(format!("DELETE FROM {t} WHERE id = $1")),
            list: statement(format!(
                "SELECT id, fields::text, created, updated, max_age FROM {t} \
                 WHERE cookie = $1 AND owner = $2 AND expires > $3"
            )),
            revoke: statement(format!(
                "DELETE FROM {t} WHERE id = ANY($1) AND cookie = $2 AND owner = $3"
            )),
            delete_expired: statement(format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires <= $1 LIMIT $2)"
            )),
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.table)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Uses `pool`, with the table `sessions` (in the connection's search path) and a
    /// timeout of one second per operation. Give the pool an acquire timeout no longer than the
    /// store's (sqlx's default waits 30 seconds; the store's deadline cuts it short anyway), and
    /// turn off `test_before_acquire`, which costs a round trip before every statement.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::build(
            pool,
            "\"sessions\"".to_owned(),
            "sessions".to_owned(),
            Duration::from_secs(1),
        )
    }

    /// Connects a pool of up to 10 connections to `url` whose connect and acquire timeouts are
    /// the store's timeout (one second), so an unreachable database answers quickly.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the URL is invalid. The database need not be up yet: the
    /// pool connects on first use.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let timeout = Duration::from_secs(1);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(timeout)
            // No ping before each use: one round trip fewer on every request (a broken
            // connection fails the statement, and the pool replaces it).
            .test_before_acquire(false)
            .connect_lazy(url)
            .map_err(StoreError::backend)?;
        // `connect_lazy` is not async; keep `connect` async so it may check the server later
        // without an API change.
        std::future::ready(()).await;
        Ok(Self::new(pool))
    }

    fn build(pool: PgPool, table: String, bare: String, timeout: Duration) -> Self {
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

    /// Uses the table `name`: `table` or `schema.table`, each part of letters, digits and
    /// underscores (the schema must exist).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] for any other name: it goes into SQL statements.
    pub fn with_table(self, name: &str) -> Result<Self, StoreError> {
        let (table, bare) = sql::table_name(name, true)?;
        Ok(Self::build(
            self.inner.pool.clone(),
            table,
            bare,
            self.inner.timeout,
        ))
    }

    /// Sets how long one operation may take before it fails with [`StoreError::Timeout`]
    /// (the request then gets a 503 or 500). The default is one second.
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
                PostgresStore { inner }.delete_expired().await
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
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Creates the table and its indexes if they do not exist (idempotent; run it at start-up
    /// or from your migrations). The schema of a `schema.table` name must exist.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the database refuses or cannot be reached.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let Inner { table, bare, .. } = &*self.inner;
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id text PRIMARY KEY, \
                 cookie text NOT NULL, \
                 fields jsonb NOT NULL, \
                 created bigint NOT NULL, \
                 updated bigint NOT NULL, \
                 max_age bigint, \
                 expires bigint NOT NULL, \
                 owner text)"
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

    /// Deletes the rows that expired (in batches of 1,000 rows per statement); returns how many.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the database fails; rows deleted before stay deleted.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        use crate::config::Clock as _;
        self.delete_expired_before(crate::config::SystemClock.now_millis())
            .await
    }

    /// [`PostgresStore::delete_expired`] with another idea of the current time (Unix
    /// milliseconds), for a layer that runs on a clock of its own
    /// ([`SessionConfig::with_clock`](crate::config::SessionConfig::with_clock)).
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::delete_expired`].
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

    /// Runs the write statement of `save`; `Err` (inside) when a new key was taken.
    async fn write(&self, save: &Save<'_>) -> Result<Result<u64, ()>, StoreError> {
        let q = &self.inner.queries;
        let meta = save.record.metadata;
        let owner = save.owner.and_then(|entry| entry.owner);
        let purge: Option<Vec<&str>> = save.purge.map(<[&str]>::to_vec);
        let query = match save.op {
            SaveOp::Create { id } => sqlx::query(q.create.clone())
                .bind(row_key(id).as_str().to_owned())
                .bind(save.cookie_name)
                .bind(sql::save_fields(save.record, save.codec)?)
                .bind(int(meta.created))
                .bind(int(meta.updated))
                .bind(meta.max_age.map(int))
                .bind(int(save.expires_at))
                .bind(owner),
            SaveOp::Update { id } | SaveOp::Touch { id } => {
                let fields = match save.op {
                    SaveOp::Touch { .. } => "{}".to_owned(),
                    _ => sql::save_fields(save.record, save.codec)?,
                };
                let query = sqlx::query(if purge.is_some() {
                    q.purge.clone()
                } else {
                    q.update.clone()
                })
                .bind(row_key(id).as_str().to_owned())
                .bind(save.cookie_name)
                .bind(fields)
                .bind(int(meta.updated))
                .bind(meta.max_age.map(int))
                .bind(int(save.expires_at))
                .bind(save.owner.is_some())
                .bind(owner)
                .bind(int(save.now));
                match purge {
                    Some(names) => query.bind(names),
                    None => query,
                }
            }
            SaveOp::Regenerate { old, new } | SaveOp::Renew { old, new } => {
                let statement = if matches!(save.op, SaveOp::Regenerate { .. }) {
                    q.regenerate.clone()
                } else {
                    q.renew.clone()
                };
                sqlx::query(statement)
                    .bind(row_key(new).as_str().to_owned())
                    .bind(save.cookie_name)
                    .bind(sql::save_fields(save.record, save.codec)?)
                    .bind(int(meta.created))
                    .bind(int(meta.updated))
                    .bind(meta.max_age.map(int))
                    .bind(int(save.expires_at))
                    .bind(owner)
                    .bind(int(save.now))
                    .bind(row_key(old).as_str().to_owned())
                    .bind(purge)
            }
            SaveOp::Seal => {
                return Err(StoreError::backend(
                    "the PostgreSQL store keeps records on the server and cannot seal a cookie",
                ));
            }
        };
        sql::bounded(self.inner.timeout, async {
            match query.execute(&self.inner.pool).await {
                Ok(done) => Ok(Ok(done.rows_affected())),
                // A taken new key: the statement (and a regeneration's delete with it) rolled
                // back.
                Err(error) if sql::is_unique_violation(&error) => Ok(Err(())),
                Err(error) => Err(map_error(error)),
            }
        })
        .await
    }
}

impl SessionStore for PostgresStore {
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
                    "the PostgreSQL store keeps records on the server and cannot seal a cookie",
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
        // The owner column is the index: a row still belongs to the owner while it holds the
        // owner's key (saves keep it in step with the owner field).
        let keys: Vec<String> = revoke
            .sessions
            .iter()
            .map(|(handle, _)| handle.as_str().to_owned())
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let query = sqlx::query(self.inner.queries.revoke.clone())
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
