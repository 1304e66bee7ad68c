//! The SQL stores against real databases: `PostgresStore` on the PostgreSQL the tests find or
//! start (`DATABASE_URL`, else 127.0.0.1:5432, else a private cluster), `SqliteStore` on a temp
//! file in WAL mode. Each runs the shared store suite, the 64-way disjoint-field race, 1,000
//! logout races, the per-user API, round-trip counts and outages.
//!
//! The figures are printed; run with `--nocapture`.

#![allow(clippy::print_stdout, reason = "the tests report measured figures")]

use std::time::{Duration, Instant};

use session_runtime::SessionLayer;
use session_runtime::config::{Clock as _, SessionConfig};
use session_runtime::store::{PostgresStore, StoreKind};
use session_tests::proxy::{Line, Proxy};
use session_tests::server::{
    TestClock, TestServer, browser, cookie_value, raw_client, send, set_cookies, test_config,
};
use session_tests::suite::{Harness, app};

async fn postgres_layer(config: SessionConfig) -> SessionLayer {
    let store = session_tests::sql::postgres_store("suite", None, Duration::from_secs(5)).await;
    SessionLayer::new(store).with_config(config)
}

fn postgres_harness() -> Harness {
    Harness {
        kind: StoreKind::Server,
        tamper_evident: true,
        make: Box::new(|config| Box::pin(postgres_layer(config))),
    }
}

mod postgres {
    session_tests::store_suite!(super::postgres_harness());
}

async fn sqlite_layer(config: SessionConfig) -> SessionLayer {
    SessionLayer::new(session_tests::sql::sqlite_store("suite").await).with_config(config)
}

fn sqlite_harness() -> Harness {
    Harness {
        kind: StoreKind::Server,
        tamper_evident: true,
        make: Box::new(|config| Box::pin(sqlite_layer(config))),
    }
}

mod sqlite {
    session_tests::store_suite!(super::sqlite_harness());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_disjoint_fields_all_land() {
    let clock = TestClock::new();
    let layer = sqlite_layer(test_config(&clock).with_serialized_requests(false)).await;
    let landed = session_tests::races::sixty_four_fields(layer).await;
    println!("sqlite: 64 concurrent field changes: {landed}/64");
    assert_eq!(landed, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_logout_races_never_resurrect() {
    let clock = TestClock::new();
    let layer = sqlite_layer(test_config(&clock).with_serialized_requests(false)).await;
    let resurrected = session_tests::races::logout_races(layer, 1000).await;
    println!("sqlite: {resurrected} resurrected in 1000 logout races");
    assert_eq!(resurrected, 0);
}

#[tokio::test]
async fn sqlite_delete_expired() {
    let store = session_tests::sql::sqlite_store("expired").await;
    let clock = TestClock::new();
    let server = TestServer::start(app(
        SessionLayer::new(store.clone()).with_config(test_config(&clock))
    ))
    .await;
    let c = raw_client();
    for _ in 0..30 {
        send(c.get(server.url("/visit"))).await;
    }
    let client = browser();
    clock.advance(Duration::from_secs(700));
    send(client.get(server.url("/visit"))).await;
    assert_eq!(
        store
            .delete_expired_before(clock.now_millis())
            .await
            .unwrap(),
        30
    );
    let (_, _, body) = send(client.get(server.url("/visit"))).await;
    assert_eq!(body, "2", "the live session stays");
}

/// 64 requests change 64 different fields of one session after all have loaded (serialization
/// off, as across processes): all 64 land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_disjoint_fields_all_land() {
    let clock = TestClock::new();
    let layer = postgres_layer(test_config(&clock).with_serialized_requests(false)).await;
    let landed = session_tests::races::sixty_four_fields(layer).await;
    println!("postgres: 64 concurrent field changes: {landed}/64");
    assert_eq!(landed, 64);
}

/// 1,000 saves that loaded a session before a logout never bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_logout_races_never_resurrect() {
    let clock = TestClock::new();
    let layer = postgres_layer(test_config(&clock).with_serialized_requests(false)).await;
    let resurrected = session_tests::races::logout_races(layer, 1000).await;
    println!("postgres: {resurrected} resurrected in 1000 logout races");
    assert_eq!(resurrected, 0);
}

/// Statements and round trips per request, counted at the wire by a proxy: no statement without
/// extraction, one to read, two to write, each one round trip that the request waits for; sqlx's
/// pool then pings the connection it takes back (one more round trip per statement, in a task of
/// its own, after the answer: the request does not wait for it).
#[tokio::test]
async fn postgres_round_trips_per_request() {
    let url = session_tests::postgres::database_url().await;
    let upstream = upstream_addr(&url).await;
    let proxy = Proxy::start(upstream).await;
    // One connection, so every statement is prepared once and then reused.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_lazy(&proxy.url_for(&url))
        .unwrap();
    let schema = session_tests::sql::postgres_schema(&pool).await;
    let store = PostgresStore::new(pool)
        .with_table(&format!(
            "{schema}.{}",
            session_tests::postgres::unique_table("rt")
        ))
        .unwrap();
    store.migrate().await.unwrap();
    let clock = TestClock::new();
    let server = TestServer::start(app(
        SessionLayer::new(store).with_config(test_config(&clock))
    ))
    .await;
    let c = raw_client();
    // Warm up: every statement of the scenario runs once (each is prepared on first use).
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let cookie = format!("suite={}", cookie_value(&headers, "suite").unwrap());
    send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    send(c.get(server.url("/read")).header("cookie", &cookie)).await;
    let mut report = Vec::new();
    for (name, path, expected) in [
        ("no extraction", "/untouched", 0),
        ("read", "/read", 1),
        ("write", "/visit", 2),
        ("read, nothing new", "/read", 1),
    ] {
        // Let the pool's release ping of the previous request finish first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = proxy.take();
        let (status, _, _) = send(c.get(server.url(path)).header("cookie", &cookie)).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (statements, round_trips) = proxy.take();
        report.push(format!(
            "{name}: {statements} statements, {round_trips} round trips with the pool's pings"
        ));
        assert_eq!(statements, expected, "{name}");
        assert_eq!(round_trips, 2 * expected, "{name}: one ping per statement");
    }
    println!("postgres round trips: {}", report.join("; "));
}

/// The database's address in `url` (`postgres://user@host:port/db`).
async fn upstream_addr(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.split_once('@').map_or(rest, |(_, rest)| rest);
    let host_port = rest.split(['/', '?']).next().unwrap();
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// The database stops answering, then goes down, then comes back: 503 within the timeout while
/// it is out (the cookie untouched), and service
/// comes back without a restart.
#[tokio::test]
async fn postgres_outage_rejects_with_503_and_recovers() {
    let url = session_tests::postgres::database_url().await;
    let proxy = Proxy::start(upstream_addr(&url).await).await;
    let timeout = Duration::from_millis(500);
    let store =
        session_tests::sql::postgres_store("outage", Some(&proxy.url_for(&url)), timeout).await;
    let clock = TestClock::new();
    let server = TestServer::start(app(
        SessionLayer::new(store).with_config(test_config(&clock))
    ))
    .await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let cookie = format!("suite={}", cookie_value(&headers, "suite").unwrap());
    let mut report = Vec::new();
    for line in [Line::Silent, Line::Down] {
        proxy.set(line);
        let started = Instant::now();
        let (status, headers, _) =
            send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "{line:?}");
        assert!(
            set_cookies(&headers).is_empty(),
            "{line:?}: the cookie is never overwritten"
        );
        assert!(took < Duration::from_secs(2), "{line:?}: took {took:?}");
        report.push(format!("{line:?} -> 503 in {took:?}"));
        let (status, _, _) = send(c.get(server.url("/untouched")).header("cookie", &cookie)).await;
        assert_eq!(status, 200, "routes without a session keep working");
    }
    proxy.set(Line::Open);
    let started = Instant::now();
    let mut body = None;
    for _ in 0..50 {
        let (status, _, answer) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
        if status == 200 {
            body = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        body.as_deref(),
        Some("2"),
        "the session survives the outage"
    );
    report.push(format!("recovered in {:?}", started.elapsed()));
    println!("postgres outage: {}", report.join("; "));
}

/// Every connection of the pool is taken: a request waits for the acquire timeout and answers
/// 503, never hangs.
#[tokio::test]
async fn postgres_pool_exhausted_answers_503() {
    let url = session_tests::postgres::database_url().await;
    let timeout = Duration::from_millis(300);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect_lazy(&url)
        .unwrap();
    let schema = session_tests::sql::postgres_schema(&pool).await;
    let store = PostgresStore::new(pool.clone())
        .with_table(&format!(
            "{schema}.{}",
            session_tests::postgres::unique_table("pool")
        ))
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    store.migrate().await.unwrap();
    let clock = TestClock::new();
    let server = TestServer::start(app(
        SessionLayer::new(store).with_config(test_config(&clock))
    ))
    .await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let cookie = format!("suite={}", cookie_value(&headers, "suite").unwrap());
    // Let the pool take its connection back (its release ping runs in a task of its own).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = pool.acquire().await.unwrap();
    // A stored session: its load waits for a connection, then answers 503.
    let started = Instant::now();
    let (load_status, headers, _) =
        send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    let load_took = started.elapsed();
    assert_eq!(load_status, 503);
    assert!(
        set_cookies(&headers).is_empty(),
        "the cookie is never overwritten"
    );
    assert!(load_took < Duration::from_secs(2), "took {load_took:?}");
    // A new session: nothing to load, so the save is what waits: 503 without a cookie.
    let started = Instant::now();
    let (save_status, headers, _) = send(c.get(server.url("/visit"))).await;
    let save_took = started.elapsed();
    assert_eq!(save_status, 503);
    assert!(set_cookies(&headers).is_empty());
    assert!(save_took < Duration::from_secs(2), "took {save_took:?}");
    drop(held);
    let (status, _, body) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    println!(
        "postgres, pool exhausted: load -> {load_status} after {load_took:?}, save -> {save_status} after {save_took:?}"
    );
}

/// A database locked by another writer: saves wait for the lock up to the store's deadline,
/// then answer 503 without `Set-Cookie`; reads go on (WAL mode); the lock's release ends it.
#[tokio::test]
async fn sqlite_locked_database_fails_saves_and_recovers() {
    let store = session_tests::sql::sqlite_store("locked")
        .await
        .with_timeout(Duration::from_millis(300));
    let clock = TestClock::new();
    let server = TestServer::start(app(
        SessionLayer::new(store.clone()).with_config(test_config(&clock))
    ))
    .await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let cookie = format!("suite={}", cookie_value(&headers, "suite").unwrap());
    let mut locker = store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let started = Instant::now();
    let (status, headers, _) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    let took = started.elapsed();
    assert_eq!(status, 503);
    assert!(set_cookies(&headers).is_empty());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let (status, _, body) = send(c.get(server.url("/read")).header("cookie", &cookie)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "1"),
        "reads go on while a writer holds the lock"
    );
    sqlx::query("ROLLBACK").execute(&mut *locker).await.unwrap();
    drop(locker);
    let (status, _, body) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    println!("sqlite, database locked: save -> 503 after {took:?}");
}

/// `delete_expired` removes expired rows in batches and leaves live ones.
#[tokio::test]
async fn postgres_delete_expired() {
    let store = session_tests::sql::postgres_store("expired", None, Duration::from_secs(5)).await;
    let clock = TestClock::new();
    let server = TestServer::start(app(
        SessionLayer::new(store.clone()).with_config(test_config(&clock))
    ))
    .await;
    let c = raw_client();
    for _ in 0..30 {
        send(c.get(server.url("/visit"))).await;
    }
    let client = browser();
    send(client.get(server.url("/visit"))).await;
    // The suite's sessions live 600 s idle: the first 30 are expired 700 s later; one more
    // created then is live.
    clock.advance(Duration::from_secs(700));
    send(client.get(server.url("/visit"))).await; // expired: a new session
    let deleted = store
        .delete_expired_before(clock.now_millis())
        .await
        .unwrap();
    assert_eq!(deleted, 31);
    assert_eq!(
        store
            .delete_expired_before(clock.now_millis())
            .await
            .unwrap(),
        0
    );
    let (_, _, body) = send(client.get(server.url("/visit"))).await;
    assert_eq!(body, "2", "the live session stays");
}

/// The example's routes on a SQL store: 200 concurrent `GET /a` and 200 concurrent `GET /b` with
/// one cookie end with `200,200`; after `POST /logout` the row is gone.
async fn example_counts_every_request(layer: SessionLayer, rows: impl AsyncFn() -> i64) {
    let server = TestServer::start(session_examples::routes().layer(layer)).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/"))).await;
    let cookie = format!("counter={}", cookie_value(&headers, "counter").unwrap());
    let requests: Vec<_> = (0..400)
        .map(|i| {
            let path = if i % 2 == 0 { "/a" } else { "/b" };
            tokio::spawn(send(c.get(server.url(path)).header("cookie", &cookie)))
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let (_, _, body) = send(c.get(server.url("/read")).header("cookie", &cookie)).await;
    assert_eq!(body, "1");
    let (_, _, body) = send(c.get(server.url("/a")).header("cookie", &cookie)).await;
    assert_eq!(body, "201,200");
    assert_eq!(rows().await, 1);
    let (status, _, _) = send(c.post(server.url("/logout")).header("cookie", &cookie)).await;
    assert_eq!(status, 204);
    assert_eq!(rows().await, 0, "the row is gone after logout");
}

fn count_rows(table: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_example_counts_every_request() {
    let store = session_tests::sql::postgres_store("example", None, Duration::from_secs(5)).await;
    let clock = TestClock::new();
    let layer = SessionLayer::new(store.clone()).with_config(test_config(&clock));
    example_counts_every_request(layer, async || {
        sqlx::query_scalar(count_rows(store.table()))
            .fetch_one(store.pool())
            .await
            .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_example_counts_every_request() {
    let store = session_tests::sql::sqlite_store("example").await;
    let clock = TestClock::new();
    let layer = SessionLayer::new(store.clone()).with_config(test_config(&clock));
    example_counts_every_request(layer, async || {
        sqlx::query_scalar(count_rows(store.table()))
            .fetch_one(store.pool())
            .await
            .unwrap()
    })
    .await;
}

/// The example's own set-up on `--store sqlite --database-url sqlite://PATH`: a missing file
/// (and its directory) is created, the table too, and the routes work.
#[tokio::test]
async fn example_sqlite_set_up_creates_the_file() {
    let dir = std::env::temp_dir().join(session_tests::postgres::unique_table("example_dir"));
    let path = dir.join("nested").join("sessions.sqlite");
    let clock = TestClock::new();
    let url = format!("sqlite://{}", path.display());
    let backends = session_examples::Backends {
        database_url: Some(&url),
        ..session_examples::Backends::default()
    };
    let layer = session_examples::layer_with(
        session_examples::StoreChoice::Sqlite,
        &backends,
        test_config(&clock),
    )
    .await
    .unwrap();
    assert!(path.is_file(), "the database file was created");
    let server = TestServer::start(session_examples::routes().layer(layer)).await;
    let c = browser();
    for expected in ["1", "2"] {
        let (_, _, body) = send(c.get(server.url("/"))).await;
        assert_eq!(body, expected);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// The example's own set-up on `--store postgres`: an unreachable database fails the start
/// within two seconds with an error that says so (no 30-second wait).
#[tokio::test]
async fn example_postgres_unreachable_fails_fast() {
    let clock = TestClock::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let started = Instant::now();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let backends = session_examples::Backends {
        database_url: Some(&url),
        ..session_examples::Backends::default()
    };
    let result = session_examples::layer_with(
        session_examples::StoreChoice::Postgres,
        &backends,
        test_config(&clock),
    )
    .await;
    let took = started.elapsed();
    let error = result.expect_err("no database there");
    assert!(error.to_string().contains("session table"), "{error}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
