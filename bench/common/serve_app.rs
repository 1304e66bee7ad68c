//! The side of a server process of the load benchmark (`examples/load.rs`, `--servers
//! process`): the `examples/serve-*.rs` binaries, one per crate measured, each serving one of
//! that crate's apps.
//!
//! `serve-<crate> APP [--core N] [--workers N] [--redis-url URL]` pins the whole process to core
//! `N` (every thread it starts inherits it), serves `APP` (one of [`APPS`]) on a loopback port
//! on a current-thread runtime (with `--workers`, the multi-thread runtime with that many
//! workers), prints the port's address on a line, then answers each line `allocations` on its
//! standard input with its server threads' allocation count on a line of its standard output,
//! until its standard input closes (the harness ended or dropped it).

use std::future::Future;
use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;

use axum::Router;

use crate::apps::APPS;
use crate::counting;
use crate::serve::{Flavor, start_server};

/// What the process is told: the app, its core, its runtime, the Redis to use.
struct Args {
    app: &'static str,
    core: Option<usize>,
    workers: Option<usize>,
    redis_url: String,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let name = args.next().ok_or(
            "no app named; usage: serve-<crate> APP [--core N] [--workers N] [--redis-url URL]",
        )?;
        let app = APPS
            .iter()
            .copied()
            .find(|app| *app == name)
            .ok_or_else(|| format!("no app named {name:?}"))?;
        let mut parsed = Self {
            app,
            core: None,
            workers: None,
            redis_url: String::new(),
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--core" => parsed.core = Some(value()?.parse().map_err(|e| format!("{e}"))?),
                "--workers" => parsed.workers = Some(value()?.parse().map_err(|e| format!("{e}"))?),
                "--redis-url" => parsed.redis_url = value()?,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(parsed)
    }
}

/// Serves the app the arguments name, built by `build` (given the app's name and the Redis
/// URL) on the server thread, as the module's documentation says.
pub(crate) fn main<F, Fut>(build: F) -> ExitCode
where
    F: FnOnce(&'static str, String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Router, String>>,
{
    match Args::parse(std::env::args().skip(1)).and_then(|args| serve(args, build)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn serve<F, Fut>(args: Args, build: F) -> Result<(), String>
where
    F: FnOnce(&'static str, String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Router, String>>,
{
    let core = args.core.map(|id| core_affinity::CoreId { id });
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
    let flavor = match args.workers {
        Some(workers) => Flavor::MultiThread {
            workers,
            on_worker_start: counting::enable_on_this_thread,
        },
        None => Flavor::CurrentThread,
    };
    let (app, redis_url) = (args.app, args.redis_url);
    let (server, stop) = start_server(core, flavor, move || {
        counting::enable_on_this_thread();
        async move { Ok(vec![(app, build(app, redis_url).await?)]) }
    })?;
    let mut out = std::io::stdout().lock();
    let mut reply = |text: String| {
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    reply(server.addrs[0].1.to_string())?;
    for line in std::io::stdin().lock().lines() {
        match line.map_err(|e| e.to_string())?.as_str() {
            "allocations" => reply(counting::allocations().to_string())?,
            other => return Err(format!("unknown query {other:?}")),
        }
    }
    let _ = stop.send(());
    Ok(())
}
