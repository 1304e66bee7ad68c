//! A fixed in-process workload for instruction and allocation counts: one scenario, a fixed
//! number of requests through the example's routes (no network), as in the `request/*` group of
//! the micro-benchmarks.
//!
//! ```text
//! cargo build --profile bench -p session-bench --example requests
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*requests::measure*' \
//!     target/release/examples/requests memory-read 20000
//! ```
//!
//! Scenarios: `bare`, `memory-write`, `memory-read`, `encrypted-write`, `encrypted-read`,
//! `redis-write`, `redis-read` (Redis at `REDIS_URL` or 127.0.0.1:6379), and the scaling rows'
//! `redis_wide-write`, `redis_wide-read` (`session_bench::Wide`, 40 fields, through the whole
//! type) and `redis_wide_view-write`, `redis_wide_view-read` (through the views
//! `session_bench::WideVisits` and `session_bench::WideHead`); the peer
//! `PrivateCookieJar` as the load benchmark runs it: `private_jar-write`, `private_jar-read`,
//! `private_jar_wide-write`, `private_jar_wide-read`; tower-sessions 0.15 on its memory
//! store: `tower_sessions_memory-write`, `tower_sessions_memory-read`; and the Redis peers as
//! the load benchmark builds them (`common/apps.rs`): `ruts_redis-write`, `ruts_redis-read`,
//! `ruts_redis_wide-*`, `tower_sessions_redis-*`, `tower_sessions_redis_wide-*` (ruts needs
//! Redis 7.4 or newer for `HEXPIRE`, and answers 500 on an older one: point `REDIS_URL` at the
//! server `cargo xtask redis8` builds). A suffix `-undeclared` (`encrypted-write-undeclared`,
//! say; our scenarios only) starts from a session that also holds five fields the
//! example's struct does not declare, as one written by a newer version of an app does: each
//! write carries them along. It prints the
//! allocations per measured request (counted on this thread); callgrind's total divided by the
//! request count is the instructions per request. Requests before the measured ones warm up the
//! caches and the session. Every app is readied as `axum::serve` readies it for a connection
//! (`with_state(())`, `inprocess::served`), so that a request does not also pay for turning
//! its handler into a route, which a server does once per connection (until 2026-12-07 the
//! counts included that: up to about 1,000 instructions and 3 allocations per request, 1 for
//! the bare handler, of every app but the jar's, whose router was already readied by its own
//! state).
#![allow(clippy::print_stdout, reason = "the workload prints its counts")]
#![allow(
    clippy::cast_precision_loss,
    reason = "statistics on counts far below 2^52"
)]

use axum::Router;
use session_examples::{StoreChoice, layer, routes};
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::store::RedisStore;
use session_runtime::{Session, TypedSession};

#[path = "../common/inprocess.rs"]
mod inprocess;
use inprocess::{send, served};
#[path = "../common/jar.rs"]
mod jar;
#[macro_use]
#[path = "../common/peers.rs"]
mod peers;
// After `peers`, whose macros it uses.
#[path = "../common/apps.rs"]
#[allow(dead_code, reason = "`APPS` and `is_sql_app` are the load benchmark's")]
mod apps;
#[path = "../common/wide.rs"]
mod wide;

use axum::http::StatusCode;

tower_sessions_handlers!(ts_visit, ts_read, tower_sessions::Session);

/// Counts the allocations of the calling thread.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The system allocator, counting calls.
    pub(crate) struct Counting;

    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    /// Returns how many allocations (including reallocations) were made.
    pub(crate) fn allocations() -> u64 {
        ALLOCATIONS.load(Ordering::Relaxed)
    }

    // SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
    // touches only an atomic, which does not allocate.
    #[allow(
        unsafe_code,
        reason = "a GlobalAlloc implementation is unsafe by definition"
    )]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: forwarded unchanged (see above).
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// The example's session as a newer version of the app would store it: five more fields.
#[derive(Session)]
#[session(cookie_name = "counter")]
struct Newer {
    visits: u64,
    theme: String,
    locale: String,
    cart: Vec<u64>,
    seen_banner: bool,
    last_page: String,
}

/// Writes the five fields `Counter` does not declare.
async fn seed(mut session: TypedSession<Newer>) -> &'static str {
    session.set_theme("dark".to_owned());
    session.set_locale("en-GB".to_owned());
    session.set_cart(vec![17, 4, 2048]);
    session.set_seen_banner(true);
    session.set_last_page("/products/42".to_owned());
    "seeded"
}

/// The example's routes and `/seed`.
fn with_seed() -> Router {
    routes().route("/seed", axum::routing::get(seed))
}

/// The Redis the Redis scenarios use: `REDIS_URL`, else the local default port.
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The measured requests; callgrind collects inside this function only.
#[inline(never)]
fn measure(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    path: &str,
    cookie: Option<&str>,
    count: u64,
) {
    for _ in 0..count {
        std::hint::black_box(send(runtime, app, path, cookie));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "memory-read".to_owned());
    let count: u64 = args.next().map_or(20_000, |n| n.parse().expect("a count"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (scenario_base, undeclared) = match scenario.strip_suffix("-undeclared") {
        Some(base) => (base, true),
        None => (scenario.as_str(), false),
    };
    let (store, path) = scenario_base
        .split_once('-')
        .unwrap_or((scenario_base, "write"));
    let path = if path == "read" { "/read" } else { "/" };
    let config = SessionConfig::default();
    let app = match store {
        "bare" => Router::new().route("/", axum::routing::get(|| async { 1u64.to_string() })),
        "memory" => with_seed().layer(
            runtime
                .block_on(layer(StoreChoice::Memory, None, config))
                .expect("layer"),
        ),
        "encrypted" => {
            let layer = SessionLayer::new(session_runtime::store::EncryptedCookieStore::new(
                session_runtime::store::Key::from_bytes(1, &[42; 32]).expect("32 bytes"),
            ))
            .with_config(config);
            with_seed().layer(layer)
        }
        kind @ ("redis" | "redis_wide" | "redis_wide_view") => {
            let url = redis_url();
            let store = runtime
                .block_on(
                    RedisStore::builder()
                        .key_prefix(format!("bench-requests:{}:", std::process::id()))
                        .connect(&url),
                )
                .expect("Redis answers");
            let routes = match kind {
                "redis" => with_seed(),
                "redis_wide" => Router::new()
                    .route(
                        "/",
                        axum::routing::get(wide::wide_visit::<{ wide::WIDE_REDIS_LEN }>),
                    )
                    .route("/read", axum::routing::get(wide::wide_read)),
                _ => Router::new()
                    .route(
                        "/",
                        axum::routing::get(wide::wide_view_visit::<{ wide::WIDE_REDIS_LEN }>),
                    )
                    .route("/read", axum::routing::get(wide::wide_view_read)),
            };
            routes.layer(SessionLayer::new(store).with_config(config))
        }
        "tower_sessions_memory" => Router::new()
            .route("/", axum::routing::get(ts_visit))
            .route("/read", axum::routing::get(ts_read))
            .layer(tower_sessions::SessionManagerLayer::new(
                tower_sessions::MemoryStore::default(),
            )),
        "private_jar" => jar::app(false),
        "private_jar_wide" => jar::app(true),
        peer @ ("ruts_redis"
        | "ruts_redis_wide"
        | "tower_sessions_redis"
        | "tower_sessions_redis_wide") => {
            let url = redis_url();
            let name = peer
                .replacen("tower_sessions", "tower-sessions", 1)
                .replace('_', " ");
            runtime
                .block_on(apps::build(&name, &url))
                .expect("Redis answers")
        }
        other => panic!("unknown scenario `{other}`"),
    };
    let app = served(app);
    let cookie = send(&runtime, &app, if undeclared { "/seed" } else { "/" }, None);
    let cookie = cookie.as_deref();
    let warm = (count / 10).max(100);
    for _ in 0..warm {
        std::hint::black_box(send(&runtime, &app, path, cookie));
    }
    let before = counting::allocations();
    measure(&runtime, &app, path, cookie, count);
    let allocations = counting::allocations() - before;
    println!(
        "{scenario}: {count} requests, {:.2} allocations per request",
        allocations as f64 / count as f64
    );
}
