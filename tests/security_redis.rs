//! The items of the security test plan (`tests/SECURITY.md`) that only a Redis store has: the TTL
//! as a backstop, old ids after `regenerate`, races, a Redis killed mid-request, key hygiene, no
//! injection, out of memory, eviction, a randomised stress run and touch-versus-write races.
//! Runs on the harness Redis, or on a private `redis-server` where the test stops, fills or
//! reconfigures it. `tests/SECURITY.md` maps every item to its test.
//!
//! Figures the plan asks to report are printed; run with `--nocapture` to see them.

#![allow(clippy::print_stdout, reason = "the tests report measured figures")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::routing;
use redis::AsyncCommands as _;
use session_runtime::TypedSession;
use session_runtime::config::{Clock as _, SessionConfig};
use session_runtime::session::SessionId;
use session_runtime::store::RedisStore;
use session_tests::fixture::Fixture;
use session_tests::redis::{Monitor, OwnRedis, unique_prefix};
use session_tests::server::{
    TestClock, TestServer, cookie_value, raw_client, send, set_cookies, test_config,
};
use session_tests::suite::{Suite, app, app_with};
use tokio::sync::Notify;

async fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .key_prefix(prefix)
        .response_timeout(Duration::from_millis(500))
        .connect(url)
        .await
        .unwrap()
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A server on the harness Redis under a fresh prefix; returns it with the store (for keys).
async fn harness_server(
    configure: impl FnOnce(SessionConfig) -> SessionConfig,
    extra: Router,
) -> (TestServer, RedisStore, Arc<TestClock>, String, String) {
    let url = session_tests::redis::server().await.url().to_owned();
    let prefix = unique_prefix("security");
    let fixture = Fixture::keeping(
        store(&url, &prefix).await,
        |clock| configure(test_config(clock)),
        |layer| app_with(layer, extra),
    )
    .await;
    (fixture.server, fixture.store, fixture.clock, prefix, url)
}

/// `CONFIG SET maxmemory-policy <policy>`, then `CONFIG SET maxmemory 1`: from now on Redis is
/// over its memory limit, so with `noeviction` it refuses writes and with `allkeys-lru` it
/// evicts keys.
async fn limit_memory(redis: &mut redis::aio::MultiplexedConnection, policy: &str) {
    for (parameter, value) in [("maxmemory-policy", policy), ("maxmemory", "1")] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(parameter)
            .arg(value)
            .query_async(redis)
            .await
            .unwrap();
    }
}

async fn login(server: &TestServer, user: u64) -> String {
    let (status, headers, _) =
        send(raw_client().post(server.url(&format!("/login?user={user}")))).await;
    assert_eq!(status, 204);
    cookie_value(&headers, "suite").unwrap()
}

async fn get(server: &TestServer, path: &str, id: &str) -> (u16, Vec<String>, String) {
    let (status, headers, body) = send(
        raw_client()
            .get(server.url(path))
            .header("cookie", format!("suite={id}")),
    )
    .await;
    (status, set_cookies(&headers), body)
}

fn id(value: &str) -> SessionId {
    SessionId::parse(value).unwrap()
}

/// SECURITY.md items 15 and 16 (Redis part): the application checks the deadlines itself. A key
/// whose TTL is removed (`PERSIST`) is still refused after the idle timeout, and the TTL set on
/// every write never reaches past the absolute deadline.
#[tokio::test]
async fn ttl_is_a_backstop_not_the_control() {
    let (server, store, clock, _, url) = harness_server(|c| c, Router::new()).await;
    let mut redis = connection(&url).await;
    let session = login(&server, 15).await;
    let key = store.key_of(&id(&session));
    let persisted: bool = redis.persist(&key).await.unwrap();
    assert!(persisted);
    assert_eq!(redis.pttl::<_, i64>(&key).await.unwrap(), -1);
    clock.advance(Duration::from_secs(599));
    assert_eq!(get(&server, "/whoami", &session).await.2, "15");
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        get(&server, "/whoami", &session).await.2,
        "anonymous",
        "idle for 601 s: refused although the key has no TTL"
    );

    // Absolute timeout 3600 s (the suite's type): activity every 500 s never pushes the key's
    // expiry past creation + 3600 s.
    let created = clock.now_millis();
    let session = login(&server, 16).await;
    let key = store.key_of(&id(&session));
    let deadline = created + 3_600_000;
    for _ in 0..8 {
        clock.advance(Duration::from_secs(500));
        let (status, _, _) = get(&server, "/visit", &session).await;
        assert_eq!(status, 200);
        let expires: i64 = redis::cmd("PEXPIRETIME")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if expires > 0 {
            assert!(
                u64::try_from(expires).unwrap() <= deadline,
                "key expires {expires}, after the absolute deadline {deadline}"
            );
        }
    }
    assert_eq!(get(&server, "/whoami", &session).await.2, "anonymous");
}

/// SECURITY.md item 29 (Redis part): after a login on a planted anonymous session A, the key of A
/// is gone, A is anonymous, and the data moved to the new id B.
#[tokio::test]
async fn regenerate_deletes_the_old_key() {
    let (server, store, _, _, url) = harness_server(|c| c, Router::new()).await;
    let mut redis = connection(&url).await;
    let (_, cookies, _) = get(&server, "/visit", "none").await;
    let planted = cookies[0]
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("suite=")
        .to_owned();
    let old_key = store.key_of(&id(&planted));
    assert!(redis.exists::<_, bool>(&old_key).await.unwrap());
    let (status, headers, _) = send(
        raw_client()
            .post(server.url("/login?user=29"))
            .header("cookie", format!("suite={planted}")),
    )
    .await;
    assert_eq!(status, 204);
    let new = cookie_value(&headers, "suite").unwrap();
    assert_ne!(new, planted);
    assert!(
        !redis.exists::<_, bool>(&old_key).await.unwrap(),
        "EXISTS key(A) = 0"
    );
    assert_eq!(get(&server, "/whoami", &planted).await.2, "anonymous");
    assert_eq!(
        get(&server, "/read", &new).await.2,
        "1",
        "data carried to B"
    );
}

async fn slow_write(
    Extension(signals): Extension<Arc<(Notify, Notify)>>,
    mut s: TypedSession<Suite>,
) -> &'static str {
    signals.0.notify_one(); // loaded
    signals.1.notified().await; // the other request is done
    *s.visits_mut() += 1;
    "written"
}

/// SECURITY.md item 36: a request still holding the old id while another regenerates it must not
/// recreate the old key when it saves; its change is dropped with a log. 200 rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regenerate_race_never_recreates_the_old_key() {
    let signals = Arc::new((Notify::new(), Notify::new()));
    let extra = Router::new()
        .route("/slow-write", routing::get(slow_write))
        .layer(Extension(Arc::clone(&signals)));
    let (server, store, _, _, url) =
        harness_server(|c| c.with_serialized_requests(false), extra).await;
    let mut redis = connection(&url).await;
    let client = raw_client();
    let mut recreated = 0;
    for _ in 0..200 {
        let old = login(&server, 1).await;
        let cookie = format!("suite={old}");
        let writer = tokio::spawn(send(
            client
                .get(server.url("/slow-write"))
                .header("cookie", &cookie),
        ));
        signals.0.notified().await;
        let (status, headers, _) = send(
            client
                .post(server.url("/login?user=2"))
                .header("cookie", &cookie),
        )
        .await;
        assert_eq!(status, 204);
        let new = cookie_value(&headers, "suite").unwrap();
        signals.1.notify_one();
        let (status, headers, _) = writer.await.unwrap();
        assert_eq!(status, 200);
        assert!(set_cookies(&headers).is_empty(), "no cookie for the old id");
        if redis
            .exists::<_, bool>(store.key_of(&id(&old)))
            .await
            .unwrap()
        {
            recreated += 1;
        }
        assert_eq!(get(&server, "/whoami", &new).await.2, "2");
    }
    println!("regenerate race: {recreated} old keys recreated in 200 races");
    assert_eq!(recreated, 0);
}

async fn blocked_write(
    Extension(signals): Extension<Arc<(Notify, Notify)>>,
    mut s: TypedSession<Suite>,
) -> &'static str {
    signals.0.notify_one();
    signals.1.notified().await;
    *s.visits_mut() += 1;
    "changed"
}

/// SECURITY.md item 38: Redis is killed (`SIGKILL`) between a request's load and its save: the
/// response is a 503 (an outage, not a server error) without `Set-Cookie`, and once Redis is
/// back (empty: no persistence) the old cookie is a fresh session, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_request() {
    let mut own = OwnRedis::start().await;
    let signals = Arc::new((Notify::new(), Notify::new()));
    let extra = Router::new()
        .route("/blocked-write", routing::get(blocked_write))
        .layer(Extension(Arc::clone(&signals)));
    let store = store(&own.url(), "killed:").await;
    let Fixture { server, .. } = Fixture::start(store, |layer| app_with(layer, extra)).await;
    let session = login(&server, 38).await;
    let request = tokio::spawn(send(
        raw_client()
            .get(server.url("/blocked-write"))
            .header("cookie", format!("suite={session}")),
    ));
    signals.0.notified().await;
    own.stop().await;
    signals.1.notify_one();
    let (status, headers, _) = request.await.unwrap();
    assert_eq!(status, 503, "the save failed on an outage");
    assert!(set_cookies(&headers).is_empty());
    own.restart().await;
    let mut answered = None;
    for _ in 0..50 {
        let (status, cookies, body) = get(&server, "/whoami", &session).await;
        if status == 200 {
            answered = Some((cookies, body));
            break;
        }
        assert_eq!(status, 503, "reconnecting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (cookies, body) = answered.expect("requests succeed again once Redis is back");
    assert_eq!(body, "anonymous");
    assert!(cookies.is_empty());
}

/// SECURITY.md item 40: after a run of logins, visits, regenerations and logouts, every key starts
/// with the prefix and has a TTL, and no key or value holds any cookie value or id issued.
#[tokio::test]
async fn key_hygiene() {
    let (server, _, _, prefix, url) = harness_server(|c| c, Router::new()).await;
    let mut issued = Vec::new();
    for user in 0..20 {
        let first = login(&server, user).await;
        issued.push(first.clone());
        let (_, cookies, _) = get(&server, "/visit", &first).await;
        assert!(cookies.len() <= 1);
        let (_, headers, _) = send(
            raw_client()
                .post(server.url("/login?user=99"))
                .header("cookie", format!("suite={first}")),
        )
        .await;
        let second = cookie_value(&headers, "suite").unwrap();
        issued.push(second.clone());
        if user % 2 == 0 {
            send(
                raw_client()
                    .post(server.url("/logout"))
                    .header("cookie", format!("suite={second}")),
            )
            .await;
        }
    }
    let mut redis = connection(&url).await;
    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.unwrap();
    assert_eq!(keys.len(), 10, "one live session per user not logged out");
    for key in &keys {
        assert!(key.starts_with(&prefix));
        let ttl: i64 = redis.pttl(key).await.unwrap();
        assert!(ttl > 0, "{key}: PTTL {ttl}");
        let hash: Vec<(Vec<u8>, Vec<u8>)> = redis.hgetall(key).await.unwrap();
        for value in &issued {
            assert!(!key.contains(value.as_str()), "{key} holds an issued id");
            for (field, bytes) in &hash {
                let text = String::from_utf8_lossy(bytes);
                let field = String::from_utf8_lossy(field);
                assert!(!text.contains(value.as_str()) && !field.contains(value.as_str()));
            }
        }
    }
}

/// SECURITY.md item 41: malformed ids never reach Redis: `MONITOR` on a private server sees no
/// command for them (CR/LF cannot even reach the server: HTTP refuses them in a header).
#[tokio::test]
async fn no_malformed_id_reaches_redis() {
    let own = OwnRedis::start().await;
    let Fixture { server, .. } = Fixture::start(store(&own.url(), "inject:").await, app).await;
    let mut monitor = Monitor::start(&own.url()).await;
    monitor.round_trips().await;
    let base = "A".repeat(42);
    let long = "A".repeat(10 * 1024);
    for value in [
        format!("{base}{{"),
        format!("{{{base}"),
        format!("{base}}}"),
        format!("{base}*"),
        format!("{base}?"),
        format!("{base}%"),
        format!("{base} "),
        format!("{base}\\"),
        format!("{base}+"),
        format!("{base}/"),
        format!("{base}="),
        format!("{base}AA"),
        base.clone(),
        long,
        "*".to_owned(),
        "{tag}".to_owned(),
        "KEYS *".to_owned(),
    ] {
        let (status, cookies, body) = get(&server, "/read", &value).await;
        assert_eq!((status, body.as_str()), (200, "0"), "{value:.50}");
        assert!(cookies.is_empty());
    }
    let commands = monitor.round_trips().await;
    assert!(
        commands.is_empty(),
        "commands sent for malformed ids: {commands:?}"
    );
}

/// SECURITY.md item 42: Redis out of memory (`maxmemory` reached, `noeviction`): a new login
/// answers 500 without `Set-Cookie`; existing sessions still load; logout (`DEL`) still works.
#[tokio::test]
async fn out_of_memory_fails_writes_and_keeps_reads_and_logout() {
    let own = OwnRedis::start().await;
    let Fixture { server, .. } = Fixture::start(store(&own.url(), "oom:").await, app).await;
    let session = login(&server, 42).await;
    let mut redis = connection(&own.url()).await;
    limit_memory(&mut redis, "noeviction").await;
    let (status, headers, _) = send(raw_client().post(server.url("/login?user=43"))).await;
    assert_eq!(status, 500, "a write refused with OOM is a failed save");
    assert!(set_cookies(&headers).is_empty());
    assert_eq!(
        get(&server, "/whoami", &session).await.2,
        "42",
        "reads still work"
    );
    let (status, cookies, _) = get(&server, "/visit", &session).await;
    assert_eq!(status, 500);
    assert!(cookies.is_empty());
    let (status, headers, _) = send(
        raw_client()
            .post(server.url("/logout"))
            .header("cookie", format!("suite={session}")),
    )
    .await;
    assert_eq!(status, 204, "DEL works out of memory");
    assert!(set_cookies(&headers)[0].contains("Max-Age=0"));
    assert_eq!(get(&server, "/whoami", &session).await.2, "anonymous");
    let keys: Vec<String> = redis.keys("oom:*").await.unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

/// SECURITY.md item 43: a session Redis evicted (`allkeys-lru`, tiny memory) is a fresh session,
/// never a 500.
#[tokio::test]
async fn evicted_session_is_a_fresh_session() {
    let own = OwnRedis::start().await;
    let store = store(&own.url(), "evict:").await;
    let Fixture { store, server, .. } = Fixture::keeping(store, test_config, app).await;
    let session = login(&server, 43).await;
    let mut redis = connection(&own.url()).await;
    limit_memory(&mut redis, "allkeys-lru").await;
    // Any write makes Redis evict until it is under the limit: everything goes.
    let _: Result<(), redis::RedisError> = redis.set("filler", "x").await;
    assert!(
        !redis
            .exists::<_, bool>(store.key_of(&id(&session)))
            .await
            .unwrap(),
        "evicted"
    );
    let (status, cookies, body) = get(&server, "/whoami", &session).await;
    assert_eq!((status, body.as_str()), (200, "anonymous"));
    assert!(cookies.is_empty());
}

/// SECURITY.md item 51: 2,000 requests at concurrency 16 on one session, mixing reads, two counters
/// and note writes, on the example's routes. Every request succeeds, each counter's values are
/// exactly 1..=n (no lost or repeated increment, strictly increasing), and the final state
/// matches the model built from the successful writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomised_stress_matches_the_model() {
    let url = session_tests::redis::server().await.url().to_owned();
    let store = store(&url, &unique_prefix("stress")).await;
    let fixture = Fixture::start(store, |layer| session_examples::routes().layer(layer)).await;
    let server = Arc::new(fixture.server);
    let (_, headers, _) = send(raw_client().get(server.url("/"))).await;
    let cookie = format!("counter={}", cookie_value(&headers, "counter").unwrap());
    let client = raw_client();
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let next = Arc::clone(&next);
        let client = client.clone();
        let cookie = cookie.clone();
        let server = Arc::clone(&server);
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= 2_000 {
                    break;
                }
                // A fixed pseudo-random mix of the four kinds of request.
                let kind = (i.wrapping_mul(2_654_435_761) >> 13) % 4;
                let path = ["/read", "/a", "/b", "/"][usize::try_from(kind).unwrap()];
                let (status, _, body) =
                    send(client.get(server.url(path)).header("cookie", &cookie)).await;
                assert_eq!(status, 200, "{path}: {body}");
                seen.push((path, body));
            }
            seen
        }));
    }
    let mut a_values = BTreeSet::new();
    let mut b_values = BTreeSet::new();
    let mut visits = BTreeSet::new();
    let mut total = 0;
    for worker in workers {
        for (path, body) in worker.await.unwrap() {
            total += 1;
            match path {
                "/a" => assert!(
                    a_values.insert(body.split(',').next().unwrap().parse::<u64>().unwrap())
                ),
                "/b" => assert!(
                    b_values.insert(body.split(',').nth(1).unwrap().parse::<u64>().unwrap())
                ),
                "/" => assert!(visits.insert(body.parse::<u64>().unwrap()) || body == "0"),
                _ => {}
            }
        }
    }
    assert_eq!(total, 2_000);
    let na = u64::try_from(a_values.len()).unwrap();
    let nb = u64::try_from(b_values.len()).unwrap();
    let nv = u64::try_from(visits.len()).unwrap();
    assert_eq!(
        a_values,
        (1..=na).collect(),
        "every increment of a seen exactly once"
    );
    assert_eq!(b_values, (1..=nb).collect());
    assert_eq!(visits, (2..=nv + 1).collect(), "visits started at 1");
    let (_, _, state) = send(client.get(server.url("/read")).header("cookie", &cookie)).await;
    assert_eq!(state, (nv + 1).to_string());
    let (_, _, ab) = send(client.get(server.url("/a")).header("cookie", &cookie)).await;
    assert_eq!(ab, format!("{},{nb}", na + 1));
    println!("stress: 2,000 requests at concurrency 16: a={na}, b={nb}, visits={nv}, 0 lost");
}

/// SECURITY.md item 54: a read whose rolling-expiry touch races with a write never overwrites the
/// write (the touch writes only the timestamp). 1,000 rounds, per-session serialization off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn touch_never_overwrites_a_write() {
    let url = session_tests::redis::server().await.url().to_owned();
    let config = |clock: &Arc<TestClock>| {
        test_config(clock)
            .with_serialized_requests(false)
            .with_rolling(Some(Duration::from_secs(1)))
    };
    let store = store(&url, &unique_prefix("touch")).await;
    let Fixture { clock, server, .. } = Fixture::start_with(store, config, |layer| {
        session_examples::routes().layer(layer)
    })
    .await;
    let client = raw_client();
    let (_, headers, _) = send(client.get(server.url("/b"))).await;
    let cookie = format!("counter={}", cookie_value(&headers, "counter").unwrap());
    let mut touched = 0;
    let mut lost = 0;
    for round in 1..=1_000u64 {
        clock.advance(Duration::from_secs(2));
        let read = send(client.get(server.url("/read")).header("cookie", &cookie));
        let write = send(client.get(server.url("/a")).header("cookie", &cookie));
        let ((_, read_headers, _), (status, _, body)) = tokio::join!(read, write);
        assert_eq!(status, 200);
        touched += usize::from(!set_cookies(&read_headers).is_empty());
        if body != format!("{round},1") {
            lost += 1;
        }
    }
    let (_, _, body) = send(client.get(server.url("/b")).header("cookie", &cookie)).await;
    println!(
        "touch vs write: 1,000 rounds, {touched} touches, {lost} lost writes; final a,b = {body}"
    );
    assert_eq!((lost, body.as_str()), (0, "1000,2"));
}
