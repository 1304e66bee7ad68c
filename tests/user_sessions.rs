//! A user's sessions (`#[session(owner)]`): list, revoke one, log out everywhere, log out
//! the others, on the example app over real HTTP, on `MemoryStore`, `RedisStore` on one node
//! and `RedisStore` on a Redis Cluster; the index stays bounded and expired sessions are never
//! listed; a cookie store answers 501.

#![allow(clippy::print_stdout, reason = "the tests report measured figures")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::store::{
    MemoryStore, PostgresStore, RedisStore, SimpleCookieStore, SqliteStore,
};
use session_tests::fixture::SharedMemory;
use session_tests::redis::unique_prefix;
use session_tests::server::{TestClock, TestServer, browser, send, test_config};

/// Where a test's sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Redis,
    Cluster,
    Postgres,
    Sqlite,
}

/// A layer on a fresh store of `backend`; for Redis, under `prefix`.
async fn backend_layer(backend: Backend, prefix: &str) -> (SessionLayer, Option<Sql>) {
    match backend {
        Backend::Memory => (SessionLayer::new(MemoryStore::new()), None),
        Backend::Redis => (
            SessionLayer::new(
                RedisStore::builder()
                    .key_prefix(prefix)
                    .connect(session_tests::redis::server().await.url())
                    .await
                    .unwrap(),
            ),
            None,
        ),
        Backend::Cluster => (
            SessionLayer::new(
                RedisStore::builder()
                    .key_prefix(prefix)
                    .connect_cluster(session_tests::redis::cluster().await.urls())
                    .await
                    .unwrap(),
            ),
            None,
        ),
        Backend::Postgres => {
            let store =
                session_tests::sql::postgres_store("owners", None, Duration::from_secs(5)).await;
            (SessionLayer::new(store.clone()), Some(Sql::Postgres(store)))
        }
        Backend::Sqlite => {
            let store = session_tests::sql::sqlite_store("owners").await;
            (SessionLayer::new(store.clone()), Some(Sql::Sqlite(store)))
        }
    }
}

/// A SQL store a test looks into.
#[derive(Debug, Clone)]
enum Sql {
    Postgres(PostgresStore),
    Sqlite(SqliteStore),
}

impl Sql {
    /// How many rows name an owner: the SQL stores' index.
    async fn owned_rows(&self) -> i64 {
        let count = |table: &str| {
            sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE owner IS NOT NULL"
            ))
        };
        match self {
            Self::Postgres(store) => sqlx::query_scalar(count(store.table()))
                .fetch_one(store.pool())
                .await
                .unwrap(),
            Self::Sqlite(store) => sqlx::query_scalar(count(store.table()))
                .fetch_one(store.pool())
                .await
                .unwrap(),
        }
    }
}

/// The example app on a fresh store of `backend`, with its clock; what the test looks into:
/// the memory store, the SQL store, the Redis key prefix.
struct App {
    server: TestServer,
    clock: Arc<TestClock>,
    memory: Option<SharedMemory>,
    sql: Option<Sql>,
    prefix: String,
    backend: Backend,
}

impl App {
    async fn start(backend: Backend) -> Self {
        Self::start_with(backend, test_config).await
    }

    async fn start_with(
        backend: Backend,
        config: impl FnOnce(&Arc<TestClock>) -> SessionConfig,
    ) -> Self {
        let clock = TestClock::new();
        let config = config(&clock);
        let prefix = unique_prefix("owners");
        let mut memory = None;
        let (layer, sql) = if backend == Backend::Memory {
            let store = SharedMemory::new(MemoryStore::new());
            memory = Some(store.clone());
            (SessionLayer::new(store), None)
        } else {
            backend_layer(backend, &prefix).await
        };
        let server =
            TestServer::start(session_examples::routes().layer(layer.with_config(config))).await;
        Self {
            server,
            clock,
            memory,
            sql,
            prefix,
            backend,
        }
    }

    async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let (status, _, body) = send(client.get(self.server.url(path))).await;
        (status, body)
    }

    async fn post(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let (status, _, body) = send(client.post(self.server.url(path))).await;
        (status, body)
    }

    /// A new client (it keeps cookies) that visited once, then logged in as `user`.
    async fn logged_in(&self, user: u64) -> reqwest::Client {
        let client = browser();
        assert_eq!(self.get(&client, "/").await.0, 200);
        let (status, _) = self.post(&client, &format!("/login?user={user}")).await;
        assert_eq!(status, 204);
        client
    }

    /// The listing of `client`'s user: `(handle, created, current)` per line.
    async fn listing(&self, client: &reqwest::Client) -> Vec<(String, u64, bool)> {
        let (status, body) = self.get(client, "/sessions").await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(body.trim(), "anonymous");
        body.lines()
            .map(|line| {
                let parts: Vec<&str> = line.split(' ').collect();
                assert_eq!(parts.len(), 3, "line {line:?}");
                assert!(["current", "other"].contains(&parts[2]), "line {line:?}");
                (
                    parts[0].to_owned(),
                    parts[1].parse().unwrap(),
                    parts[2] == "current",
                )
            })
            .collect()
    }

    /// The Redis keys of this test's owner indexes, with their TTLs in milliseconds.
    async fn index_keys(&self) -> Vec<(String, i64)> {
        let pattern = format!("{}owner:*", self.prefix);
        let mut out = Vec::new();
        match self.backend {
            Backend::Memory | Backend::Postgres | Backend::Sqlite => {}
            Backend::Redis => {
                let mut conn = session_tests::redis::server()
                    .await
                    .client()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let keys: Vec<String> = conn.keys(&pattern).await.unwrap();
                for key in keys {
                    let ttl: i64 = conn.pttl(&key).await.unwrap();
                    out.push((key, ttl));
                }
            }
            Backend::Cluster => {
                let cluster = session_tests::redis::cluster().await;
                for url in cluster.urls() {
                    let mut conn = redis::Client::open(url.as_str())
                        .unwrap()
                        .get_multiplexed_async_connection()
                        .await
                        .unwrap();
                    let keys: Vec<String> = conn.keys(&pattern).await.unwrap();
                    for key in keys {
                        let ttl: i64 = conn.pttl(&key).await.unwrap();
                        out.push((key, ttl));
                    }
                }
            }
        }
        out
    }

    /// The index is empty: no record left in the memory store (its index only names records),
    /// no owner index key in Redis.
    async fn assert_index_empty(&self) {
        if let Some(memory) = &self.memory {
            assert_eq!(memory.len(), 0, "records left in the memory store");
        }
        let keys = self.index_keys().await;
        assert!(keys.is_empty(), "owner index keys left: {keys:?}");
        if let Some(sql) = &self.sql {
            assert_eq!(sql.owned_rows().await, 0, "rows with an owner left");
        }
    }
}

/// 20 clients log in as one user; the listing shows 20, one of them current; `POST
/// /logout-others` from one leaves it logged in, the 19 others anonymous, and a listing of 1.
async fn twenty_devices(backend: Backend) {
    let app = App::start(backend).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(app.logged_in(7).await);
    }
    let listing = app.listing(&clients[0]).await;
    assert_eq!(listing.len(), 20, "{backend:?}: {listing:?}");
    assert_eq!(listing.iter().filter(|(_, _, current)| *current).count(), 1);
    let handles: HashSet<&str> = listing.iter().map(|(h, _, _)| h.as_str()).collect();
    assert_eq!(handles.len(), 20, "handles are distinct");
    // Handles are stable from one listing to the next, and seen as current by their owner.
    let again = app.listing(&clients[5]).await;
    let again_handles: HashSet<&str> = again.iter().map(|(h, _, _)| h.as_str()).collect();
    assert_eq!(handles, again_handles);
    let current_0 = listing.iter().find(|(_, _, c)| *c).unwrap().0.clone();
    let current_5 = again.iter().find(|(_, _, c)| *c).unwrap().0.clone();
    assert_ne!(current_0, current_5);
    // A handle is not the cookie: no cookie value of any client equals a handle.
    let (status, body) = app.post(&clients[0], "/logout-others").await;
    assert_eq!((status, body.trim()), (200, "19"), "{backend:?}");
    assert_eq!(app.get(&clients[0], "/whoami").await.1, "7");
    for client in &clients[1..] {
        assert_eq!(
            app.get(client, "/whoami").await.1,
            "anonymous",
            "{backend:?}"
        );
    }
    let listing = app.listing(&clients[0]).await;
    assert_eq!(
        listing,
        vec![(current_0, listing[0].1, true)],
        "{backend:?}"
    );
    if let Some(sql) = &app.sql {
        assert_eq!(sql.owned_rows().await, 1, "{backend:?}: one owned row left");
    }
    if matches!(backend, Backend::Redis | Backend::Cluster) {
        let keys = app.index_keys().await;
        assert_eq!(keys.len(), 1, "one index key: {keys:?}");
        assert!(
            keys.iter().all(|(_, ttl)| *ttl > 0),
            "every index key has a TTL: {keys:?}"
        );
    }
}

#[tokio::test]
async fn twenty_devices_memory() {
    twenty_devices(Backend::Memory).await;
}

#[tokio::test]
async fn twenty_devices_redis() {
    twenty_devices(Backend::Redis).await;
}

#[tokio::test]
async fn twenty_devices_cluster() {
    twenty_devices(Backend::Cluster).await;
}

#[tokio::test]
async fn twenty_devices_postgres() {
    twenty_devices(Backend::Postgres).await;
}

#[tokio::test]
async fn twenty_devices_sqlite() {
    twenty_devices(Backend::Sqlite).await;
}

/// 100 concurrent logins of one user interleaved with 10 `POST /logout-everywhere`, then one
/// last `POST /logout-everywhere`: no session of the user is logged in afterwards, and the
/// index is empty.
async fn logins_race_logout_everywhere(backend: Backend) {
    let app = Arc::new(App::start(backend).await);
    let mut tasks = Vec::new();
    let mut clients = Vec::new();
    for i in 0..110 {
        let client = browser();
        clients.push((i % 11 == 10, client.clone()));
        let app = Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            assert_eq!(app.get(&client, "/").await.0, 200);
            let (status, _) = app.post(&client, "/login?user=9").await;
            assert_eq!(status, 204);
            if i % 11 == 10 {
                // 401 when another logout-everywhere ended this session first.
                let (status, body) = app.post(&client, "/logout-everywhere").await;
                assert!(status == 200 || status == 401, "{status} {body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = app.logged_in(9).await;
    let (status, body) = app.post(&last, "/logout-everywhere").await;
    assert_eq!(status, 200);
    println!(
        "{backend:?}: the last logout-everywhere ended {} sessions",
        body.trim()
    );
    for (_, client) in clients.iter().chain([&(false, last)]) {
        assert_eq!(
            app.get(client, "/whoami").await.1,
            "anonymous",
            "{backend:?}"
        );
    }
    app.assert_index_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_race_logout_everywhere_memory() {
    logins_race_logout_everywhere(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_race_logout_everywhere_redis() {
    logins_race_logout_everywhere(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_race_logout_everywhere_cluster() {
    logins_race_logout_everywhere(Backend::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_race_logout_everywhere_postgres() {
    logins_race_logout_everywhere(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_race_logout_everywhere_sqlite() {
    logins_race_logout_everywhere(Backend::Sqlite).await;
}

/// Sessions that expired are never listed, and their entries go.
async fn expired_sessions_are_not_listed(backend: Backend) {
    // Idle timeout 10 minutes.
    let app = App::start_with(backend, |clock| {
        test_config(clock).with_default_max_age(Duration::from_secs(600))
    })
    .await;
    let old_a = app.logged_in(3).await;
    let old_b = app.logged_in(3).await;
    app.clock.advance(Duration::from_secs(300));
    let fresh = app.logged_in(3).await;
    assert_eq!(app.listing(&fresh).await.len(), 3);
    // The first two expire; the fresh one was saved 5 minutes later and lives on.
    app.clock.advance(Duration::from_secs(301));
    let listing = app.listing(&fresh).await;
    assert_eq!(listing.len(), 1, "{backend:?}: {listing:?}");
    assert!(listing[0].2);
    for client in [&old_a, &old_b] {
        assert_eq!(app.get(client, "/whoami").await.1, "anonymous");
    }
    // Still one after a later write moves the fresh one's expiry.
    assert_eq!(app.get(&fresh, "/").await.0, 200);
    assert_eq!(app.listing(&fresh).await.len(), 1);
    if let Some(memory) = &app.memory {
        // The expired records went with their entries (the old clients' fresh sessions are
        // anonymous and were never saved).
        assert_eq!(memory.len(), 1);
    }
    for (key, ttl) in app.index_keys().await {
        assert!(ttl > 0, "{key} has no TTL");
    }
}

#[tokio::test]
async fn expired_sessions_are_not_listed_memory() {
    expired_sessions_are_not_listed(Backend::Memory).await;
}

#[tokio::test]
async fn expired_sessions_are_not_listed_redis() {
    expired_sessions_are_not_listed(Backend::Redis).await;
}

#[tokio::test]
async fn expired_sessions_are_not_listed_cluster() {
    expired_sessions_are_not_listed(Backend::Cluster).await;
}

#[tokio::test]
async fn expired_sessions_are_not_listed_postgres() {
    expired_sessions_are_not_listed(Backend::Postgres).await;
}

#[tokio::test]
async fn expired_sessions_are_not_listed_sqlite() {
    expired_sessions_are_not_listed(Backend::Sqlite).await;
}

/// A user cannot revoke another user's session: 404, and nothing changes. Their own handle
/// works, once.
async fn revoking_another_users_session(backend: Backend) {
    let app = App::start(backend).await;
    let alice = app.logged_in(1).await;
    let bob = app.logged_in(2).await;
    let bob_phone = app.logged_in(2).await;
    let bob_handles: Vec<String> = app
        .listing(&bob)
        .await
        .into_iter()
        .map(|(h, _, _)| h)
        .collect();
    assert_eq!(bob_handles.len(), 2);
    for handle in &bob_handles {
        let (status, _) = app
            .post(&alice, &format!("/sessions/revoke?handle={handle}"))
            .await;
        assert_eq!(status, 404, "{backend:?}: alice revoked bob's session");
    }
    for garbage in ["x", "", "%00", &"A".repeat(43), &"é".repeat(22)] {
        let (status, _) = app
            .post(&alice, &format!("/sessions/revoke?handle={garbage}"))
            .await;
        assert_eq!(status, 404, "{garbage:?}");
    }
    assert_eq!(app.get(&bob, "/whoami").await.1, "2");
    assert_eq!(app.get(&bob_phone, "/whoami").await.1, "2");
    assert_eq!(app.listing(&bob).await.len(), 2);
    // Bob revokes his phone's session from his laptop.
    let phone = app
        .listing(&bob)
        .await
        .into_iter()
        .find(|(_, _, current)| !current)
        .unwrap()
        .0;
    let (status, _) = app
        .post(&bob, &format!("/sessions/revoke?handle={phone}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get(&bob_phone, "/whoami").await.1, "anonymous");
    let (status, _) = app
        .post(&bob, &format!("/sessions/revoke?handle={phone}"))
        .await;
    assert_eq!(status, 404, "a revoked handle is gone");
    assert_eq!(app.get(&bob, "/whoami").await.1, "2");
    assert_eq!(app.get(&alice, "/whoami").await.1, "1");
    // Not logged in: 401 for the revocations, `anonymous` for the listing.
    let nobody = browser();
    assert_eq!(app.post(&nobody, "/logout-everywhere").await.0, 401);
    assert_eq!(app.post(&nobody, "/logout-others").await.0, 401);
    assert_eq!(app.get(&nobody, "/sessions").await.1.trim(), "anonymous");
}

#[tokio::test]
async fn revoking_another_users_session_memory() {
    revoking_another_users_session(Backend::Memory).await;
}

#[tokio::test]
async fn revoking_another_users_session_redis() {
    revoking_another_users_session(Backend::Redis).await;
}

#[tokio::test]
async fn revoking_another_users_session_cluster() {
    revoking_another_users_session(Backend::Cluster).await;
}

#[tokio::test]
async fn revoking_another_users_session_postgres() {
    revoking_another_users_session(Backend::Postgres).await;
}

#[tokio::test]
async fn revoking_another_users_session_sqlite() {
    revoking_another_users_session(Backend::Sqlite).await;
}

/// Logging out, logging in as someone else and expiring leave the index as the records are.
#[tokio::test]
async fn memory_index_follows_the_records() {
    let app = App::start(Backend::Memory).await;
    let a = app.logged_in(4).await;
    let b = app.logged_in(4).await;
    assert_eq!(app.listing(&a).await.len(), 2);
    // b logs in as another user without logging out: it leaves user 4's index.
    assert_eq!(app.post(&b, "/login?user=5").await.0, 204);
    assert_eq!(app.listing(&a).await.len(), 1);
    assert_eq!(app.listing(&b).await.len(), 1);
    assert_eq!(app.post(&b, "/logout").await.0, 204);
    assert_eq!(app.listing(&a).await.len(), 1);
}

/// A cookie store cannot list or revoke sessions: the API says so (501), never a silent no-op.
#[tokio::test]
async fn cookie_stores_answer_not_implemented() {
    let clock = TestClock::new();
    let layer = SessionLayer::new(SimpleCookieStore::new()).with_config(test_config(&clock));
    let server = TestServer::start(session_examples::routes().layer(layer)).await;
    let client = browser();
    let (status, _, _) = send(client.post(server.url("/login?user=1"))).await;
    assert_eq!(status, 204);
    let (status, _, body) = send(client.get(server.url("/sessions"))).await;
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("cannot"), "{body}");
    let (status, _, _) = send(client.post(server.url("/logout-everywhere"))).await;
    assert_eq!(status, 501);
    let (_, _, body) = send(client.get(server.url("/whoami"))).await;
    assert_eq!(body, "1", "a failed revocation changes nothing");
}

/// Round trips Redis receives per request on the example's owned session (a private server,
/// counted with `MONITOR`): reads and writes cost what they cost without an owner field; a
/// login one round trip more (the index script, between the new record's write and the old
/// one's `DEL`); a write that moves the expiry into a later hour refreshes the index entry
/// first (at most once an hour per session); a logout nothing more.
#[tokio::test]
async fn round_trips_with_an_owner() {
    let own = session_tests::redis::OwnRedis::start().await;
    let store = RedisStore::connect(&own.url()).await.unwrap();
    let clock = TestClock::new();
    let layer = SessionLayer::new(store).with_config(test_config(&clock));
    let server = TestServer::start(session_examples::routes().layer(layer)).await;
    let app = |path: &str| server.url(path);
    // Warm up: the scripts are loaded once (`NOSCRIPT`, `SCRIPT LOAD`).
    let warm = browser();
    send(warm.get(app("/"))).await;
    send(warm.post(app("/login?user=2"))).await;
    send(warm.get(app("/sessions"))).await;
    send(warm.post(app("/logout-others"))).await;
    let c = browser();
    send(c.get(app("/"))).await;
    let mut monitor = session_tests::redis::Monitor::start(&own.url()).await;
    let mut report = Vec::new();
    let mut step = async |name: &str, request: reqwest::RequestBuilder, expected: &[&str]| {
        monitor.round_trips().await;
        let (status, _, _) = send(request).await;
        assert!(status < 300, "{name}: {status}");
        let sent = monitor.round_trips().await;
        report.push(format!("{name}: {} ({})", sent.len(), sent.join(", ")));
        assert_eq!(sent, expected, "{name}");
    };
    step(
        "login",
        c.post(app("/login?user=1")),
        &["hmget", "hgetall", "evalsha", "evalsha", "del"],
    )
    .await;
    step("read", c.get(app("/read")), &["hmget"]).await;
    step("write", c.get(app("/")), &["hmget", "evalsha"]).await;
    step("whoami", c.get(app("/whoami")), &["hmget"]).await;
    clock.advance(Duration::from_secs(2 * 3600));
    step(
        "write two hours later",
        c.get(app("/")),
        &["hmget", "evalsha", "evalsha"],
    )
    .await;
    step("next write", c.get(app("/")), &["hmget", "evalsha"]).await;
    step(
        "list",
        c.get(app("/sessions")),
        &["hmget", "evalsha", "hgetall"],
    )
    .await;
    step("logout", c.post(app("/logout")), &["hmget", "del"]).await;
    println!("round trips with an owner: {}", report.join("; "));
}

/// Revocation is final at once: a request of the revoked session that was in flight and saves
/// afterwards does not bring it back, and the next request with the revoked cookie is anonymous.
async fn in_flight_save_does_not_resurrect(backend: Backend) {
    use axum::routing::get;
    use session_examples::Counter;
    use session_runtime::TypedSession;
    async fn slow(mut session: TypedSession<Counter>) -> String {
        tokio::time::sleep(Duration::from_millis(300)).await;
        *session.visits_mut() += 1;
        session.visits().to_string()
    }
    let clock = TestClock::new();
    let prefix = unique_prefix("inflight");
    let (layer, _) = backend_layer(backend, &prefix).await;
    let app = session_examples::routes()
        .route("/slow", get(slow))
        .layer(layer.with_config(test_config(&clock)));
    let server = TestServer::start(app).await;
    let victim = browser();
    let admin = browser();
    for client in [&victim, &admin] {
        send(client.post(server.url("/login?user=11"))).await;
    }
    let in_flight = tokio::spawn({
        let request = victim.get(server.url("/slow"));
        async move { send(request).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = send(admin.post(server.url("/logout-others"))).await;
    assert_eq!((status, body.trim()), (200, "1"), "{backend:?}");
    let (status, headers, _) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        session_tests::server::set_cookies(&headers).is_empty(),
        "{backend:?}: the revoked session was saved again"
    );
    let (_, _, body) = send(victim.get(server.url("/whoami"))).await;
    assert_eq!(body, "anonymous", "{backend:?}");
    let (_, _, body) = send(admin.get(server.url("/sessions"))).await;
    assert_eq!(body.lines().count(), 1, "{backend:?}: {body}");
}

#[tokio::test]
async fn in_flight_save_does_not_resurrect_memory() {
    in_flight_save_does_not_resurrect(Backend::Memory).await;
}

#[tokio::test]
async fn in_flight_save_does_not_resurrect_redis() {
    in_flight_save_does_not_resurrect(Backend::Redis).await;
}

#[tokio::test]
async fn in_flight_save_does_not_resurrect_cluster() {
    in_flight_save_does_not_resurrect(Backend::Cluster).await;
}

#[tokio::test]
async fn in_flight_save_does_not_resurrect_postgres() {
    in_flight_save_does_not_resurrect(Backend::Postgres).await;
}

#[tokio::test]
async fn in_flight_save_does_not_resurrect_sqlite() {
    in_flight_save_does_not_resurrect(Backend::Sqlite).await;
}
