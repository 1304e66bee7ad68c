//! Memory per session (issue 15, item 4): the resident set growth per idle session of the
//! example's counter app on the memory store, against tower-sessions' `MemoryStore` with the
//! same handler, and the memory store at capacity.
//!
//! ```text
//! cargo run --release -p session-bench --example footprint
//! ```
//!
//! Options: `--sessions N,N,...` (default `100000,1000000`), `--capacity N` (the at-capacity
//! run's capacity, default 100,000; it inserts 4 times that).
//!
//! Every measurement runs in a fresh child process (this binary again, `--child ...`), so one
//! run's heap does not serve the next. The child drives its app in process (`tower`'s
//! `oneshot`, no sockets, the app readied once as a server readies it, as in the `requests`
//! workload): 1,000 cookie-less `GET /` first (each creates a session holding
//! `visits = 1`), then reads `VmRSS` from `/proc/self/status`, then N more, then `VmRSS` again;
//! growth per session = (after - before) / N. The sessions stay idle (nothing reads them), as
//! the sessions of users who left do. Our app is the example's (`session_examples::routes`, the
//! memory store with a capacity above N, so nothing is evicted); the peer's is the load
//! benchmark's `GET /` (`visits` incremented in a `tower_sessions::Session`) on
//! `tower_sessions::MemoryStore`. Both use the system allocator.
//!
//! At capacity: our store with `--capacity C` takes 4 C sessions; `VmRSS` after C, 2 C, 3 C and
//! 4 C. Once full, every insert evicts one session, so the resident set must stop growing.
#![allow(clippy::print_stdout, reason = "the benchmark prints its results")]
#![allow(clippy::print_stderr, reason = "the benchmark reports progress")]
#![allow(
    clippy::cast_precision_loss,
    reason = "statistics on counts far below 2^52"
)]

use std::process::{Command, ExitCode};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use session_examples::{Backends, StoreChoice, layer_with, routes};
use session_runtime::config::SessionConfig;

#[path = "../common/inprocess.rs"]
mod inprocess;
#[macro_use]
#[path = "../common/peers.rs"]
mod peers;

use inprocess::{send, served};

/// Sessions created before the first reading: the app, its allocator and the runtime settle.
const WARM_UP: usize = 1_000;

// The peer's `GET /` and `GET /read`, as in the load benchmark.
tower_sessions_handlers!(ts_visit, ts_read, tower_sessions::Session);

/// The resident set of this process, in KiB.
fn rss_kib() -> Result<u64, String> {
    session_bench::rss_kib(std::process::id())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_owned())
}

/// `count` cookie-less `GET /`; each must answer 200 with a cookie (a new session).
fn create_sessions(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    count: usize,
) -> Result<(), String> {
    for _ in 0..count {
        send(runtime, app, "/", None).ok_or("GET / set no cookie")?;
    }
    Ok(())
}

async fn app(side: &str, capacity: usize) -> Result<Router, String> {
    match side {
        "ours" => {
            let backends = Backends {
                memory_capacity: Some(capacity),
                ..Backends::default()
            };
            let layer = layer_with(StoreChoice::Memory, &backends, SessionConfig::default())
                .await
                .map_err(|error| error.to_string())?;
            Ok(routes().layer(layer))
        }
        "tower-sessions" => Ok(Router::new()
            .route("/", get(ts_visit))
            .route("/read", get(ts_read))
            .layer(tower_sessions::SessionManagerLayer::new(
                tower_sessions::MemoryStore::default(),
            ))),
        other => Err(format!("unknown side {other:?}")),
    }
}

/// The child: `--child SIDE CAPACITY STEP STEPS` creates the warm-up sessions, then `STEPS`
/// times `STEP` sessions, and prints `VmRSS` (KiB) after the warm-up and after each step, on
/// one line.
fn child(args: &[String]) -> Result<(), String> {
    let [side, capacity, step, steps] = args else {
        return Err(format!("--child SIDE CAPACITY STEP STEPS, got {args:?}"));
    };
    let number = |text: &str| {
        text.parse::<usize>()
            .map_err(|error| format!("{text:?}: {error}"))
    };
    let (capacity, step, steps) = (number(capacity)?, number(step)?, number(steps)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let app = served(runtime.block_on(app(side, capacity))?);
    create_sessions(&runtime, &app, WARM_UP)?;
    let mut readings = vec![rss_kib()?];
    for _ in 0..steps {
        create_sessions(&runtime, &app, step)?;
        readings.push(rss_kib()?);
    }
    let line: Vec<String> = readings.iter().map(ToString::to_string).collect();
    println!("{}", line.join(" "));
    Ok(())
}

/// Runs a child and returns its readings (KiB).
fn measure(side: &str, capacity: usize, step: usize, steps: usize) -> Result<Vec<u64>, String> {
    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let output = Command::new(exe)
        .args([
            "--child",
            side,
            &capacity.to_string(),
            &step.to_string(),
            &steps.to_string(),
        ])
        .output()
        .map_err(|error| format!("starting the child: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "the {side} child failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|reading| {
            reading
                .parse()
                .map_err(|error| format!("child output {reading:?}: {error}"))
        })
        .collect()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    let mut sizes = vec![100_000, 1_000_000];
    let mut capacity = 100_000;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sessions" => {
                sizes = value
                    .split(',')
                    .map(|size| size.trim().parse().map_err(|e| format!("{size:?}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--capacity" => capacity = value.parse().map_err(|e| format!("{value:?}: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }

    println!("## Memory per idle session (VmRSS growth, system allocator)\n");
    println!("| sessions | ours | tower-sessions `MemoryStore` | ours / peer |");
    println!("|---|---|---|---|");
    for &sessions in &sizes {
        let mut per_session = Vec::new();
        for side in ["ours", "tower-sessions"] {
            eprintln!("{side}: {sessions} sessions...");
            let readings = measure(side, sessions * 2, sessions, 1)?;
            let grown = readings[1].saturating_sub(readings[0]);
            per_session.push((grown * 1024) as f64 / sessions as f64);
            eprintln!(
                "  {side}: {:.1} MiB -> {:.1} MiB",
                mib(readings[0]),
                mib(readings[1])
            );
        }
        println!(
            "| {sessions} | {:.0} B | {:.0} B | {:.2} |",
            per_session[0],
            per_session[1],
            per_session[0] / per_session[1]
        );
    }

    println!("\n## Our memory store at capacity ({capacity} sessions)\n");
    eprintln!("ours at capacity {capacity}...");
    let readings = measure("ours", capacity, capacity, 4)?;
    println!("| sessions created | VmRSS |");
    println!("|---|---|");
    println!("| {WARM_UP} (warm-up) | {:.1} MiB |", mib(readings[0]));
    for (step, reading) in readings.iter().enumerate().skip(1) {
        println!(
            "| {} ({step} x capacity) | {:.1} MiB |",
            WARM_UP + step * capacity,
            mib(*reading)
        );
    }
    let full = readings[1];
    let last = readings[readings.len() - 1];
    println!(
        "\nFrom full (1 x capacity) to 4 x capacity: {:+.1}%",
        (last as f64 - full as f64) * 100.0 / full as f64
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("footprint: {message}");
            ExitCode::FAILURE
        }
    }
}
