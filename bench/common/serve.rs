//! A server thread for the load harnesses (`examples/load.rs`, `examples/flood.rs`): one
//! current-thread tokio runtime (or a multi-thread one with one worker), pinned to a core,
//! serving each app on a loopback port of its own, with its CPU time readable from outside; and
//! the median the harnesses report.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;

/// The cores for the server thread and for the load client: the first two, or none when the
/// machine has fewer (then both share the CPU, which the harness says).
pub(crate) fn split_cores() -> (Option<core_affinity::CoreId>, Option<core_affinity::CoreId>) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.len() >= 2 {
        (Some(cores[0]), Some(cores[1]))
    } else {
        eprintln!("note: fewer than 2 cores; server and client share the CPU");
        (None, None)
    }
}

/// Pins the calling thread, the load client's, to `core` and gives it a current-thread runtime.
pub(crate) fn client_runtime(
    core: Option<core_affinity::CoreId>,
) -> Result<tokio::runtime::Runtime, String> {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The running server thread: its kernel thread id (for [`thread_schedstat`]) and each app's
/// name and address, in the order the apps were built.
pub(crate) struct Server {
    pub(crate) tid: u32,
    pub(crate) addrs: Vec<(&'static str, SocketAddr)>,
}

/// The tokio runtime the server runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flavor {
    /// A current-thread runtime: the server thread runs every task.
    CurrentThread,
    /// The multi-thread runtime with `workers` workers (one: `#[tokio::main]` on one CPU), its
    /// threads named `server-worker` and pinned like the server thread; `on_worker_start` runs
    /// on each.
    #[allow(
        dead_code,
        reason = "the flood harness serves on the current-thread runtime only"
    )]
    MultiThread {
        workers: usize,
        on_worker_start: fn(),
    },
}

/// Starts the server thread, pinned to `core`, and serves the apps `build` makes on it (`build`
/// runs on that thread, so it may set thread-local state first) on a runtime of `flavor`.
/// Dropping or sending on the returned sender stops the server.
pub(crate) fn start_server<F, Fut>(
    core: Option<core_affinity::CoreId>,
    flavor: Flavor,
    build: F,
) -> Result<(Server, tokio::sync::oneshot::Sender<()>), String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<(&'static str, Router)>, String>>,
{
    let (info_tx, info_rx) = std::sync::mpsc::channel::<Result<Server, String>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("server".to_owned())
        .spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core);
            }
            // Threads the runtime starts inherit the server thread's core.
            let made = match flavor {
                Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                Flavor::MultiThread {
                    workers,
                    on_worker_start,
                } => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("server-worker")
                    .on_thread_start(on_worker_start)
                    .enable_all()
                    .build(),
            };
            let runtime = match made {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = info_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let apps = build();
            runtime.block_on(async move {
                let apps = match apps.await {
                    Ok(apps) => apps,
                    Err(e) => {
                        let _ = info_tx.send(Err(e));
                        return;
                    }
                };
                let mut addrs = Vec::new();
                for (name, app) in apps {
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = info_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let Ok(addr) = listener.local_addr() else {
                        let _ = info_tx.send(Err("no local address".to_owned()));
                        return;
                    };
                    addrs.push((name, addr));
                    tokio::spawn(async move {
                        let _ = axum::serve(listener, app).await;
                    });
                }
                let tid = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|path| path.file_name()?.to_str()?.parse().ok())
                    .unwrap_or(0);
                let _ = info_tx.send(Ok(Server { tid, addrs }));
                let _ = stop_rx.await;
            });
        })
        .map_err(|e| e.to_string())?;
    let server = info_rx
        .recv()
        .map_err(|_| "the server thread died".to_owned())??;
    Ok((server, stop_tx))
}

/// Field `index` of the `schedstat` of the task whose `/proc` directory is `dir`: 0 is its run
/// time so far in nanoseconds, 2 the number of times it was put on a CPU.
pub(crate) fn schedstat_field(dir: &std::path::Path, index: usize) -> Option<u64> {
    std::fs::read_to_string(dir.join("schedstat"))
        .ok()?
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

/// [`schedstat_field`] `index` of thread `tid` of this process.
pub(crate) fn thread_schedstat(tid: u32, index: usize) -> Option<u64> {
    schedstat_field(
        std::path::Path::new(&format!("/proc/self/task/{tid}")),
        index,
    )
}

/// The status code and the `Content-Length` of an HTTP/1.1 response head (0 for either when it
/// is missing), and the values of its `Set-Cookie` headers.
pub(crate) fn response_head(head: &str) -> (u16, usize, impl Iterator<Item = &str>) {
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines.filter_map(|line| line.split_once(':'));
    let length = headers
        .clone()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let cookies = headers
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.trim());
    (status, length, cookies)
}

/// The median of `values` (NaN when there are none).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// Each core's busy and steal time so far, in clock ticks (`/proc/stat`, the `cpuN` lines):
/// steal is time the hypervisor ran another guest while this one had work. Empty where
/// `/proc/stat` cannot be read.
pub(crate) fn cpu_ticks() -> Vec<(u64, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| line.starts_with("cpu") && !line.starts_with("cpu "))
        .map(|line| {
            let ticks: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|field| field.parse().unwrap_or(0))
                .collect();
            let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
            // user, nice, system, irq, softirq; then steal.
            (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
        })
        .collect()
}

/// The steal time of each core since `before` (a [`cpu_ticks`] reading), as a share of its busy
/// and stolen time together: how much of the time this guest wanted to run, another guest of
/// the host ran instead. A figure above a few percent means the run's CPU times are inflated by
/// the host's other guests (cache and scheduling effects), and its ratios deserve less trust.
/// `None` where `/proc/stat` cannot be read.
pub(crate) fn steal_report(before: &[(u64, u64)]) -> Option<String> {
    let shares: Vec<String> = before
        .iter()
        .zip(cpu_ticks())
        .enumerate()
        .map(|(core, (b, a))| {
            let busy = a.0.saturating_sub(b.0);
            let steal = a.1.saturating_sub(b.1);
            let share = if busy + steal == 0 {
                0.0
            } else {
                steal as f64 * 100.0 / (busy + steal) as f64
            };
            format!("core {core} {share:.1}%")
        })
        .collect();
    (!shares.is_empty()).then(|| {
        format!(
            "CPU steal over the run (time another guest of the host ran while this one had work): {}.",
            shares.join(", ")
        )
    })
}
