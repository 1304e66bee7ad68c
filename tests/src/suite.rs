//! The conformance suite every store must pass, driven over real HTTP on loopback.
//!
//! A store's test file builds a [`Harness`] and calls [`store_suite!`](crate::store_suite),
//! which expands to one `#[tokio::test]` per case below (tower-sessions' `route_tests!` pattern).
//! Every case is a public function taking the harness, and panics if the store misbehaves.
#![allow(
    clippy::missing_panics_doc,
    reason = "every case is a list of assertions: panicking is how it fails, as said above"
)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Query, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session_runtime::config::SessionConfig;
use session_runtime::store::StoreKind;
use session_runtime::{Session, SessionLayer, TypedSession};

use crate::fixture::Fixture;
use crate::server::{
    TestClock, TestServer, browser, cookie_value, raw_client, send, set_cookies, test_config,
};

/// The suite's session type.
#[derive(Session, Debug)]
#[session(cookie_name = "suite", max_age = 600, absolute_max_age = 3600)]
pub struct Suite {
    /// A counter, bumped by `/visit`.
    pub visits: u64,
    /// A note, set by `/logout-flash` and `/big`.
    pub note: String,
    /// The logged-in user, set by `/login`.
    pub user: Option<u64>,
}

/// A view of the suite's session: its counter alone.
#[derive(Session, Debug)]
#[session(view_of = Suite)]
pub struct SuiteVisits {
    /// The suite's counter.
    pub visits: u64,
}

#[derive(Deserialize)]
struct User {
    user: u64,
}

async fn visit(mut s: TypedSession<Suite>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn read(s: TypedSession<Suite>) -> String {
    s.visits().to_string()
}

async fn peek(s: Option<TypedSession<Suite>>) -> String {
    s.map_or_else(|| "none".to_owned(), |s| s.visits().to_string())
}

async fn whoami(s: TypedSession<Suite>) -> String {
    s.user()
        .map_or_else(|| "anonymous".to_owned(), |u| u.to_string())
}

async fn login(mut s: TypedSession<Suite>, Query(q): Query<User>) -> StatusCode {
    s.regenerate();
    s.set_user(Some(q.user));
    StatusCode::NO_CONTENT
}

async fn logout(mut s: TypedSession<Suite>) -> StatusCode {
    s.invalidate();
    StatusCode::NO_CONTENT
}

async fn logout_with_flash(mut s: TypedSession<Suite>) -> StatusCode {
    s.invalidate();
    s.set_note("bye".to_owned());
    StatusCode::NO_CONTENT
}

async fn note(s: TypedSession<Suite>) -> String {
    s.note().clone()
}

async fn remember(mut s: TypedSession<Suite>) -> String {
    s.set_max_age(Duration::from_secs(7 * 24 * 3600));
    *s.visits_mut() += 1;
    s.max_age().as_secs().to_string()
}

async fn fail(mut s: TypedSession<Suite>) -> (StatusCode, &'static str) {
    *s.visits_mut() += 1;
    (StatusCode::UNPROCESSABLE_ENTITY, "no")
}

async fn redirect(mut s: TypedSession<Suite>) -> Redirect {
    *s.visits_mut() += 1;
    Redirect::to("/read")
}

async fn stream(mut s: TypedSession<Suite>) -> Response {
    *s.visits_mut() += 1;
    let chunks =
        futures_util::stream::iter(["a", "b", "c"].map(|c| Ok::<_, std::io::Error>(c.to_owned())));
    Body::from_stream(chunks).into_response()
}

async fn big(mut s: TypedSession<Suite>) -> &'static str {
    s.set_note("x".repeat(5000));
    "ok"
}

async fn save_now(mut s: TypedSession<Suite>) -> String {
    *s.visits_mut() += 1;
    match s.save().await {
        Ok(()) => format!("saved {}", s.is_dirty()),
        Err(error) => format!("error {error}"),
    }
}

async fn save_now_big(mut s: TypedSession<Suite>) -> (StatusCode, String) {
    s.set_note("x".repeat(5000));
    match s.save().await {
        Ok(()) => (StatusCode::OK, "saved".to_owned()),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn untouched() -> &'static str {
    "no session here"
}

async fn meta(s: TypedSession<Suite>) -> String {
    let created = s
        .created()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{} {} {created}", s.is_new(), s.id().is_some())
}

async fn twice_a(s1: TypedSession<Suite>, s2: TypedSession<Suite>) -> String {
    format!("{} {}", s1.visits(), s2.visits())
}

async fn view_visit(mut s: TypedSession<SuiteVisits>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn view_read(s: TypedSession<SuiteVisits>) -> String {
    format!("{} {}", s.visits(), s.is_new())
}

/// A first visit through the view fills the whole session; later ones bump `visits` alone.
async fn view_fill(mut s: TypedSession<SuiteVisits>) -> Result<String, String> {
    if s.is_new() {
        let mut whole = s.into_root().await.map_err(|error| error.to_string())?;
        whole.set_note("filled".to_owned());
        whole.set_user(Some(9));
        *whole.visits_mut() += 1;
        return Ok(whole.visits().to_string());
    }
    *s.visits_mut() += 1;
    Ok(s.visits().to_string())
}

/// A stored session seen through the view, bumped there, then turned into the whole type: the
/// bump carries over, and the other fields are loaded.
async fn view_widen(mut s: TypedSession<SuiteVisits>) -> Result<String, String> {
    *s.visits_mut() += 1;
    let mut whole = s.into_root().await.map_err(|error| error.to_string())?;
    let before = whole.set_note("widened".to_owned());
    Ok(format!("{} {before} {:?}", whole.visits(), whole.user()))
}

/// A login through the view: regenerate and a bump are pending when it turns into the whole
/// type, which sets the user.
async fn view_login(mut s: TypedSession<SuiteVisits>) -> Result<String, String> {
    s.regenerate();
    *s.visits_mut() += 1;
    let mut whole = s.into_root().await.map_err(|error| error.to_string())?;
    whole.set_user(Some(5));
    Ok(format!("{} {}", whole.visits(), whole.note()))
}

/// A bump saved explicitly through the view, then the whole type: it sees the saved value.
async fn view_save_widen(mut s: TypedSession<SuiteVisits>) -> Result<String, String> {
    *s.visits_mut() += 1;
    s.save().await.map_err(|error| error.to_string())?;
    let mut whole = s.into_root().await.map_err(|error| error.to_string())?;
    whole.set_note("saved first".to_owned());
    Ok(whole.visits().to_string())
}

async fn view_and_type(s: TypedSession<SuiteVisits>, t: TypedSession<Suite>) -> String {
    format!("{} {}", s.visits(), t.visits())
}

/// A middleware that bumps `visits` before the handler runs: the handler must see it.
async fn bump_first(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    {
        let mut s = TypedSession::<Suite>::from_parts(&parts).await.unwrap();
        *s.visits_mut() += 100;
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The suite's routes behind `layer`.
pub fn app(layer: SessionLayer) -> Router {
    app_with(layer, Router::new())
}

/// The suite's routes plus a test's own `extra` routes, all behind `layer`.
pub fn app_with(layer: SessionLayer, extra: Router) -> Router {
    Router::new()
        .merge(extra)
        .route("/visit", get(visit))
        .route("/read", get(read))
        .route("/peek", get(peek))
        .route("/whoami", get(whoami))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/logout-flash", post(logout_with_flash))
        .route("/note", get(note))
        .route("/remember", get(remember))
        .route("/fail", get(fail))
        .route("/redirect", get(redirect))
        .route("/stream", get(stream))
        .route("/big", get(big))
        .route("/save", get(save_now))
        .route("/save-big", get(save_now_big))
        .route("/untouched", get(untouched))
        .route("/meta", get(meta))
        .route("/twice", get(twice_a))
        .route("/view/visit", get(view_visit))
        .route("/view/read", get(view_read))
        .route("/view/and-type", get(view_and_type))
        .route("/view/fill", get(view_fill))
        .route("/view/widen", get(view_widen))
        .route("/view/login", get(view_login))
        .route("/view/save-widen", get(view_save_widen))
        .route(
            "/middleware",
            get(read).layer(middleware::from_fn(bump_first)),
        )
        .layer(layer)
}

/// What the suite needs from a store's test file.
pub struct Harness {
    /// Whether the store keeps records in the cookie or on the server.
    pub kind: StoreKind,
    /// Whether a changed cookie is detected (false only for the plain test store).
    pub tamper_evident: bool,
    /// Builds a layer over a fresh store with the given configuration.
    pub make: Box<dyn Fn(SessionConfig) -> MakeLayer + Send + Sync>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("kind", &self.kind)
            .field("tamper_evident", &self.tamper_evident)
            .finish_non_exhaustive()
    }
}

/// Building a layer may need I/O (connecting to Redis).
pub type MakeLayer = std::pin::Pin<Box<dyn Future<Output = SessionLayer> + Send>>;

impl Harness {
    /// A harness for a store that is built without I/O.
    pub fn new(
        kind: StoreKind,
        tamper_evident: bool,
        make: impl Fn(SessionConfig) -> SessionLayer + Send + Sync + 'static,
    ) -> Self {
        let make = Arc::new(make);
        Self {
            kind,
            tamper_evident,
            make: Box::new(move |config| {
                let make = Arc::clone(&make);
                Box::pin(async move { make(config) })
            }),
        }
    }
}

impl Harness {
    /// Starts the suite's routes over a layer the harness makes with [`test_config`].
    pub async fn start(&self) -> Fixture {
        self.start_with(test_config, app).await
    }

    /// Starts `app` over a layer the harness makes with the configuration `config` makes of
    /// the fixture's clock.
    pub async fn start_with(
        &self,
        config: impl FnOnce(&Arc<TestClock>) -> SessionConfig,
        app: impl FnOnce(SessionLayer) -> Router,
    ) -> Fixture {
        let clock = TestClock::new();
        let layer = (self.make)(config(&clock)).await;
        Fixture {
            server: TestServer::start(app(layer)).await,
            clock,
            store: (),
        }
    }
}

async fn get_text(client: &reqwest::Client, run: &Fixture, path: &str) -> String {
    let (status, _, body) = send(client.get(run.server.url(path))).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Visits count up; a read sets no cookie and answers `Vary: Cookie`.
pub async fn counts_and_reads_without_writing(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    for expected in 1..=3 {
        assert_eq!(get_text(&c, &run, "/visit").await, expected.to_string());
    }
    let (status, headers, body) = send(c.get(run.server.url("/read"))).await;
    assert_eq!((status, body.as_str()), (200, "3"));
    assert!(
        set_cookies(&headers).is_empty(),
        "a read must not set a cookie"
    );
    assert_eq!(headers.get("vary").unwrap(), "Cookie");
}

/// A handler that never extracts the session, and a new session that is only read, set no cookie.
pub async fn no_extraction_no_cookie(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    get_text(&c, &run, "/visit").await;
    let (_, headers, body) = send(c.get(run.server.url("/untouched"))).await;
    assert_eq!(body, "no session here");
    assert!(set_cookies(&headers).is_empty());
    assert!(headers.get("vary").is_none());
    // A fresh client reading only: no cookie either.
    let (_, headers, body) = send(raw_client().get(run.server.url("/read"))).await;
    assert_eq!(body, "0");
    assert!(
        set_cookies(&headers).is_empty(),
        "an unchanged new session is not saved"
    );
}

/// The default cookie attributes: `Path=/`, `Max-Age`, `HttpOnly`, `Secure`, `SameSite=Lax`, no
/// `Domain`, and `Cache-Control: no-store`.
pub async fn cookie_attributes(h: &Harness) {
    let default_config =
        |clock: &Arc<TestClock>| SessionConfig::default().with_clock(clock.clone());
    let Fixture { server, .. } = h.start_with(default_config, app).await;
    let (_, headers, _) = send(raw_client().get(server.url("/visit"))).await;
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    for attribute in [
        "; Path=/",
        "; Max-Age=600",
        "; HttpOnly",
        "; Secure",
        "; SameSite=Lax",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
}

/// Malformed cookie values give a fresh session, never an error.
pub async fn garbage_cookies_give_a_fresh_session(h: &Harness) {
    let run = h.start().await;
    let c = raw_client();
    let long = "A".repeat(5000);
    for value in [
        "",
        "garbage",
        "%%%",
        "\"quoted\"",
        "eyJ9",
        long.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let (status, _, body) = send(
            c.get(run.server.url("/visit"))
                .header("cookie", format!("suite={value}")),
        )
        .await;
        assert_eq!((status, body.as_str()), (200, "1"), "cookie {value:.40}");
    }
}

/// A changed byte anywhere in the cookie is never a 5xx, and a fresh session on tamper-evident
/// stores.
pub async fn tampered_cookie_gives_a_fresh_session(h: &Harness) {
    let run = h.start().await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(run.server.url("/visit"))).await;
    let value = cookie_value(&headers, "suite").unwrap();
    let (_, _, body) = send(
        c.get(run.server.url("/visit"))
            .header("cookie", format!("suite={value}")),
    )
    .await;
    assert_eq!(body, "2");
    for position in [0, value.len() / 2, value.len() - 1] {
        let mut bytes = value.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let (status, _, body) = send(
            c.get(run.server.url("/read"))
                .header("cookie", format!("suite={tampered}")),
        )
        .await;
        assert_eq!(status, 200, "position {position}: never a 5xx");
        if h.tamper_evident {
            assert_eq!(
                body, "0",
                "position {position}: a changed cookie is a fresh session"
            );
        }
    }
}

/// The idle timeout: a save resets it; idle past `max_age`, the session is fresh.
pub async fn idle_timeout(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    get_text(&c, &run, "/visit").await;
    run.clock.advance(Duration::from_secs(599));
    assert_eq!(
        get_text(&c, &run, "/visit").await,
        "2",
        "a save resets the idle timer"
    );
    run.clock.advance(Duration::from_secs(599));
    assert_eq!(get_text(&c, &run, "/read").await, "2");
    run.clock.advance(Duration::from_secs(2));
    assert_eq!(get_text(&c, &run, "/read").await, "0", "idle for 601 s");
    assert_eq!(
        get_text(&c, &run, "/meta").await.split(' ').next(),
        Some("true")
    );
}

/// The absolute timeout ends a session however active it is.
pub async fn absolute_timeout(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    get_text(&c, &run, "/visit").await;
    for _ in 0..7 {
        run.clock.advance(Duration::from_secs(500));
        get_text(&c, &run, "/visit").await;
    }
    // 3500 s old, 8 visits.
    run.clock.advance(Duration::from_secs(101));
    assert_eq!(
        get_text(&c, &run, "/read").await,
        "0",
        "past the absolute timeout"
    );
}

/// A per-session `max_age` is stored and applied on load, capped by the absolute timeout.
pub async fn remember_me_is_persisted(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    let (_, headers, body) = send(c.get(run.server.url("/remember"))).await;
    assert_eq!(body, (7 * 24 * 3600).to_string());
    // The absolute timeout (3600 s) still caps the cookie's life.
    assert!(set_cookies(&headers)[0].contains("Max-Age=3600"));
    run.clock.advance(Duration::from_secs(1000));
    assert_eq!(
        get_text(&c, &run, "/read").await,
        "1",
        "idle 1000 s > type max_age 600"
    );
}

/// Rolling expiry: a read past the touch interval refreshes the expiry without a write.
pub async fn rolling_touch_extends_without_rewriting(h: &Harness) {
    let rolling = |clock: &_| test_config(clock).with_rolling(Some(Duration::from_secs(300)));
    let Fixture { clock, server, .. } = h.start_with(rolling, app).await;
    let c = browser();
    send(c.get(server.url("/visit"))).await;
    clock.advance(Duration::from_secs(100));
    let (_, headers, _) = send(c.get(server.url("/read"))).await;
    assert!(set_cookies(&headers).is_empty(), "too early to touch");
    clock.advance(Duration::from_secs(400));
    let (_, headers, body) = send(c.get(server.url("/read"))).await;
    assert_eq!(body, "1");
    assert_eq!(set_cookies(&headers).len(), 1, "touched after 500 s");
    clock.advance(Duration::from_secs(500));
    let (_, _, body) = send(c.get(server.url("/read"))).await;
    assert_eq!(
        body, "1",
        "alive 1000 s after the last write thanks to the touch"
    );
}

/// `regenerate` issues a new cookie, keeps the data, and retires a server-side id.
pub async fn regenerate_changes_the_cookie_and_keeps_data(h: &Harness) {
    let run = h.start().await;
    let c = raw_client();
    let (_, headers, _) = send(c.get(run.server.url("/visit"))).await;
    let before = cookie_value(&headers, "suite").unwrap();
    let (status, headers, _) = send(
        c.post(run.server.url("/login?user=7"))
            .header("cookie", format!("suite={before}")),
    )
    .await;
    assert_eq!(status, 204);
    let after = cookie_value(&headers, "suite").unwrap();
    assert_ne!(before, after);
    let (_, _, body) = send(
        c.get(run.server.url("/whoami"))
            .header("cookie", format!("suite={after}")),
    )
    .await;
    assert_eq!(body, "7");
    let (_, _, body) = send(
        c.get(run.server.url("/read"))
            .header("cookie", format!("suite={after}")),
    )
    .await;
    assert_eq!(body, "1", "data kept across regenerate");
    if h.kind == StoreKind::Server {
        let (_, _, body) = send(
            c.get(run.server.url("/read"))
                .header("cookie", format!("suite={before}")),
        )
        .await;
        assert_eq!(body, "0", "the old id no longer loads");
    }
}

/// SECURITY.md item 20: with `with_renewal(300 s, 30 s)`, the first request after each period
/// moves a server-side session to a new id (read-only requests too); the old id leads to the
/// session, and moves its client to the new id, for the grace period and is refused after it.
/// Cookie stores have no id to renew: nothing changes for them.
pub async fn renewal_moves_the_id_with_a_grace_period(h: &Harness) {
    let renewing = |clock: &_| {
        test_config(clock).with_renewal(Some((Duration::from_secs(300), Duration::from_secs(30))))
    };
    let Fixture { clock, server, .. } = h.start_with(renewing, app).await;
    let c = raw_client();
    let get = |path: &str, value: &str| {
        send(
            c.get(server.url(path))
                .header("cookie", format!("suite={value}")),
        )
    };
    let (_, headers, _) = send(c.get(server.url("/visit"))).await;
    let first = cookie_value(&headers, "suite").unwrap();
    let (_, _, created) = get("/meta", &first).await;
    clock.advance(Duration::from_secs(200));
    let (_, headers, body) = get("/read", &first).await;
    assert_eq!(body, "1");
    assert!(set_cookies(&headers).is_empty(), "not due before 300 s");

    clock.advance(Duration::from_secs(150));
    let (status, headers, body) = get("/read", &first).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    if h.kind == StoreKind::Cookie {
        assert!(
            set_cookies(&headers).is_empty(),
            "cookie stores have no id to renew"
        );
        return;
    }
    let cookies = set_cookies(&headers);
    assert_eq!(
        cookies.len(),
        1,
        "a read past the period renews: {cookies:?}"
    );
    assert!(cookies[0].contains("Max-Age=600"), "{}", cookies[0]);
    let second = cookie_value(&headers, "suite").unwrap();
    assert_ne!(first, second, "a new id");
    let (_, _, meta_second) = get("/meta", &second).await;
    assert_eq!(meta_second, created, "same session, same creation time");

    // Within the grace period the old id still leads to the session, and a write made through it
    // lands in the renewed session; the response moves the client to the new id.
    clock.advance(Duration::from_secs(10));
    let (status, headers, body) = get("/visit", &first).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    assert_eq!(
        cookie_value(&headers, "suite").as_deref(),
        Some(second.as_str())
    );
    let (_, headers, body) = get("/read", &first).await;
    assert_eq!(body, "2", "read-only through the old id");
    assert_eq!(
        cookie_value(&headers, "suite").as_deref(),
        Some(second.as_str()),
        "a read through the old id moves the client too"
    );
    let (_, headers, body) = get("/read", &second).await;
    assert_eq!(body, "2");
    assert!(set_cookies(&headers).is_empty());

    // Past the grace period (renewed at 350 s, grace 30 s) the old id is refused.
    clock.advance(Duration::from_secs(21));
    let (status, headers, body) = get("/read", &first).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "0"),
        "old id after its grace"
    );
    assert!(set_cookies(&headers).is_empty());
    let (_, _, body) = get("/read", &second).await;
    assert_eq!(body, "2");

    // The next period renews again, from the new id.
    clock.advance(Duration::from_secs(250));
    let (_, headers, body) = get("/read", &second).await;
    assert_eq!(body, "2");
    let third = cookie_value(&headers, "suite").expect("renewed again after 600 s");
    assert!(third != first && third != second);
    // A login's `regenerate` is not a renewal: the old id dies at once.
    let (_, headers, _) = send(
        c.post(server.url("/login?user=5"))
            .header("cookie", format!("suite={third}")),
    )
    .await;
    let fourth = cookie_value(&headers, "suite").unwrap();
    assert_ne!(fourth, third);
    let (_, _, body) = get("/whoami", &third).await;
    assert_eq!(body, "anonymous");
    let (_, _, body) = get("/whoami", &fourth).await;
    assert_eq!(body, "5");
}

/// An account session for the "log out everywhere" pattern: the user's epoch at login.
#[derive(Session, Debug)]
#[session(cookie_name = "account", max_age = 600)]
pub struct Account {
    /// The logged-in user.
    pub user: Option<u64>,
    /// The user's epoch when this session logged in.
    pub epoch: u64,
}

/// The app's user table: each user's current epoch. Bumping it ends every session of the user.
type Epochs = Arc<std::sync::Mutex<std::collections::HashMap<u64, u64>>>;

fn epoch_of(epochs: &Epochs, user: u64) -> u64 {
    epochs.lock().unwrap().get(&user).copied().unwrap_or(0)
}

async fn account_login(
    mut s: TypedSession<Account>,
    Extension(epochs): Extension<Epochs>,
    Query(q): Query<User>,
) -> StatusCode {
    s.regenerate();
    s.set_user(Some(q.user));
    s.set_epoch(epoch_of(&epochs, q.user));
    StatusCode::NO_CONTENT
}

/// Every authenticated request checks the session's epoch against the user's.
async fn account_whoami(
    mut s: TypedSession<Account>,
    Extension(epochs): Extension<Epochs>,
) -> String {
    match *s.user() {
        Some(user) if *s.epoch() == epoch_of(&epochs, user) => user.to_string(),
        Some(_) => {
            s.invalidate();
            "revoked".to_owned()
        }
        None => "anonymous".to_owned(),
    }
}

async fn account_revoke_all(
    Extension(epochs): Extension<Epochs>,
    Query(q): Query<User>,
) -> StatusCode {
    *epochs.lock().unwrap().entry(q.user).or_default() += 1;
    StatusCode::NO_CONTENT
}

/// SECURITY.md item 33, "log out everywhere", as the documented app pattern (the library has
/// no notion of a user): the session keeps the user's epoch from login; bumping the epoch makes
/// every session of that user fail the check on its next request, on every store, cookie stores
/// included; other users and new logins are unaffected.
pub async fn revoke_all_of_a_users_sessions_by_epoch(h: &Harness) {
    let epochs = Epochs::default();
    let extra = Router::new()
        .route("/account/login", post(account_login))
        .route("/account/whoami", get(account_whoami))
        .route("/account/revoke-all", post(account_revoke_all))
        .layer(Extension(epochs));
    let app = |layer| app_with(layer, extra);
    let Fixture { server, .. } = h.start_with(test_config, app).await;
    let devices: Vec<_> = (0..3).map(|_| browser()).collect();
    let other = browser();
    for device in &devices {
        send(device.post(server.url("/account/login?user=1"))).await;
    }
    send(other.post(server.url("/account/login?user=2"))).await;
    for device in &devices {
        let (_, _, body) = send(device.get(server.url("/account/whoami"))).await;
        assert_eq!(body, "1");
    }
    send(raw_client().post(server.url("/account/revoke-all?user=1"))).await;
    for device in &devices {
        let (status, headers, body) = send(device.get(server.url("/account/whoami"))).await;
        assert_eq!((status, body.as_str()), (200, "revoked"));
        assert!(
            set_cookies(&headers)[0].contains("Max-Age=0"),
            "the revoked session's cookie is removed"
        );
        let (_, _, body) = send(device.get(server.url("/account/whoami"))).await;
        assert_eq!(body, "anonymous");
    }
    let (_, _, body) = send(other.get(server.url("/account/whoami"))).await;
    assert_eq!(body, "2", "another user's session is untouched");
    send(devices[0].post(server.url("/account/login?user=1"))).await;
    let (_, _, body) = send(devices[0].get(server.url("/account/whoami"))).await;
    assert_eq!(body, "1", "a new login works");
}

/// `invalidate` sends a removal cookie and, on server stores, deletes the record.
pub async fn invalidate_removes_record_and_cookie(h: &Harness) {
    let run = h.start().await;
    let c = raw_client();
    let (_, headers, _) = send(c.post(run.server.url("/login?user=9"))).await;
    let value = cookie_value(&headers, "suite").unwrap();
    let cookie = format!("suite={value}");
    let (_, headers, _) = send(c.post(run.server.url("/logout")).header("cookie", &cookie)).await;
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1);
    assert!(
        cookies[0].starts_with("suite=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970"),
        "{}",
        cookies[0]
    );
    assert!(cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax"));
    let (_, _, body) = send(c.get(run.server.url("/whoami")).header("cookie", &cookie)).await;
    match h.kind {
        StoreKind::Server => assert_eq!(body, "anonymous", "a replayed id must not come back"),
        // A cookie store cannot revoke a copied cookie before it expires (documented).
        StoreKind::Cookie => assert_eq!(body, "9"),
    }
    // A browser that honours the removal is logged out.
    let b = browser();
    send(b.post(run.server.url("/login?user=3"))).await;
    assert_eq!(get_text(&b, &run, "/whoami").await, "3");
    send(b.post(run.server.url("/logout"))).await;
    assert_eq!(get_text(&b, &run, "/whoami").await, "anonymous");
    assert_eq!(get_text(&b, &run, "/peek").await, "none");
}

/// Data written after `invalidate` goes to a new session.
pub async fn invalidate_then_write_starts_a_new_session(h: &Harness) {
    let b = browser();
    let run = h.start().await;
    send(b.post(run.server.url("/login?user=3"))).await;
    let (_, headers, _) = send(b.post(run.server.url("/logout-flash"))).await;
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        !cookies[0].contains("Max-Age=0"),
        "the new session replaces the removal"
    );
    assert_eq!(get_text(&b, &run, "/note").await, "bye");
    assert_eq!(get_text(&b, &run, "/whoami").await, "anonymous");
}

/// An optional extraction (`Option<TypedSession<_>>`) of a missing session creates nothing.
pub async fn peek_creates_nothing(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    let (_, headers, body) = send(c.get(run.server.url("/peek"))).await;
    assert_eq!(body, "none");
    assert!(set_cookies(&headers).is_empty());
    get_text(&c, &run, "/visit").await;
    assert_eq!(get_text(&c, &run, "/peek").await, "1");
}

/// Changes are saved on error statuses, redirects and streaming bodies.
pub async fn saved_for_every_response_kind(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    let (status, _, _) = send(c.get(run.server.url("/fail"))).await;
    assert_eq!(status, 422);
    assert_eq!(
        get_text(&c, &run, "/read").await,
        "1",
        "saved on an error status"
    );
    // The redirect is followed: /read shows the count that /redirect saved.
    assert_eq!(get_text(&c, &run, "/redirect").await, "2");
    let (status, _, body) = send(c.get(run.server.url("/stream"))).await;
    assert_eq!((status, body.as_str()), (200, "abc"));
    assert_eq!(
        get_text(&c, &run, "/read").await,
        "3",
        "saved on a streaming body"
    );
}

/// A cookie over 4096 bytes fails loudly and keeps the previous cookie; server stores take the
/// large value.
pub async fn oversized_cookie_is_refused(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    get_text(&c, &run, "/visit").await;
    let (status, headers, _) = send(c.get(run.server.url("/big"))).await;
    match h.kind {
        StoreKind::Cookie => {
            assert_eq!(status, 500, "a cookie over 4096 bytes must fail loudly");
            assert!(set_cookies(&headers).is_empty());
            assert_eq!(
                get_text(&c, &run, "/visit").await,
                "2",
                "the previous cookie still works"
            );
            let (status, _, body) = send(c.get(run.server.url("/save-big"))).await;
            assert_eq!(status, 400);
            assert!(body.contains("over the limit of 4096"), "{body}");
            assert_eq!(
                get_text(&c, &run, "/visit").await,
                "3",
                "handled save error: previous cookie kept"
            );
        }
        StoreKind::Server => {
            assert_eq!(status, 200);
            assert_eq!(get_text(&c, &run, "/note").await.len(), 5000);
        }
    }
}

/// `save()` inside the handler writes at once; the layer then has nothing left to write.
pub async fn explicit_save(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    let (_, headers, body) = send(c.get(run.server.url("/save"))).await;
    assert_eq!(body, "saved false");
    assert_eq!(set_cookies(&headers).len(), 1);
    assert_eq!(get_text(&c, &run, "/read").await, "1");
    get_text(&c, &run, "/save").await;
    assert_eq!(get_text(&c, &run, "/read").await, "2");
}

/// `is_new`, whether an id is issued, and `created`, which never changes.
pub async fn metadata(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    let now = u128::from(session_runtime::config::Clock::now_millis(&*run.clock));
    let fresh = get_text(&c, &run, "/meta").await;
    assert_eq!(fresh, format!("true false {now}"));
    get_text(&c, &run, "/visit").await;
    run.clock.advance(Duration::from_secs(10));
    get_text(&c, &run, "/visit").await;
    let server = h.kind == StoreKind::Server;
    assert_eq!(
        get_text(&c, &run, "/meta").await,
        format!("false {server} {now}"),
        "created never changes"
    );
}

/// Extracting the same session type twice in one handler is a 500 that says so.
pub async fn same_type_twice_is_rejected(h: &Harness) {
    let run = h.start().await;
    let (status, _, body) = send(browser().get(run.server.url("/twice"))).await;
    assert_eq!(status, 500);
    assert!(body.contains("already extracted"), "{body}");
}

/// A view (`#[session(view_of = Suite)]`) reads and writes the sessions of the type it views:
/// its writes keep the fields it does not declare, a session it creates is one the type reads
/// (the other fields at their defaults), and its changes and the type's interleave.
pub async fn a_view_shares_the_session_of_its_type(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    let (status, _, _) = send(c.post(run.server.url("/login?user=7"))).await;
    assert_eq!(status, 204);
    assert_eq!(get_text(&c, &run, "/visit").await, "1");
    assert_eq!(get_text(&c, &run, "/view/read").await, "1 false");
    assert_eq!(get_text(&c, &run, "/view/visit").await, "2");
    assert_eq!(get_text(&c, &run, "/visit").await, "3");
    assert_eq!(get_text(&c, &run, "/view/visit").await, "4");
    assert_eq!(get_text(&c, &run, "/read").await, "4");
    assert_eq!(
        get_text(&c, &run, "/whoami").await,
        "7",
        "the view's writes keep `user`, which it does not declare"
    );

    let fresh = browser();
    assert_eq!(get_text(&fresh, &run, "/view/read").await, "0 true");
    assert_eq!(get_text(&fresh, &run, "/view/visit").await, "1");
    assert_eq!(get_text(&fresh, &run, "/read").await, "1");
    assert_eq!(get_text(&fresh, &run, "/whoami").await, "anonymous");
}

/// `into_root` turns a view into the type it views: a new session is created whole, and a
/// stored one gets its other fields, with the view's changes carried over.
pub async fn a_view_turns_into_its_type(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    assert_eq!(get_text(&c, &run, "/view/fill").await, "1");
    assert_eq!(get_text(&c, &run, "/note").await, "filled");
    assert_eq!(get_text(&c, &run, "/whoami").await, "9");
    assert_eq!(get_text(&c, &run, "/view/fill").await, "2");
    assert_eq!(get_text(&c, &run, "/note").await, "filled");
    assert_eq!(
        get_text(&c, &run, "/view/widen").await,
        "3 filled Some(9)",
        "the view's bump carried over, and the other fields were loaded"
    );
    assert_eq!(get_text(&c, &run, "/note").await, "widened");
    assert_eq!(get_text(&c, &run, "/read").await, "3");
}

/// `into_root` keeps what the view left pending: a `regenerate` (new cookie, the old id gone on
/// server stores, the data kept), unsaved changes, and changes already saved with `save()`.
pub async fn a_view_turned_into_its_type_keeps_what_is_pending(h: &Harness) {
    let run = h.start().await;
    let c = raw_client();
    let with = |path: &str, value: &str| {
        c.get(run.server.url(path))
            .header("cookie", format!("suite={value}"))
    };
    let (_, headers, body) = send(c.get(run.server.url("/view/fill"))).await;
    assert_eq!(body, "1");
    let before = cookie_value(&headers, "suite").unwrap();
    let (status, headers, body) = send(with("/view/login", &before)).await;
    assert_eq!((status, body.as_str()), (200, "2 filled"));
    let after = cookie_value(&headers, "suite").unwrap();
    assert_ne!(
        before, after,
        "the regenerate left pending in the view was carried out"
    );
    for (path, expected) in [("/whoami", "5"), ("/note", "filled"), ("/read", "2")] {
        let (_, _, body) = send(with(path, &after)).await;
        assert_eq!(body, expected, "{path}");
    }
    if h.kind == StoreKind::Server {
        let (_, _, body) = send(with("/read", &before)).await;
        assert_eq!(body, "0", "the old id no longer loads");
    }
    let (_, headers, body) = send(with("/view/save-widen", &after)).await;
    assert_eq!(body, "3", "the whole type sees what the view saved");
    let latest = cookie_value(&headers, "suite").unwrap_or(after);
    let (_, _, body) = send(with("/note", &latest)).await;
    assert_eq!(body, "saved first");
    let (_, _, body) = send(with("/read", &latest)).await;
    assert_eq!(body, "3");
}

/// A view and the type it views write one cookie: one request cannot use both, and says so.
pub async fn a_view_and_its_type_in_one_request_are_rejected(h: &Harness) {
    let run = h.start().await;
    let (status, _, body) = send(browser().get(run.server.url("/view/and-type"))).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("already used in this request by another session type"),
        "{body}"
    );
}

/// On a server store, requests through a view and through the type it views take the same
/// per-session lock: concurrent increments of one field through both lose none.
pub async fn a_view_and_its_type_are_serialized_together(h: &Harness) {
    if h.kind != StoreKind::Server {
        return;
    }
    let run = h.start().await;
    let c = browser();
    assert_eq!(get_text(&c, &run, "/visit").await, "1");
    let requests = (0..40).map(|i| {
        let path = if i % 2 == 0 { "/visit" } else { "/view/visit" };
        let request = c.get(run.server.url(path));
        async move { send(request).await.0 }
    });
    for status in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200);
    }
    assert_eq!(get_text(&c, &run, "/read").await, "41");
}

/// A change made by a middleware before the handler is seen by the handler and saved.
pub async fn middleware_changes_reach_the_handler(h: &Harness) {
    let run = h.start().await;
    let c = browser();
    get_text(&c, &run, "/visit").await;
    assert_eq!(get_text(&c, &run, "/middleware").await, "101");
    assert_eq!(get_text(&c, &run, "/read").await, "101");
}

/// A cookie with an id the store never issued is not adopted: the response carries another value.
pub async fn unknown_id_is_never_adopted(h: &Harness) {
    let run = h.start().await;
    let planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (_, headers, _) = send(
        raw_client()
            .get(run.server.url("/visit"))
            .header("cookie", format!("suite={planted}")),
    )
    .await;
    let value = cookie_value(&headers, "suite").unwrap();
    assert_ne!(value, planted);
}

// ---------------------------------------------------------------------------------------------
// Two versions of one session under one cookie: a rolling deploy, where servers of the old and of
// the new release serve the same user. Every write is lossless: it writes the record as loaded,
// overlaid with the fields the handler changed.
// ---------------------------------------------------------------------------------------------

/// Version 1 of the versioned session.
#[derive(Session, Debug)]
#[session(cookie_name = "versioned", max_age = 600)]
struct V1 {
    visits: u64,
    level: u64,
}

/// Version 2: version 1 plus `theme`, which version 1 does not declare.
#[derive(Session, Debug)]
#[session(cookie_name = "versioned", max_age = 600)]
struct V2 {
    visits: u64,
    level: u64,
    theme: String,
}

/// Another version 2 that changed `level` to text: version 1 cannot decode what it stores there.
#[derive(Session, Debug)]
#[session(cookie_name = "versioned", max_age = 600)]
struct V2Text {
    visits: u64,
    level: String,
}

fn light() -> String {
    "light".to_owned()
}

/// Version 2 read with another default for `theme`, so a test tells a stored `theme` (even an
/// empty one) from an absent one.
#[derive(Session, Debug)]
#[session(cookie_name = "versioned", max_age = 600)]
struct V2Light {
    visits: u64,
    #[session(default = "light")]
    theme: String,
}

#[derive(Deserialize)]
struct Level<T> {
    level: T,
}

#[derive(Deserialize)]
struct Theme {
    theme: String,
}

fn v1_shown(s: &TypedSession<V1>) -> String {
    format!("{} {}", s.visits(), s.level())
}

async fn v1_show(s: TypedSession<V1>) -> String {
    v1_shown(&s)
}

async fn v1_bump(mut s: TypedSession<V1>) -> String {
    *s.visits_mut() += 1;
    v1_shown(&s)
}

async fn v1_level(mut s: TypedSession<V1>, Query(q): Query<Level<u64>>) -> String {
    s.set_level(q.level);
    v1_shown(&s)
}

async fn v1_replace(mut s: TypedSession<V1>) -> String {
    s.replace(V1 {
        visits: 10,
        level: 2,
    });
    v1_shown(&s)
}

async fn v1_login(mut s: TypedSession<V1>) -> String {
    s.regenerate();
    *s.visits_mut() += 1;
    v1_shown(&s)
}

async fn v1_logout(mut s: TypedSession<V1>) -> StatusCode {
    s.invalidate();
    StatusCode::NO_CONTENT
}

fn v2_shown(s: &TypedSession<V2>) -> String {
    format!("{} {} {:?}", s.visits(), s.level(), s.theme())
}

async fn v2_show(s: TypedSession<V2>) -> String {
    v2_shown(&s)
}

async fn v2_bump(mut s: TypedSession<V2>) -> String {
    *s.visits_mut() += 1;
    v2_shown(&s)
}

async fn v2_theme(mut s: TypedSession<V2>, Query(q): Query<Theme>) -> String {
    s.set_theme(q.theme);
    v2_shown(&s)
}

async fn v2_text_show(s: TypedSession<V2Text>) -> String {
    format!("{} {:?}", s.visits(), s.level())
}

async fn v2_text_level(mut s: TypedSession<V2Text>, Query(q): Query<Level<String>>) -> String {
    s.set_level(q.level);
    format!("{} {:?}", s.visits(), s.level())
}

async fn v2_light_show(s: TypedSession<V2Light>) -> String {
    format!("{} {:?}", s.visits(), s.theme())
}

/// The routes of every version of the versioned session, behind `layer`.
fn versioned_app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/v1/show", get(v1_show))
        .route("/v1/bump", get(v1_bump))
        .route("/v1/level", get(v1_level))
        .route("/v1/replace", get(v1_replace))
        .route("/v1/login", post(v1_login))
        .route("/v1/logout", post(v1_logout))
        .route("/v2/show", get(v2_show))
        .route("/v2/bump", get(v2_bump))
        .route("/v2/theme", get(v2_theme))
        .route("/v2-text/show", get(v2_text_show))
        .route("/v2-text/level", get(v2_text_level))
        .route("/v2-light/show", get(v2_light_show))
        .route("/v1-purge/bump", get(v1_purge_bump))
        .layer(layer)
}

/// A stored field that the session type does not declare survives every kind of write of that
/// type: version 2 stores `theme`, version 1 changes its own fields through `x_mut()`, `set_x()`
/// and `replace`, and version 2 still reads `theme` next to version 1's new values.
pub async fn undeclared_fields_survive_an_older_version(h: &Harness) {
    let run = h.start_with(test_config, versioned_app).await;
    let c = browser();
    assert_eq!(
        get_text(&c, &run, "/v2/theme?theme=dark").await,
        r#"0 0 "dark""#
    );
    assert_eq!(get_text(&c, &run, "/v1/bump").await, "1 0");
    assert_eq!(
        get_text(&c, &run, "/v2/show").await,
        r#"1 0 "dark""#,
        "a write through `visits_mut` keeps `theme`, which V1 does not declare"
    );
    assert_eq!(get_text(&c, &run, "/v1/level?level=4").await, "1 4");
    assert_eq!(
        get_text(&c, &run, "/v2/show").await,
        r#"1 4 "dark""#,
        "a write through `set_level` keeps `theme`"
    );
    assert_eq!(get_text(&c, &run, "/v1/replace").await, "10 2");
    assert_eq!(
        get_text(&c, &run, "/v2/show").await,
        r#"10 2 "dark""#,
        "`replace` changes every declared field and keeps `theme`"
    );
}

/// A stored value that does not decode into the declared field's type reads as the default and
/// is written back unchanged by a write that does not set that field; a write that sets it
/// replaces it.
pub async fn undecodable_values_survive_an_older_version(h: &Harness) {
    let run = h.start_with(test_config, versioned_app).await;
    let c = browser();
    assert_eq!(
        get_text(&c, &run, "/v2-text/level?level=gold").await,
        r#"0 "gold""#
    );
    assert_eq!(
        get_text(&c, &run, "/v1/show").await,
        "0 0",
        "`\"gold\"` is no u64: V1 reads its default"
    );
    assert_eq!(get_text(&c, &run, "/v1/bump").await, "1 0");
    assert_eq!(
        get_text(&c, &run, "/v2-text/show").await,
        r#"1 "gold""#,
        "V1 changed `visits` only: the `level` it could not decode is written back unchanged"
    );
    assert_eq!(get_text(&c, &run, "/v1/level?level=3").await, "1 3");
    assert_eq!(get_text(&c, &run, "/v1/show").await, "1 3");
    assert_eq!(
        get_text(&c, &run, "/v2-text/show").await,
        r#"1 """#,
        "V1 set `level`: its number replaced the text (and V2Text cannot decode a number)"
    );
}

/// A declared field that the loaded record lacks reads as its default and stays absent after a
/// write that does not set it: version 2 does not write its default `theme` into a record of
/// version 1.
pub async fn absent_declared_fields_stay_absent(h: &Harness) {
    let run = h.start_with(test_config, versioned_app).await;
    let c = browser();
    assert_eq!(get_text(&c, &run, "/v1/bump").await, "1 0");
    assert_eq!(get_text(&c, &run, "/v2-light/show").await, r#"1 "light""#);
    assert_eq!(get_text(&c, &run, "/v2/bump").await, r#"2 0 """#);
    assert_eq!(
        get_text(&c, &run, "/v2-light/show").await,
        r#"2 "light""#,
        "V2 did not set `theme`: it is still absent, not V2's default `\"\"`"
    );
    get_text(&c, &run, "/v2/theme?theme=").await;
    assert_eq!(
        get_text(&c, &run, "/v2-light/show").await,
        r#"2 """#,
        "a field the handler set is stored, even when it is set to its default"
    );
}

/// `regenerate` carries the whole record to the new id, fields the type does not declare
/// included; the old id no longer loads on server stores; `invalidate` deletes everything.
pub async fn regenerate_carries_undeclared_fields(h: &Harness) {
    let run = h.start_with(test_config, versioned_app).await;
    let c = raw_client();
    let with = |path: &str, value: &str| {
        c.get(run.server.url(path))
            .header("cookie", format!("versioned={value}"))
    };
    let (_, headers, _) = send(c.get(run.server.url("/v2/theme?theme=dark"))).await;
    let before = cookie_value(&headers, "versioned").unwrap();
    let (status, headers, body) = send(
        c.post(run.server.url("/v1/login"))
            .header("cookie", format!("versioned={before}")),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "1 0"));
    let after = cookie_value(&headers, "versioned").unwrap();
    assert_ne!(before, after);
    let (_, _, body) = send(with("/v2/show", &after)).await;
    assert_eq!(
        body, r#"1 0 "dark""#,
        "V1's regenerate carried `theme`, which it does not declare, to the new id"
    );
    if h.kind == StoreKind::Server {
        let (_, _, body) = send(with("/v2/show", &before)).await;
        assert_eq!(body, r#"0 0 """#, "the old id no longer loads");
    }
    let (status, headers, _) = send(
        c.post(run.server.url("/v1/logout"))
            .header("cookie", format!("versioned={after}")),
    )
    .await;
    assert_eq!(status, 204);
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].contains("Max-Age=0"), "{}", cookies[0]);
    if h.kind == StoreKind::Server {
        let (_, _, body) = send(with("/v2/show", &after)).await;
        assert_eq!(
            body, r#"0 0 """#,
            "V1's invalidate deleted the record, `theme` included"
        );
    }
}

/// Version 1 built to purge what it does not declare: its next save drops version 2's `theme`.
#[derive(Session, Debug)]
#[session(cookie_name = "versioned", max_age = 600, purge_undeclared)]
struct V1Purge {
    visits: u64,
    level: u64,
}

async fn v1_purge_bump(mut s: TypedSession<V1Purge>) -> String {
    *s.visits_mut() += 1;
    format!("{} {}", s.visits(), s.level())
}

/// With `#[session(purge_undeclared)]` a save drops the stored fields the type does not
/// declare, and keeps the ones it does.
pub async fn purge_undeclared_drops_what_the_type_does_not_declare(h: &Harness) {
    let run = h.start_with(test_config, versioned_app).await;
    let c = browser();
    get_text(&c, &run, "/v2/theme?theme=dark").await;
    get_text(&c, &run, "/v1/level?level=4").await;
    assert_eq!(
        get_text(&c, &run, "/v2/show").await,
        r#"0 4 "dark""#,
        "V1 keeps `theme`"
    );
    assert_eq!(get_text(&c, &run, "/v1-purge/bump").await, "1 4");
    assert_eq!(
        get_text(&c, &run, "/v2/show").await,
        r#"1 4 """#,
        "V1Purge's save dropped `theme`, which it does not declare"
    );
}

/// A periodic renewal (server stores) moves the whole record to the new id, fields the type
/// does not declare included: a renewal is a save of a loaded session that changes nothing.
/// Cookie stores have no id to renew; the session simply stays as it was.
pub async fn renewal_carries_undeclared_fields(h: &Harness) {
    let renewing = |clock: &_| {
        test_config(clock).with_renewal(Some((Duration::from_secs(300), Duration::from_secs(30))))
    };
    let Fixture { clock, server, .. } = h.start_with(renewing, versioned_app).await;
    let c = raw_client();
    let with = |path: &str, value: &str| {
        c.get(server.url(path))
            .header("cookie", format!("versioned={value}"))
    };
    let (_, headers, _) = send(c.get(server.url("/v2/theme?theme=dark"))).await;
    let first = cookie_value(&headers, "versioned").unwrap();
    clock.advance(Duration::from_secs(350));
    let (_, headers, body) = send(with("/v1/show", &first)).await;
    assert_eq!(body, "0 0");
    let renewed = cookie_value(&headers, "versioned");
    if h.kind == StoreKind::Server {
        assert!(
            renewed.as_ref().is_some_and(|second| *second != first),
            "a read past the period renews the id: {renewed:?}"
        );
    }
    let second = renewed.unwrap_or(first);
    let (_, _, body) = send(with("/v2/show", &second)).await;
    assert_eq!(
        body, r#"0 0 "dark""#,
        "V1's renewal carried `theme`, which it does not declare, to the new id"
    );
}

/// Expands to one test per suite case for a store.
#[macro_export]
macro_rules! store_suite {
    ($harness:expr) => {
        $crate::store_suite!(@cases $harness;
            counts_and_reads_without_writing, no_extraction_no_cookie, cookie_attributes,
            garbage_cookies_give_a_fresh_session, tampered_cookie_gives_a_fresh_session,
            idle_timeout, absolute_timeout, remember_me_is_persisted,
            rolling_touch_extends_without_rewriting, regenerate_changes_the_cookie_and_keeps_data,
            invalidate_removes_record_and_cookie, invalidate_then_write_starts_a_new_session,
            peek_creates_nothing, saved_for_every_response_kind, oversized_cookie_is_refused,
            explicit_save, metadata, same_type_twice_is_rejected,
            a_view_shares_the_session_of_its_type, a_view_and_its_type_in_one_request_are_rejected,
            a_view_turns_into_its_type, a_view_turned_into_its_type_keeps_what_is_pending,
            a_view_and_its_type_are_serialized_together,
            middleware_changes_reach_the_handler, unknown_id_is_never_adopted,
            renewal_moves_the_id_with_a_grace_period, revoke_all_of_a_users_sessions_by_epoch,
            undeclared_fields_survive_an_older_version, undecodable_values_survive_an_older_version,
            absent_declared_fields_stay_absent, regenerate_carries_undeclared_fields,
            renewal_carries_undeclared_fields,
            purge_undeclared_drops_what_the_type_does_not_declare);
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::suite::$case(&$harness).await;
            }
        )*
    };
}
