//! Soak test: mixed traffic (log in, read, write, log out) on about 1,000 live sessions of the
//! example server (`counter`, built and started as a process of its own) for a long time, on the
//! memory store, the memory store with a capacity below the number of sessions (it must evict
//! and stay flat), and Redis. Every window it prints the requests served, p50 and p99 latency
//! and the server's resident memory.
//!
//! ```text
//! cargo run --release -p session-bench --bin soak              # 10 minutes per store
//! cargo run --release -p session-bench --bin soak -- --secs 60 # what CI runs
//! ```
//!
//! Options: `--secs S` (per store, default 600), `--window S` (default 10 s, at most a tenth of
//! the run), `--workers N` (concurrent clients, 16), `--users N` (1,000), `--only memory|small|redis`.
//! Redis: `REDIS_URL`, else 127.0.0.1:6379, else a private `redis-server` (as the tests).
//!
//! Sessions expire after 15 s without a write, so that sessions clients stop using leave the
//! store during the run. It fails (exit status 1) when a request fails (any status but 200 and
//! 204), when the resident memory at the end is more than 10% above what it was after the
//! warm-up (a fifth of the run, at least 30 s), or when the p99 latency of the last window is more than twice that of the first
//! window after the warm-up (and over 5 ms). The memory figures are the server process's alone.
#![allow(clippy::print_stdout, reason = "the soak test prints its figures")]
#![allow(clippy::print_stderr, reason = "the soak test reports bad arguments")]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "statistics on counts far below 2^52"
)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_tests::server::{cookie_value, raw_client, send};

/// The sessions' idle timeout.
const IDLE_SECS: u64 = 15;

/// The warm-up: a fifth of the run, and at least two idle timeouts (the store reaches its steady
/// size once sessions abandoned early have expired and been swept).
fn warm_up(secs: u64) -> u64 {
    (secs / 5).max(2 * IDLE_SECS)
}

struct Options {
    secs: u64,
    window: u64,
    workers: usize,
    users: usize,
    only: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        secs: 600,
        window: 10,
        workers: 16,
        users: 1_000,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |text: String, name: &str| {
            text.parse::<u64>()
                .map_err(|e| format!("invalid {name}: {e}"))
        };
        match arg.as_str() {
            "--secs" => options.secs = number(value("--secs")?, "--secs")?.max(5),
            "--window" => options.window = number(value("--window")?, "--window")?.max(1),
            "--workers" => {
                options.workers = number(value("--workers")?, "--workers")?.max(1) as usize;
            }
            "--users" => options.users = number(value("--users")?, "--users")?.max(1) as usize,
            "--only" => options.only = Some(value("--only")?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    options.window = options.window.min((options.secs / 10).max(1));
    Ok(options)
}

/// A small fast random source (xorshift), one per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the workers share: each user's cookie, the latencies of the current window, failures.
struct Shared {
    cookies: Vec<Mutex<Option<String>>>,
    latencies: Mutex<Vec<u32>>,
    failures: AtomicU64,
    statuses: Mutex<Vec<(u16, String)>>,
    stop: AtomicBool,
}

/// One window's figures.
struct Window {
    at: u64,
    requests: usize,
    p50_us: u32,
    p99_us: u32,
    rss_kib: u64,
}

async fn worker(base: String, shared: Arc<Shared>, seed: u64) {
    let client = raw_client();
    let mut rng = Rng(seed | 1);
    let users = shared.cookies.len();
    while !shared.stop.load(Ordering::Relaxed) {
        let user = (rng.next() % users as u64) as usize;
        let cookie = shared.cookies[user].lock().unwrap().clone();
        let roll = rng.next() % 100;
        let (request, login, logout) = match &cookie {
            None => (
                client.post(format!("{base}/login?user={user}")),
                true,
                false,
            ),
            Some(cookie) => {
                let (method_post, path, login, logout) = match roll {
                    0..60 => (false, "/read".to_owned(), false, false),
                    60..85 => (false, "/".to_owned(), false, false),
                    85..93 => (false, "/a".to_owned(), false, false),
                    93..97 => (true, format!("/login?user={user}"), true, false),
                    _ => (true, "/logout".to_owned(), false, true),
                };
                let url = format!("{base}{path}");
                let request = if method_post {
                    client.post(url)
                } else {
                    client.get(url)
                };
                (request.header("cookie", cookie), login, logout)
            }
        };
        let started = Instant::now();
        let (status, headers, body) = send(request).await;
        let took = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        shared.latencies.lock().unwrap().push(took);
        if status != 200 && status != 204 {
            shared.failures.fetch_add(1, Ordering::Relaxed);
            let mut statuses = shared.statuses.lock().unwrap();
            if statuses.len() < 10 {
                statuses.push((status, body));
            }
            continue;
        }
        let mut slot = shared.cookies[user].lock().unwrap();
        if logout {
            *slot = None;
        } else if let Some(value) = cookie_value(&headers, "counter") {
            *slot = Some(format!("counter={value}"));
        } else if login {
            // A login always sets the cookie.
            shared.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs the soak on one store; returns whether it passed.
/// The example server, a process of its own; killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the example server, `target/release/examples/counter` (build it first: `cargo build
/// --release -p session-examples --example counter`), with `args` on a free loopback port.
async fn start_server(args: &[String]) -> Result<Server, String> {
    let bin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/examples/counter");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    drop(listener);
    let child = std::process::Command::new(&bin)
        .args(args)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--insecure"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (build it with `cargo build --release -p session-examples --example counter`)", bin.display()))?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = raw_client();
    for _ in 0..100 {
        if client
            .get(format!("{}/read", server.base))
            .send()
            .await
            .is_ok()
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the example server did not start".to_owned())
}

#[expect(
    clippy::too_many_lines,
    reason = "the run, its table and its verdict read best in one place"
)]
async fn soak(name: &str, args: &[String], options: &Options) -> bool {
    let mut server = match start_server(args).await {
        Ok(server) => server,
        Err(error) => {
            println!("{name}: {error}");
            return false;
        }
    };
    let pid = server.child.id();
    let base = server.base.clone();
    let shared = Arc::new(Shared {
        cookies: (0..options.users).map(|_| Mutex::new(None)).collect(),
        latencies: Mutex::new(Vec::new()),
        failures: AtomicU64::new(0),
        statuses: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..options.workers)
        .map(|i| {
            tokio::spawn(worker(
                base.clone(),
                Arc::clone(&shared),
                0x9e37_79b9_7f4a_7c15 ^ ((i as u64 + 1) * 0x1000_0001),
            ))
        })
        .collect();
    println!(
        "{name}: {} s, {} workers, {} users, windows of {} s",
        options.secs, options.workers, options.users, options.window
    );
    println!(
        "  {:>6} {:>9} {:>9} {:>9} {:>10}",
        "t (s)", "requests", "p50 µs", "p99 µs", "RSS KiB"
    );
    let started = Instant::now();
    let mut windows = Vec::new();
    let end = Duration::from_secs(options.secs);
    while started.elapsed() < end {
        tokio::time::sleep(
            Duration::from_secs(options.window).min(end.saturating_sub(started.elapsed())),
        )
        .await;
        let mut latencies = std::mem::take(&mut *shared.latencies.lock().unwrap());
        latencies.sort_unstable();
        let window = Window {
            at: started.elapsed().as_secs(),
            requests: latencies.len(),
            p50_us: percentile(&latencies, 0.50),
            p99_us: percentile(&latencies, 0.99),
            rss_kib: session_bench::rss_kib(pid).unwrap_or(0),
        };
        println!(
            "  {:>6} {:>9} {:>9} {:>9} {:>10}",
            window.at, window.requests, window.p50_us, window.p99_us, window.rss_kib
        );
        windows.push(window);
    }
    shared.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    if let Ok(Some(status)) = server.child.try_wait() {
        println!("  {name}: the server exited during the run ({status})");
        return false;
    }
    let failures = shared.failures.load(Ordering::Relaxed);
    let warm = windows
        .iter()
        .find(|w| w.at >= warm_up(options.secs))
        .unwrap_or(&windows[0]);
    let last = windows.last().unwrap_or(warm);
    let growth = last.rss_kib as f64 / warm.rss_kib.max(1) as f64 - 1.0;
    let drift = last.p99_us > 2 * warm.p99_us.max(1) && last.p99_us > 5_000;
    let total: usize = windows.iter().map(|w| w.requests).sum();
    println!(
        "  {name}: {total} requests, {failures} failed; RSS {} KiB after warm-up, {} KiB at the end ({:+.1}%); p99 {} µs after warm-up, {} µs at the end",
        warm.rss_kib,
        last.rss_kib,
        growth * 100.0,
        warm.p99_us,
        last.p99_us
    );
    for (status, body) in shared.statuses.lock().unwrap().iter() {
        println!("  failed: {status} {}", body.trim());
    }
    let passed = failures == 0 && growth <= 0.10 && !drift;
    if !passed {
        println!(
            "  {name}: FAILED ({})",
            [
                (failures > 0).then_some("failed requests"),
                (growth > 0.10).then_some("memory grew by more than 10%"),
                drift.then_some("p99 latency more than doubled"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        );
    }
    passed
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: {error}");
            return ExitCode::FAILURE;
        }
    };
    let passed = runtime.block_on(async {
        let wanted = |name: &str| options.only.as_deref().is_none_or(|only| only == name);
        let idle = ["--max-age".to_owned(), IDLE_SECS.to_string()];
        let mut passed = true;
        if wanted("memory") {
            let args = [&idle[..], &["--store".to_owned(), "memory".to_owned()]].concat();
            passed &= soak("memory", &args, &options).await;
        }
        if wanted("small") {
            // Fewer places than users: the store evicts all along and must stay flat.
            let capacity = options.users / 2;
            let args = [
                &idle[..],
                &[
                    "--store".to_owned(),
                    "memory".to_owned(),
                    "--memory-capacity".to_owned(),
                    capacity.to_string(),
                ],
            ]
            .concat();
            passed &= soak(&format!("memory, capacity {capacity}"), &args, &options).await;
        }
        if wanted("redis") {
            let url = session_tests::redis::server().await.url().to_owned();
            let args = [
                &idle[..],
                &[
                    "--store".to_owned(),
                    "redis".to_owned(),
                    "--redis-url".to_owned(),
                    url,
                ],
            ]
            .concat();
            passed &= soak("redis", &args, &options).await;
        }
        passed
    });
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
