//! Cross-server tests of the `aiohttp-compat` stores against the real Python `aiohttp_session`
//! 2.12.1: the Python app `tests/aiohttp/app.py` and the Rust `migrate` example
//! (`session_examples::migrate`) run side by side on 127.0.0.1, share one cookie jar (cookies
//! are per host, not per port) and one Redis, and hand each session back and forth, for each of
//! the three formats: the plain JSON cookie, the Fernet cookie and Redis.
//!
//! Python comes from the virtual environment `cargo xtask venv` creates (`$AIOHTTP_VENV`, else
//! `target/aiohttp-venv`). Without it these tests fail and say how to create it: they are never
//! skipped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use session_examples::migrate::{Format, layer, routes};
use session_runtime::config::SessionConfig;
use session_runtime::store::CookieQuoting;
use session_tests::server::{TestClock, TestServer, test_config};

/// The Fernet key both servers use: `urlsafe_b64encode(b"Thirty  two  length  bytes  key.")`,
/// the key of aiohttp_session's docs.
const FERNET_KEY: &str = "VGhpcnR5ICB0d28gIGxlbmd0aCAgYnl0ZXMgIGtleS4=";
const COOKIE_NAME: &str = "AIOHTTP_SESSION";
/// Unicode, quotes, a backslash and the characters Python's cookie quoting escapes (`;`, `,`).
const NAME_PY: &str = "Zoë 🌍 \"quoted\"; semi, comma \\ back — 日本語";
const NAME_RS: &str = "Ωmega ✓ {json: [1]} \u{1F600}";

// ---------------------------------------------------------------------------------------------
// The Python server
// ---------------------------------------------------------------------------------------------

/// The `python3` of the test venv, or a panic that says how to create it.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("AIOHTTP_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/aiohttp-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin").join("python3");
    assert!(
        python.is_file(),
        "no Python venv with aiohttp_session at {}: create it with `cargo xtask venv` (it installs \
         aiohttp-session 2.12.1, aiohttp, cryptography and redis from PyPI into target/aiohttp-venv), \
         or point AIOHTTP_VENV at one. The aiohttp_session cross-server tests are never skipped.",
        venv.display()
    );
    python
}

/// `tests/aiohttp/app.py` running on a free loopback port. It exits when its stdin closes, so it
/// never outlives this process; dropping the handle stops it at once.
struct PythonApp {
    child: Child,
    port: u16,
}

impl PythonApp {
    fn start(format: Format, max_age: u64, redis_url: &str) -> Self {
        let store = match format {
            Format::Simple => "simple",
            Format::Encrypted => "encrypted",
            Format::Redis => "redis",
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("aiohttp/app.py");
        let mut child = Command::new(venv_python())
            .arg(&script)
            .args(["--store", store, "--max-age", &max_age.to_string()])
            .args(["--redis-url", redis_url])
            .env("AIOHTTP_FERNET_KEY", FERNET_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!(
                "the aiohttp app did not start (exit status {status:?}, stdout {line:?}); see its \
                 stderr above; recreate the venv with `cargo xtask venv` if imports fail"
            );
        };
        Self { child, port }
    }
}

impl Drop for PythonApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Both servers and one browser
// ---------------------------------------------------------------------------------------------

/// The Python app and the Rust example, same format, same `max_age`, same key, same Redis, and a
/// client that keeps cookies like a browser.
struct Pair {
    format: Format,
    python: PythonApp,
    rust: TestServer,
    jar: Arc<Jar>,
    client: reqwest::Client,
    redis: Option<redis::Client>,
}

#[derive(Clone, Copy)]
enum Side {
    Python,
    Rust,
}

impl Pair {
    async fn start(format: Format, max_age: u64) -> Self {
        let (redis_url, redis) = if format == Format::Redis {
            let server = session_tests::redis::server().await;
            (server.url().to_owned(), Some(server.client()))
        } else {
            (session_tests::redis::DEFAULT_URL.to_owned(), None)
        };
        let python = PythonApp::start(format, max_age, &redis_url);
        let config = SessionConfig::default().with_secure(false);
        let layer = layer(
            format,
            FERNET_KEY,
            &redis_url,
            Duration::from_secs(max_age),
            config,
        )
        .await
        .unwrap();
        let rust = TestServer::start(routes().layer(layer)).await;
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .build()
            .unwrap();
        Self {
            format,
            python,
            rust,
            jar,
            client,
            redis,
        }
    }

    fn url(&self, side: Side, path: &str) -> String {
        match side {
            Side::Python => format!("http://127.0.0.1:{}{path}", self.python.port),
            Side::Rust => self.rust.url(path),
        }
    }

    async fn get(&self, side: Side, path: &str) -> String {
        let response = self.client.get(self.url(side, path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    async fn post(&self, side: Side, path: &str, body: &str) {
        let response = self
            .client
            .post(self.url(side, path))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "POST {path}");
    }

    async fn show(&self, side: Side) -> Value {
        serde_json::from_str(&self.get(side, "/show").await).unwrap()
    }

    /// The whole session dict as Python sees it (`GET /dump`, Python only), which must be a
    /// stored session.
    async fn dump(&self) -> Value {
        let dumped: Value = serde_json::from_str(&self.get(Side::Python, "/dump").await).unwrap();
        assert_eq!(dumped["new"], false, "{dumped}");
        dumped["session"].clone()
    }

    /// The session cookie's value in the jar, as the browser sends it (quotes included).
    fn cookie(&self) -> Option<String> {
        // Either server's URL: cookies are not port-specific.
        let url = self.url(Side::Python, "/").parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == COOKIE_NAME).then(|| value.to_owned())
        })
    }

    /// Sends `/show` with an explicit cookie value (a replayed cookie), bypassing the jar.
    async fn show_with(&self, side: Side, cookie: &str) -> (Value, Option<String>) {
        let response = reqwest::Client::new()
            .get(self.url(side, "/show"))
            .header(COOKIE, format!("{COOKIE_NAME}={cookie}"))
            .send()
            .await
            .unwrap();
        let set = set_cookie_value(response.headers());
        (
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
            set,
        )
    }

    /// Posts without any cookie (a new visitor) and returns the session cookie set.
    async fn post_fresh(&self, side: Side, path: &str, body: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url(side, path))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "POST {path}");
        set_cookie_value(response.headers()).expect("a new session sets a cookie")
    }

    /// Sends `/visit` with an explicit cookie value and returns the `Set-Cookie` value.
    async fn visit_with(&self, side: Side, cookie: &str) -> Option<String> {
        let response = reqwest::Client::new()
            .get(self.url(side, "/visit"))
            .header(COOKIE, format!("{COOKIE_NAME}={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        set_cookie_value(response.headers())
    }

    async fn redis_get(&self, id: &str) -> Option<String> {
        let mut conn = self.redis().await;
        conn.get(format!("{COOKIE_NAME}_{id}")).await.unwrap()
    }

    async fn redis_ttl(&self, id: &str) -> i64 {
        let mut conn = self.redis().await;
        conn.ttl(format!("{COOKIE_NAME}_{id}")).await.unwrap()
    }

    async fn redis(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .as_ref()
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Checks that a cookie value has the format aiohttp_session writes, whichever server wrote
    /// it, and returns what it carries: the envelope (simple), the token (encrypted), the id
    /// (Redis).
    async fn check_format(&self, cookie: &str, max_age: u64) -> String {
        match self.format {
            Format::Simple => {
                // `"{\"created\": 1795462873\054 \"session\": {...}}"`
                assert!(cookie.starts_with(r#""{\"created\": "#), "{cookie}");
                assert!(cookie.contains(r#"\054 \"session\": {"#), "{cookie}");
                assert!(cookie.is_ascii() && !cookie.contains(';'), "{cookie}");
                let envelope = CookieQuoting::Python.unquote(cookie).into_owned();
                check_envelope(&envelope);
                envelope
            }
            Format::Encrypted => {
                let token = CookieQuoting::Python.unquote(cookie).into_owned();
                assert!(token.starts_with("gAAAAA"), "{cookie}");
                // Padded tokens are quoted, as `http.cookies` quotes `=`.
                assert_eq!(token.ends_with('='), cookie.starts_with('"'), "{cookie}");
                token
            }
            Format::Redis => {
                assert_eq!(cookie.len(), 32, "{cookie}");
                assert!(
                    cookie
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{cookie}"
                );
                let stored = self.redis_get(cookie).await.unwrap();
                check_envelope(&stored);
                let ttl = self.redis_ttl(cookie).await;
                assert!(
                    ttl > 0 && ttl <= i64::try_from(max_age).unwrap(),
                    "TTL {ttl}"
                );
                cookie.to_owned()
            }
        }
    }
}

/// The `Set-Cookie` value of the session cookie in a response, if any.
fn set_cookie_value(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|header| {
        let header = header.to_str().unwrap();
        let (name, rest) = header.split_once('=')?;
        (name == COOKIE_NAME).then(|| rest.split(';').next().unwrap_or_default().to_owned())
    })
}

/// Checks a JSON envelope: `{"created": <now, whole seconds>, "session": {...}}`, ASCII only.
fn check_envelope(text: &str) {
    assert!(text.starts_with(r#"{"created": "#), "{text}");
    assert!(text.is_ascii(), "non-ASCII JSON: {text}");
    let envelope: Value = serde_json::from_str(text).unwrap();
    let created = envelope["created"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(created <= now && now - created < 60, "created {created}");
    assert!(envelope["session"].is_object(), "{text}");
}

fn shown(new: bool, visits: u64, name: &str, profile: &Value, user: Option<u64>) -> Value {
    json!({"new": new, "visits": visits, "userName": name, "profile": profile, "user": user})
}

fn empty_profile() -> Value {
    json!({"lang": "", "tags": [], "address": null})
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

/// A session written by Python is read and changed by Rust and read back by Python; login
/// (regenerate) on Rust; invalidation on either side is seen by the other.
async fn round_trip(format: Format) {
    let pair = Pair::start(format, 3600).await;
    let profile_py = json!({
        "lang": "de-CH",
        "tags": ["ä", "b\"c", "🦀"],
        "address": {"city": "Zürich", "zip": "8001"},
    });
    let profile_rs = json!({
        "lang": "ja",
        "tags": ["日本", ";,\\"],
        "address": {"city": "東京", "zip": "100-0001"},
    });

    // Python writes a session.
    assert_eq!(pair.get(Side::Python, "/visit").await, "1");
    pair.post(Side::Python, "/name", NAME_PY).await;
    pair.post(Side::Python, "/profile", &profile_py.to_string())
        .await;
    let written_by_python = pair.cookie().expect("Python set a cookie");
    let python_value = pair.check_format(&written_by_python, 3600).await;

    // Rust reads it, with unicode strings and nested values intact, and changes it.
    assert_eq!(
        pair.show(Side::Rust).await,
        shown(false, 1, NAME_PY, &profile_py, None)
    );
    assert_eq!(pair.get(Side::Rust, "/visit").await, "2");
    pair.post(Side::Rust, "/name", NAME_RS).await;
    pair.post(Side::Rust, "/profile", &profile_rs.to_string())
        .await;
    let written_by_rust = pair.cookie().expect("Rust kept a cookie");
    let rust_value = pair.check_format(&written_by_rust, 3600).await;
    if format == Format::Redis {
        assert_eq!(rust_value, python_value, "an update keeps the id");
    } else {
        assert_ne!(rust_value, python_value, "Rust rewrote the cookie");
    }

    // Python reads Rust's changes, changes the session again, and Rust sees that too.
    assert_eq!(
        pair.show(Side::Python).await,
        shown(false, 2, NAME_RS, &profile_rs, None)
    );
    assert_eq!(pair.get(Side::Python, "/visit").await, "3");
    assert_eq!(
        pair.show(Side::Rust).await,
        shown(false, 3, NAME_RS, &profile_rs, None)
    );

    // Login on Rust regenerates the session and keeps the data; Python follows.
    let before_login = pair.check_format(&pair.cookie().unwrap(), 3600).await;
    pair.post(Side::Rust, "/login?user=7", "").await;
    let after_login = pair.check_format(&pair.cookie().unwrap(), 3600).await;
    assert_ne!(after_login, before_login);
    if format == Format::Redis {
        assert_eq!(pair.redis_get(&before_login).await, None, "old key deleted");
    }
    assert_eq!(
        pair.show(Side::Python).await,
        shown(false, 3, NAME_RS, &profile_rs, Some(7))
    );

    // Python invalidates: Rust sees a new, empty session.
    let before_logout = pair.cookie().unwrap();
    pair.post(Side::Python, "/logout", "").await;
    match format {
        // SimpleCookieStorage writes `{}` instead of deleting the cookie.
        Format::Simple => assert_eq!(pair.cookie().as_deref(), Some(r#""{}""#)),
        Format::Encrypted | Format::Redis => assert_eq!(pair.cookie(), None),
    }
    assert_eq!(
        pair.show(Side::Rust).await,
        shown(true, 0, "", &empty_profile(), None)
    );
    if format == Format::Redis {
        // Python left `{}` under the old id: to Rust that is invalidated, never adopted, and
        // the next save gets a fresh id.
        assert_eq!(pair.redis_get(&before_logout).await.as_deref(), Some("{}"));
        let (replayed, _) = pair.show_with(Side::Rust, &before_logout).await;
        assert_eq!(replayed, shown(true, 0, "", &empty_profile(), None));
        let fresh = pair
            .visit_with(Side::Rust, &before_logout)
            .await
            .expect("a new session gets a cookie");
        assert_ne!(fresh, before_logout, "fresh id after `{{}}`");
        pair.check_format(&fresh, 3600).await;
        assert_eq!(
            pair.redis_get(&before_logout).await.as_deref(),
            Some("{}"),
            "the invalidated record is not resurrected"
        );
    }

    // A fresh session written by Rust is read by Python.
    assert_eq!(pair.get(Side::Rust, "/visit").await, "1");
    pair.check_format(&pair.cookie().unwrap(), 3600).await;
    assert_eq!(
        pair.show(Side::Python).await,
        shown(false, 1, "", &empty_profile(), None)
    );

    // Rust invalidates: the cookie is removed and Python sees a new session.
    let before_logout = pair.cookie().unwrap();
    pair.post(Side::Rust, "/logout", "").await;
    assert_eq!(pair.cookie(), None, "removal cookie");
    assert_eq!(
        pair.show(Side::Python).await,
        shown(true, 0, "", &empty_profile(), None)
    );
    if format == Format::Redis {
        assert_eq!(pair.redis_get(&before_logout).await, None, "record deleted");
        // A replayed cookie is not adopted by Python either: it issues a fresh id.
        let fresh = pair.visit_with(Side::Python, &before_logout).await.unwrap();
        assert_ne!(fresh, before_logout);
    }
}

/// Sessions expire on the other server after `max_age`, measured as aiohttp_session measures
/// it: from `created`, the time of the **last write**, whichever server wrote it (and the Fernet
/// and Redis TTLs agree). Cookies are replayed by hand because the jar drops them at their
/// `Max-Age`.
///
/// `created` has whole seconds, so the timings keep a second of margin (`max_age` is 5 s): at
/// `t0` four sessions are written; at `t0 + 3 s` two of them are written again by the *other*
/// server; at `t0 + 6.2 s` (more than `max_age + 1` after `t0`, less than `max_age - 1` after
/// the rewrite) the untouched ones have expired on the other server and the rewritten ones have
/// not.
async fn expiry(format: Format) {
    const MAX_AGE: u64 = 5;
    let pair = Pair::start(format, MAX_AGE).await;
    let from_python = pair.post_fresh(Side::Python, "/name", NAME_PY).await;
    pair.check_format(&from_python, MAX_AGE).await;
    let from_rust = pair.post_fresh(Side::Rust, "/name", NAME_RS).await;
    pair.check_format(&from_rust, MAX_AGE).await;
    let slide_python = pair.post_fresh(Side::Python, "/name", "slide py").await;
    let slide_rust = pair.post_fresh(Side::Rust, "/name", "slide rs").await;

    // Within max_age each side reads the other's session.
    let (shown_rs, _) = pair.show_with(Side::Rust, &from_python).await;
    assert_eq!(shown_rs["userName"], NAME_PY);
    let (shown_py, _) = pair.show_with(Side::Python, &from_rust).await;
    assert_eq!(shown_py["userName"], NAME_RS);

    tokio::time::sleep(Duration::from_secs(3)).await;
    // Each server writes to a session the other one wrote: that moves `created` for both.
    let slide_python = pair
        .visit_with(Side::Rust, &slide_python)
        .await
        .expect("a write sets the cookie");
    let slide_rust = pair
        .visit_with(Side::Python, &slide_rust)
        .await
        .expect("a write sets the cookie");
    tokio::time::sleep(Duration::from_millis(3200)).await;

    // Sessions last written more than max_age ago are gone on the other server.
    let (shown_rs, _) = pair.show_with(Side::Rust, &from_python).await;
    assert_eq!(shown_rs, shown(true, 0, "", &empty_profile(), None));
    let (shown_py, _) = pair.show_with(Side::Python, &from_rust).await;
    assert_eq!(shown_py["userName"], "", "{shown_py}");
    assert_eq!(shown_py["visits"], 0, "{shown_py}");
    if format != Format::Simple {
        // SimpleCookieStorage keeps an expired session "not new" with empty data (its X12);
        // the Fernet TTL and the Redis TTL make it new.
        assert_eq!(shown_py["new"], true, "{shown_py}");
    }
    // Sessions written again since are alive on the server that did not write them last.
    let (shown_py, _) = pair.show_with(Side::Python, &slide_python).await;
    assert_eq!(
        shown_py,
        shown(false, 1, "slide py", &empty_profile(), None)
    );
    let (shown_rs, _) = pair.show_with(Side::Rust, &slide_rust).await;
    assert_eq!(
        shown_rs,
        shown(false, 1, "slide rs", &empty_profile(), None)
    );
}

/// Python keeps keys that the Rust struct does not declare: top-level ones (a list of dicts, a
/// string with non-ASCII text, a nested dict, a null) and one inside a declared field's value
/// (`profile.theme`, which the example's `Profile` keeps in its flattened `extra`). Rust writes
/// another field, changes `profile` in place, logs in (regenerate) and Python reads every key
/// unchanged each time; no key appears that neither side set (Rust does not add the declared
/// fields the session lacks, `userName` and `user`, until it sets one). Rust's logout removes
/// everything.
async fn undeclared_keys(format: Format) {
    let pair = Pair::start(format, 3600).await;
    let mut session = json!({
        "visits": 1,
        "profile": {"lang": "de-CH", "tags": ["ä"], "address": null, "theme": "dark"},
        "cart": [{"sku": "A-1", "qty": 2, "price": 9.5}, {"sku": "B-2", "qty": 1, "price": 0.25}],
        "csrf": "tök-🌍-\"q\"",
        "prefs": {"nested": {"deep": [1, -2.5, "x", null, true]}, "empty": {}},
        "flag": null,
    });
    pair.post(Side::Python, "/update", &session.to_string())
        .await;
    pair.check_format(&pair.cookie().expect("Python set a cookie"), 3600)
        .await;
    assert_eq!(pair.dump().await, session);

    // Rust writes `visits` only.
    assert_eq!(pair.get(Side::Rust, "/visit").await, "2");
    pair.check_format(&pair.cookie().unwrap(), 3600).await;
    session["visits"] = json!(2);
    assert_eq!(
        pair.dump().await,
        session,
        "Rust kept the keys it does not declare and added none"
    );

    // Rust changes `profile` in place: `theme` rides along in `Profile::extra`.
    assert_eq!(pair.show(Side::Rust).await["profile"], session["profile"]);
    pair.post(Side::Rust, "/lang", "fr").await;
    pair.check_format(&pair.cookie().unwrap(), 3600).await;
    session["profile"]["lang"] = json!("fr");
    assert_eq!(
        pair.dump().await,
        session,
        "Rust kept `profile.theme` when it changed `profile`"
    );

    // Login on Rust regenerates the session: everything moves to the new one.
    let before_login = pair.check_format(&pair.cookie().unwrap(), 3600).await;
    pair.post(Side::Rust, "/login?user=7", "").await;
    let after_login = pair.check_format(&pair.cookie().unwrap(), 3600).await;
    assert_ne!(after_login, before_login);
    session["user"] = json!(7);
    assert_eq!(
        pair.dump().await,
        session,
        "Rust's regenerate carried every key to the new session"
    );

    // Logout on Rust removes everything.
    pair.post(Side::Rust, "/logout", "").await;
    assert_eq!(pair.cookie(), None, "removal cookie");
    let dumped: Value = serde_json::from_str(&pair.get(Side::Python, "/dump").await).unwrap();
    assert_eq!(dumped, json!({"new": true, "session": {}}));
    if format == Format::Redis {
        assert_eq!(pair.redis_get(&after_login).await, None, "record deleted");
    }
}

#[tokio::test]
async fn simple_cookie_undeclared_keys() {
    undeclared_keys(Format::Simple).await;
}

#[tokio::test]
async fn encrypted_cookie_undeclared_keys() {
    undeclared_keys(Format::Encrypted).await;
}

#[tokio::test]
async fn redis_undeclared_keys() {
    undeclared_keys(Format::Redis).await;
}

#[tokio::test]
async fn simple_cookie_round_trip() {
    round_trip(Format::Simple).await;
}

#[tokio::test]
async fn encrypted_cookie_round_trip() {
    round_trip(Format::Encrypted).await;
}

#[tokio::test]
async fn redis_round_trip() {
    round_trip(Format::Redis).await;
}

#[tokio::test]
async fn simple_cookie_expiry() {
    expiry(Format::Simple).await;
}

#[tokio::test]
async fn encrypted_cookie_expiry() {
    expiry(Format::Encrypted).await;
}

#[tokio::test]
async fn redis_expiry() {
    expiry(Format::Redis).await;
}

/// With rolling expiry, a touch on a whole-record store rewrites the whole envelope with a new
/// `created` (aiohttp_session's idle timer), never an envelope without the fields. Rust only:
/// the clock is moved by hand.
#[tokio::test]
async fn rolling_touch_rewrites_the_whole_record() {
    let redis = session_tests::redis::server().await;
    let clock = TestClock::new();
    let config = test_config(&clock).with_rolling(Some(Duration::from_secs(60)));
    let layer = layer(
        Format::Redis,
        FERNET_KEY,
        redis.url(),
        Duration::from_secs(3600),
        config,
    )
    .await
    .unwrap();
    let rust = TestServer::start(routes().layer(layer)).await;
    let client = reqwest::Client::new();
    let response = client
        .post(rust.url("/name"))
        .body(NAME_RS)
        .send()
        .await
        .unwrap();
    let id = set_cookie_value(response.headers()).unwrap();
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{COOKIE_NAME}_{id}");
    let stored = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let before = stored(conn.get(&key).await.unwrap());

    clock.advance(Duration::from_secs(120));
    let response = client
        .get(rust.url("/show"))
        .header(COOKIE, format!("{COOKIE_NAME}={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(set_cookie_value(response.headers()).as_deref(), Some(&*id));
    let after = stored(conn.get(&key).await.unwrap());
    assert_eq!(
        after["created"].as_u64().unwrap(),
        before["created"].as_u64().unwrap() + 120
    );
    assert_eq!(after["session"], before["session"]);
    assert_eq!(after["session"]["userName"], NAME_RS);
}
