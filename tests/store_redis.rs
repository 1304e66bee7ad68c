//! `RedisStore` against a real Redis, single node and a 3-master Redis Cluster started by the
//! tests: the shared store suite, field-level writes, round trips per request, concurrency, the
//! logout race, TTLs, outages and timeouts.
//!
//! The figures (round trips, counts) are printed; run with `--nocapture`.

#![allow(clippy::print_stdout, reason = "the tests report measured figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use redis::AsyncCommands as _;
use session_runtime::config::SessionConfig;
use session_runtime::session::SessionId;
use session_runtime::store::{RedisStore, StoreKind};
use session_runtime::{Session, SessionLayer, TypedSession};
use session_tests::fixture::Fixture;
use session_tests::redis::{Monitor, OwnRedis, unique_prefix};
use session_tests::server::{
    TestClock, TestServer, browser, cookie_value, raw_client, send, set_cookies, test_config,
};
use session_tests::suite::{Harness, Suite, app, app_with};
use tokio::sync::Notify;

async fn single(prefix: &str, config: SessionConfig) -> SessionLayer {
    let server = session_tests::redis::server().await;
    let store = RedisStore::builder()
        .key_prefix(prefix)
        .connect(server.url())
        .await
        .unwrap();
    SessionLayer::new(store).with_config(config)
}

async fn clustered(prefix: &str, config: SessionConfig) -> SessionLayer {
    let cluster = session_tests::redis::cluster().await;
    let store = RedisStore::builder()
        .key_prefix(prefix)
        .connect_cluster(cluster.urls())
        .await
        .unwrap();
    SessionLayer::new(store).with_config(config)
}

/// A store on the harness Redis with `prefix`, to compute keys with [`RedisStore::key_of`].
async fn keys_of(prefix: &str) -> RedisStore {
    RedisStore::builder()
        .key_prefix(prefix)
        .connect(session_tests::redis::server().await.url())
        .await
        .unwrap()
}

/// A plain connection to the harness Redis, to look at what the store wrote.
async fn raw_redis() -> redis::aio::MultiplexedConnection {
    session_tests::redis::server()
        .await
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// [`test_config`] with renewal every 300 s and a grace period of 30 s.
fn renewing(clock: &Arc<TestClock>) -> SessionConfig {
    test_config(clock).with_renewal(Some((Duration::from_secs(300), Duration::from_secs(30))))
}

/// The suite's harness on one node or on the cluster; every suite run gets its own key prefix.
fn harness(on_cluster: bool) -> Harness {
    Harness {
        kind: StoreKind::Server,
        tamper_evident: true,
        make: Box::new(move |config| {
            Box::pin(async move {
                let prefix = unique_prefix("suite");
                if on_cluster {
                    clustered(&prefix, config).await
                } else {
                    single(&prefix, config).await
                }
            })
        }),
    }
}

mod single_node {
    use super::*;
    session_tests::store_suite!(harness(false));
}

mod cluster {
    use super::*;
    session_tests::store_suite!(harness(true));
}

/// Only the changed field is written: a value another process put in another field survives.
#[tokio::test]
async fn only_changed_fields_are_written() {
    let prefix = unique_prefix("fields");
    let Fixture { store, server, .. } = Fixture::redis(&prefix, test_config, app).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let id = cookie_value(&headers, "suite").unwrap();
    let key = store.key_of(&SessionId::parse(&id).unwrap());
    let mut redis = raw_redis().await;
    let _: () = redis
        .hset(&key, "note", "\"from elsewhere\"")
        .await
        .unwrap();
    let (_, _, body) = send(
        c.get(server.url("/visit"))
            .header("cookie", format!("suite={id}")),
    )
    .await;
    assert_eq!(body, "2");
    let note: String = redis.hget(&key, "note").await.unwrap();
    assert_eq!(
        note, "\"from elsewhere\"",
        "an unchanged field was rewritten"
    );
    let visits: String = redis.hget(&key, "visits").await.unwrap();
    assert_eq!(visits, "2");
}

/// Round trips Redis receives per request, on a private server, counted with `MONITOR`: the
/// commands clients sent, not those our save script runs inside Redis.
#[tokio::test]
async fn round_trips_per_request() {
    let own = OwnRedis::start().await;
    let store = RedisStore::connect(&own.url()).await.unwrap();
    let Fixture { clock, server, .. } = Fixture::start_with(store, renewing, app).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await; // loads the script once
    let cookie = format!("suite={}", cookie_value(&headers, "suite").unwrap());
    let mut monitor = Monitor::start(&own.url()).await;
    let mut report = Vec::new();
    for (name, path, expected) in [
        ("no extraction", "/untouched", &[][..]),
        ("read", "/read", &["hmget"][..]),
        ("write", "/visit", &["hmget", "evalsha"][..]),
        ("read, nothing new", "/read", &["hmget"][..]),
    ] {
        monitor.round_trips().await;
        let (status, _, _) = send(c.get(server.url(path)).header("cookie", &cookie)).await;
        assert_eq!(status, 200);
        let sent = monitor.round_trips().await;
        report.push(format!("{name}: {} ({})", sent.len(), sent.join(", ")));
        assert_eq!(sent, expected, "{name}");
    }
    monitor.round_trips().await;
    for garbage in [
        "suite=../../etc/passwd",
        "suite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
        "suite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        send(c.get(server.url("/read")).header("cookie", garbage)).await;
    }
    let sent = monitor.round_trips().await;
    assert!(sent.is_empty(), "a malformed id reached Redis: {sent:?}");
    // Id renewal: the first request of a new period reads the fields the type does not declare
    // (to carry them), writes the new key and the old key's forward; within the grace period the
    // old id costs one more load.
    clock.advance(Duration::from_secs(301));
    let (_, headers, _) = send(c.get(server.url("/read")).header("cookie", &cookie)).await;
    let sent = monitor.round_trips().await;
    report.push(format!("renewal: {} ({})", sent.len(), sent.join(", ")));
    assert_eq!(sent, ["hmget", "hgetall", "evalsha", "evalsha"], "renewal");
    let renewed = cookie_value(&headers, "suite").expect("renewed");
    let (_, headers, _) = send(c.get(server.url("/read")).header("cookie", &cookie)).await;
    let sent = monitor.round_trips().await;
    report.push(format!(
        "old id in grace: {} ({})",
        sent.len(),
        sent.join(", ")
    ));
    assert_eq!(sent, ["hmget", "hmget"], "old id in grace");
    assert_eq!(cookie_value(&headers, "suite"), Some(renewed));
    println!("round trips: {}", report.join("; "));
}

/// 64 requests on one session load, wait until all have loaded, then each changes a different
/// field: with field-level writes all 64 changes land. Serialization is off here, as it would be
/// across processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_to_different_fields_all_land() {
    let clock = TestClock::new();
    let config = || test_config(&clock).with_serialized_requests(false);
    let single_count =
        session_tests::races::sixty_four_fields(single(&unique_prefix("wide"), config()).await)
            .await;
    let cluster_count =
        session_tests::races::sixty_four_fields(clustered(&unique_prefix("wide"), config()).await)
            .await;
    println!(
        "64 concurrent field changes: single node {single_count}/64, cluster {cluster_count}/64"
    );
    assert_eq!((single_count, cluster_count), (64, 64));
}

/// A request that loaded a session before another tab logged out must not bring it back when it
/// saves. Repeated 1,000 times on one node and 200 times on the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_race_never_resurrects() {
    let mut report = Vec::new();
    for (name, clustered_store, rounds) in [("single node", false, 1000), ("cluster", true, 200)] {
        let prefix = unique_prefix("race");
        let clock = TestClock::new();
        let config = test_config(&clock).with_serialized_requests(false);
        let layer = if clustered_store {
            clustered(&prefix, config).await
        } else {
            single(&prefix, config).await
        };
        let resurrected = session_tests::races::logout_races(layer, rounds).await;
        report.push(format!(
            "{name}: {resurrected} resurrected in {rounds} races"
        ));
        assert_eq!(resurrected, 0, "{name}");
    }
    println!("logout race: {}", report.join("; "));
}

/// Every key a run of requests leaves behind carries an expiry.
#[tokio::test]
async fn every_key_has_a_ttl() {
    let prefix = unique_prefix("ttl");
    let Fixture { store, server, .. } = Fixture::redis(&prefix, test_config, app).await;
    for path in ["/visit", "/remember", "/visit"] {
        let c = browser();
        send(c.get(server.url(path))).await;
        send(c.post(server.url("/login?user=5"))).await;
        send(c.get(server.url("/visit"))).await;
    }
    let mut redis = raw_redis().await;
    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.unwrap();
    assert_eq!(keys.len(), 3, "one live session per client: {keys:?}");
    for key in keys {
        let ttl: i64 = redis.pttl(&key).await.unwrap();
        // `Suite` has an absolute timeout of an hour: no key may outlive it.
        assert!(ttl > 0 && ttl <= 3_600_000, "{key} has PTTL {ttl}");
    }
    // The expiry is the idle timeout from the save (`Suite::max_age` = 600 s), set in the same
    // write: a fresh session's key has a PTTL just under 600 s (aiohttp_session test 55).
    let c = browser();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let id = cookie_value(&headers, "suite").unwrap();
    let key = store.key_of(&SessionId::parse(&id).unwrap());
    let ttl: i64 = redis.pttl(key).await.unwrap();
    assert!((590_000..=600_000).contains(&ttl), "PTTL {ttl}");
}

/// The write script goes out as `EVALSHA`. When Redis no longer has it (a restart, `SCRIPT
/// FLUSH`), the store loads it and the same write lands.
#[tokio::test]
async fn writes_survive_a_script_flush() {
    let Fixture { server, .. } = Fixture::redis(&unique_prefix("flush"), test_config, app).await;
    let c = browser();
    assert_eq!(send(c.get(server.url("/visit"))).await.2, "1");
    let mut redis = session_tests::redis::server()
        .await
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut redis)
        .await
        .unwrap();
    let (status, _, body) = send(c.get(server.url("/visit"))).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    assert_eq!(send(c.get(server.url("/read"))).await.2, "2");
}

/// Redis stopped: the extractor answers 503 within the timeout, sends no cookie, and once Redis
/// is back requests succeed without restarting the app. A paused Redis times out the same way.
#[tokio::test]
async fn outage_rejects_with_503_and_recovers() {
    let mut own = OwnRedis::start().await;
    let store = RedisStore::builder()
        .response_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect(&own.url())
        .await
        .unwrap();
    let Fixture { server, .. } = Fixture::start(store, app).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let cookie = format!("suite={}", cookie_value(&headers, "suite").unwrap());

    own.pause(Duration::from_secs(3)).await;
    let started = Instant::now();
    let (status, headers, _) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    let paused = started.elapsed();
    assert_eq!(status, 503);
    assert!(set_cookies(&headers).is_empty());
    assert!(
        paused < Duration::from_secs(2),
        "took {paused:?} with a 300 ms timeout"
    );

    own.stop().await;
    let started = Instant::now();
    let (status, headers, body) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
    let stopped = started.elapsed();
    assert_eq!((status, body.as_str()), (503, "session store unavailable"));
    assert!(
        set_cookies(&headers).is_empty(),
        "the user's cookie is never overwritten"
    );
    assert!(stopped < Duration::from_secs(2), "took {stopped:?}");
    let (status, _, _) = send(c.get(server.url("/untouched")).header("cookie", &cookie)).await;
    assert_eq!(status, 200, "routes without a session keep working");

    own.restart().await;
    let mut recovered = None;
    for _ in 0..50 {
        let (status, _, body) = send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
        if status == 200 {
            recovered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis keeps nothing on disk: the session starts again.
    assert_eq!(recovered.as_deref(), Some("1"), "no recovery after restart");
    println!("outage: paused -> 503 in {paused:?}, stopped -> 503 in {stopped:?}");
}

/// The example on `--store redis`: 200 concurrent `GET /a` and 200 concurrent `GET /b` with one
/// cookie end with `a,b` = `200,200`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_counts_every_concurrent_request() {
    let server = session_tests::redis::server().await;
    let clock = TestClock::new();
    let layer = session_examples::layer(
        session_examples::StoreChoice::Redis,
        Some(server.url()),
        test_config(&clock),
    )
    .await
    .unwrap();
    let app = TestServer::start(session_examples::routes().layer(layer)).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(app.url("/"))).await;
    let cookie = format!("counter={}", cookie_value(&headers, "counter").unwrap());
    let requests: Vec<_> = (0..400)
        .map(|i| {
            let path = if i % 2 == 0 { "/a" } else { "/b" };
            tokio::spawn(send(c.get(app.url(path)).header("cookie", &cookie)))
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let (_, _, body) = send(c.get(app.url("/read")).header("cookie", &cookie)).await;
    assert_eq!(body, "1");
    let (_, _, last) = send(c.get(app.url("/b")).header("cookie", &cookie)).await;
    assert_eq!(last, "200,201");
}

/// SECURITY.md item 20 on Redis: a renewed-away id's hash holds only a masked forward to the
/// new id (no Redis reader learns the new id) and expires with the grace period.
#[tokio::test]
async fn renewal_forward_is_masked_and_short_lived() {
    let Fixture {
        clock,
        store,
        server,
    } = Fixture::redis(&unique_prefix("renewal"), renewing, app).await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let old = cookie_value(&headers, "suite").unwrap();
    clock.advance(Duration::from_secs(301));
    let (_, headers, body) = send(
        c.get(server.url("/read"))
            .header("cookie", format!("suite={old}")),
    )
    .await;
    assert_eq!(body, "1");
    let new = cookie_value(&headers, "suite").unwrap();
    assert_ne!(new, old);
    let old_key = store.key_of(&SessionId::parse(&old).unwrap());
    let new_key = store.key_of(&SessionId::parse(&new).unwrap());
    let mut redis = raw_redis().await;
    let old_hash: Vec<(Vec<u8>, Vec<u8>)> = redis.hgetall(&old_key).await.unwrap();
    let new_hash: Vec<(Vec<u8>, Vec<u8>)> = redis.hgetall(&new_key).await.unwrap();
    assert!(
        old_hash.iter().any(|(name, _)| name == b"__renewed"),
        "the old record forwards"
    );
    assert!(new_hash.iter().any(|(name, _)| name == b"visits"));
    assert!(!new_hash.iter().any(|(name, _)| name == b"__renewed"));
    let mut names: Vec<&[u8]> = old_hash.iter().map(|(name, _)| name.as_slice()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [&b"__meta"[..], b"__renewed", b"note", b"user", b"visits"],
        "the old record: its data, until it expires, and the forward"
    );
    // The forward is the JSON string `r1.<until>.<base64url(masked new id)>`; the masked bytes
    // must not be the new id.
    let forward = &old_hash
        .iter()
        .find(|(name, _)| name == b"__renewed")
        .unwrap()
        .1;
    let forward: String = serde_json::from_slice(forward).unwrap();
    let masked = forward.rsplit('.').next().unwrap();
    let masked =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, masked).unwrap();
    assert_eq!(masked.len(), new.len());
    assert_ne!(masked, new.as_bytes(), "the forward is masked");
    assert!(
        masked
            .iter()
            .zip(new.as_bytes())
            .filter(|(a, b)| a == b)
            .count()
            < 8,
        "masked bytes look like the id"
    );
    for (name, value) in old_hash.iter().chain(&new_hash) {
        for id in [&old, &new] {
            assert!(
                !value.windows(id.len()).any(|w| w == id.as_bytes())
                    && !name.windows(id.len()).any(|w| w == id.as_bytes()),
                "a session id in the clear in Redis"
            );
        }
    }
    // The test clock runs 301 s ahead of Redis's: the forward's expiry, 30 s after the renewal,
    // lies about 331 s ahead of Redis's clock; the new record's the full 600 s idle timeout.
    let old_ttl: i64 = redis.pttl(&old_key).await.unwrap();
    let new_ttl: i64 = redis.pttl(&new_key).await.unwrap();
    assert!((300_000..=331_000).contains(&old_ttl), "old PTTL {old_ttl}");
    assert!(new_ttl > 880_000, "new PTTL {new_ttl}");
}

/// Holds a request after its session is loaded until the test releases it.
#[derive(Default)]
struct Hold {
    loaded: Notify,
    release: Notify,
}

async fn hold_visit(mut s: TypedSession<Suite>, Extension(hold): Extension<Arc<Hold>>) -> String {
    *s.visits_mut() += 1;
    hold.loaded.notify_one();
    hold.release.notified().await;
    s.visits().to_string()
}

async fn hold_logout(
    mut s: TypedSession<Suite>,
    Extension(hold): Extension<Arc<Hold>>,
) -> &'static str {
    s.invalidate();
    hold.loaded.notify_one();
    hold.release.notified().await;
    "bye"
}

/// Two processes (two layers, two clocks) share one Redis and renew every 300 s with 30 s of
/// grace. A request in process 2 that loaded the session before process 1 renewed it must end in
/// the renewed session: a second renewal racing the first, a plain write (process 2's clock
/// lags, so it is not due), and a logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_races_end_in_one_session() {
    let prefix = unique_prefix("renewal-race");
    let (clock1, clock2) = (TestClock::new(), TestClock::new());
    let renewal = Some((Duration::from_secs(300), Duration::from_secs(30)));
    let one = TestServer::start(app(single(
        &prefix,
        test_config(&clock1).with_renewal(renewal),
    )
    .await))
    .await;
    let hold = Arc::new(Hold::default());
    let routes = Router::new()
        .route("/hold-visit", get(hold_visit))
        .route("/hold-logout", get(hold_logout))
        .layer(Extension(Arc::clone(&hold)));
    let two = Arc::new(
        TestServer::start(app_with(
            single(&prefix, test_config(&clock2).with_renewal(renewal)).await,
            routes,
        ))
        .await,
    );
    let c = raw_client();
    let with = |value: &str| format!("suite={value}");
    let (_, headers, _) = send(c.get(one.url("/visit"))).await;
    let first = cookie_value(&headers, "suite").unwrap();
    let mut redis = raw_redis().await;
    let keys = async |redis: &mut redis::aio::MultiplexedConnection| {
        let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.unwrap();
        keys.len()
    };
    // Runs `path` on process 2 with `value`, and `during` on process 1 while it is held.
    let race = async |path: &str, value: &str, during: &str| {
        let request = {
            let (two, c, cookie, path) =
                (Arc::clone(&two), c.clone(), with(value), path.to_owned());
            tokio::spawn(async move { send(c.get(two.url(&path)).header("cookie", cookie)).await })
        };
        hold.loaded.notified().await;
        let (_, headers, body) = send(c.get(one.url(during)).header("cookie", with(value))).await;
        let renewed = cookie_value(&headers, "suite")
            .unwrap_or_else(|| panic!("process 1 did not renew during {path}: {body}"));
        hold.release.notify_one();
        let (status, headers, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        (renewed, cookie_value(&headers, "suite"), body)
    };

    // 1. Both processes are due: process 2's renewal loses and writes into process 1's.
    clock1.advance(Duration::from_secs(301));
    clock2.advance(Duration::from_secs(301));
    let (second, moved, body) = race("/hold-visit", &first, "/read").await;
    assert_eq!(body, "2");
    assert_eq!(
        moved.as_deref(),
        Some(second.as_str()),
        "one session, not two"
    );
    let (_, _, body) = send(c.get(one.url("/read")).header("cookie", with(&second))).await;
    assert_eq!(
        body, "2",
        "the losing renewal's change landed in the winner's session"
    );
    assert_eq!(
        keys(&mut redis).await,
        2,
        "the forward and the session, no third record"
    );

    // 2. Process 2's clock lags, so its save is a plain write into the renewed-away record:
    // refused by the store and sent on to the new id.
    clock1.advance(Duration::from_secs(300));
    clock2.advance(Duration::from_secs(289));
    let (third, moved, body) = race("/hold-visit", &second, "/read").await;
    assert_eq!(body, "3");
    assert_eq!(moved.as_deref(), Some(third.as_str()));
    let (_, headers, body) = send(c.get(one.url("/read")).header("cookie", with(&third))).await;
    assert_eq!(body, "3", "the stale write landed in the renewed session");
    // The lagging process dated its write before the boundary, so the next request renews once
    // more (harmless: the clock skew between servers costs one extra renewal).
    let third = cookie_value(&headers, "suite").expect("renewed once more");

    // 3. A logout that loaded the old id also ends the renewed session.
    clock1.advance(Duration::from_secs(300));
    clock2.advance(Duration::from_secs(300));
    let (fourth, _, body) = race("/hold-logout", &third, "/read").await;
    assert_eq!(body, "bye");
    let (_, headers, body) = send(c.get(one.url("/read")).header("cookie", with(&fourth))).await;
    assert_eq!(body, "0", "the renewed session ended with the logout");
    assert!(set_cookies(&headers).is_empty());
    let (_, _, body) = send(c.get(one.url("/read")).header("cookie", with(&third))).await;
    assert_eq!(body, "0");
}

/// A session type that renamed its field `colour` to `theme`.
#[derive(Session)]
#[session(cookie_name = "renamed")]
struct Renamed {
    #[session(alias = "colour")]
    theme: String,
}

async fn theme(s: TypedSession<Renamed>) -> String {
    s.theme().clone()
}

/// A load fetches the type's names with `HMGET`: an alias is read, the current name wins over
/// it whatever the hash's order, and fields the type does not declare are left alone.
#[tokio::test]
async fn loads_aliases_and_the_current_name_wins() {
    use session_runtime::config::Clock as _;
    let app = |layer| Router::new().route("/theme", get(theme)).layer(layer);
    let Fixture {
        clock,
        store,
        server,
    } = Fixture::redis(&unique_prefix("alias"), test_config, app).await;
    let id = SessionId::generate().unwrap();
    let key = store.key_of(&id);
    let mut redis = raw_redis().await;
    let now = clock.now_millis();
    let _: () = redis
        .hset_multiple(
            &key,
            &[
                ("__meta", format!("{now}.{now}")),
                ("colour", "\"blue\"".to_owned()),
                ("retired", "not JSON, and not declared".to_owned()),
            ],
        )
        .await
        .unwrap();
    let _: () = redis.expire(&key, 60).await.unwrap();
    let c = raw_client();
    let get_theme = || {
        c.get(server.url("/theme"))
            .header("cookie", format!("renamed={}", id.as_str()))
    };
    let (status, _, body) = send(get_theme()).await;
    assert_eq!((status, body.as_str()), (200, "blue"), "the alias is read");
    // The current name, written after the alias (so after it in the hash's order too).
    let _: () = redis.hset(&key, "theme", "\"green\"").await.unwrap();
    let (_, _, body) = send(get_theme()).await;
    assert_eq!(body, "green", "the current name wins over the alias");
    let retired: String = redis.hget(&key, "retired").await.unwrap();
    assert_eq!(retired, "not JSON, and not declared");
}

/// A rolling touch from a request that loaded the session before another process's request
/// called `set_max_age` (requests are serialized per process only) keeps that `max_age`: the
/// touch writes the timestamps, never `__max_age`.
#[tokio::test]
async fn a_stale_touch_keeps_another_requests_max_age() {
    use session_runtime::__internals::{load, record_codec, save};
    use session_runtime::codec::JsonCodec;
    use session_runtime::config::{Clock as _, SystemClock};
    use session_runtime::session::Metadata;
    use session_runtime::store::{SaveOp, SaveOutcome, SessionStore as _};

    let store = keys_of(&unique_prefix("maxage")).await;
    let id = SessionId::generate().unwrap();
    let codec = record_codec::<JsonCodec>();
    let now = SystemClock.now_millis();
    let loaded = Metadata {
        created: now,
        updated: now,
        max_age: None,
    };
    let fields = [("visits", b"1".to_vec())];
    let create = save(
        "s",
        SaveOp::Create { id: &id },
        &loaded,
        &fields,
        now + 600_000,
        codec,
    );
    assert!(matches!(
        store.save(create).await,
        Ok(SaveOutcome::Saved(_))
    ));
    let shortened = Metadata {
        updated: now + 1,
        max_age: Some(60),
        ..loaded
    };
    let update = save(
        "s",
        SaveOp::Update { id: &id },
        &shortened,
        &[],
        now + 60_000,
        codec,
    );
    assert!(matches!(
        store.save(update).await,
        Ok(SaveOutcome::Saved(_))
    ));
    // The other request's view: loaded before the update, so without a max_age.
    let stale = Metadata {
        updated: now + 2,
        ..loaded
    };
    let touch = save(
        "s",
        SaveOp::Touch { id: &id },
        &stale,
        &[],
        now + 600_000,
        codec,
    );
    assert!(matches!(store.save(touch).await, Ok(SaveOutcome::Saved(_))));
    let record = store
        .load(load("s", id.as_str(), now + 3, codec, &["visits"]))
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(
        record.metadata.max_age,
        Some(60),
        "the shorter timeout stays"
    );
    assert_eq!(record.metadata.updated, now + 2, "the touch landed");
}

/// Regenerate and periodic renewal never move a session that is gone (a logout elsewhere during
/// the request) or renewed away to a new id: the store answers `Missing` and writes nothing, so
/// a logout is never undone under a new id.
#[tokio::test]
async fn a_gone_session_never_moves_to_a_new_id() {
    use session_runtime::__internals::{record_codec, save};
    use session_runtime::codec::JsonCodec;
    use session_runtime::config::{Clock as _, SystemClock};
    use session_runtime::session::Metadata;
    use session_runtime::store::{RENEWED_FIELD, SaveOp, SaveOutcome, SessionStore as _};

    let store = keys_of(&unique_prefix("gone")).await;
    let codec = record_codec::<JsonCodec>();
    let now = SystemClock.now_millis();
    let metadata = Metadata::new(now);
    let fields = [("visits", b"1".to_vec())];
    let (gone, renewed, new) = (
        SessionId::generate().unwrap(),
        SessionId::generate().unwrap(),
        SessionId::generate().unwrap(),
    );
    let forward = [(RENEWED_FIELD, b"\"elsewhere\"".to_vec())];
    let create = save(
        "s",
        SaveOp::Create { id: &renewed },
        &metadata,
        &forward,
        now + 600_000,
        codec,
    );
    assert!(matches!(
        store.save(create).await,
        Ok(SaveOutcome::Saved(_))
    ));
    let mut redis = raw_redis().await;
    for old in [&gone, &renewed] {
        for op in [
            SaveOp::Regenerate { old, new: &new },
            SaveOp::Renew { old, new: &new },
        ] {
            let moved = save("s", op, &metadata, &fields, now + 600_000, codec);
            assert!(matches!(store.save(moved).await, Ok(SaveOutcome::Missing)));
            let written: bool = redis.exists(store.key_of(&new)).await.unwrap();
            assert!(!written, "nothing under the new id");
        }
    }

    // aiohttp_session's Redis format too: a key that is gone, or that Python emptied to `{}`.
    let aiohttp = session_runtime::store::aiohttp::AiohttpRedisStore::new(
        keys_of(&unique_prefix("gone-aiohttp")).await,
    );
    let format = aiohttp.format("s").ids();
    let (gone, emptied, new) = (
        format.generate().unwrap(),
        format.generate().unwrap(),
        format.generate().unwrap(),
    );
    let _: () = redis
        .set_ex(format!("s_{}", emptied.as_str()), "{}", 600)
        .await
        .unwrap();
    for old in [&gone, &emptied] {
        let op = SaveOp::Regenerate { old, new: &new };
        let moved = save("s", op, &metadata, &fields, now + 600_000, codec);
        assert!(matches!(
            aiohttp.save(moved).await,
            Ok(SaveOutcome::Missing)
        ));
        let written: bool = redis.exists(format!("s_{}", new.as_str())).await.unwrap();
        assert!(!written, "nothing under the new id");
    }
}

/// `wait_for_replicas`: with no replica to acknowledge, a save answers 503 without `Set-Cookie`
/// (not acknowledged is not saved, as far as the client knows); with a replica attached, every
/// save returns only once the replica holds it, so what a client was told is saved is on two
/// nodes.
#[tokio::test]
async fn waiting_for_a_replica() {
    let primary = OwnRedis::start().await;
    let url = primary.url();
    let waiting = |timeout| {
        RedisStore::builder()
            .wait_for_replicas(1, timeout)
            .connect(&url)
    };
    let keys = RedisStore::connect(&primary.url()).await.unwrap();
    let unreplicated =
        Fixture::start(waiting(Duration::from_millis(200)).await.unwrap(), app).await;
    let c = raw_client();
    let started = Instant::now();
    let (status, headers, _) = send(c.get(unreplicated.server.url("/visit"))).await;
    let alone = started.elapsed();
    assert_eq!(status, 503, "no replica acknowledged the save");
    assert!(set_cookies(&headers).is_empty());

    let replica = OwnRedis::start().await;
    let mut replica_conn = replica
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query_async(&mut replica_conn)
        .await
        .unwrap();
    let mut info = String::new();
    for _ in 0..600 {
        info = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut replica_conn)
            .await
            .unwrap();
        if info.contains("master_link_status:up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        info.contains("master_link_status:up"),
        "the replica never linked to the primary in 30 s: {info}"
    );
    // Linked on the replica's side is not yet acknowledging on the primary's: the primary counts
    // a replica for `WAIT` once it has its first `REPLCONF ACK`, and a busy machine can take
    // longer than the store's 200 ms for that. Wait until the primary itself sees it acknowledge.
    let mut primary_conn = primary
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut acknowledged = 0;
    for _ in 0..60 {
        acknowledged = redis::cmd("WAIT")
            .arg(1)
            .arg(500)
            .query_async(&mut primary_conn)
            .await
            .unwrap();
        if acknowledged >= 1 {
            break;
        }
    }
    assert!(
        acknowledged >= 1,
        "the primary never saw the replica acknowledge in 30 s"
    );

    // With a replica, a store that waits long enough for a busy machine: `WAIT` returns as soon
    // as the replica acknowledges, so this costs nothing when it is quick.
    let Fixture { server, .. } =
        Fixture::start(waiting(Duration::from_secs(10)).await.unwrap(), app).await;
    let (status, headers, body) = send(c.get(server.url("/visit"))).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let id = cookie_value(&headers, "suite").unwrap();
    let cookie = format!("suite={id}");
    let key = keys.key_of(&SessionId::parse(&id).unwrap());
    for expected in 1..=20 {
        if expected > 1 {
            let (status, _, body) =
                send(c.get(server.url("/visit")).header("cookie", &cookie)).await;
            assert_eq!((status, body), (200, expected.to_string()));
        }
        // No waiting here: the save returned only once the replica had it.
        let on_replica: Option<String> = replica_conn.hget(&key, "visits").await.unwrap();
        assert_eq!(on_replica, Some(expected.to_string()), "save {expected}");
    }
    println!(
        "WAIT: no replica -> 503 after {alone:?}; with one, 20 of 20 saves on the replica when acknowledged"
    );
}

/// After a restart or a failover the node has no scripts (`NOSCRIPT`): every script of the store
/// (the write, the owner index, the revocation) is loaded again and its operation lands, on one
/// node and on the cluster (`SCRIPT FLUSH` on every node between the requests). Private servers:
/// a flush must not pull scripts from under other tests.
#[tokio::test]
async fn every_script_is_reloaded_after_a_flush() {
    let own = OwnRedis::start().await;
    let cluster = session_tests::redis::RedisCluster::start().await;
    for on_cluster in [false, true] {
        let clock = TestClock::new();
        let (store, urls) = if on_cluster {
            let store = RedisStore::builder()
                .connect_cluster(cluster.urls())
                .await
                .unwrap();
            (store, cluster.urls().to_vec())
        } else {
            (
                RedisStore::connect(&own.url()).await.unwrap(),
                vec![own.url()],
            )
        };
        let layer = SessionLayer::new(store).with_config(test_config(&clock));
        let server = TestServer::start(session_examples::routes().layer(layer)).await;
        let flush = async || {
            for url in &urls {
                let mut conn = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let () = redis::cmd("SCRIPT")
                    .arg("FLUSH")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        };
        let (laptop, phone) = (browser(), browser());
        assert_eq!(send(laptop.get(server.url("/"))).await.2, "1");
        flush().await;
        assert_eq!(
            send(laptop.get(server.url("/"))).await.2,
            "2",
            "write script"
        );
        flush().await;
        for client in [&laptop, &phone] {
            let (status, _, _) = send(client.post(server.url("/login?user=3"))).await;
            assert_eq!(status, 204, "index script");
        }
        flush().await;
        let (status, _, body) = send(laptop.post(server.url("/logout-others"))).await;
        assert_eq!((status, body.trim()), (200, "1"), "revocation script");
        assert_eq!(send(phone.get(server.url("/whoami"))).await.2, "anonymous");
        assert_eq!(send(laptop.get(server.url("/whoami"))).await.2, "3");
    }
}

/// Redis's count of reads from its clients' sockets (`total_reads_processed`).
async fn reads_processed(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let stats: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(redis)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("total_reads_processed:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("INFO stats has total_reads_processed")
}

/// On the multi-thread runtime with one worker, the loads of concurrent requests share the
/// connection's writes, as on the current-thread runtime. There, tokio runs the task a request
/// wakes right after it (its LIFO slot): the connection's task, woken by each command, wrote
/// every command alone, so Redis read one command per read and spent twice the CPU per request
/// (the load benchmark, `--runtime multi`). The patched connection gathers the ready requests'
/// commands first (`vendor/redis/PATCH.md`, part 3). Counted on a private Redis: Redis's reads per
/// command, which this connection's writes decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn concurrent_loads_share_writes_on_the_multi_thread_runtime() {
    use session_runtime::__internals::{load, record_codec};
    use session_runtime::codec::JsonCodec;
    use session_runtime::store::SessionStore as _;

    const TASKS: usize = 32;
    const LOADS: usize = 100;
    let own = OwnRedis::start().await;
    let store = Arc::new(RedisStore::connect(&own.url()).await.unwrap());
    let mut stats = redis::Client::open(own.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let before = reads_processed(&mut stats).await;
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                let id = SessionId::generate().unwrap();
                start.wait().await;
                for _ in 0..LOADS {
                    let record = store
                        .load(load(
                            "s",
                            id.as_str(),
                            0,
                            record_codec::<JsonCodec>(),
                            &["visits"],
                        ))
                        .await
                        .expect("a load");
                    assert!(record.is_none(), "no such session");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // The `INFO` calls add a read each.
    let reads = reads_processed(&mut stats).await - before - 1;
    let loads = u64::try_from(TASKS * LOADS).unwrap();
    println!("{reads} reads by Redis for {loads} loads");
    assert!(
        reads * 2 < loads,
        "Redis read {reads} times for {loads} loads: the connection wrote commands one by one"
    );
}
