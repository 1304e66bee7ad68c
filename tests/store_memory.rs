//! The store conformance suite on `MemoryStore`, plus its bounds.

use session_examples::Counter;
use session_runtime::SessionLayer;
use session_runtime::TypedSession;
use session_runtime::store::{MemoryStore, StoreKind};
use session_tests::fixture::Fixture;
use session_tests::server::{
    TestClock, TestServer, browser, cookie_value, raw_client, send, test_config,
};
use session_tests::suite::Harness;

fn harness() -> Harness {
    Harness::new(StoreKind::Server, true, |config| {
        SessionLayer::new(MemoryStore::new()).with_config(config)
    })
}

session_tests::store_suite!(harness());

/// 200 concurrent `GET /a` and 200 concurrent `GET /b` with one session cookie on the example
/// app: per-session request serialization means no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_session_lose_nothing() {
    let clock = TestClock::new();
    let layer = session_examples::layer(
        session_examples::StoreChoice::Memory,
        None,
        test_config(&clock),
    )
    .await
    .unwrap();
    let server = TestServer::start(session_examples::routes().layer(layer)).await;
    let client = raw_client();
    let (_, headers, _) = send(client.get(server.url("/"))).await;
    let cookie = format!("counter={}", cookie_value(&headers, "counter").unwrap());
    let mut requests = Vec::new();
    for i in 0..400 {
        let path = if i % 2 == 0 { "/a" } else { "/b" };
        let request = client.get(server.url(path)).header("cookie", &cookie);
        requests.push(tokio::spawn(async move { send(request).await.0 }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    let (_, _, body) = send(client.get(server.url("/a")).header("cookie", &cookie)).await;
    assert_eq!(body, "201,200");
}

/// Two overlapping requests that both increment one field, with a pause between load and save:
/// with serialization (the default) both count; without it the second overwrites the first.
/// This is the lost update of aiohttp_session (X7), made deterministic by the pause.
#[tokio::test]
async fn serialization_is_what_prevents_lost_updates() {
    async fn slow_bump(mut session: TypedSession<Counter>) -> String {
        *session.a_mut() += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        session.a().to_string()
    }
    for (serialize, expected) in [(true, "2"), (false, "1")] {
        let config = |clock: &_| test_config(clock).with_serialized_requests(serialize);
        let app = |layer| {
            axum::Router::new()
                .route("/slow", axum::routing::get(slow_bump))
                .merge(session_examples::routes())
                .layer(layer)
        };
        let Fixture { server, .. } = Fixture::start_with(MemoryStore::new(), config, app).await;
        let client = raw_client();
        let (_, headers, _) = send(client.get(server.url("/"))).await;
        let cookie = format!("counter={}", cookie_value(&headers, "counter").unwrap());
        let first = send(client.get(server.url("/slow")).header("cookie", &cookie));
        let second = send(client.get(server.url("/slow")).header("cookie", &cookie));
        let (first, second) = tokio::join!(first, second);
        assert_eq!((first.0, second.0), (200, 200));
        let (_, _, body) = send(client.get(server.url("/b")).header("cookie", &cookie)).await;
        assert_eq!(
            body.split(',').next(),
            Some(expected),
            "serialize = {serialize}"
        );
    }
}

/// Regression (fuzz target `cookie_header`, F1): a client that sends the id of one session type
/// in the cookie of another made a handler extracting both types wait forever for the request
/// lock its own request held. Now the request completes.
#[tokio::test]
async fn one_id_in_two_session_cookies_does_not_hang() {
    use axum::Router;
    use axum::routing::get;
    use http::{Request, header};
    use tower::ServiceExt as _;

    #[derive(session_runtime::Session)]
    #[session(cookie_name = "first")]
    struct First {
        n: u32,
    }

    #[derive(session_runtime::Session)]
    #[session(cookie_name = "second")]
    struct Second {
        n: u32,
    }

    async fn both(mut first: TypedSession<First>, mut second: TypedSession<Second>) -> String {
        *first.n_mut() += 1;
        *second.n_mut() += 1;
        format!("{},{}", first.n(), second.n())
    }

    let clock = TestClock::new();
    let app = Router::new()
        .route("/", get(both))
        .layer(SessionLayer::new(MemoryStore::new()).with_config(test_config(&clock)));
    let created = app
        .clone()
        .oneshot(Request::new(axum::body::Body::empty()))
        .await
        .unwrap();
    let id = cookie_value(created.headers(), "first").unwrap();
    let request = Request::builder()
        .header(header::COOKIE, format!("first={id}; second={id}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), app.oneshot(request))
        .await
        .expect("the request hung on its own session lock")
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Two requests of one user that extract two session types in opposite orders (A then B, and B
/// then A) must not wait for each other forever: a request that already holds one session's
/// lock only tries the next one, and goes on unserialized when it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opposite_extraction_orders_do_not_deadlock() {
    use std::sync::Arc;

    use axum::Router;
    use axum::extract::{Extension, Request};
    use axum::routing::get;
    use tokio::sync::Barrier;

    #[derive(session_runtime::Session)]
    #[session(cookie_name = "first")]
    struct First {
        n: u32,
    }

    #[derive(session_runtime::Session)]
    #[session(cookie_name = "second")]
    struct Second {
        n: u32,
    }

    async fn create(mut first: TypedSession<First>, mut second: TypedSession<Second>) {
        *first.n_mut() += 1;
        *second.n_mut() += 1;
    }

    async fn first_then_second(Extension(b): Extension<Arc<Barrier>>, request: Request) -> String {
        let (parts, _) = request.into_parts();
        let mut first = TypedSession::<First>::from_parts(&parts).await.unwrap();
        b.wait().await; // both requests hold their first session
        let mut second = TypedSession::<Second>::from_parts(&parts).await.unwrap();
        *first.n_mut() += 1;
        *second.n_mut() += 1;
        "ab".to_owned()
    }

    async fn second_then_first(Extension(b): Extension<Arc<Barrier>>, request: Request) -> String {
        let (parts, _) = request.into_parts();
        let mut second = TypedSession::<Second>::from_parts(&parts).await.unwrap();
        b.wait().await;
        let mut first = TypedSession::<First>::from_parts(&parts).await.unwrap();
        *first.n_mut() += 1;
        *second.n_mut() += 1;
        "ba".to_owned()
    }

    let app = |layer| {
        Router::new()
            .route("/create", get(create))
            .route("/ab", get(first_then_second))
            .route("/ba", get(second_then_first))
            .layer(Extension(Arc::new(Barrier::new(2))))
            .layer(layer)
    };
    let Fixture { server, .. } = Fixture::start(MemoryStore::new(), app).await;
    let client = browser();
    send(client.get(server.url("/create"))).await;
    let ab = tokio::spawn(send(client.get(server.url("/ab"))));
    let ba = tokio::spawn(send(client.get(server.url("/ba"))));
    let both = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        (ab.await.unwrap(), ba.await.unwrap())
    })
    .await
    .expect("two requests extracting two sessions in opposite orders deadlocked");
    assert_eq!((both.0.0, both.1.0), (200, 200));
    assert_eq!((both.0.2.as_str(), both.1.2.as_str()), ("ab", "ba"));
}
