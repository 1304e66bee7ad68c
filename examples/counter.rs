//! The counter example server. The tests, the load benchmark and `.ci/smoke-example` drive this
//! interface: keep it stable.
//!
//! ```text
//! cargo run --release -p session-examples --example counter -- \
//!     [--store memory|simple|encrypted|redis|redis-cluster|postgres|sqlite] \
//!     [--addr 127.0.0.1:3000] [--redis-url URL] [--database-url URL] [--redis-wait N] \
//!     [--insecure] [--cookie-name counter|__Host-counter]
//! ```
//!
//! `GET /` counts visits, `GET /read` shows the count without changing it, `GET /a` and `GET /b`
//! bump two separate fields and answer `a,b`, `POST /login?user=N` regenerates the session and
//! sets the user, `GET /whoami` answers the user or `anonymous`, `POST /logout` invalidates.
//! `GET /sessions` lists the user's sessions (`HANDLE CREATED current|other` per line),
//! `POST /sessions/revoke?handle=H` ends one, `POST /logout-everywhere` all of them and
//! `POST /logout-others` all but this one (501 on the cookie stores). `--database-url` names the
//! database of `--store postgres` (default: the local server) and `--store sqlite` (default: a
//! file under `target/`; `sqlite://PATH` creates a missing file). `--redis-wait N` makes each
//! Redis save wait for N replicas' acknowledgement. `--max-age SECS` sets the idle timeout,
//! `--memory-capacity N` the memory store's capacity. `--help` lists the flags.
//! `--insecure` drops the `Secure` cookie attribute for plain-HTTP testing. `--cookie-name
//! __Host-counter` serves the same routes under a `__Host-` cookie (refused with `--insecure`,
//! which browsers would drop; `http://localhost` counts as secure in browsers). The encrypted store
//! reads its key from `SESSION_KEY` (32 bytes, base64). Ctrl-C stops it cleanly.

use std::net::SocketAddr;
use std::process::ExitCode;

use session_examples::{Backends, CookieName, StoreChoice, app, layer_with};
use session_runtime::config::SessionConfig;

const USAGE: &str =
    "usage: counter [--store memory|simple|encrypted|redis|redis-cluster|postgres|sqlite]
               [--addr 127.0.0.1:3000] [--redis-url URL(,URL...)] [--database-url URL]
               [--redis-wait N] [--cookie-name counter|__Host-counter] [--insecure]
               [--max-age SECS] [--memory-capacity N]

--redis-wait N: each Redis save waits (up to 500 ms) until N replicas acknowledged it;
                fewer in time answers 503 (see RedisStoreBuilder::wait_for_replicas)
--max-age SECS: the sessions' idle timeout (default one day)
--memory-capacity N: how many sessions the memory store holds (default 100,000)";

struct Args {
    store: StoreChoice,
    addr: SocketAddr,
    redis_url: Option<String>,
    database_url: Option<String>,
    redis_wait: u32,
    max_age: Option<u64>,
    memory_capacity: Option<usize>,
    insecure: bool,
    cookie_name: CookieName,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        store: StoreChoice::Memory,
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        redis_url: None,
        database_url: None,
        redis_wait: 0,
        max_age: None,
        memory_capacity: None,
        insecure: false,
        cookie_name: CookieName::Counter,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => args.store = value("--store")?.parse()?,
            "--addr" => {
                args.addr = value("--addr")?
                    .parse()
                    .map_err(|e| format!("invalid --addr: {e}"))?;
            }
            "--redis-url" => args.redis_url = Some(value("--redis-url")?),
            "--database-url" => args.database_url = Some(value("--database-url")?),
            "--max-age" => {
                args.max_age = Some(
                    value("--max-age")?
                        .parse()
                        .map_err(|e| format!("invalid --max-age: {e}"))?,
                );
            }
            "--memory-capacity" => {
                args.memory_capacity = Some(
                    value("--memory-capacity")?
                        .parse()
                        .map_err(|e| format!("invalid --memory-capacity: {e}"))?,
                );
            }
            "--redis-wait" => {
                args.redis_wait = value("--redis-wait")?
                    .parse()
                    .map_err(|e| format!("invalid --redis-wait: {e}"))?;
            }
            "--help" | "-h" => return Err(String::new()),
            "--insecure" => args.insecure = true,
            "--cookie-name" => args.cookie_name = value("--cookie-name")?.parse()?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// The runtime for the CPUs this process may use: the multi-thread one, as `#[tokio::main]`
/// builds it (a worker per CPU, or `TOKIO_WORKER_THREADS`), unless that would be one worker
/// (one CPU by `taskset` or a cgroup quota, or `TOKIO_WORKER_THREADS=1`); then a current-thread
/// runtime: one thread then runs everything without the multi-thread scheduler's cross-thread
/// machinery. On the load benchmark (`bench/RESULTS.md`, 2026-12-06, second session), the
/// example on the multi-thread runtime cost 15% more per Redis request than on the current-thread
/// one until the Redis client's writes were batched (`vendor/redis/PATCH.md`, part 3); on the
/// other rows the difference was within the noise between runs.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

fn main() -> ExitCode {
    session_examples::init_tracing();
    match runtime() {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            tracing::error!(%error, "cannot start the tokio runtime");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            #[expect(clippy::print_stdout, reason = "the answer to --help")]
            {
                println!("{USAGE}");
            }
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            tracing::error!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.redis_url.is_some()
        && !matches!(args.store, StoreChoice::Redis | StoreChoice::RedisCluster)
    {
        tracing::warn!("--redis-url is ignored by the {:?} store", args.store);
    }
    if args.database_url.is_some()
        && !matches!(args.store, StoreChoice::Postgres | StoreChoice::Sqlite)
    {
        tracing::warn!("--database-url is ignored by the {:?} store", args.store);
    }
    let mut config = SessionConfig::default().with_secure(!args.insecure);
    if let Some(secs) = args.max_age {
        config = config.with_default_max_age(std::time::Duration::from_secs(secs.max(1)));
    }
    let backends = Backends {
        redis_url: args.redis_url.as_deref(),
        database_url: args.database_url.as_deref(),
        redis_wait: args.redis_wait,
        memory_capacity: args.memory_capacity,
    };
    let layer = match layer_with(args.store, &backends, config).await {
        Ok(layer) => layer,
        Err(error) => {
            tracing::error!(error = &error as &dyn std::error::Error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let app = match app(args.cookie_name, layer) {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "invalid cookie settings"
            );
            return ExitCode::from(2);
        }
    };
    tracing::info!(store = ?args.store, "counter example starting");
    session_examples::serve(args.addr, app, "counter example").await
}
