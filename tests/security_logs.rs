//! `tests/SECURITY.md` items 44 and 48 (sections G and H): everything the library logs, at
//! trace level, over a run of logins, visits, rotations, logouts, garbage, tampered, oversized
//! and failing saves on every store, holds no cookie value, session id or key material; the
//! plain cookie store warns once per construction. One test per binary: it installs the
//! process-wide subscriber.

#![allow(clippy::print_stdout, reason = "the test reports what it captured")]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request};
use session_runtime::SessionLayer;
use session_runtime::store::{
    EncryptedCookieStore, Key, MemoryStore, RedisStore, SimpleCookieStore,
};
use session_tests::redis::unique_prefix;
use session_tests::server::{TestClock, test_config};
use session_tests::suite::app;
use tower::ServiceExt as _;

/// Everything written by the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Sends a request; returns the status and the `suite` cookie it set, if any.
async fn call(
    router: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(
            "cookie",
            HeaderValue::from_str(&format!("suite={cookie}")).unwrap(),
        );
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let set = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix("suite=")?
                .split(';')
                .next()
                .map(str::to_owned)
        })
        .filter(|v| !v.is_empty());
    (response.status().as_u16(), set)
}

/// Drives one app through everything that logs; returns every cookie value it was given.
async fn scenario(router: &Router) -> Vec<String> {
    let mut issued = Vec::new();
    let (status, first) = call(router, "GET", "/visit", None).await;
    assert_eq!(status, 200);
    let mut current = first.unwrap();
    issued.push(current.clone());
    for (method, path) in [
        ("GET", "/visit"),
        ("POST", "/login?user=7"),
        ("GET", "/remember"),
        ("GET", "/big"),
        ("GET", "/save-big"),
        ("GET", "/twice"),
        ("GET", "/read"),
    ] {
        let (_, set) = call(router, method, path, Some(&current)).await;
        if let Some(set) = set {
            issued.push(set.clone());
            current = set;
        }
    }
    let mut tampered = current.clone().into_bytes();
    tampered[current.len() / 2] = if tampered[current.len() / 2] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).unwrap();
    for garbage in [
        tampered.as_str(),
        "garbage",
        &"A".repeat(5000),
        &"B".repeat(43),
    ] {
        call(router, "GET", "/read", Some(garbage)).await;
    }
    let (_, removal) = call(router, "POST", "/logout", Some(&current)).await;
    assert!(removal.is_none());
    call(router, "GET", "/read", Some(&current)).await;
    issued
}

/// Id renewal on a server store (the layer renews every 300 s with 30 s of grace): renewed,
/// followed within the grace period, refused after. Returns both ids.
async fn renewal(router: &Router, clock: &TestClock) -> Vec<String> {
    let (_, old) = call(router, "GET", "/visit", None).await;
    let old = old.unwrap();
    clock.advance(Duration::from_secs(301));
    let (_, new) = call(router, "GET", "/read", Some(&old)).await;
    let new = new.expect("renewed");
    let (_, moved) = call(router, "GET", "/read", Some(&old)).await;
    assert_eq!(moved.as_ref(), Some(&new), "moved within the grace period");
    clock.advance(Duration::from_secs(31));
    call(router, "GET", "/read", Some(&old)).await;
    vec![old, new]
}

#[tokio::test]
async fn logs_hold_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let clock = TestClock::new();
    let key_bytes = [0x5e; 32];
    let old_key_bytes = [0x6f; 32];
    let mut issued = Vec::new();
    let before = captured.text().matches("use it for tests only").count();
    let simple = SimpleCookieStore::new();
    assert_eq!(
        captured.text().matches("use it for tests only").count(),
        before + 1,
        "one warning per plain store"
    );
    let url = session_tests::redis::server().await.url().to_owned();
    let redis = RedisStore::builder()
        .key_prefix(unique_prefix("logs"))
        .connect(&url)
        .await
        .unwrap();
    let old = EncryptedCookieStore::new(Key::from_bytes(1, &old_key_bytes).unwrap());
    let rotated = EncryptedCookieStore::new(Key::from_bytes(2, &key_bytes).unwrap())
        .with_fallback_key(Key::from_bytes(1, &old_key_bytes).unwrap())
        .unwrap();
    let layers = [
        SessionLayer::new(MemoryStore::new()),
        SessionLayer::new(simple),
        SessionLayer::new(old),
        SessionLayer::new(rotated),
        SessionLayer::new(redis),
    ];
    let routers: Vec<Router> = layers
        .into_iter()
        .map(|layer| {
            app(layer.with_config(
                test_config(&clock)
                    .with_renewal(Some((Duration::from_secs(300), Duration::from_secs(30)))),
            ))
        })
        .collect();
    for router in &routers {
        issued.extend(scenario(router).await);
    }
    for router in [&routers[0], &routers[4]] {
        issued.extend(renewal(router, &clock).await);
    }
    // A cookie sealed with the old key, read through the rotated ring: re-sealed.
    let (_, old_cookie) = call(&routers[2], "GET", "/visit", None).await;
    let old_cookie = old_cookie.unwrap();
    issued.push(old_cookie.clone());
    let (_, resealed) = call(&routers[3], "GET", "/read", Some(&old_cookie)).await;
    issued.push(resealed.expect("re-sealed with the primary key"));

    let logs = captured.text();
    let mut secrets: Vec<String> = issued.clone();
    for bytes in [key_bytes, old_key_bytes] {
        secrets.push(common_b64(&bytes));
        secrets.push(
            format!("{:?}", &bytes[..4])
                .trim_end_matches(']')
                .to_owned(),
        );
        secrets.push(format!(
            "{:02x}{:02x}{:02x}{:02x}",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs hold {secret:.20}…"
        );
    }
    for expected in [
        "session cookie does not open",
        "over the size limit",
        "failed to save session",
        "already extracted",
        "past its grace period",
    ] {
        assert!(logs.contains(expected), "nothing logged about {expected:?}");
    }
    println!(
        "{} log lines, {} cookie values and 2 keys checked: none in the logs",
        logs.lines().count(),
        issued.len()
    );
}

fn common_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(
                ALPHABET[usize::try_from((n >> (18 - 6 * i)) & 63).unwrap()],
            ));
        }
    }
    // The first 40 characters: the same in standard and URL-safe base64 for these bytes.
    out.truncate(40);
    out
}
