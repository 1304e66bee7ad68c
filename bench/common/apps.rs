//! The apps the load benchmark measures (`examples/load.rs`), but the SQL ones: a bare handler,
//! ours, tower-sessions', ruts's and `PrivateCookieJar`'s, on the counter and on the scaling rows'
//! session ([`session_bench::Wide`]). The load benchmark builds them in its own process with
//! `--servers thread`; by default each crate's apps are served by a binary of their own
//! (`examples/serve-*.rs`, through `serve_app.rs`), which links that crate alone, as an
//! application would.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get};
use session_bench::{WIDE_FILLERS, filler};
use session_examples::{StoreChoice, layer, routes};
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

use crate::jar;
use crate::wide::{
    WIDE_COOKIE_LEN, WIDE_REDIS_LEN, wide_answer, wide_read, wide_view_read, wide_view_visit,
    wide_visit,
};

/// Every app the load benchmark can serve, by scenario prefix, in the order they are built: the
/// cookie and memory apps, the Redis apps, then the SQL apps (built by `examples/load.rs`, in
/// its own process: their database probes look at its threads and connections).
pub(crate) const APPS: [&str; 18] = [
    "bare",
    "ours memory",
    "ours encrypted",
    "tower-sessions memory",
    "private-jar",
    "ours encrypted wide",
    "private-jar wide",
    "ours redis",
    "tower-sessions redis",
    "ruts redis",
    "ours redis wide",
    "ours redis wide whole",
    "tower-sessions redis wide",
    "ruts redis wide",
    "ours postgres",
    "tower-sessions postgres",
    "ours sqlite",
    "tower-sessions sqlite",
];

/// Whether app `name` keeps its sessions in a SQL database.
pub(crate) fn is_sql_app(name: &str) -> bool {
    name.ends_with(" postgres") || name.ends_with(" sqlite")
}

/// The crate an app measures, which names the binary serving it in a process of its own
/// (`serve-<crate>`): `bare`, `ours`, `tower-sessions`, `ruts` or `jar`.
pub(crate) fn crate_of(app: &str) -> &'static str {
    if app == "bare" {
        "bare"
    } else if app.starts_with("ours ") {
        "ours"
    } else if app.starts_with("tower-sessions ") {
        "tower-sessions"
    } else if app.starts_with("ruts ") {
        "ruts"
    } else {
        "jar"
    }
}

/// Builds app `name` (one of [`APPS`], but the SQL ones), the Redis apps on `redis_url`.
pub(crate) async fn build(name: &str, redis_url: &str) -> Result<Router, String> {
    match crate_of(name) {
        "bare" => Ok(bare_app()),
        "ours" => ours(name, redis_url).await,
        "tower-sessions" => tower_sessions(name, redis_url).await,
        "ruts" => ruts(name, redis_url).await,
        _ => jar(name),
    }
}

/// The bare handler on both paths: the cost of axum and the network without a session.
pub(crate) fn bare_app() -> Router {
    Router::new()
        .route("/", get(bare))
        .route("/read", get(bare))
}

/// Our apps: the example's routes and layer (memory, encrypted, Redis), and the scaling rows'.
pub(crate) async fn ours(name: &str, redis_url: &str) -> Result<Router, String> {
    let config = SessionConfig::default();
    let layer = |store| layer(store, None, config.clone());
    Ok(match name {
        "ours memory" => routes().layer(
            layer(StoreChoice::Memory)
                .await
                .map_err(|e| e.to_string())?,
        ),
        "ours encrypted" => routes().layer(
            layer(StoreChoice::Encrypted)
                .await
                .map_err(|e| e.to_string())?,
        ),
        "ours encrypted wide" => pair(get(wide_visit::<WIDE_COOKIE_LEN>), get(wide_read)).layer(
            layer(StoreChoice::Encrypted)
                .await
                .map_err(|e| e.to_string())?,
        ),
        "ours redis" => ours_redis(routes(), redis_url, "", &config).await?,
        "ours redis wide" => {
            ours_redis(
                pair(get(wide_view_visit::<WIDE_REDIS_LEN>), get(wide_view_read)),
                redis_url,
                "wide:",
                &config,
            )
            .await?
        }
        "ours redis wide whole" => {
            ours_redis(
                pair(get(wide_visit::<WIDE_REDIS_LEN>), get(wide_read)),
                redis_url,
                "wide-whole:",
                &config,
            )
            .await?
        }
        other => return Err(format!("no app of ours named {other:?}")),
    })
}

/// tower-sessions' apps: 0.15 on its memory store, 0.14 on tower-sessions-redis-store.
pub(crate) async fn tower_sessions(name: &str, redis_url: &str) -> Result<Router, String> {
    Ok(match name {
        "tower-sessions memory" => pair(get(ts_visit), get(ts_read)).layer(
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default()),
        ),
        "tower-sessions redis" => {
            tower_sessions_redis(pair(get(ts14_visit), get(ts14_read)), redis_url).await?
        }
        "tower-sessions redis wide" => {
            tower_sessions_redis(pair(get(ts_wide_visit), get(ts_wide_read)), redis_url).await?
        }
        other => return Err(format!("no tower-sessions app named {other:?}")),
    })
}

/// ruts's apps, on its Redis store.
pub(crate) async fn ruts(name: &str, redis_url: &str) -> Result<Router, String> {
    match name {
        "ruts redis" => ruts_redis(pair(get(ruts_visit), get(ruts_read)), redis_url).await,
        "ruts redis wide" => {
            ruts_redis(pair(get(ruts_wide_visit), get(ruts_wide_read)), redis_url).await
        }
        other => Err(format!("no ruts app named {other:?}")),
    }
}

/// `PrivateCookieJar`'s apps.
pub(crate) fn jar(name: &str) -> Result<Router, String> {
    match name {
        "private-jar" => Ok(jar::app(false)),
        "private-jar wide" => Ok(jar::app(true)),
        other => Err(format!("no PrivateCookieJar app named {other:?}")),
    }
}

async fn bare() -> String {
    1u64.to_string()
}

tower_sessions_handlers!(ts_visit, ts_read, tower_sessions::Session);
tower_sessions_handlers!(ts14_visit, ts14_read, tower_sessions_014::Session);

/// ruts's session on its Redis store (a fred pool, like tower-sessions').
type RutsSession = ruts::Session<ruts::store::redis::RedisStore<Pool>>;

/// The lifetime of a ruts session and of its fields: a day, as ours.
const RUTS_TTL_SECS: i64 = 86_400;

/// A fred pool of one client, connected, as both fred-based peers use it.
async fn fred_pool(redis_url: &str) -> Result<Pool, String> {
    let pool = Pool::new(
        Config::from_url(redis_url).map_err(|e| e.to_string())?,
        None,
        None,
        None,
        1,
    )
    .map_err(|e| e.to_string())?;
    pool.connect();
    pool.wait_for_connect().await.map_err(|e| e.to_string())?;
    Ok(pool)
}

// ---------------------------------------------------------------------------------------------
// The scaling rows: a session of 40 fields (`Wide`), a write changes one, a read reads two.

/// Any error of a peer's session as the answer 500.
fn internal<E>(_: E) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

/// tower-sessions: the same fields, one entry each.
async fn ts_wide_visit(session: tower_sessions_014::Session) -> Result<String, StatusCode> {
    let visits = if let Some(visits) = session.get::<u64>("visits").await.map_err(internal)? {
        visits + 1
    } else {
        for name in WIDE_FILLERS {
            session
                .insert(name, filler(name, WIDE_REDIS_LEN))
                .await
                .map_err(internal)?;
        }
        1
    };
    session.insert("visits", visits).await.map_err(internal)?;
    Ok(visits.to_string())
}

async fn ts_wide_read(session: tower_sessions_014::Session) -> Result<String, StatusCode> {
    let visits = session
        .get::<u64>("visits")
        .await
        .map_err(internal)?
        .unwrap_or(0);
    let f01 = session
        .get::<String>("f01")
        .await
        .map_err(internal)?
        .unwrap_or_default();
    wide_answer(visits, &f01)
}

/// ruts's `GET /`: the same work as the others' (read `visits`, write it plus one; a new
/// session first gets the `fillers`). ruts gives each field its own lifetime (`HEXPIRE`).
async fn ruts_bump(session: &RutsSession, fillers: &[&str]) -> Result<String, StatusCode> {
    let ttl = ruts::store::Ttl::new(RUTS_TTL_SECS).map_err(internal)?;
    let visits = if let Some(visits) = session.get::<u64>("visits").await.map_err(internal)? {
        visits + 1
    } else {
        for name in fillers {
            session
                .set(name, &filler(name, WIDE_REDIS_LEN), ttl, None)
                .await
                .map_err(internal)?;
        }
        1
    };
    session
        .set("visits", &visits, ttl, None)
        .await
        .map_err(internal)?;
    Ok(visits.to_string())
}

async fn ruts_visit(session: RutsSession) -> Result<String, StatusCode> {
    ruts_bump(&session, &[]).await
}

/// ruts on the wide session: the same fields, one hash field each.
async fn ruts_wide_visit(session: RutsSession) -> Result<String, StatusCode> {
    ruts_bump(&session, WIDE_FILLERS).await
}

/// ruts's `GET /read`; with `wide`, it also reads `f01`.
async fn ruts_counter(session: &RutsSession, wide: bool) -> Result<String, StatusCode> {
    let visits = session
        .get::<u64>("visits")
        .await
        .map_err(internal)?
        .unwrap_or(0);
    if !wide {
        return Ok(visits.to_string());
    }
    let f01 = session
        .get::<String>("f01")
        .await
        .map_err(internal)?
        .unwrap_or_default();
    wide_answer(visits, &f01)
}

async fn ruts_read(session: RutsSession) -> Result<String, StatusCode> {
    ruts_counter(&session, false).await
}

async fn ruts_wide_read(session: RutsSession) -> Result<String, StatusCode> {
    ruts_counter(&session, true).await
}

/// `routes` behind our `RedisStore` (keys under `bench:<pid>:<prefix>`).
async fn ours_redis(
    routes: Router,
    redis_url: &str,
    prefix: &str,
    config: &SessionConfig,
) -> Result<Router, String> {
    let store = RedisStore::builder()
        .key_prefix(format!("bench:{}:{prefix}", std::process::id()))
        .connect(redis_url)
        .await
        .map_err(|e| format!("cannot connect to Redis at {redis_url}: {e}"))?;
    Ok(routes.layer(SessionLayer::new(store).with_config(config.clone())))
}

/// `routes` behind tower-sessions 0.14 on tower-sessions-redis-store.
async fn tower_sessions_redis(routes: Router, redis_url: &str) -> Result<Router, String> {
    Ok(routes.layer(tower_sessions_014::SessionManagerLayer::new(
        tower_sessions_redis_store::RedisStore::new(fred_pool(redis_url).await?),
    )))
}

/// `routes` behind ruts on its Redis store, with its cookie layer.
async fn ruts_redis(routes: Router, redis_url: &str) -> Result<Router, String> {
    let store = ruts::store::redis::RedisStore::new(Arc::new(fred_pool(redis_url).await?))
        .await
        .map_err(|e| format!("ruts's Redis store: {e}"))?;
    Ok(routes
        .layer(
            ruts::SessionLayer::new(Arc::new(store)).with_cookie_options(
                ruts::CookieOptions::build()
                    .name("ruts")
                    .path("/")
                    .max_age(RUTS_TTL_SECS.unsigned_abs()),
            ),
        )
        .layer(tower_cookies::CookieManagerLayer::new()))
}

/// `GET /` and `GET /read`.
pub(crate) fn pair<S: Clone + Send + Sync + 'static>(
    visit: MethodRouter<S>,
    read: MethodRouter<S>,
) -> Router<S> {
    Router::new().route("/", visit).route("/read", read)
}
