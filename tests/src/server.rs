//! A clock tests can move, a real axum server on loopback and real HTTP clients, one that keeps
//! cookies like a browser and one that keeps nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use reqwest::header::{HeaderMap, SET_COOKIE};
use session_runtime::config::{Clock, SessionConfig, SystemClock};

/// A clock that only moves when told to. Starts at the real time, so expiries sent to a real
/// Redis (`PEXPIREAT`) lie in the future.
#[derive(Debug)]
pub struct TestClock(AtomicU64);

impl TestClock {
    /// A clock set to the current time, shared so that the session configuration and the test
    /// can both hold it.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(SystemClock.now_millis())))
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Panics
    ///
    /// If `by` does not fit in `u64` milliseconds.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(u64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The configuration tests use: plain HTTP on loopback, so no `Secure` (a cookie-keeping client
/// would not send a `Secure` cookie over `http://`), and a movable clock.
#[must_use]
pub fn test_config(clock: &Arc<TestClock>) -> SessionConfig {
    SessionConfig::default()
        .with_secure(false)
        .with_clock(clock.clone())
}

/// A real axum server on 127.0.0.1 with a random port, stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    /// The address the server listens on.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Binds a free loopback port and serves `app` on it from a spawned task.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, task }
    }

    /// The URL of `path` (which starts with `/`) on this server.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client that keeps cookies like a browser.
///
/// # Panics
///
/// If the client cannot be built (no TLS backend is needed for `http://`).
#[must_use]
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A client that keeps nothing: the test controls every `Cookie` header.
///
/// # Panics
///
/// If the client cannot be built.
#[must_use]
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The `Set-Cookie` headers of a response.
///
/// # Panics
///
/// If a header is not visible ASCII.
#[must_use]
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value of the cookie `name` set by a response, if any.
///
/// # Panics
///
/// If a `Set-Cookie` header is not visible ASCII.
#[must_use]
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).into_iter().find_map(|header| {
        let first = header.split(';').next()?;
        let (key, value) = first.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// Sends a request and returns status, headers and body.
///
/// # Panics
///
/// If the request fails or the body is not UTF-8.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, HeaderMap, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    (status, headers, body)
}
