//! Behaviours of `aiohttp_session` (those its test suite checks and the extra behaviours X1–X25,
//! both mapped in `tests/CONFORMANCE.md`) that the shared store suite does not cover, driven
//! over real HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use session_runtime::config::{Clock, SameSite, SessionConfig};
use session_runtime::store::{EncryptedCookieStore, Key, KeyError, MemoryStore, SimpleCookieStore};
use session_runtime::{Session, SessionLayer, TypedSession};

use session_tests::fixture::{Fixture, SharedMemory};
use session_tests::server::{
    TestClock, TestServer, browser, cookie_value, raw_client, send, set_cookies, test_config,
};

// ---------------------------------------------------------------------------------------------
// Session types and handlers
// ---------------------------------------------------------------------------------------------

/// The main session type of these tests.
#[derive(Session, Debug)]
#[session(cookie_name = "conf", max_age = 600)]
struct Conf {
    visits: u64,
    note: String,
    tags: Vec<String>,
    user: Option<u64>,
}

#[derive(Deserialize)]
struct UserQuery {
    user: u64,
}

#[derive(Deserialize)]
struct SecsQuery {
    secs: u64,
}

async fn visit(mut s: TypedSession<Conf>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn read(s: TypedSession<Conf>) -> String {
    s.visits().to_string()
}

async fn note(s: TypedSession<Conf>) -> String {
    s.note().clone()
}

async fn whoami(s: TypedSession<Conf>) -> String {
    s.user()
        .map_or_else(|| "anonymous".to_owned(), |u| u.to_string())
}

async fn tag(mut s: TypedSession<Conf>) -> String {
    // Nested mutation through `tags_mut()`: no `changed()` call needed.
    let next = format!("t{}", s.tags().len());
    s.tags_mut().push(next);
    s.tags().join(",")
}

async fn tags(s: TypedSession<Conf>) -> String {
    s.tags().join(",")
}

async fn login(mut s: TypedSession<Conf>, Query(q): Query<UserQuery>) -> StatusCode {
    s.regenerate();
    s.set_user(Some(q.user));
    StatusCode::NO_CONTENT
}

async fn logout(mut s: TypedSession<Conf>) -> StatusCode {
    s.invalidate();
    StatusCode::NO_CONTENT
}

async fn logout_flash(mut s: TypedSession<Conf>) -> StatusCode {
    s.invalidate();
    s.set_note("bye".to_owned());
    StatusCode::NO_CONTENT
}

async fn remember(mut s: TypedSession<Conf>, Query(q): Query<SecsQuery>) -> String {
    s.set_max_age(Duration::from_secs(q.secs));
    *s.visits_mut() += 1;
    s.max_age().as_secs().to_string()
}

async fn created(s: TypedSession<Conf>) -> String {
    s.created()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string()
}

async fn debug(mut s: TypedSession<Conf>) -> String {
    s.set_note("secret-note".to_owned());
    format!("{s:?}")
}

async fn panics(mut s: TypedSession<Conf>) -> String {
    *s.visits_mut() += 1;
    panic!("deliberate panic after changing the session (conformance X6)");
}

fn conf_routes() -> Router {
    Router::new()
        .route("/visit", get(visit))
        .route("/read", get(read))
        .route("/note", get(note))
        .route("/whoami", get(whoami))
        .route("/tag", get(tag))
        .route("/tags", get(tags))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/logout-flash", post(logout_flash))
        .route("/remember", get(remember))
        .route("/created", get(created))
        .route("/debug", get(debug))
        .route("/panic", get(panics))
}

fn conf_app(layer: SessionLayer) -> Router {
    conf_routes().layer(layer)
}

fn key(id: u8, byte: u8) -> Key {
    Key::from_bytes(id, &[byte; 32]).unwrap()
}

fn encrypted(id: u8, byte: u8) -> EncryptedCookieStore {
    EncryptedCookieStore::new(key(id, byte))
}

fn now_millis(clock: &TestClock) -> u64 {
    clock.now_millis()
}

async fn get_with(url: &str, cookie: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = raw_client().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    send(request).await
}

async fn post_with(url: &str, cookie: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = raw_client().post(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    send(request).await
}

/// base64url without padding, as `SimpleCookieStore` writes (no base64 crate in this package).
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..=chunk.len() {
            let index = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap();
            out.push(char::from(B64URL[index]));
        }
    }
    out
}

fn b64url_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut bits, mut count) = (0u32, 0u32);
    for c in text.bytes() {
        let value = B64URL.iter().position(|&x| x == c).expect("base64url");
        bits = (bits << 6) | u32::try_from(value).unwrap();
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).unwrap());
            bits &= (1 << count) - 1;
        }
    }
    out
}

fn is_base64url(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ---------------------------------------------------------------------------------------------
// Item 18 (and 21): no middleware
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_layer_answers_500_naming_session_layer() {
    let server = TestServer::start(conf_routes()).await;
    let (status, headers, body) = get_with(&server.url("/visit"), None).await;
    assert_eq!(status, 500);
    assert!(body.contains("SessionLayer"), "{body}");
    assert!(set_cookies(&headers).is_empty());
    // Logout (aiohttp's `new_session` without middleware, item 21) is rejected the same way.
    let (status, _, body) = post_with(&server.url("/logout"), None).await;
    assert_eq!(status, 500);
    assert!(body.contains("SessionLayer"), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Items 45–48: path and domain
// ---------------------------------------------------------------------------------------------

fn scoped_app(layer: SessionLayer) -> Router {
    Router::new()
        .nest("/anotherpath", conf_routes())
        .route("/read", get(read))
        .layer(layer)
}

/// `scoped_app` over a `MemoryStore` whose cookies have the path and domain `configure` sets.
async fn scoped(configure: impl FnOnce(SessionConfig) -> SessionConfig) -> TestServer {
    Fixture::start_with(
        MemoryStore::new(),
        |clock| configure(test_config(clock)),
        scoped_app,
    )
    .await
    .server
}

#[tokio::test]
async fn cookie_path_and_domain_are_configurable() {
    let server = scoped(|c| c.with_path("/anotherpath").with_domain("127.0.0.1")).await;
    let (_, headers, body) = get_with(&server.url("/anotherpath/visit"), None).await;
    assert_eq!(body, "1");
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let value = cookie_value(&headers, "conf").unwrap();
    assert_eq!(
        cookies[0],
        format!(
            "conf={value}; Path=/anotherpath; Domain=127.0.0.1; Max-Age=600; HttpOnly; SameSite=Lax"
        )
    );
    // The same path and domain: loaded, and the re-issued cookie keeps both (item 45).
    let cookie = format!("conf={value}");
    let (_, headers, body) = get_with(&server.url("/anotherpath/visit"), Some(&cookie)).await;
    assert_eq!(body, "2");
    let again = &set_cookies(&headers)[0];
    assert!(
        again.contains("; Path=/anotherpath; Domain=127.0.0.1;") && again.contains("HttpOnly"),
        "{again}"
    );
}

#[tokio::test]
async fn removal_cookie_keeps_path_and_domain() {
    let server = scoped(|c| c.with_path("/anotherpath").with_domain("127.0.0.1")).await;
    let (_, headers, _) = get_with(&server.url("/anotherpath/visit"), None).await;
    let cookie = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    let (status, headers, _) = post_with(&server.url("/anotherpath/logout"), Some(&cookie)).await;
    assert_eq!(status, 204);
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(
        cookies[0],
        "conf=; Path=/anotherpath; Domain=127.0.0.1; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    );
}

#[tokio::test]
async fn cookie_outside_its_path_is_not_sent() {
    let server = scoped(|c| c.with_path("/anotherpath")).await;
    let b = browser();
    send(b.get(server.url("/anotherpath/visit"))).await;
    let (_, _, body) = send(b.get(server.url("/anotherpath/visit"))).await;
    assert_eq!(body, "2");
    let (status, headers, body) = send(b.get(server.url("/read"))).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "0"),
        "outside the cookie's path the browser sends no cookie: a fresh session"
    );
    assert!(set_cookies(&headers).is_empty());
    let (_, _, body) = send(b.get(server.url("/anotherpath/read"))).await;
    assert_eq!(body, "2", "inside the path the session is intact");
}

#[tokio::test]
async fn cookie_for_another_domain_is_not_kept() {
    let server = scoped(|c| c.with_domain("localhost")).await;
    let b = browser();
    let (_, headers, body) = send(b.get(server.url("/anotherpath/visit"))).await;
    assert_eq!(body, "1");
    assert!(set_cookies(&headers)[0].contains("; Domain=localhost;"));
    // The server is 127.0.0.1: a browser drops a cookie for `localhost`, so the session is fresh.
    let (_, _, body) = send(b.get(server.url("/anotherpath/visit"))).await;
    assert_eq!(body, "1");
}

// ---------------------------------------------------------------------------------------------
// Secure defaults, browser rules, and the `__Host-` removal cookie (X21)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secure_defaults() {
    let default_config =
        |clock: &Arc<TestClock>| SessionConfig::default().with_clock(clock.clone());
    let Fixture { server, .. } =
        Fixture::start_with(MemoryStore::new(), default_config, conf_app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let value = cookie_value(&headers, "conf").unwrap();
    assert_eq!(
        set_cookies(&headers),
        [format!(
            "conf={value}; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax"
        )],
        "HttpOnly, Secure, SameSite=Lax, Path=/ and no Domain by default"
    );
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
}

#[tokio::test]
async fn configs_browsers_would_drop_are_refused() {
    let clock = TestClock::new();
    for config in [
        test_config(&clock).with_same_site(SameSite::None),
        test_config(&clock).with_partitioned(true),
    ] {
        assert!(config.validate_for("conf").is_err());
        let server = TestServer::start(conf_app(
            SessionLayer::new(MemoryStore::new()).with_config(config),
        ))
        .await;
        let (status, headers, _) = get_with(&server.url("/visit"), None).await;
        assert_eq!(
            status, 500,
            "a cookie the browser would drop is a server error"
        );
        assert!(set_cookies(&headers).is_empty());
    }
    // `__Host-` without `Secure`.
    let server = TestServer::start(host_app(
        SessionLayer::new(MemoryStore::new()).with_config(test_config(&clock)),
    ))
    .await;
    let (status, _, _) = post_with(&server.url("/login"), None).await;
    assert_eq!(status, 500);
}

/// X21's cookie: a `__Host-` name.
#[derive(Session)]
#[session(cookie_name = "__Host-sess", max_age = 3600)]
struct HostSess {
    user: Option<u64>,
}

async fn host_login(mut s: TypedSession<HostSess>) -> StatusCode {
    s.regenerate();
    s.set_user(Some(1));
    StatusCode::NO_CONTENT
}

async fn host_logout(mut s: TypedSession<HostSess>) -> StatusCode {
    s.invalidate();
    StatusCode::NO_CONTENT
}

fn host_app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/login", post(host_login))
        .route("/logout", post(host_logout))
        .layer(layer)
}

#[tokio::test]
async fn host_prefixed_cookie_is_removed_with_secure() {
    let config = |clock: &Arc<TestClock>| {
        SessionConfig::default()
            .with_clock(clock.clone())
            .with_same_site(SameSite::Strict)
    };
    let Fixture { server, .. } = Fixture::start_with(encrypted(1, 7), config, host_app).await;
    let (_, headers, _) = post_with(&server.url("/login"), None).await;
    let value = cookie_value(&headers, "__Host-sess").unwrap();
    assert_eq!(
        set_cookies(&headers),
        [format!(
            "__Host-sess={value}; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"
        )]
    );
    let (_, headers, _) = post_with(
        &server.url("/logout"),
        Some(&format!("__Host-sess={value}")),
    )
    .await;
    assert_eq!(
        set_cookies(&headers),
        [
            "__Host-sess=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict"
        ],
        "the removal cookie repeats Secure and SameSite, so the browser accepts it"
    );
}

// ---------------------------------------------------------------------------------------------
// Several session types on one layer (aiohttp_session has one per app)
// ---------------------------------------------------------------------------------------------

#[derive(Session)]
#[session(cookie_name = "cart")]
struct Cart {
    items: Vec<String>,
}

fn default_theme() -> String {
    "light".to_owned()
}

#[derive(Session)]
#[session(cookie_name = "prefs")]
struct Prefs {
    #[session(default = "default_theme")]
    theme: String,
}

async fn both(mut cart: TypedSession<Cart>, mut prefs: TypedSession<Prefs>) -> String {
    cart.items_mut().push("apple".to_owned());
    prefs.set_theme("dark".to_owned());
    format!("{} {}", cart.items().len(), prefs.theme())
}

async fn show(cart: TypedSession<Cart>, prefs: TypedSession<Prefs>) -> String {
    format!("{} {}", cart.items().len(), prefs.theme())
}

async fn cart_logout(mut cart: TypedSession<Cart>) -> StatusCode {
    cart.invalidate();
    StatusCode::NO_CONTENT
}

fn two_types_app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/both", get(both))
        .route("/show", get(show))
        .route("/cart-logout", post(cart_logout))
        .layer(layer)
}

async fn two_types_on(layer: SessionLayer) -> TestServer {
    let server = TestServer::start(two_types_app(layer)).await;
    let b = browser();
    let (_, headers, body) = send(b.get(server.url("/both"))).await;
    assert_eq!(body, "1 dark");
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookie_value(&headers, "cart").is_some() && cookie_value(&headers, "prefs").is_some());
    send(b.get(server.url("/both"))).await;
    assert_eq!(send(b.get(server.url("/show"))).await.2, "2 dark");
    let (_, headers, _) = send(b.post(server.url("/cart-logout"))).await;
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("cart=; "), "{cookies:?}");
    assert_eq!(
        send(b.get(server.url("/show"))).await.2,
        "0 dark",
        "ending one session leaves the other"
    );
    server
}

#[tokio::test]
async fn two_session_types_share_a_layer_with_separate_cookies() {
    let clock = TestClock::new();
    let store = SharedMemory::new(MemoryStore::new());
    let _server =
        two_types_on(SessionLayer::new(store.clone()).with_config(test_config(&clock))).await;
    assert_eq!(store.len(), 1, "only the prefs record is left");

    let server =
        two_types_on(SessionLayer::new(encrypted(1, 9)).with_config(test_config(&clock))).await;
    // A cart cookie moved into the prefs cookie does not open: the value is bound to its name.
    let (_, headers, _) = get_with(&server.url("/both"), None).await;
    let cart = cookie_value(&headers, "cart").unwrap();
    let (_, _, body) = get_with(&server.url("/show"), Some(&format!("prefs={cart}"))).await;
    assert_eq!(body, "0 light");
}

// ---------------------------------------------------------------------------------------------
// Items 26/51 (changed): a stored field that no longer decodes; X16: an envelope that does not
// ---------------------------------------------------------------------------------------------

/// Version A of a session type.
#[derive(Session)]
#[session(cookie_name = "shape")]
struct ShapeA {
    visits: u64,
    note: String,
}

/// Version B: `note` changed type, so values written by A no longer decode.
#[derive(Session)]
#[session(cookie_name = "shape")]
struct ShapeB {
    visits: u64,
    note: u64,
}

/// Version C: the same cookie, another codec: the envelope written by A does not decode.
#[derive(Session)]
#[session(cookie_name = "shape", codec = "msgpack")]
struct ShapeC {
    visits: u64,
}

async fn write_a(mut s: TypedSession<ShapeA>) -> &'static str {
    s.set_visits(3);
    s.set_note("hello".to_owned());
    "ok"
}

async fn read_b(s: TypedSession<ShapeB>) -> String {
    format!("{} {} {}", s.is_new(), s.visits(), s.note())
}

async fn bump_b(mut s: TypedSession<ShapeB>) -> String {
    *s.visits_mut() += 1;
    format!("{} {}", s.visits(), s.note())
}

async fn read_c(s: TypedSession<ShapeC>) -> String {
    format!("{} {}", s.is_new(), s.visits())
}

/// Builds app A (writes `ShapeA`) and app B (reads `ShapeB` and `ShapeC`) over two layers.
async fn shape_apps(layer_a: SessionLayer, layer_b: SessionLayer) -> (TestServer, TestServer) {
    let a = Router::new().route("/write", get(write_a)).layer(layer_a);
    let b = Router::new()
        .route("/read", get(read_b))
        .route("/bump", get(bump_b))
        .route("/read-c", get(read_c))
        .layer(layer_b);
    (TestServer::start(a).await, TestServer::start(b).await)
}

async fn undecodable_field_defaults(layer_a: SessionLayer, layer_b: SessionLayer) {
    let (a, b) = shape_apps(layer_a, layer_b).await;
    let (_, headers, _) = get_with(&a.url("/write"), None).await;
    let cookie = format!("shape={}", cookie_value(&headers, "shape").unwrap());
    let (status, headers, body) = get_with(&b.url("/read"), Some(&cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body, "false 3 0",
        "`note` falls back to its default, `visits` keeps its value, the session is not new"
    );
    assert!(set_cookies(&headers).is_empty(), "reading writes nothing");
    let (_, _, body) = get_with(&b.url("/bump"), Some(&cookie)).await;
    assert_eq!(body, "4 0");
}

#[tokio::test]
async fn undecodable_field_defaults_in_an_encrypted_cookie() {
    let clock = TestClock::new();
    undecodable_field_defaults(
        SessionLayer::new(encrypted(1, 5)).with_config(test_config(&clock)),
        SessionLayer::new(encrypted(1, 5)).with_config(test_config(&clock)),
    )
    .await;
}

#[tokio::test]
async fn undecodable_field_defaults_in_a_server_store() {
    let clock = TestClock::new();
    let store = SharedMemory::new(MemoryStore::new());
    undecodable_field_defaults(
        SessionLayer::new(store.clone()).with_config(test_config(&clock)),
        SessionLayer::new(store).with_config(test_config(&clock)),
    )
    .await;
}

#[tokio::test]
async fn authentic_cookie_with_undecodable_envelope_gives_a_fresh_session() {
    let clock = TestClock::new();
    let (a, b) = shape_apps(
        SessionLayer::new(encrypted(1, 5)).with_config(test_config(&clock)),
        SessionLayer::new(encrypted(1, 5)).with_config(test_config(&clock)),
    )
    .await;
    let (_, headers, _) = get_with(&a.url("/write"), None).await;
    let cookie = format!("shape={}", cookie_value(&headers, "shape").unwrap());
    // The cookie opens (same key and name) but holds a JSON envelope; `ShapeC` reads msgpack.
    let (status, _, body) = get_with(&b.url("/read-c"), Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (200, "true 0"), "never a 5xx");
}

// ---------------------------------------------------------------------------------------------
// X4: typed values round-trip exactly; a value that fails to encode at run time
// ---------------------------------------------------------------------------------------------

#[derive(Session)]
#[session(cookie_name = "coerce")]
struct CoerceJson {
    map: BTreeMap<u32, (u8, u8)>,
}

#[derive(Session)]
#[session(cookie_name = "coerce_mp", codec = "msgpack")]
struct CoerceMsgpack {
    map: BTreeMap<u32, (u8, u8)>,
}

fn coerce_value() -> BTreeMap<u32, (u8, u8)> {
    BTreeMap::from([(1, (1, 2)), (70_000, (3, 4))])
}

async fn coerce_set(mut j: TypedSession<CoerceJson>, mut m: TypedSession<CoerceMsgpack>) {
    j.set_map(coerce_value());
    m.set_map(coerce_value());
}

async fn coerce_check(j: TypedSession<CoerceJson>, m: TypedSession<CoerceMsgpack>) -> String {
    format!(
        "{} {} {:?}",
        *j.map() == coerce_value(),
        *m.map() == coerce_value(),
        j.map()
    )
}

async fn coerce_round_trip(layer: SessionLayer) {
    let app = Router::new()
        .route("/set", get(coerce_set))
        .route("/check", get(coerce_check))
        .layer(layer);
    let server = TestServer::start(app).await;
    let b = browser();
    let (_, headers, _) = send(b.get(server.url("/set"))).await;
    assert_eq!(set_cookies(&headers).len(), 2);
    let (_, _, body) = send(b.get(server.url("/check"))).await;
    assert_eq!(body, "true true {1: (1, 2), 70000: (3, 4)}");
}

#[tokio::test]
async fn integer_keys_and_tuples_round_trip_exactly() {
    let clock = TestClock::new();
    coerce_round_trip(SessionLayer::new(encrypted(1, 3)).with_config(test_config(&clock))).await;
    coerce_round_trip(SessionLayer::new(MemoryStore::new()).with_config(test_config(&clock))).await;
    coerce_round_trip(SessionLayer::new(SimpleCookieStore::new()).with_config(test_config(&clock)))
        .await;
}

/// A field whose type serializes with serde but not to JSON (tuple map keys).
#[derive(Session)]
#[session(cookie_name = "badkeys")]
struct BadKeys {
    visits: u64,
    map: BTreeMap<(u8, u8), u8>,
}

async fn badkeys_visit(mut s: TypedSession<BadKeys>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn badkeys_break(mut s: TypedSession<BadKeys>) -> &'static str {
    s.map_mut().insert((1, 2), 3);
    "handler ran"
}

async fn badkeys_break_and_save(mut s: TypedSession<BadKeys>) -> (StatusCode, String) {
    s.map_mut().insert((1, 2), 3);
    match s.save().await {
        Ok(()) => (StatusCode::OK, "saved".to_owned()),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()),
    }
}

#[tokio::test]
async fn value_that_fails_to_encode_is_a_500_and_keeps_the_previous_cookie() {
    let app = |layer| {
        Router::new()
            .route("/visit", get(badkeys_visit))
            .route("/break", get(badkeys_break))
            .route("/break-save", get(badkeys_break_and_save))
            .layer(layer)
    };
    let Fixture { server, .. } = Fixture::start(encrypted(1, 4), app).await;
    let b = browser();
    send(b.get(server.url("/visit"))).await;
    let (status, headers, body) = send(b.get(server.url("/break"))).await;
    assert_eq!(status, 500, "{body}");
    assert!(set_cookies(&headers).is_empty());
    let (status, headers, body) = send(b.get(server.url("/break-save"))).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "failed to encode the session")
    );
    assert!(set_cookies(&headers).is_empty());
    let (_, _, body) = send(b.get(server.url("/visit"))).await;
    assert_eq!(body, "2", "the previous cookie still works");
}

// ---------------------------------------------------------------------------------------------
// Items 8/35, 10/43, X24: keys and key rotation
// ---------------------------------------------------------------------------------------------

#[test]
fn keys_must_be_32_bytes() {
    assert!(matches!(
        Key::from_bytes(1, &[0; 3]),
        Err(KeyError::Length(3))
    ));
    assert!(matches!(
        Key::from_base64(1, "c2hvcnQ="),
        Err(KeyError::Length(5))
    ));
    assert!(Key::from_base64(1, &b64url_encode(&[7; 32])).is_ok());
}

#[tokio::test]
async fn key_rotation_over_http() {
    let clock = TestClock::new();
    let old = TestServer::start(conf_app(
        SessionLayer::new(encrypted(1, 1)).with_config(test_config(&clock)),
    ))
    .await;
    let rotated = TestServer::start(conf_app(
        SessionLayer::new(
            EncryptedCookieStore::new(key(2, 2))
                .with_fallback_key(key(1, 1))
                .unwrap(),
        )
        .with_config(test_config(&clock)),
    ))
    .await;
    let retired = TestServer::start(conf_app(
        SessionLayer::new(encrypted(2, 2)).with_config(test_config(&clock)),
    ))
    .await;

    let (_, headers, _) = get_with(&old.url("/visit"), None).await;
    let sealed_old = format!("conf={}", cookie_value(&headers, "conf").unwrap());

    // The old key is a fallback: the cookie opens, and even a read re-seals it with the primary.
    let (_, headers, body) = get_with(&rotated.url("/read"), Some(&sealed_old)).await;
    assert_eq!(body, "1");
    let resealed = cookie_value(&headers, "conf").expect("re-sealed on read");
    let sealed_new = format!("conf={resealed}");
    assert_ne!(sealed_new, sealed_old);
    let (_, headers, body) = get_with(&rotated.url("/read"), Some(&sealed_new)).await;
    assert_eq!(body, "1");
    assert!(
        set_cookies(&headers).is_empty(),
        "a primary-key cookie is not re-sealed"
    );

    // With the old key retired, only the re-sealed cookie still opens.
    assert_eq!(
        get_with(&retired.url("/read"), Some(&sealed_new)).await.2,
        "1"
    );
    assert_eq!(
        get_with(&retired.url("/read"), Some(&sealed_old)).await.2,
        "0",
        "a cookie sealed with a retired key is a fresh session"
    );
    let (status, _, body) = get_with(&retired.url("/visit"), Some(&sealed_old)).await;
    assert_eq!((status, body.as_str()), (200, "1"));
}

// ---------------------------------------------------------------------------------------------
// Server-side records are deleted, bounded and always expire
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn memory_store_is_bounded() {
    let store = SharedMemory::new(MemoryStore::new().with_capacity(5));
    let Fixture {
        clock,
        store,
        server,
    } = Fixture::keeping(store, test_config, conf_app).await;
    let mut cookies = Vec::new();
    for _ in 0..20 {
        let (_, headers, body) = get_with(&server.url("/visit"), None).await;
        assert_eq!(body, "1");
        cookies.push(format!("conf={}", cookie_value(&headers, "conf").unwrap()));
        assert!(store.len() <= 5, "{} records", store.len());
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(store.len(), 5);
    // The sessions closest to expiry (the oldest) were dropped; the newest five remain.
    for (i, cookie) in cookies.iter().enumerate() {
        let expected = if i >= 15 { "1" } else { "0" };
        assert_eq!(
            get_with(&server.url("/read"), Some(cookie)).await.2,
            expected,
            "session {i}"
        );
    }
    // Once they have expired, a full store sweeps them all before storing a new session.
    clock.advance(Duration::from_secs(601));
    get_with(&server.url("/visit"), None).await;
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn memory_store_deletes_records_on_regenerate_and_invalidate() {
    let Fixture { store, server, .. } = Fixture::memory(conf_app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let first = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    assert_eq!(store.len(), 1, "the first save creates the record");

    let (_, headers, _) = post_with(&server.url("/login?user=7"), Some(&first)).await;
    let second = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    assert_ne!(first, second);
    assert_eq!(
        store.len(),
        1,
        "regenerate deletes the record under the old id"
    );
    assert_eq!(get_with(&server.url("/read"), Some(&first)).await.2, "0");
    assert_eq!(get_with(&server.url("/whoami"), Some(&second)).await.2, "7");

    let (_, headers, _) = post_with(&server.url("/logout"), Some(&second)).await;
    assert!(set_cookies(&headers)[0].starts_with("conf=; "));
    assert_eq!(
        store.len(),
        0,
        "invalidate deletes the record; no empty record is left"
    );
}

#[tokio::test]
async fn replayed_id_after_logout_gets_a_fresh_id() {
    let Fixture { store, server, .. } = Fixture::memory(conf_app).await;
    let (_, headers, _) = post_with(&server.url("/login?user=5"), None).await;
    let old = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    post_with(&server.url("/logout"), Some(&old)).await;
    // Replay the old cookie and log in again.
    let (_, headers, _) = post_with(&server.url("/login?user=6"), Some(&old)).await;
    let new = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    assert_ne!(new, old, "a replayed id is never adopted");
    assert_eq!(get_with(&server.url("/whoami"), Some(&new)).await.2, "6");
    assert_eq!(
        get_with(&server.url("/whoami"), Some(&old)).await.2,
        "anonymous"
    );
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn invalidate_on_a_new_session_writes_nothing() {
    let Fixture { store, server, .. } = Fixture::memory(conf_app).await;
    let (status, headers, _) = post_with(&server.url("/logout"), None).await;
    assert_eq!(status, 204);
    assert!(
        set_cookies(&headers).is_empty(),
        "{:?}",
        set_cookies(&headers)
    );
    assert_eq!(store.len(), 0);
}

#[tokio::test]
async fn expired_session_gets_a_new_id() {
    let Fixture {
        clock,
        store,
        server,
    } = Fixture::memory(conf_app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let old = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    clock.advance(Duration::from_secs(601));
    let (_, headers, body) = get_with(&server.url("/visit"), Some(&old)).await;
    assert_eq!(body, "1", "expired: the data is gone");
    let new = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    assert_ne!(new, old, "and so is the identity");
    assert_eq!(store.len(), 1, "the expired record is gone too");
}

/// A session type with no `max_age`: the layer's default applies.
#[derive(Session)]
#[session(cookie_name = "plain")]
struct Plain {
    visits: u64,
}

async fn plain_visit(mut s: TypedSession<Plain>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn plain_read(s: TypedSession<Plain>) -> String {
    s.visits().to_string()
}

#[tokio::test]
async fn default_idle_timeout_is_one_day() {
    let app = |layer| {
        Router::new()
            .route("/visit", get(plain_visit))
            .route("/read", get(plain_read))
            .layer(layer)
    };
    let Fixture {
        clock,
        store,
        server,
    } = Fixture::memory(app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    assert!(
        set_cookies(&headers)[0].contains("; Max-Age=86400;"),
        "{:?}",
        set_cookies(&headers)
    );
    let cookie = format!("plain={}", cookie_value(&headers, "plain").unwrap());
    clock.advance(Duration::from_secs(24 * 3600 - 1));
    assert_eq!(get_with(&server.url("/read"), Some(&cookie)).await.2, "1");
    clock.advance(Duration::from_secs(2));
    assert_eq!(get_with(&server.url("/read"), Some(&cookie)).await.2, "0");
    assert_eq!(store.len(), 0, "no record lives forever");
}

// ---------------------------------------------------------------------------------------------
// Items 34, 56, X2, X9: per-session max_age
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn per_session_max_age_applies_on_load() {
    let Fixture { clock, server, .. } = Fixture::start(MemoryStore::new(), conf_app).await;
    // Shorter than the type's 600 s.
    let (_, headers, body) = get_with(&server.url("/remember?secs=10"), None).await;
    assert_eq!(body, "10");
    assert!(set_cookies(&headers)[0].contains("; Max-Age=10;"));
    let short = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    // Longer than 30 days (memcached's limit in aiohttp_session).
    let secs = 31 * 24 * 3600;
    let (_, headers, _) = get_with(&server.url(&format!("/remember?secs={secs}")), None).await;
    assert!(set_cookies(&headers)[0].contains(&format!("; Max-Age={secs};")));
    let long = format!("conf={}", cookie_value(&headers, "conf").unwrap());

    clock.advance(Duration::from_secs(11));
    assert_eq!(get_with(&server.url("/read"), Some(&short)).await.2, "0");
    clock.advance(Duration::from_secs(30 * 24 * 3600));
    assert_eq!(get_with(&server.url("/read"), Some(&long)).await.2, "1");
}

#[tokio::test]
async fn zero_max_age_is_never_an_error_from_the_store() {
    let Fixture { clock, server, .. } = Fixture::start(MemoryStore::new(), conf_app).await;
    let (status, headers, body) = get_with(&server.url("/remember?secs=0"), None).await;
    assert_eq!((status, body.as_str()), (200, "1"), "clamped to one second");
    assert!(set_cookies(&headers)[0].contains("; Max-Age=1;"));
    // A layer default of zero is a configuration error, reported on first use.
    let config = test_config(&clock).with_default_max_age(Duration::ZERO);
    assert!(config.validate_for("plain").is_err());
    let app = Router::new()
        .route("/visit", get(plain_visit))
        .layer(SessionLayer::new(MemoryStore::new()).with_config(config));
    let server = TestServer::start(app).await;
    assert_eq!(get_with(&server.url("/visit"), None).await.0, 500);
}

// ---------------------------------------------------------------------------------------------
// Items 73–78: the session object
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nested_mutation_is_saved_without_a_changed_call() {
    let Fixture { server, .. } = Fixture::start(encrypted(1, 6), conf_app).await;
    let b = browser();
    assert_eq!(send(b.get(server.url("/tag"))).await.2, "t0");
    assert_eq!(send(b.get(server.url("/tag"))).await.2, "t0,t1");
    let (_, headers, body) = send(b.get(server.url("/tags"))).await;
    assert_eq!(body, "t0,t1");
    assert!(
        set_cookies(&headers).is_empty(),
        "reading a field marks nothing"
    );
}

#[tokio::test]
async fn debug_output_hides_id_and_data() {
    let Fixture { server, .. } = Fixture::start(MemoryStore::new(), conf_app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let id = cookie_value(&headers, "conf").unwrap();
    let (_, _, body) = get_with(&server.url("/debug"), Some(&format!("conf={id}"))).await;
    assert!(
        body.contains("\"conf\"") && body.contains("is_new: false"),
        "{body}"
    );
    assert!(!body.contains("secret-note"), "{body}");
    assert!(!body.contains(&id), "{body}");
}

#[tokio::test]
async fn invalidate_then_write_is_a_new_session_with_its_own_creation_time() {
    let Fixture { clock, server, .. } = Fixture::start(MemoryStore::new(), conf_app).await;
    let b = browser();
    let start = now_millis(&clock);
    send(b.post(server.url("/login?user=1"))).await;
    assert_eq!(
        send(b.get(server.url("/created"))).await.2,
        start.to_string()
    );
    clock.advance(Duration::from_secs(10));
    send(b.post(server.url("/logout-flash"))).await;
    assert_eq!(send(b.get(server.url("/note"))).await.2, "bye");
    assert_eq!(send(b.get(server.url("/whoami"))).await.2, "anonymous");
    assert_eq!(
        send(b.get(server.url("/created"))).await.2,
        (start + 10_000).to_string()
    );
}

// ---------------------------------------------------------------------------------------------
// Items 4, 5, 69, X13, X14: the plain cookie store's envelope, written and read by hand
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn simple_cookie_envelope_holds_every_field() {
    let Fixture { clock, server, .. } = Fixture::start(SimpleCookieStore::new(), conf_app).await;
    let start = now_millis(&clock);
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let cookie = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    clock.advance(Duration::from_secs(5));
    let (_, headers, _) = get_with(&server.url("/tag"), Some(&cookie)).await;
    let value = cookie_value(&headers, "conf").unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&b64url_decode(&value)).unwrap();
    assert_eq!(
        envelope,
        serde_json::json!({
            "created": start,
            "updated": start + 5000,
            "session": {"visits": 1, "note": "", "tags": ["t0"], "user": null},
        })
    );
}

#[tokio::test]
async fn hand_written_simple_cookie_loads() {
    let Fixture { clock, server, .. } = Fixture::start(SimpleCookieStore::new(), conf_app).await;
    let now = now_millis(&clock);
    let envelope = format!(
        r#"{{"created":{now},"updated":{now},"session":{{"visits":5,"note":"hi","removed_field":1}}}}"#
    );
    let cookie = format!("conf={}", b64url_encode(envelope.as_bytes()));
    let (status, headers, body) = get_with(&server.url("/read"), Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (200, "5"));
    assert!(
        set_cookies(&headers).is_empty(),
        "loaded and unchanged: nothing written"
    );
    assert_eq!(get_with(&server.url("/note"), Some(&cookie)).await.2, "hi");
    assert_eq!(
        get_with(&server.url("/tags"), Some(&cookie)).await.2,
        "",
        "missing field: default"
    );
}

#[tokio::test]
async fn simple_cookie_without_metadata_or_not_an_object_is_a_fresh_session() {
    let Fixture { clock, server, .. } = Fixture::start(SimpleCookieStore::new(), conf_app).await;
    let now = now_millis(&clock);
    let later = now + 1000;
    for payload in [
        r#"{"session":{"visits":5}}"#.to_owned(),
        format!(r#"{{"created":{now},"session":{{"visits":5}}}}"#),
        format!(r#"{{"created":{later},"updated":{now},"session":{{"visits":5}}}}"#),
        "notjson".to_owned(),
        "[1,2]".to_owned(),
        "123".to_owned(),
        "null".to_owned(),
        "{}".to_owned(),
    ] {
        let cookie = format!("conf={}", b64url_encode(payload.as_bytes()));
        let (status, _, body) = get_with(&server.url("/read"), Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, "0"), "{payload}");
    }
    // Not even base64.
    let (status, _, body) = get_with(&server.url("/read"), Some("conf=notjson!")).await;
    assert_eq!((status, body.as_str()), (200, "0"));
}

// ---------------------------------------------------------------------------------------------
// Items 31/58, X20, X25: ids and cookie values
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_ids_are_256_bit_base64url() {
    let Fixture { server, .. } = Fixture::start(MemoryStore::new(), conf_app).await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let (_, headers, _) = get_with(&server.url("/visit"), None).await;
        let id = cookie_value(&headers, "conf").unwrap();
        assert_eq!(id.len(), 43, "{id}");
        assert!(is_base64url(&id), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn cookie_values_are_unpadded_and_quoted_values_are_read() {
    let clock = TestClock::new();
    for layer in [
        SessionLayer::new(encrypted(1, 8)).with_config(test_config(&clock)),
        SessionLayer::new(MemoryStore::new()).with_config(test_config(&clock)),
    ] {
        let server = TestServer::start(conf_app(layer)).await;
        for _ in 0..5 {
            let (_, headers, _) = get_with(&server.url("/visit"), None).await;
            let value = cookie_value(&headers, "conf").unwrap();
            assert!(is_base64url(&value), "never quoted, never padded: {value}");
            let quoted = format!("conf=\"{value}\"");
            assert_eq!(get_with(&server.url("/read"), Some(&quoted)).await.2, "1");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// X6, X7: failures and concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn panicking_handler_saves_nothing() {
    let Fixture { server, .. } = Fixture::start(MemoryStore::new(), conf_app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let cookie = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    let failed = raw_client()
        .get(server.url("/panic"))
        .header("cookie", &cookie)
        .send()
        .await;
    assert!(failed.is_err(), "the connection is dropped: {failed:?}");
    assert_eq!(get_with(&server.url("/read"), Some(&cookie)).await.2, "1");
}

#[tokio::test]
async fn concurrent_requests_changing_different_fields_keep_both() {
    // aiohttp_session's X7, with the per-session request serialization turned off so that the
    // two requests really overlap: both load the session before either saves. Only the changed
    // fields are written, so neither change is lost.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (b1, b2) = (Arc::clone(&barrier), barrier);
    let both_loaded = |barrier: Arc<tokio::sync::Barrier>| async move {
        tokio::time::timeout(Duration::from_secs(5), barrier.wait())
            .await
            .expect("both requests hold the session at once");
    };
    let app = |layer| {
        Router::new()
            .route(
                "/set-note",
                get(move |mut s: TypedSession<Conf>| async move {
                    both_loaded(b1).await;
                    s.set_note("a".to_owned());
                }),
            )
            .route(
                "/set-user",
                get(move |mut s: TypedSession<Conf>| async move {
                    both_loaded(b2).await;
                    s.set_user(Some(9));
                }),
            )
            .merge(conf_routes())
            .layer(layer)
    };
    let unserialized = |clock: &Arc<TestClock>| test_config(clock).with_serialized_requests(false);
    let Fixture { server, .. } = Fixture::start_with(MemoryStore::new(), unserialized, app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let cookie = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    let (note_url, user_url) = (server.url("/set-note"), server.url("/set-user"));
    let (a, b) = tokio::join!(
        get_with(&note_url, Some(&cookie)),
        get_with(&user_url, Some(&cookie)),
    );
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(get_with(&server.url("/note"), Some(&cookie)).await.2, "a");
    assert_eq!(get_with(&server.url("/whoami"), Some(&cookie)).await.2, "9");
    assert_eq!(get_with(&server.url("/read"), Some(&cookie)).await.2, "1");
}

#[tokio::test]
async fn concurrent_increments_of_one_field_all_count() {
    // The same field read, changed and written by overlapping requests: with the default
    // per-session serialization no increment is lost.
    async fn slow_visit(mut s: TypedSession<Conf>) -> String {
        tokio::time::sleep(Duration::from_millis(100)).await;
        *s.visits_mut() += 1;
        s.visits().to_string()
    }
    let app = |layer| {
        Router::new()
            .route("/slow-visit", get(slow_visit))
            .merge(conf_routes())
            .layer(layer)
    };
    let Fixture { server, .. } = Fixture::start(MemoryStore::new(), app).await;
    let (_, headers, _) = get_with(&server.url("/visit"), None).await;
    let cookie = format!("conf={}", cookie_value(&headers, "conf").unwrap());
    let url = server.url("/slow-visit");
    let (a, b, c) = tokio::join!(
        get_with(&url, Some(&cookie)),
        get_with(&url, Some(&cookie)),
        get_with(&url, Some(&cookie)),
    );
    let mut seen = [a.2, b.2, c.2];
    seen.sort();
    assert_eq!(
        seen,
        ["2", "3", "4"],
        "the requests ran one after the other"
    );
    assert_eq!(get_with(&server.url("/read"), Some(&cookie)).await.2, "4");
}
