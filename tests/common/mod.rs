//! Shared test support: a clock tests can move, a real axum server on loopback and a real HTTP
//! client that keeps cookies.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part of this module"
)]

pub mod store_suite;

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
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(SystemClock.now_millis())))
    }

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
pub fn test_config(clock: &Arc<TestClock>) -> SessionConfig {
    SessionConfig::default()
        .with_secure(false)
        .with_clock(clock.clone())
}

/// A real axum server on 127.0.0.1 with a random port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, task }
    }

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
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A client that keeps nothing: the test controls every `Cookie` header.
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value of the cookie `name` set by a response, if any.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).into_iter().find_map(|header| {
        let first = header.split(';').next()?;
        let (key, value) = first.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// Sends a request and returns status, headers and body.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, HeaderMap, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    (status, headers, body)
}
