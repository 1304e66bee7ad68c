//! End to end in a real browser: headless Chromium, driven through chromedriver (W3C `WebDriver`,
//! a small JSON client over reqwest), against the counter example's routes and layer. Log in,
//! check `/whoami`, log out, and check that the browser really dropped the cookie: with the
//! plain `counter` cookie (`--insecure`) and with a `__Host-counter` cookie over
//! `http://localhost`, which Chromium treats as a secure context.
//!
//! Needs `chromium` and `chromium-driver` (Debian: `apt-get install -y chromium
//! chromium-driver`); `CHROMIUM` and `CHROMEDRIVER` override the binaries' paths. A missing
//! browser fails the test: it is never skipped.

#![allow(clippy::print_stdout, reason = "the test reports what the browser saw")]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_examples::{CookieName, StoreChoice};
use session_runtime::config::SessionConfig;
use session_tests::server::TestServer;

fn binary(variable: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} not found (looked for {candidates:?}; set {variable}); install it with `apt-get install -y chromium chromium-driver`",
                candidates[0]
            )
        })
}

/// A chromedriver process and one browser session, both ended on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: TempDir,
}

/// A directory removed on drop (the browser profile).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start() -> Self {
        let chromium = binary(
            "CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let chromedriver = binary("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await
                .ok();
            if let Some(response) = ready {
                let status: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
                if status["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!(
            "session-browser-test-{}-{port}",
            std::process::id()
        ));
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
            http,
            _profile: TempDir(profile.clone()),
        };
        let created = browser
            .command(
                reqwest::Method::POST,
                "/session",
                &json!({
                    "capabilities": {
                        "alwaysMatch": {
                            "browserName": "chrome",
                            "goog:chromeOptions": {
                                "binary": chromium,
                                "args": [
                                    "--headless=new",
                                    "--no-sandbox",
                                    "--disable-gpu",
                                    "--disable-dev-shm-usage",
                                    "--no-first-run",
                                    format!("--user-data-dir={}", profile.display()),
                                ],
                            },
                        },
                    },
                }),
            )
            .await;
        created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .clone_into(&mut browser.session);
        browser
    }

    /// Sends a `WebDriver` command; returns its `value`.
    async fn command(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut request = self.http.request(method.clone(), url);
        if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let reply: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(status.is_success(), "WebDriver {path}: {status} {reply}");
        reply["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    async fn open(&self, url: &str) {
        self.command(
            reqwest::Method::POST,
            &self.at("/url"),
            &json!({ "url": url }),
        )
        .await;
    }

    /// The page's text.
    async fn text(&self) -> String {
        let value = self
            .command(
                reqwest::Method::POST,
                &self.at("/execute/sync"),
                &json!({ "script": "return document.body.innerText;", "args": [] }),
            )
            .await;
        value.as_str().unwrap().trim().to_owned()
    }

    /// Runs `fetch(path, {method: 'POST'})` in the page; returns the status.
    async fn post(&self, path: &str) -> u64 {
        let value = self
            .command(
                reqwest::Method::POST,
                &self.at("/execute/async"),
                &json!({
                    "script": "const done = arguments[arguments.length - 1]; \
                               fetch(arguments[0], { method: 'POST' }) \
                                 .then(r => done(r.status), e => done(String(e)));",
                    "args": [path],
                }),
            )
            .await;
        value
            .as_u64()
            .unwrap_or_else(|| panic!("fetch {path} failed: {value}"))
    }

    /// What `document.cookie` shows to scripts.
    async fn script_cookies(&self) -> String {
        let value = self
            .command(
                reqwest::Method::POST,
                &self.at("/execute/sync"),
                &json!({ "script": "return document.cookie;", "args": [] }),
            )
            .await;
        value.as_str().unwrap().to_owned()
    }

    /// Every cookie the browser keeps for the current page, `HttpOnly` ones included.
    async fn cookies(&self) -> Vec<Value> {
        self.command(reqwest::Method::GET, &self.at("/cookie"), &Value::Null)
            .await
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the browser session (which closes Chromium) with a blocking request, then stop
        // chromedriver.
        if !self.session.is_empty()
            && let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Logs in, checks `/whoami`, logs out and checks the cookie is gone, for one cookie name.
async fn login_whoami_logout(browser: &Browser, name: CookieName, cookie: &str, insecure: bool) {
    let config = SessionConfig::default().with_secure(!insecure);
    let layer = session_examples::layer(StoreChoice::Memory, None, config)
        .await
        .unwrap();
    let server = TestServer::start(session_examples::app(name, layer).unwrap()).await;
    let base = format!("http://localhost:{}", server.addr.port());

    browser.open(&format!("{base}/whoami")).await;
    assert_eq!(browser.text().await, "anonymous", "{cookie}: before login");
    assert_eq!(browser.post("/login?user=7").await, 204);
    let cookies = browser.cookies().await;
    let kept: Vec<&Value> = cookies
        .iter()
        .filter(|c| c["name"] == json!(cookie))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "{cookie}: the browser kept the session cookie: {cookies:?}"
    );
    let kept = kept[0];
    assert_eq!(kept["httpOnly"], json!(true), "{kept}");
    assert_eq!(kept["secure"], json!(!insecure), "{kept}");
    assert_eq!(kept["sameSite"], json!("Lax"), "{kept}");
    assert_eq!(kept["path"], json!("/"), "{kept}");
    assert_eq!(kept["domain"], json!("localhost"), "host-only: {kept}");
    assert!(
        !browser.script_cookies().await.contains(cookie),
        "HttpOnly: scripts cannot read it"
    );
    browser.open(&format!("{base}/whoami")).await;
    assert_eq!(browser.text().await, "7", "{cookie}: after login");
    browser.open(&format!("{base}/")).await;
    assert_eq!(browser.text().await, "1");
    browser.open(&format!("{base}/")).await;
    assert_eq!(browser.text().await, "2");

    assert_eq!(browser.post("/logout").await, 204);
    let cookies = browser.cookies().await;
    assert!(
        cookies.iter().all(|c| c["name"] != json!(cookie)),
        "{cookie}: the removal cookie made the browser drop it: {cookies:?}"
    );
    browser.open(&format!("{base}/whoami")).await;
    assert_eq!(browser.text().await, "anonymous", "{cookie}: after logout");
    browser.open(&format!("{base}/read")).await;
    assert_eq!(browser.text().await, "0");
    println!("{cookie}: login, /whoami = 7, logout, cookie dropped by Chromium");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_and_out() {
    let browser = Browser::start().await;
    login_whoami_logout(&browser, CookieName::Counter, "counter", true).await;
    login_whoami_logout(&browser, CookieName::HostCounter, "__Host-counter", false).await;
}

/// The example refuses `--cookie-name __Host-counter` with `--insecure`: browsers would drop
/// the cookie, so the layer is refused at start-up.
#[tokio::test]
async fn host_cookie_without_secure_is_refused_at_start() {
    let config = SessionConfig::default().with_secure(false);
    let layer = session_examples::layer(StoreChoice::Memory, None, config)
        .await
        .unwrap();
    assert!(session_examples::app(CookieName::HostCounter, layer).is_err());
}
