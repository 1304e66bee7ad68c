//! Fresh SQL stores for tests: a `PostgresStore` on a table of its own in a schema of this test
//! process, and an `SqliteStore` on a database file of its own. Schemas and files that earlier
//! runs left behind (more than an hour old) are removed on first use, so a long-lived database
//! or temp directory does not fill up.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use session_runtime::store::{PostgresStore, SqliteStore};
use sqlx::AssertSqlSafe;

use crate::postgres::{database_url, unique_table};

/// What names the schemas and files of test runs start with.
const PREFIX: &str = "session_tests_";

/// How old a leftover schema or file must be before a later run removes it.
const STALE_SECS: u64 = 3600;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The schema of this process's tables, `session_tests_<unix seconds>_<pid>`, created on first
/// use (after dropping those of runs more than an hour old).
///
/// # Panics
///
/// If the database refuses to create it.
pub async fn postgres_schema(pool: &sqlx::PgPool) -> String {
    static SCHEMA: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    SCHEMA
        .get_or_init(|| async {
            let schemas: Vec<(String,)> = sqlx::query_as(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'session\\_tests\\_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for (schema,) in schemas {
                let born = schema
                    .strip_prefix(PREFIX)
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|secs| secs.parse::<u64>().ok());
                if born.is_some_and(|born| born + STALE_SECS < now_secs()) {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                    )))
                    .execute(pool)
                    .await;
                }
            }
            let schema = format!("{PREFIX}{}_{}", now_secs(), std::process::id());
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(pool)
            .await
            .unwrap();
            schema
        })
        .await
        .clone()
}

/// A migrated `PostgresStore` on a table of its own, on the test database (or `url`, a proxy of
/// it), with `timeout` per operation and a pool of 8 connections that also waits `timeout`.
///
/// # Panics
///
/// If the database cannot be reached or refuses the table.
pub async fn postgres_store(test: &str, url: Option<&str>, timeout: Duration) -> PostgresStore {
    let database = database_url().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .connect_lazy(url.unwrap_or(&database))
        .unwrap();
    let schema = postgres_schema(&pool).await;
    let store = PostgresStore::new(pool)
        .with_table(&format!("{schema}.{}", unique_table(test)))
        .unwrap()
        .with_timeout(timeout);
    store.migrate().await.unwrap();
    store
}

/// A migrated `SqliteStore` on a database file of its own in the temp directory (WAL mode),
/// with five seconds per operation.
///
/// # Panics
///
/// If the file cannot be created.
pub async fn sqlite_store(test: &str) -> SqliteStore {
    static SWEPT: OnceLock<()> = OnceLock::new();
    let dir = std::env::temp_dir();
    SWEPT.get_or_init(|| sweep_files(&dir));
    let path = dir.join(format!("{PREFIX}{}_{}.db", now_secs(), unique_table(test)));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    store.migrate().await.unwrap();
    store
}

/// Removes the database files (and their WAL and shared-memory files) of runs more than an
/// hour old.
fn sweep_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(PREFIX)) else {
            continue;
        };
        let born = rest
            .split('_')
            .next()
            .and_then(|secs| secs.parse::<u64>().ok());
        if born.is_some_and(|born| born + STALE_SECS < now_secs()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
