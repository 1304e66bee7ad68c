//! Serves one of ruts's apps (its Redis store) in a process of its own, for the load benchmark
//! (`examples/load.rs`, which builds and starts it): a binary that links that crate alone, as
//! an application would. Arguments and protocol: `common/serve_app.rs`.
#![allow(
    dead_code,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "shared modules (each binary serves one crate's apps); a failed start says why; statistics on counts far below 2^52"
)]

include!("../common/serve_bin.rs");

fn main() -> std::process::ExitCode {
    serve_app::main(|app, redis_url| async move { apps::ruts(app, &redis_url).await })
}
