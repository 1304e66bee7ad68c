//! Load benchmark: session-runtime against a bare axum handler, tower-sessions and axum-extra's
//! `PrivateCookieJar`, in one run with interleaved rounds.
//!
//! ```text
//! cargo run --release -p session-bench --example load            # full run
//! cargo run --release -p session-bench --example load -- --quick # 3 short rounds
//! ```
//!
//! How long each takes is in CONTRIBUTING.md.
//!
//! Options: `--rounds N`, `--secs S` (measured seconds per scenario and round), `--connections
//! N`, `--only WORD` (scenarios whose name contains WORD; `bare` always runs), `--redis-url URL`
//! (use that Redis instead of a private `redis-server`).
//!
//! The server (one current-thread tokio runtime) is pinned to the first core, the load client
//! (another current-thread runtime, plain HTTP/1.1 keep-alive, one session per connection) and
//! the private `redis-server` to the second. Each round runs every scenario once, bare first,
//! the others in a rotated order; every figure is the median over rounds, and every ratio the
//! median of the per-round ratios to bare. Server CPU is the server thread's run time from
//! `/proc/self/task/<tid>/schedstat` (nanoseconds) over the measured window; allocations are
//! counted on the server thread only; Redis commands come from `INFO commandstats` deltas.
#![allow(clippy::print_stdout, reason = "the benchmark prints its table")]
#![allow(
    clippy::print_stderr,
    reason = "the benchmark reports progress and errors"
)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "statistics on counts far below 2^52"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, Key as JarKey, PrivateCookieJar, SameSite};
use session_examples::{StoreChoice, layer, routes};
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::store::RedisStore;
use session_tests::redis::{OwnRedis, redis_server_bin};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

#[path = "../common/serve.rs"]
mod serve;
use serve::{client_runtime, median, response_head, split_cores, start_server, thread_cpu_ns};

/// Counts the allocations of the server thread only.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The system allocator, counting calls made on threads that opted in.
    pub(crate) struct Counting;

    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static ENABLED: Cell<bool> = const { Cell::new(false) };
    }

    fn count() {
        if ENABLED.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts the allocations of the calling thread from now on.
    pub(crate) fn enable_on_this_thread() {
        ENABLED.with(|enabled| enabled.set(true));
    }

    /// Returns how many allocations (including reallocations) counting threads made.
    pub(crate) fn allocations() -> u64 {
        ALLOCATIONS.load(Ordering::Relaxed)
    }

    // SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
    // touches only an atomic and a const-initialised thread-local without destructor, neither
    // of which allocates.
    #[allow(
        unsafe_code,
        reason = "a GlobalAlloc implementation is unsafe by definition"
    )]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// Commands our Redis write script runs inside `EVALSHA` (counted by `INFO commandstats`, but
/// not round trips).
const SCRIPT_INTERNAL: [&str; 4] = ["exists", "hexists", "hset", "pexpireat"];

/// The targets for server CPU per request, as a ratio to bare (the table marks each met or
/// missed; `bench/RESULTS.md` has the latest run).
fn target(name: &str) -> Option<f64> {
    Some(match name {
        "ours memory write" => 1.15,
        "ours memory read" => 1.08,
        "ours encrypted write" => 1.25,
        "ours encrypted read" => 1.12,
        "ours redis write" => 2.6,
        "ours redis read" => 2.0,
        _ => return None,
    })
}

struct Options {
    rounds: usize,
    secs: f64,
    warmup: f64,
    connections: usize,
    only: Option<String>,
    redis_url: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        rounds: 9,
        secs: 1.0,
        warmup: 0.25,
        connections: 32,
        only: None,
        redis_url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => {
                options.rounds = 3;
                options.secs = 0.4;
                options.warmup = 0.1;
            }
            "--rounds" => {
                options.rounds = value("--rounds")?.parse().map_err(|e| format!("{e}"))?;
            }
            "--secs" => options.secs = value("--secs")?.parse().map_err(|e| format!("{e}"))?,
            "--connections" => {
                options.connections = value("--connections")?
                    .parse()
                    .map_err(|e| format!("{e}"))?;
            }
            "--only" => options.only = Some(value("--only")?),
            "--redis-url" => options.redis_url = Some(value("--redis-url")?),
            // `cargo bench` passes this to every target.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.rounds == 0
        || options.connections == 0
        || options.secs.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err("--rounds, --connections and --secs must be positive".to_owned());
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// Redis: a private server when possible, INFO over a plain socket.

struct Redis {
    url: String,
    addr: SocketAddr,
    /// The private server, started with the tests' launcher; stopped when dropped.
    own: Option<OwnRedis>,
}

fn start_redis(url: Option<&str>, core: Option<usize>) -> Result<Redis, String> {
    if let Some(url) = url {
        let hostport = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let addr = hostport
            .parse()
            .map_err(|e| format!("--redis-url must be redis://IP:PORT here: {e}"))?;
        return Ok(Redis {
            url: url.to_owned(),
            addr,
            own: None,
        });
    }
    if redis_server_bin().is_err() {
        let addr: SocketAddr = ([127, 0, 0, 1], 6379).into();
        if StdStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
            eprintln!(
                "note: no redis-server on PATH; using the shared Redis at {addr} (other clients add noise to the command counts)"
            );
            return Ok(Redis {
                url: format!("redis://{addr}"),
                addr,
                own: None,
            });
        }
        return Err(
            "no Redis: install redis-server (apt-get install redis-server) or pass --redis-url redis://IP:PORT"
                .to_owned(),
        );
    }
    // Pinned to `core` when `taskset` is there to do it; unpinned otherwise.
    let has_taskset = Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let own = OwnRedis::start_blocking(core.filter(|_| has_taskset))
        .map_err(|e| format!("the private redis-server did not start: {e}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], own.port()).into();
    Ok(Redis {
        url: own.url(),
        addr,
        own: Some(own),
    })
}

/// Sends `INFO <section>` and returns the text.
fn redis_info(addr: SocketAddr, section: &str) -> std::io::Result<String> {
    let mut stream = StdStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "INFO {section}\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        // A bulk string: `$<len>\r\n<data>\r\n`.
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let len: usize = std::str::from_utf8(&buf[1..end - 1])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 1 + len + 2 {
                return Ok(String::from_utf8_lossy(&buf[end + 1..end + 1 + len]).into_owned());
            }
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[derive(Default, Clone)]
struct RedisSnapshot {
    calls: BTreeMap<String, u64>,
    cpu_secs: f64,
}

fn redis_snapshot(addr: SocketAddr) -> RedisSnapshot {
    let mut snapshot = RedisSnapshot::default();
    if let Ok(text) = redis_info(addr, "commandstats") {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, stats)) = rest.split_once(':') else {
                continue;
            };
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            snapshot.calls.insert(name.to_owned(), calls);
        }
    }
    if let Ok(text) = redis_info(addr, "cpu") {
        for line in text.lines() {
            if let Some(("used_cpu_sys" | "used_cpu_user", value)) = line.trim().split_once(':') {
                snapshot.cpu_secs += value.parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    snapshot
}

// ---------------------------------------------------------------------------------------------
// The servers.

async fn bare() -> String {
    1u64.to_string()
}

/// The incumbent's handlers, the same for both versions (0.15 for memory, 0.14 for Redis) but
/// for the session type.
macro_rules! tower_sessions_handlers {
    ($visit:ident, $read:ident, $session:ty) => {
        async fn $visit(session: $session) -> Result<String, StatusCode> {
            let visits = session
                .get::<u64>("visits")
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                .unwrap_or(0)
                + 1;
            session
                .insert("visits", visits)
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            Ok(visits.to_string())
        }

        async fn $read(session: $session) -> Result<String, StatusCode> {
            let visits = session
                .get::<u64>("visits")
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                .unwrap_or(0);
            Ok(visits.to_string())
        }
    };
}

tower_sessions_handlers!(ts_visit, ts_read, tower_sessions::Session);
tower_sessions_handlers!(ts14_visit, ts14_read, tower_sessions_014::Session);

#[derive(Clone)]
struct JarState {
    key: JarKey,
}

impl FromRef<JarState> for JarKey {
    fn from_ref(state: &JarState) -> Self {
        state.key.clone()
    }
}

fn jar_visits(jar: &PrivateCookieJar) -> u64 {
    jar.get("visits")
        .and_then(|cookie| cookie.value().parse().ok())
        .unwrap_or(0)
}

async fn jar_visit(jar: PrivateCookieJar) -> (PrivateCookieJar, String) {
    let visits = jar_visits(&jar) + 1;
    let cookie = Cookie::build(("visits", visits.to_string()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax);
    (jar.add(cookie), visits.to_string())
}

async fn jar_read(jar: PrivateCookieJar) -> String {
    jar_visits(&jar).to_string()
}

/// The apps, by scenario prefix.
async fn build_apps(
    redis_url: &str,
    with_redis: bool,
) -> Result<Vec<(&'static str, Router)>, String> {
    let config = SessionConfig::default();
    let mut apps = vec![
        (
            "bare",
            Router::new()
                .route("/", get(bare))
                .route("/read", get(bare)),
        ),
        (
            "ours memory",
            routes().layer(
                layer(StoreChoice::Memory, None, config.clone())
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        ),
        (
            "ours encrypted",
            routes().layer(
                layer(StoreChoice::Encrypted, None, config.clone())
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        ),
        (
            "tower-sessions memory",
            Router::new()
                .route("/", get(ts_visit))
                .route("/read", get(ts_read))
                .layer(tower_sessions::SessionManagerLayer::new(
                    tower_sessions::MemoryStore::default(),
                )),
        ),
        (
            "private-jar",
            Router::new()
                .route("/", get(jar_visit))
                .route("/read", get(jar_read))
                .with_state(JarState {
                    key: JarKey::generate(),
                }),
        ),
    ];
    if with_redis {
        let store = RedisStore::builder()
            .key_prefix(format!("bench:{}:", std::process::id()))
            .connect(redis_url)
            .await
            .map_err(|e| format!("cannot connect to Redis at {redis_url}: {e}"))?;
        apps.push((
            "ours redis",
            routes().layer(SessionLayer::new(store).with_config(config)),
        ));
        let pool = Pool::new(
            Config::from_url(redis_url).map_err(|e| e.to_string())?,
            None,
            None,
            None,
            1,
        )
        .map_err(|e| e.to_string())?;
        pool.connect();
        pool.wait_for_connect().await.map_err(|e| e.to_string())?;
        apps.push((
            "tower-sessions redis",
            Router::new()
                .route("/", get(ts14_visit))
                .route("/read", get(ts14_read))
                .layer(tower_sessions_014::SessionManagerLayer::new(
                    tower_sessions_redis_store::RedisStore::new(pool),
                )),
        ));
    }
    Ok(apps)
}

// ---------------------------------------------------------------------------------------------
// The load client: HTTP/1.1 keep-alive, one cookie jar (one session) per connection.

struct Client {
    jar: Vec<(String, String)>,
    request: Vec<u8>,
    last_body: String,
}

impl Client {
    fn new(path: &str) -> Self {
        let mut client = Self {
            jar: Vec::new(),
            request: Vec::new(),
            last_body: String::new(),
        };
        client.build_request(path);
        client
    }

    fn build_request(&mut self, path: &str) {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if !self.jar.is_empty() {
            request.push_str("Cookie: ");
            for (i, (name, value)) in self.jar.iter().enumerate() {
                if i > 0 {
                    request.push_str("; ");
                }
                let _ = write!(request, "{name}={value}");
            }
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        self.request = request.into_bytes();
    }

    /// Stores a `Set-Cookie`; returns whether the jar changed.
    fn set_cookie(&mut self, header: &str) -> bool {
        let pair = header.split(';').next().unwrap_or("");
        let Some((name, value)) = pair.split_once('=') else {
            return false;
        };
        let (name, value) = (name.trim(), value.trim());
        match self.jar.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) if v == value => false,
            Some((_, v)) => {
                value.clone_into(v);
                true
            }
            None => {
                self.jar.push((name.to_owned(), value.to_owned()));
                true
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends the client's request and reads the response; returns the status code.
    async fn exchange(&mut self, client: &mut Client, path: &str) -> std::io::Result<u16> {
        self.stream.write_all(&client.request).await?;
        self.buf.clear();
        let header_end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..header_end]).into_owned();
        let (status, length, cookies) = response_head(&head);
        let mut changed = false;
        for value in cookies {
            changed |= client.set_cookie(value);
        }
        while self.buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        client.last_body.clear();
        client.last_body.push_str(&String::from_utf8_lossy(
            &self.buf[header_end..header_end + length],
        ));
        if changed {
            client.build_request(path);
        }
        Ok(status)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Scenario {
    name: String,
    addr: SocketAddr,
    path: &'static str,
    write: bool,
    redis: bool,
    /// One session per connection, kept across rounds.
    clients: Vec<Client>,
}

#[derive(Clone, Copy, Default)]
struct Sample {
    requests: u64,
    wall: f64,
    cpu_ns: u64,
    allocations: u64,
    p50_us: f64,
    p99_us: f64,
    redis_calls: f64,
    redis_round_trips: f64,
    redis_cpu_us: f64,
}

struct RoundResult {
    sample: Sample,
    commands: BTreeMap<String, u64>,
}

#[expect(
    clippy::too_many_lines,
    reason = "warm-up, measured loop and bookkeeping of one round"
)]
async fn run_scenario(
    scenario: &mut Scenario,
    server_tid: u32,
    redis: Option<SocketAddr>,
    warmup: Duration,
    measure: Duration,
) -> Result<RoundResult, String> {
    let path = scenario.path;
    // Connect and warm up: every connection has a session before the clock starts.
    let mut tasks = Vec::new();
    for mut client in std::mem::take(&mut scenario.clients) {
        let addr = scenario.addr;
        let write = scenario.write;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await.map_err(|e| e.to_string())?;
            if client.jar.is_empty() {
                // Create the session (a write), then switch to the scenario's path.
                client.build_request("/");
                conn.exchange(&mut client, "/")
                    .await
                    .map_err(|e| e.to_string())?;
                client.build_request(path);
            }
            let deadline = Instant::now() + warmup;
            while Instant::now() < deadline {
                let status = conn
                    .exchange(&mut client, path)
                    .await
                    .map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!("status {status} during warm-up"));
                }
            }
            let _ = write;
            Ok::<_, String>((conn, client))
        }));
    }
    let mut conns = Vec::new();
    for task in tasks {
        conns.push(task.await.map_err(|e| e.to_string())??);
    }
    let before_redis = redis.map(redis_snapshot);
    let before_cpu = thread_cpu_ns(server_tid);
    let before_alloc = counting::allocations();
    let start = Instant::now();
    let deadline = start + measure;
    let mut tasks = Vec::new();
    for (mut conn, mut client) in conns {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut failures = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                let status = conn
                    .exchange(&mut client, path)
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(sent.elapsed().as_nanos() as u64);
                if status != 200 {
                    failures += 1;
                }
            }
            Ok::<_, String>((client, latencies, failures))
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (client, mut l, f) = task.await.map_err(|e| e.to_string())??;
        scenario.clients.push(client);
        latencies.append(&mut l);
        failures += f;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu_ns = thread_cpu_ns(server_tid) - before_cpu;
    let allocations = counting::allocations() - before_alloc;
    if failures > 0 {
        return Err(format!(
            "{}: {failures} responses were not 200",
            scenario.name
        ));
    }
    for client in scenario.clients.iter().filter(|_| scenario.name != "bare") {
        let visits: u64 = client.last_body.parse().unwrap_or(0);
        if visits == 0 || (scenario.write && visits < 2) {
            return Err(format!(
                "{}: the session did not persist (last body {:?})",
                scenario.name, client.last_body
            ));
        }
    }
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let mut sample = Sample {
        requests,
        wall,
        cpu_ns,
        allocations,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        ..Sample::default()
    };
    let mut commands = BTreeMap::new();
    if let (Some(before), Some(addr)) = (before_redis, redis) {
        let after = redis_snapshot(addr);
        for (name, calls) in &after.calls {
            let delta = calls - before.calls.get(name).copied().unwrap_or(0);
            if delta > 0 && name != "info" {
                commands.insert(name.clone(), delta);
            }
        }
        let total: u64 = commands.values().sum();
        let internal: u64 = if commands.contains_key("evalsha") || commands.contains_key("eval") {
            SCRIPT_INTERNAL
                .iter()
                .filter_map(|name| commands.get(*name))
                .sum()
        } else {
            0
        };
        sample.redis_calls = total as f64 / requests as f64;
        sample.redis_round_trips = (total - internal) as f64 / requests as f64;
        sample.redis_cpu_us = (after.cpu_secs - before.cpu_secs) * 1e6 / requests as f64;
    }
    Ok(RoundResult { sample, commands })
}

fn main() -> ExitCode {
    match run() {
        // Missed targets are reported in the table, not as a failure of the run.
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "the run's steps in order; each is short"
)]
fn run() -> Result<bool, String> {
    let options = parse_options()?;
    let (server_core, client_core) = split_cores();
    let wants = |name: &str| {
        name == "bare"
            || options
                .only
                .as_deref()
                .is_none_or(|only| name.contains(only))
    };
    let with_redis = wants("ours redis write")
        || wants("ours redis read")
        || wants("tower-sessions redis write")
        || wants("tower-sessions redis read");
    let redis = if with_redis {
        Some(start_redis(
            options.redis_url.as_deref(),
            client_core.map(|c| c.id),
        )?)
    } else {
        None
    };
    let redis_url = redis.as_ref().map_or_else(String::new, |r| r.url.clone());
    let (server, stop) = start_server(server_core, move || {
        counting::enable_on_this_thread();
        async move { build_apps(&redis_url, with_redis).await }
    })?;
    let runtime = client_runtime(client_core)?;
    let mut scenarios = Vec::new();
    for (app, addr) in &server.addrs {
        let variants: &[(&str, &str, bool)] = if *app == "bare" {
            &[("bare", "/", true)]
        } else {
            &[("write", "/", true), ("read", "/read", false)]
        };
        for (suffix, path, write) in variants {
            let name = if *app == "bare" {
                "bare".to_owned()
            } else {
                format!("{app} {suffix}")
            };
            if !wants(&name) {
                continue;
            }
            scenarios.push(Scenario {
                clients: (0..options.connections)
                    .map(|_| Client::new(path))
                    .collect(),
                redis: app.contains("redis"),
                name,
                addr: *addr,
                path,
                write: *write,
            });
        }
    }
    let order = [
        "bare",
        "ours memory write",
        "ours memory read",
        "tower-sessions memory write",
        "tower-sessions memory read",
        "ours encrypted write",
        "ours encrypted read",
        "private-jar write",
        "private-jar read",
        "ours redis write",
        "ours redis read",
        "tower-sessions redis write",
        "tower-sessions redis read",
    ];
    scenarios.sort_by_key(|s| {
        order
            .iter()
            .position(|o| *o == s.name)
            .unwrap_or(order.len())
    });
    let warmup = Duration::from_secs_f64(options.warmup);
    let measure = Duration::from_secs_f64(options.secs);
    let redis_addr = redis.as_ref().map(|r| r.addr);
    eprintln!(
        "{} scenarios x {} rounds, {:.2} s each after {:.2} s warm-up, {} connections; server on core {:?}, client{} on core {:?}",
        scenarios.len(),
        options.rounds,
        options.secs,
        options.warmup,
        options.connections,
        server_core.map(|c| c.id),
        if redis.as_ref().is_some_and(|r| r.own.is_some()) {
            " and private redis-server"
        } else {
            ""
        },
        client_core.map(|c| c.id),
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); scenarios.len()];
    let mut commands: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); scenarios.len()];
    let mut requests: Vec<u64> = vec![0; scenarios.len()];
    let started = Instant::now();
    runtime.block_on(async {
        for round in 0..options.rounds {
            // Bare first, then the others rotated so no scenario always follows the same one.
            let others = scenarios.len() - 1;
            let mut indices = vec![0];
            indices.extend((0..others).map(|i| 1 + (i + round) % others));
            for index in indices {
                let scenario = &mut scenarios[index];
                let redis = if scenario.redis { redis_addr } else { None };
                let result = run_scenario(scenario, server.tid, redis, warmup, measure).await?;
                for (name, calls) in result.commands {
                    *commands[index].entry(name).or_default() += calls;
                }
                requests[index] += result.sample.requests;
                samples[index].push(result.sample);
            }
            eprintln!(
                "round {}/{} done ({:.0} s)",
                round + 1,
                options.rounds,
                started.elapsed().as_secs_f64()
            );
        }
        Ok::<_, String>(())
    })?;
    let _ = stop.send(());

    // The table.
    let bare = &samples[0];
    let per_round = |index: usize, f: &dyn Fn(&Sample) -> f64| -> (f64, f64) {
        let values: Vec<f64> = samples[index].iter().map(f).collect();
        let ratios: Vec<f64> = samples[index]
            .iter()
            .zip(bare)
            .map(|(s, b)| f(s) / f(b))
            .collect();
        (median(values), median(ratios))
    };
    let rps = |s: &Sample| s.requests as f64 / s.wall;
    let cpu = |s: &Sample| s.cpu_ns as f64 / s.requests as f64 / 1000.0;
    let p50 = |s: &Sample| s.p50_us;
    let p99 = |s: &Sample| s.p99_us;
    let busy = |s: &Sample| s.cpu_ns as f64 / 1e9 / s.wall * 100.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | req/s | × bare | p50 µs | × bare | p99 µs | × bare | server CPU µs/req | × bare | target | allocs/req | Redis cmds/req (round trips) | Redis CPU µs/req | server busy |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"
    );
    let mut all_met = true;
    for (index, scenario) in scenarios.iter().enumerate() {
        let (rps_v, rps_r) = per_round(index, &rps);
        let (p50_v, p50_r) = per_round(index, &p50);
        let (p99_v, p99_r) = per_round(index, &p99);
        let (cpu_v, cpu_r) = per_round(index, &cpu);
        let (busy_v, _) = per_round(index, &busy);
        let allocs = median(
            samples[index]
                .iter()
                .map(|s| s.allocations as f64 / s.requests as f64)
                .collect(),
        );
        let target_text = match target(&scenario.name) {
            Some(t) if cpu_r <= t => format!("≤ {t:.2} met"),
            Some(t) => {
                all_met = false;
                format!("≤ {t:.2} **missed**")
            }
            None => String::new(),
        };
        let (redis_text, redis_cpu) = if scenario.redis {
            (
                format!(
                    "{:.2} ({:.2})",
                    median(samples[index].iter().map(|s| s.redis_calls).collect()),
                    median(samples[index].iter().map(|s| s.redis_round_trips).collect())
                ),
                format!(
                    "{:.1}",
                    median(samples[index].iter().map(|s| s.redis_cpu_us).collect())
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let _ = writeln!(
            out,
            "| {} | {rps_v:.0} | {rps_r:.2} | {p50_v:.0} | {p50_r:.2} | {p99_v:.0} | {p99_r:.2} | {cpu_v:.2} | {cpu_r:.2} | {target_text} | {allocs:.1} | {redis_text} | {redis_cpu} | {busy_v:.0}% |",
            scenario.name
        );
    }
    println!("{out}");
    let mut detail = String::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        if commands[index].is_empty() {
            continue;
        }
        let _ = write!(detail, "{}:", scenario.name);
        for (name, calls) in &commands[index] {
            let internal = SCRIPT_INTERNAL.contains(&name.as_str())
                && (commands[index].contains_key("evalsha")
                    || commands[index].contains_key("eval"));
            let _ = write!(
                detail,
                " {name}{} {:.2}",
                if internal { " (in script)" } else { "" },
                *calls as f64 / requests[index] as f64
            );
        }
        detail.push('\n');
    }
    if !detail.is_empty() {
        println!("Redis commands per request, by command:\n{detail}");
    }
    println!(
        "{} rounds x {:.2} s, {} connections, {:.0} s in all; medians over rounds, ratios to bare in the same round.",
        options.rounds,
        options.secs,
        options.connections,
        started.elapsed().as_secs_f64()
    );
    drop(redis);
    Ok(all_met)
}
