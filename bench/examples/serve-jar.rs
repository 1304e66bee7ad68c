//! Serves one of `PrivateCookieJar`'s apps (axum-extra) in a process of its own, for the load benchmark
//! (`examples/load.rs`, which builds and starts it): a binary that links that crate alone, as
//! an application would. Arguments and protocol: `common/serve_app.rs`.
#![allow(
    dead_code,
    reason = "the shared modules hold every crate's apps; this binary serves one crate's"
)]
#![allow(clippy::print_stderr, reason = "a failed start says why")]
#![allow(
    clippy::cast_precision_loss,
    reason = "the shared server module's statistics, on counts far below 2^52"
)]

#[path = "../common/counting.rs"]
mod counting;
#[macro_use]
#[path = "../common/peers.rs"]
mod peers;
#[path = "../common/apps.rs"]
mod apps;
#[path = "../common/jar.rs"]
mod jar;
#[path = "../common/serve.rs"]
mod serve;
#[path = "../common/serve_app.rs"]
mod serve_app;
#[path = "../common/wide.rs"]
mod wide;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn main() -> std::process::ExitCode {
    serve_app::main(|app, _| async move { apps::jar(app) })
}
