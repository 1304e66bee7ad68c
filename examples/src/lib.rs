//! The app behind `examples/counter.rs`, as a library so the tests drive exactly the same
//! routes. Keep its interface (routes, answers, cookie name, command-line flags) stable: the
//! tests, the load benchmark in `bench/` and `.ci/smoke-example` depend on it.

pub mod migrate;

use std::fmt::{self, Write as _};
use std::str::FromStr;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use session_runtime::config::{ConfigError, SessionConfig};
use session_runtime::owner::{SessionHandle, SessionInfo};
use session_runtime::store::{
    EncryptedCookieStore, Key, KeyError, MemoryStore, PostgresStore, RedisStore, SimpleCookieStore,
    SqliteStore, StoreError,
};
use session_runtime::{Session, SessionLayer, TypedSession};

/// The example's session: a visit counter, two independent counters and the logged-in user.
#[derive(Session, Debug)]
#[session(cookie_name = "counter")]
pub struct Counter {
    /// Incremented by `GET /`.
    pub visits: u64,
    /// Incremented by `GET /a`.
    pub a: u64,
    /// Incremented by `GET /b`.
    pub b: u64,
    /// Set by `POST /login?user=N`: the owner, by which the store indexes the user's sessions
    /// (`GET /sessions`, `POST /logout-everywhere`, ...).
    #[session(owner)]
    pub user: Option<u64>,
}

/// Which store the example runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// [`MemoryStore`], the default.
    Memory,
    /// [`SimpleCookieStore`] (plain, for tests).
    Simple,
    /// [`EncryptedCookieStore`].
    Encrypted,
    /// [`RedisStore`] on one Redis node.
    Redis,
    /// [`RedisStore`] on a Redis Cluster.
    RedisCluster,
    /// [`PostgresStore`], table `sessions`.
    Postgres,
    /// [`SqliteStore`], table `sessions`.
    Sqlite,
}

impl FromStr for StoreChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Self::Memory),
            "simple" => Ok(Self::Simple),
            "encrypted" => Ok(Self::Encrypted),
            "redis" => Ok(Self::Redis),
            "redis-cluster" => Ok(Self::RedisCluster),
            "postgres" => Ok(Self::Postgres),
            "sqlite" => Ok(Self::Sqlite),
            other => Err(format!(
                "unknown store `{other}`; expected memory, simple, encrypted, redis, redis-cluster, postgres or sqlite"
            )),
        }
    }
}

/// Why the app could not be built.
#[derive(Debug)]
pub enum SetupError {
    /// The encryption key from `SESSION_KEY` is invalid.
    Key(KeyError),
    /// Redis could not be reached.
    Redis(StoreError),
    /// The database could not be reached or refused the table.
    Database(StoreError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(_) => f.write_str("invalid SESSION_KEY; expected 32 bytes in base64"),
            Self::Redis(_) => f.write_str("cannot connect to Redis"),
            Self::Database(_) => f.write_str("cannot set up the session table"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Key(error) => Some(error),
            Self::Redis(error) | Self::Database(error) => Some(error),
        }
    }
}

/// The Redis URL used when none is given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The PostgreSQL URL used when none is given: the local server.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The SQLite URL used when none is given: a file under the workspace's `target/`.
pub const DEFAULT_SQLITE_URL: &str = concat!(
    "sqlite://",
    env!("CARGO_MANIFEST_DIR"),
    "/../target/counter-sessions.sqlite"
);

/// How long one store operation of the SQL stores may take: an unreachable database answers
/// 503 well within 2 seconds (sqlx's own defaults wait 30).
pub const SQL_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// Builds the session layer for a store. The encrypted store reads its key from `SESSION_KEY`
/// (32 bytes in base64) and generates a random one, with a warning, when it is unset. The Redis
/// stores connect to `redis_url` (for the cluster, a comma-separated list of node URLs),
/// [`DEFAULT_REDIS_URL`] when `None`.
///
/// # Errors
///
/// [`SetupError`] for a bad key or an unreachable Redis.
pub async fn layer(
    store: StoreChoice,
    redis_url: Option<&str>,
    config: SessionConfig,
) -> Result<SessionLayer, SetupError> {
    let backends = Backends {
        redis_url,
        ..Backends::default()
    };
    layer_with(store, &backends, config).await
}

/// Where the server-side stores of the example live, and how they write.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backends<'a> {
    /// The Redis node, or for the cluster a comma-separated list of nodes
    /// ([`DEFAULT_REDIS_URL`] when `None`).
    pub redis_url: Option<&'a str>,
    /// The database of the SQL stores ([`DEFAULT_POSTGRES_URL`] or [`DEFAULT_SQLITE_URL`] when
    /// `None`; `sqlite://PATH` creates a missing file). The table `sessions` is created if
    /// missing.
    pub database_url: Option<&'a str>,
    /// Redis saves wait for this many replicas' acknowledgement
    /// ([`RedisStoreBuilder::wait_for_replicas`](session_runtime::store::RedisStoreBuilder::wait_for_replicas),
    /// [`REDIS_WAIT_TIMEOUT`]); 0 for none.
    pub redis_wait: u32,
    /// The memory store's capacity (`MemoryStore::with_capacity`); `None` for its default.
    pub memory_capacity: Option<usize>,
}

/// How long a Redis save waits for its replicas with `--redis-wait`.
pub const REDIS_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// [`layer`], with every backend setting.
///
/// # Errors
///
/// [`SetupError`] for a bad key, an unreachable Redis or database.
pub async fn layer_with(
    store: StoreChoice,
    backends: &Backends<'_>,
    config: SessionConfig,
) -> Result<SessionLayer, SetupError> {
    let redis_url = backends.redis_url.unwrap_or(DEFAULT_REDIS_URL);
    let database_url = backends.database_url;
    let redis = RedisStore::builder().wait_for_replicas(backends.redis_wait, REDIS_WAIT_TIMEOUT);
    let layer = match store {
        StoreChoice::Memory => SessionLayer::new(match backends.memory_capacity {
            Some(capacity) => MemoryStore::new().with_capacity(capacity),
            None => MemoryStore::new(),
        }),
        StoreChoice::Simple => SessionLayer::new(SimpleCookieStore::new()),
        StoreChoice::Encrypted => {
            let key = match std::env::var_os("SESSION_KEY") {
                Some(_) => Key::from_env(1, "SESSION_KEY"),
                None => Key::generate(),
            }
            .map_err(SetupError::Key)?;
            SessionLayer::new(EncryptedCookieStore::new(key))
        }
        StoreChoice::Redis => {
            SessionLayer::new(redis.connect(redis_url).await.map_err(SetupError::Redis)?)
        }
        StoreChoice::RedisCluster => SessionLayer::new(
            redis
                .connect_cluster(redis_url.split(',').map(str::trim))
                .await
                .map_err(SetupError::Redis)?,
        ),
        StoreChoice::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(SQL_TIMEOUT)
                .test_before_acquire(false)
                .connect_lazy(database_url.unwrap_or(DEFAULT_POSTGRES_URL))
                .map_err(|error| SetupError::Database(StoreError::backend(error)))?;
            let store = PostgresStore::new(pool)
                .with_timeout(SQL_TIMEOUT)
                .with_cleanup(std::time::Duration::from_secs(300));
            store.migrate().await.map_err(SetupError::Database)?;
            SessionLayer::new(store)
        }
        StoreChoice::Sqlite => {
            let url = database_url.unwrap_or(DEFAULT_SQLITE_URL);
            if let Some(parent) = url
                .strip_prefix("sqlite://")
                .map(|path| std::path::Path::new(path.split('?').next().unwrap_or(path)))
                .and_then(std::path::Path::parent)
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|error| SetupError::Database(StoreError::backend(error)))?;
            }
            let store = SqliteStore::connect(url)
                .await
                .map_err(SetupError::Database)?
                .with_timeout(SQL_TIMEOUT)
                .with_cleanup(std::time::Duration::from_secs(300));
            store.migrate().await.map_err(SetupError::Database)?;
            SessionLayer::new(store)
        }
    };
    Ok(layer.with_config(config))
}

/// The example's session under a `__Host-` cookie name (`--cookie-name __Host-counter`): the
/// same fields as [`Counter`]. Browsers keep a `__Host-` cookie only with `Secure`, `Path=/`
/// and no `Domain`, so the layer must not be `--insecure` (browsers treat `http://localhost`
/// as secure).
#[derive(Session, Debug)]
#[session(cookie_name = "__Host-counter")]
pub struct HostCounter {
    /// Incremented by `GET /`.
    pub visits: u64,
    /// Incremented by `GET /a`.
    pub a: u64,
    /// Incremented by `GET /b`.
    pub b: u64,
    /// Set by `POST /login?user=N`: the owner, by which the store indexes the user's sessions
    /// (`GET /sessions`, `POST /logout-everywhere`, ...).
    #[session(owner)]
    pub user: Option<u64>,
}

/// Which session type, and so which cookie name, the example serves (`--cookie-name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieName {
    /// `counter`, the default: [`Counter`].
    #[default]
    Counter,
    /// `__Host-counter`: [`HostCounter`].
    HostCounter,
}

impl FromStr for CookieName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "counter" => Ok(Self::Counter),
            "__Host-counter" => Ok(Self::HostCounter),
            other => Err(format!(
                "unsupported cookie name `{other}`; expected counter or __Host-counter"
            )),
        }
    }
}

/// Returns the example's routes, without the session layer.
pub fn routes() -> Router {
    counter::routes()
}

/// Returns the example's routes on the session type of `name`, behind `layer`, after checking
/// the layer's configuration against that cookie name (a `__Host-` cookie without `Secure` is
/// refused here, at start-up, rather than dropped by the browser).
///
/// # Errors
///
/// The [`ConfigError`] of [`SessionLayer::validate_for`].
pub fn app(name: CookieName, layer: SessionLayer) -> Result<Router, ConfigError> {
    Ok(match name {
        CookieName::Counter => counter::routes().layer(layer.validate_for::<Counter>()?),
        CookieName::HostCounter => {
            host_counter::routes().layer(layer.validate_for::<HostCounter>()?)
        }
    })
}

/// Defines the routes and handlers of the example for one session type.
macro_rules! counter_routes {
    ($module:ident, $session:ty) => {
        mod $module {
            use super::*;

            pub(super) fn routes() -> Router {
                Router::new()
                    .route("/", get(visit))
                    .route("/read", get(read))
                    .route("/a", get(bump_a))
                    .route("/b", get(bump_b))
                    .route("/login", post(login))
                    .route("/whoami", get(whoami))
                    .route("/logout", post(logout))
                    .route("/sessions", get(sessions))
                    .route("/sessions/revoke", post(revoke))
                    .route("/logout-everywhere", post(logout_everywhere))
                    .route("/logout-others", post(logout_others))
            }

            async fn visit(mut session: TypedSession<$session>) -> String {
                *session.visits_mut() += 1;
                session.visits().to_string()
            }

            async fn read(session: TypedSession<$session>) -> String {
                session.visits().to_string()
            }

            async fn bump_a(mut session: TypedSession<$session>) -> String {
                *session.a_mut() += 1;
                format!("{},{}", session.a(), session.b())
            }

            async fn bump_b(mut session: TypedSession<$session>) -> String {
                *session.b_mut() += 1;
                format!("{},{}", session.a(), session.b())
            }

            async fn login(
                mut session: TypedSession<$session>,
                Query(query): Query<LoginQuery>,
            ) -> StatusCode {
                session.regenerate();
                session.set_user(Some(query.user));
                StatusCode::NO_CONTENT
            }

            async fn whoami(session: TypedSession<$session>) -> String {
                session
                    .user()
                    .map_or_else(|| "anonymous".to_owned(), |user| user.to_string())
            }

            async fn logout(mut session: TypedSession<$session>) -> StatusCode {
                session.invalidate();
                StatusCode::NO_CONTENT
            }

            async fn sessions(session: TypedSession<$session>) -> (StatusCode, String) {
                if session.user().is_none() {
                    return (StatusCode::OK, "anonymous\n".to_owned());
                }
                match session.user_sessions().await {
                    Ok(list) => (StatusCode::OK, session_lines(&list)),
                    Err(error) => user_api_error(&error),
                }
            }

            async fn revoke(
                session: TypedSession<$session>,
                Query(query): Query<RevokeQuery>,
            ) -> (StatusCode, String) {
                if session.user().is_none() {
                    return (StatusCode::UNAUTHORIZED, "not logged in\n".to_owned());
                }
                let Some(handle) = SessionHandle::parse(&query.handle) else {
                    return (
                        StatusCode::NOT_FOUND,
                        "no such session of yours\n".to_owned(),
                    );
                };
                match session.revoke_session(&handle).await {
                    Ok(true) => (StatusCode::OK, "revoked\n".to_owned()),
                    Ok(false) => (
                        StatusCode::NOT_FOUND,
                        "no such session of yours\n".to_owned(),
                    ),
                    Err(error) => user_api_error(&error),
                }
            }

            async fn logout_everywhere(
                mut session: TypedSession<$session>,
            ) -> (StatusCode, String) {
                if session.user().is_none() {
                    return (StatusCode::UNAUTHORIZED, "not logged in\n".to_owned());
                }
                match session.revoke_all_sessions().await {
                    Ok(count) => (StatusCode::OK, format!("{count}\n")),
                    Err(error) => user_api_error(&error),
                }
            }

            async fn logout_others(session: TypedSession<$session>) -> (StatusCode, String) {
                if session.user().is_none() {
                    return (StatusCode::UNAUTHORIZED, "not logged in\n".to_owned());
                }
                match session.revoke_other_sessions().await {
                    Ok(count) => (StatusCode::OK, format!("{count}\n")),
                    Err(error) => user_api_error(&error),
                }
            }
        }
    };
}

#[derive(Deserialize)]
struct LoginQuery {
    user: u64,
}

#[derive(Deserialize)]
struct RevokeQuery {
    handle: String,
}

/// The lines of `GET /sessions`: `HANDLE CREATED_UNIX_SECONDS current|other`.
fn session_lines<T>(list: &[SessionInfo<T>]) -> String {
    let mut out = String::new();
    for info in list {
        let created = info
            .created()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let which = if info.is_current() {
            "current"
        } else {
            "other"
        };
        let _ = writeln!(out, "{} {created} {which}", info.handle());
    }
    out
}

/// The answer to a failure of the per-user API: 501 on a store that cannot list sessions (the
/// cookie stores), 503 when the store is unreachable, 500 otherwise.
fn user_api_error(error: &session_runtime::Error) -> (StatusCode, String) {
    use session_runtime::Error;
    match error {
        Error::Store(StoreError::Unsupported(_)) => (
            StatusCode::NOT_IMPLEMENTED,
            format!("{}\n", error_chain(error)),
        ),
        Error::Store(StoreError::Unavailable(_) | StoreError::Timeout) => {
            tracing::error!(error = error_chain(error), "session store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "session store unavailable\n".to_owned(),
            )
        }
        _ => {
            tracing::error!(
                error = error_chain(error),
                "per-user session operation failed"
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n".to_owned(),
            )
        }
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        out.push_str(": ");
        out.push_str(&next.to_string());
        source = next.source();
    }
    out
}

counter_routes!(counter, Counter);
counter_routes!(host_counter, HostCounter);

/// Starts the `tracing` subscriber the example binaries log with (`RUST_LOG`, default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Serves `app` on `addr` until Ctrl-C, then shuts down gracefully. `what` names the server in
/// the logs. Returns the process exit code: failure when the address cannot be bound or the
/// server fails.
pub async fn serve(addr: std::net::SocketAddr, app: Router, what: &str) -> std::process::ExitCode {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, %addr, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, "{what} listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "server failed");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
