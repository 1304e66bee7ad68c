//! Load benchmark: session-runtime against a bare axum handler, tower-sessions, ruts and
//! axum-extra's `PrivateCookieJar`, each in a process of its own, in one run with interleaved
//! rounds.
//!
//! The Redis scenarios need Redis 7.4 or newer (ruts writes with `HEXPIRE`): build Redis 8.0.2
//! with `cargo xtask redis8` and run with
//! `REDIS_SERVER_BIN=$PWD/target/redis-8.0.2/src/redis-server`; with an older server the run
//! stops and says so (or leave ruts out with `--only`).
//!
//! The scaling rows (`wide`): a session of a counter and 39 strings (`session_bench::Wide`),
//! about 4 KB on Redis (100-byte strings) and about 2 KB in the cookies (50-byte strings: 4 KB
//! would not fit in a cookie once sealed); a write changes the counter, a read reads the counter
//! and one string. On Redis, our handlers use views of it, each with the fields its request uses:
//! `session_bench::WideVisits` (the counter) for a write, `session_bench::WideHead` (the counter
//! and the string) for a read; a new session is turned into the whole type to get every field.
//! The rows `ours redis wide whole` run the same requests through the whole type. tower-sessions
//! and ruts keep one entry per field; `PrivateCookieJar` one
//! cookie holding the JSON of the same struct. Besides server and Redis CPU, the Redis rows
//! report the bytes sent to Redis per request (`total_net_input_bytes`). A second table sets
//! each of our rows against the best peer measured for it, and the scaling rows against every
//! peer.
//!
//! Each crate's apps are served by a binary of their own, one process per app, as an
//! application would run them: `examples/serve-bare.rs`, `serve-ours.rs`,
//! `serve-tower-sessions.rs`, `serve-ruts.rs` and `serve-jar.rs` (each links its crate alone;
//! the apps are in `common/apps.rs`, the process's side of the protocol in
//! `common/serve_app.rs`). The harness builds them (`cargo build --release -p session-bench
//! --example serve-...`) and starts each pinned to the server's core; server CPU is then the run
//! time of every thread of the process, and the allocations its server threads made, which it
//! reports over a pipe. Until 2026-12-06 every app ran in this harness's own process; that is
//! still `--servers thread`. In one shared binary and heap, the code and data of every crate
//! sat side by side, and a row's figures depended on its neighbours (`bench/RESULTS.md`,
//! 2026-12-06, fifth session). The SQL apps stay in this process (their database probes look
//! at its threads and connections).
//!
//! The example binary (`examples/counter.rs`, rows `example ...`): the harness builds it
//! (`cargo build --release -p session-examples --example counter`), starts it once per store
//! (memory, encrypted, Redis; again before each round with `--fresh-servers`) as a process of
//! its own pinned to the server's core with `taskset`, as outside harnesses run it (it then
//! picks a current-thread runtime), and counts the run time of all its threads as server CPU
//! (allocations are not counted there). Its rows face the same peers.
//!
//! `--runtime multi` serves the apps (ours and the peers) on tokio's
//! multi-thread runtime with one worker, what `#[tokio::main]` builds on one CPU, instead of a
//! current-thread runtime; server CPU is then every thread of that runtime. The example binary
//! keeps its own choice (current-thread, pinned to one core), so with `--runtime multi` its rows
//! set it against peers on the multi-thread runtime: compare it with the rows of the
//! run without the option. `--workers N` gives that runtime N workers, and `--server-cores all`
//! leaves the servers unpinned, free to run on every core (the client keeps the
//! second): how a server with several workers on several cores fares, on a machine with too
//! few cores to give them their own.
//!
//! ```text
//! cargo run --release -p session-bench --example load            # full run
//! cargo run --release -p session-bench --example load -- --quick # 3 short rounds
//! cargo run --release -p session-bench --example load -- --only postgres # the SQL rows
//! cargo run --release -p session-bench --example load -- --only sqlite
//! ```
//!
//! How long each takes is in CONTRIBUTING.md.
//!
//! Options: `--rounds N`, `--secs S` (measured seconds per scenario and round), `--connections
//! N`, `--only WORD[,WORD...]` (scenarios whose name contains one of the words; `bare` always
//! runs), `--servers process|thread`, `--runtime current|multi`, `--workers N`,
//! `--server-cores first|all` (above), `--fresh-servers` (every server process, `serve-*` and
//! the example binary, started again before each round, with new clients: the process an app
//! runs in moves its figure by several percent, and without the option a run measures one
//! process per app for all its rounds, a factor every round shares; the option removes it,
//! though not the host's drifting load, nor Redis or the SQL apps, which run in this harness
//! and are not restarted), `--redis-url URL`
//! (use that Redis instead of a private `redis-server`), `--database-url URL` (the PostgreSQL
//! of the `postgres` scenarios; default `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! The SQL scenarios (our `PostgresStore` and `SqliteStore` against tower-sessions-sqlx-store
//! 0.15's, on tower-sessions 0.14) run only when `--only` names them, with a WORD containing
//! `postgres` or `sqlite`: the default run (33 scenarios) needs no database.
//! Each store gets a table of its own (ours `bench_ours_<pid>`, the peer's `session` in the
//! schema `bench_tss_<pid>`) or an SQLite file of its own in the temporary directory (WAL,
//! `synchronous = NORMAL`), created at the start and dropped or deleted at the end; both sides
//! get pools of 8 connections without `test_before_acquire`. Database CPU per request: on
//! PostgreSQL, the run time of the backends serving the scenario's pool (found by
//! `application_name` in `pg_stat_activity`, read from `/proc/<pid>/schedstat`, and moved to
//! the client's core like the private `redis-server`), and apart from it that of every
//! `postgres` process of the server (WAL writer, checkpointer and any other client included);
//! on SQLite, which runs inside this process on one sqlx worker thread per connection (not the
//! server thread, so not in server CPU; the workers inherit the server thread's core), the run
//! time of the scenario's pool's worker threads.
//!
//! Each server (one current-thread tokio runtime, or with `--runtime multi` a multi-thread one
//! with one worker) is pinned to the first core, the load client
//! (another current-thread runtime, plain HTTP/1.1 keep-alive, one session per connection) and
//! the private `redis-server` to the second. Each round runs every scenario once, bare first,
//! then one block per row (tower-sessions', ours, ruts' or the jar's, the example binary's, so
//! that what a row compares runs back to back), the blocks in a rotated order and every other
//! round backwards; every figure is the median over rounds, and every ratio the
//! median of the per-round ratios to bare. Server CPU is the run time of every thread of the
//! server's process from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds) over the measured
//! window (with `--servers thread`, of the server thread and the runtime's workers in this
//! process); allocations are counted on the server's threads only (not in the example binary);
//! Redis commands come from `INFO commandstats` deltas.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use session_bench::Verdict;
use session_examples::routes;
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::store::{PostgresStore, SqliteStore};
use session_tests::redis::{OwnRedis, redis_server_bin};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[path = "../common/serve.rs"]
mod serve;
#[macro_use]
#[path = "../common/peers.rs"]
mod peers;
#[path = "../common/apps.rs"]
mod apps;
#[path = "../common/jar.rs"]
mod jar;
#[path = "../common/wide.rs"]
mod wide;
use apps::{APPS, is_sql_app};
use serve::{
    Flavor, client_runtime, cpu_ticks, median, response_head, schedstat_field, split_cores,
    start_server, steal_report, thread_schedstat,
};

#[path = "../common/counting.rs"]
mod counting;

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

#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line switches"
)]
struct Options {
    rounds: usize,
    secs: f64,
    warmup: f64,
    connections: usize,
    only: Option<String>,
    redis_url: Option<String>,
    database_url: String,
    /// `--runtime multi`: the servers on the multi-thread runtime, with `workers`
    /// workers (`--workers`, default one).
    multi_thread: bool,
    workers: usize,
    /// `--server-cores all`: the server thread (and its workers) not pinned, free to run on every
    /// core, the client's too; by default it is pinned to the first core.
    server_on_all_cores: bool,
    /// `--servers process` (the default): each app but the SQL ones served by a process of its
    /// own, a `serve-*` binary (`common/serve_app.rs`); `--servers thread`: all in this
    /// process.
    own_processes: bool,
    /// `--fresh-servers`: every server process (`serve-*` and the example binary) started again
    /// before each round, so that the process is no longer a factor all rounds share (see the
    /// options above).
    fresh_servers: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        rounds: 9,
        secs: 1.0,
        warmup: 0.25,
        connections: 32,
        only: None,
        redis_url: None,
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned()),
        multi_thread: false,
        workers: 1,
        server_on_all_cores: false,
        own_processes: true,
        fresh_servers: false,
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
            "--database-url" => options.database_url = value("--database-url")?,
            "--runtime" => {
                options.multi_thread = match value("--runtime")?.as_str() {
                    "current" => false,
                    "multi" => true,
                    other => return Err(format!("--runtime takes current or multi, not {other}")),
                };
            }
            "--workers" => {
                options.workers = value("--workers")?.parse().map_err(|e| format!("{e}"))?;
            }
            "--server-cores" => {
                options.server_on_all_cores = match value("--server-cores")?.as_str() {
                    "first" => false,
                    "all" => true,
                    other => {
                        return Err(format!("--server-cores takes first or all, not {other}"));
                    }
                };
            }
            "--servers" => {
                options.own_processes = match value("--servers")?.as_str() {
                    "process" => true,
                    "thread" => false,
                    other => return Err(format!("--servers takes process or thread, not {other}")),
                };
            }
            "--fresh-servers" => options.fresh_servers = true,
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
    if options.workers == 0 || (options.workers > 1 && !options.multi_thread) {
        return Err(
            "--workers takes a positive number, and more than one needs --runtime multi".to_owned(),
        );
    }
    if options.fresh_servers && !options.own_processes {
        return Err("--fresh-servers needs the servers in processes of their own".to_owned());
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

/// The server's version (`INFO server`), as numbers.
fn redis_version(addr: SocketAddr) -> Result<Vec<u32>, String> {
    let info = redis_info(addr, "server").map_err(|e| format!("INFO server: {e}"))?;
    info.lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))
        .map(|version| {
            version
                .split('.')
                .map(|part| part.parse().unwrap_or(0))
                .collect()
        })
        .ok_or_else(|| "no redis_version in INFO server".to_owned())
}

/// ruts writes each field with `HEXPIRE`, which Redis has from 7.4 on.
fn check_redis_for_ruts(addr: SocketAddr) -> Result<(), String> {
    let version = redis_version(addr)?;
    if version.as_slice() >= [7, 4].as_slice() {
        return Ok(());
    }
    let shown: Vec<String> = version.iter().map(ToString::to_string).collect();
    Err(format!(
        "the ruts scenarios need Redis 7.4 or newer (HEXPIRE); this redis-server is {}. \
         Build Redis 8.0 with `cargo xtask redis8`, then run with \
         REDIS_SERVER_BIN=$PWD/target/redis-8.0.2/src/redis-server (or pass --redis-url to one), \
         or leave ruts out with --only",
        shown.join(".")
    ))
}

#[derive(Default, Clone)]
struct RedisSnapshot {
    calls: BTreeMap<String, u64>,
    cpu_secs: f64,
    /// `total_net_input_bytes`: everything clients sent.
    input_bytes: u64,
    /// `total_reads_processed`: the reads from clients' sockets.
    reads: u64,
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
    if let Ok(text) = redis_info(addr, "stats") {
        let stat = |name: &str| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        snapshot.input_bytes = stat("total_net_input_bytes");
        snapshot.reads = stat("total_reads_processed");
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
// SQL databases: a table or file per store, and the database's CPU per scenario.

/// The PostgreSQL used when neither `--database-url` nor `DATABASE_URL` is given.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connections per SQL pool, ours and the peer's alike.
const SQL_POOL_SIZE: u32 = 8;

/// The pools' acquire timeout, SQLite's busy timeout and our stores' operation timeout: long
/// enough that a busy 2-core machine does not turn queueing into errors.
const SQL_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQL side of a run: what the SQL scenarios create, derived from this process's id.
#[derive(Clone)]
struct SqlPlan {
    /// The PostgreSQL URL, when a `postgres` scenario runs.
    postgres: Option<String>,
    /// Whether a `sqlite` scenario runs.
    sqlite: bool,
    pid: u32,
}

/// Which side of a SQL comparison a name belongs to.
#[derive(Clone, Copy)]
enum Side {
    Ours,
    Peer,
}

impl Side {
    fn tag(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Peer => "tss",
        }
    }
}

impl SqlPlan {
    /// Our PostgreSQL table, in the connection's default schema.
    fn ours_table(&self) -> String {
        format!("bench_ours_{}", self.pid)
    }

    /// The peer's PostgreSQL schema (its table is `session` in it).
    fn peer_schema(&self) -> String {
        format!("bench_tss_{}", self.pid)
    }

    /// The `application_name` of a side's PostgreSQL connections.
    fn application_name(&self, side: Side) -> String {
        format!("session-bench-{}-{}", side.tag(), self.pid)
    }

    /// A side's SQLite file (its `-wal` and `-shm` files sit next to it).
    fn sqlite_path(&self, side: Side) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("session-bench-{}-{}.sqlite", self.pid, side.tag()))
    }

    /// The probe of the database work of app `app`'s scenarios, for a SQL app.
    fn probe(&self, app: &str) -> Option<DbProbe> {
        let side = if app.starts_with("ours ") {
            Side::Ours
        } else {
            Side::Peer
        };
        if app.ends_with(" postgres") {
            Some(DbProbe::Postgres {
                application_name: self.application_name(side),
            })
        } else if app.ends_with(" sqlite") {
            Some(DbProbe::Sqlite {
                thread_prefix: sqlite_thread_prefix(side),
            })
        } else {
            None
        }
    }

    /// Drops the tables and deletes the files (whatever exists of them).
    fn clean_up(&self) {
        if let Some(url) = &self.postgres {
            let statements = [
                format!("DROP TABLE IF EXISTS \"{}\"", self.ours_table()),
                format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.peer_schema()),
            ];
            let dropped = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime.block_on(async {
                        use sqlx::Connection as _;
                        let mut conn = sqlx::PgConnection::connect(url)
                            .await
                            .map_err(|e| e.to_string())?;
                        for sql in statements {
                            sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        conn.close().await.map_err(|e| e.to_string())
                    })
                });
            if let Err(e) = dropped {
                eprintln!(
                    "warning: could not drop table {} and schema {}: {e}",
                    self.ours_table(),
                    self.peer_schema()
                );
            }
        }
        if self.sqlite {
            for side in [Side::Ours, Side::Peer] {
                let path = self.sqlite_path(side);
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}

/// The name prefix of a side's sqlx SQLite worker threads (one per connection).
fn sqlite_thread_prefix(side: Side) -> &'static str {
    match side {
        Side::Ours => "sqlite-ours-",
        Side::Peer => "sqlite-tss-",
    }
}

/// Our PostgreSQL app: `PostgresStore` on its own table.
async fn ours_postgres(plan: &SqlPlan, url: &str, config: SessionConfig) -> Result<Router, String> {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .application_name(&plan.application_name(Side::Ours));
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(SQL_POOL_SIZE)
        .acquire_timeout(SQL_TIMEOUT)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}"))?;
    let store = PostgresStore::new(pool)
        .with_table(&plan.ours_table())
        .map_err(|e| e.to_string())?
        .with_timeout(SQL_TIMEOUT);
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(routes().layer(SessionLayer::new(store).with_config(config)))
}

/// tower-sessions-sqlx-store's PostgreSQL app, on a schema of its own.
async fn peer_postgres(plan: &SqlPlan, url: &str) -> Result<Router, String> {
    use std::str::FromStr as _;
    use tower_sessions_sqlx_store::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .application_name(&plan.application_name(Side::Peer));
    let pool = PgPoolOptions::new()
        .max_connections(SQL_POOL_SIZE)
        .acquire_timeout(SQL_TIMEOUT)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}"))?;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
        .with_schema_name(plan.peer_schema())?
        .with_table_name("session")?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(Router::new()
        .route("/", get(ts14_visit))
        .route("/read", get(ts14_read))
        .layer(tower_sessions_014::SessionManagerLayer::new(store)))
}

/// Our SQLite app: `SqliteStore` on a file of its own, configured like the peer's pool.
async fn ours_sqlite(plan: &SqlPlan, config: SessionConfig) -> Result<Router, String> {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let options = SqliteConnectOptions::new()
        .filename(plan.sqlite_path(Side::Ours))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQL_TIMEOUT)
        .thread_name(|id| format!("{}{id}", sqlite_thread_prefix(Side::Ours)));
    let pool = SqlitePoolOptions::new()
        .max_connections(SQL_POOL_SIZE)
        .acquire_timeout(SQL_TIMEOUT)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    let store = SqliteStore::new(pool).with_timeout(SQL_TIMEOUT);
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(routes().layer(SessionLayer::new(store).with_config(config)))
}

/// tower-sessions-sqlx-store's SQLite app: the same pool settings, on sqlx 0.8.
async fn peer_sqlite(plan: &SqlPlan) -> Result<Router, String> {
    use tower_sessions_sqlx_store::sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let options = SqliteConnectOptions::new()
        .filename(plan.sqlite_path(Side::Peer))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQL_TIMEOUT)
        .thread_name(|id| format!("{}{id}", sqlite_thread_prefix(Side::Peer)));
    let pool = SqlitePoolOptions::new()
        .max_connections(SQL_POOL_SIZE)
        .acquire_timeout(SQL_TIMEOUT)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(Router::new()
        .route("/", get(ts14_visit))
        .route("/read", get(ts14_read))
        .layer(tower_sessions_014::SessionManagerLayer::new(store)))
}

/// Where a SQL scenario's database work runs.
#[derive(Clone)]
enum DbProbe {
    /// The PostgreSQL backends of the connections named so.
    Postgres { application_name: String },
    /// This process's threads whose name starts so (sqlx's SQLite workers).
    Sqlite { thread_prefix: &'static str },
}

/// A connection of the load client's to PostgreSQL, to find the backends of a pool.
struct PgMonitor {
    conn: sqlx::PgConnection,
    /// The client's core, where the backends are moved (with `taskset`, when it is there).
    core: Option<usize>,
    pinned: std::collections::BTreeSet<i32>,
}

impl PgMonitor {
    async fn connect(url: &str, core: Option<usize>) -> Result<Self, String> {
        use sqlx::Connection as _;
        let conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}"))?;
        let has_taskset = Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Self {
            conn,
            core: core.filter(|_| has_taskset),
            pinned: std::collections::BTreeSet::new(),
        })
    }

    /// The process ids of the backends of connections named `application_name`, each moved
    /// to the client's core the first time it is seen.
    async fn backends(&mut self, application_name: &str) -> Result<Vec<i32>, String> {
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(application_name)
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| e.to_string())?;
        if let Some(core) = self.core {
            for pid in &pids {
                if self.pinned.insert(*pid) {
                    let _ = Command::new("taskset")
                        .args(["-pc", &core.to_string(), &pid.to_string()])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        Ok(pids)
    }
}

/// The run time so far, in nanoseconds, of the task whose `/proc` directory is `dir`.
fn schedstat_ns(dir: &std::path::Path) -> Option<u64> {
    schedstat_field(dir, SCHED_NS)
}

/// The run time of every task under `dir` (`/proc` or `/proc/self/task`) whose name `keep`
/// accepts, by task id.
fn tasks_ns(dir: &str, keep: impl Fn(&str) -> bool) -> BTreeMap<i64, u64> {
    tasks_field(dir, keep, SCHED_NS)
}

/// [`schedstat_field`] `index` of every task under `dir` whose name `keep` accepts, by task id.
fn tasks_field(dir: &str, keep: impl Fn(&str) -> bool, index: usize) -> BTreeMap<i64, u64> {
    let mut tasks = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return tasks;
    };
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if keep(comm.trim_end()) {
            if let Some(value) = schedstat_field(&path, index) {
                tasks.insert(id, value);
            }
        }
    }
    tasks
}

/// What each task of `after` added since `before` (all of it for a task that started in
/// between), summed: run time in nanoseconds, or times put on a CPU.
fn delta(before: &BTreeMap<i64, u64>, after: &BTreeMap<i64, u64>) -> u64 {
    after
        .iter()
        .map(|(id, ns)| ns.saturating_sub(before.get(id).copied().unwrap_or(0)))
        .sum()
}

/// The run time of the scenario's database tasks and of all of PostgreSQL, by task.
#[derive(Default)]
struct DbSnapshot {
    probe: BTreeMap<i64, u64>,
    postgres: BTreeMap<i64, u64>,
}

/// Takes a [`DbSnapshot`]; `before` says whether it opens the measured window (then all of
/// PostgreSQL is read after the monitor's query, else before it, so the query stays outside).
async fn db_snapshot(
    probe: &DbProbe,
    monitor: Option<&mut PgMonitor>,
    before: bool,
) -> Result<DbSnapshot, String> {
    Ok(match probe {
        DbProbe::Postgres { application_name } => {
            let monitor = monitor.ok_or("no PostgreSQL monitor connection")?;
            let all = |comm: &str| comm == "postgres";
            let early = if before {
                BTreeMap::new()
            } else {
                tasks_ns("/proc", all)
            };
            let pids = monitor.backends(application_name).await?;
            let probe = pids
                .iter()
                .filter_map(|pid| {
                    let ns = schedstat_ns(std::path::Path::new(&format!("/proc/{pid}")))?;
                    Some((i64::from(*pid), ns))
                })
                .collect();
            DbSnapshot {
                probe,
                postgres: if before {
                    tasks_ns("/proc", all)
                } else {
                    early
                },
            }
        }
        DbProbe::Sqlite { thread_prefix } => DbSnapshot {
            probe: tasks_ns("/proc/self/task", |comm| comm.starts_with(thread_prefix)),
            postgres: BTreeMap::new(),
        },
    })
}

// The SQL peers' handlers (tower-sessions 0.14's, as on Redis).
tower_sessions_handlers!(ts14_visit, ts14_read, tower_sessions_014::Session);

/// Builds app `name` (one of [`APPS`]); the Redis apps on `redis_url`, the SQL apps as `sql`
/// plans them.
async fn build_app(name: &str, redis_url: &str, sql: &SqlPlan) -> Result<Router, String> {
    let config = SessionConfig::default();
    match name {
        "ours postgres" => match &sql.postgres {
            Some(url) => ours_postgres(sql, url, config).await,
            None => Err("no PostgreSQL planned".to_owned()),
        },
        "tower-sessions postgres" => match &sql.postgres {
            Some(url) => peer_postgres(sql, url).await,
            None => Err("no PostgreSQL planned".to_owned()),
        },
        "ours sqlite" => ours_sqlite(sql, config).await,
        "tower-sessions sqlite" => peer_sqlite(sql).await,
        other => apps::build(other, redis_url).await,
    }
}

/// Builds the apps `names` (each one of [`APPS`]), in that order.
async fn build_apps(
    names: Vec<&'static str>,
    redis_url: &str,
    sql: &SqlPlan,
) -> Result<Vec<(&'static str, Router)>, String> {
    let mut apps = Vec::new();
    for name in names {
        apps.push((name, build_app(name, redis_url, sql).await?));
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

// ---------------------------------------------------------------------------------------------
// The example binary, `examples/counter.rs`, in a process of its own as outside harnesses run it.

/// The stores the example binary is measured on, as its `--store` names them.
const EXAMPLE_STORES: [&str; 3] = ["memory", "encrypted", "redis"];

/// A server in a process of its own, the example binary or a `serve-*` binary serving one app
/// (`common/serve_app.rs`); killed when dropped.
struct ChildServer {
    child: std::process::Child,
    addr: SocketAddr,
    /// This harness's own children: where to ask for their allocation count.
    control: Option<Arc<std::sync::Mutex<Control>>>,
}

impl ChildServer {
    /// Stops the process and reaps it; stopping it again (or dropping it) does nothing more.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The pipes to a `serve-*` binary: it answers each line `allocations` on its standard input
/// with its server threads' allocation count on a line of its standard output.
struct Control {
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl Control {
    fn allocations(&mut self) -> Result<u64, String> {
        use std::io::BufRead as _;
        self.input
            .write_all(b"allocations\n")
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("cannot ask a server process for its allocations: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("no allocation count from a server process: {e}"))?;
        line.trim()
            .parse()
            .map_err(|_| format!("a server process answered {line:?} for its allocations"))
    }
}

/// Starts `bin` (a `serve-*` binary, `common/serve_app.rs`) serving app `app`, pinned to
/// `core`, on the runtime `options` ask for, and waits for the address it listens on.
fn start_app_process(
    bin: &std::path::Path,
    app: &'static str,
    core: Option<usize>,
    options: &Options,
    redis_url: &str,
) -> Result<ChildServer, String> {
    use std::io::BufRead as _;
    let mut command = Command::new(bin);
    command.arg(app);
    if let Some(core) = core {
        command.args(["--core", &core.to_string()]);
    }
    if options.multi_thread {
        command.args(["--workers", &options.workers.to_string()]);
    }
    if !redis_url.is_empty() {
        command.args(["--redis-url", redis_url]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the server process of {app}: {e}"))?;
    let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(format!("the server process of {app} has no pipes"));
    };
    let mut control = Control {
        input,
        output: std::io::BufReader::new(output),
    };
    let mut line = String::new();
    let read = control.output.read_line(&mut line);
    let mut server = ChildServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        control: None,
    };
    if let (Ok(_), Ok(addr)) = (read, line.trim().parse()) {
        server.addr = addr;
    } else {
        let status = server.child.wait().map_err(|e| e.to_string())?;
        return Err(format!(
            "the server process of {app} did not start ({status})"
        ));
    }
    server.control = Some(Arc::new(std::sync::Mutex::new(control)));
    Ok(server)
}

/// Builds the binaries a run needs in release, the example binary (`session-examples`'s
/// `counter`) and the binaries serving the apps (`session-bench`'s `serve-*`), in one `cargo
/// build` (a no-op when they are up to date), and returns the paths cargo reports for them by
/// name, so that the binaries measured are always the ones just built, whatever the target
/// directory.
fn build_binaries(names: &[String]) -> Result<BTreeMap<String, std::path::PathBuf>, String> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--quiet"]);
    for package in ["session-examples", "session-bench"] {
        command.args(["-p", package]);
    }
    for name in names {
        command.args(["--example", name]);
    }
    let shown = format!(
        "cargo build --release -p session-examples -p session-bench --example {}",
        names.join(" --example ")
    );
    let output = command
        .arg("--message-format=json-render-diagnostics")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if !output.status.success() {
        return Err(format!("`{shown}` failed ({})", output.status));
    }
    let built: BTreeMap<String, std::path::PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?.to_owned();
            let path = message["executable"].as_str()?.into();
            names.contains(&name).then_some((name, path))
        })
        .collect();
    match names.iter().find(|name| !built.contains_key(*name)) {
        Some(name) => Err(format!("`{shown}` named no executable for {name}")),
        None => Ok(built),
    }
}

/// Starts the example binary with `--store store` on a free loopback port, pinned to `core`
/// (with `taskset`) with one tokio worker, as outside harnesses run it, and waits until it
/// accepts connections.
fn start_example(
    bin: &std::path::Path,
    store: &str,
    core: Option<usize>,
    redis_url: Option<&str>,
) -> Result<ChildServer, String> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| e.to_string())?;
    let mut command = match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(bin);
            command
        }
        None => Command::new(bin),
    };
    command
        .args(["--store", store, "--insecure", "--addr", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::null());
    if let Some(url) = redis_url.filter(|_| store == "redis") {
        command.args(["--redis-url", url]);
    }
    let child = command.spawn().map_err(|e| {
        format!(
            "cannot start the example binary {} (pinned with `taskset`, from util-linux): {e}",
            bin.display()
        )
    })?;
    let mut server = ChildServer {
        child,
        addr,
        control: None,
    };
    let started = Instant::now();
    loop {
        if StdStream::connect(addr).is_ok() {
            return Ok(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "the example binary ({store}) exited at start: {status}"
            ));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "the example binary ({store}) did not listen within 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How this run starts its server processes: at the start, and again before each round with
/// `--fresh-servers`.
struct ServerStarts<'a> {
    binaries: &'a BTreeMap<String, std::path::PathBuf>,
    app_core: Option<usize>,
    example_core: Option<usize>,
    options: &'a Options,
    redis_url: &'a str,
    example_redis_url: Option<&'a str>,
}

impl ServerStarts<'_> {
    /// A `serve-*` process serving `app`.
    fn app(&self, app: &'static str) -> Result<ChildServer, String> {
        let bin = &self.binaries[&format!("serve-{}", apps::crate_of(app))];
        start_app_process(bin, app, self.app_core, self.options, self.redis_url)
    }

    /// The example binary on `store`.
    fn example(&self, store: &str) -> Result<ChildServer, String> {
        start_example(
            &self.binaries["counter"],
            store,
            self.example_core,
            self.example_redis_url,
        )
    }
}

/// Each server process's app name (the example binary's as `example <store>`), address and
/// server, as the scenarios name them.
fn process_servers(
    app_servers: &[(&'static str, ChildServer)],
    examples: &[(&str, ChildServer)],
) -> Vec<(String, SocketAddr, ServerSide)> {
    app_servers
        .iter()
        .map(|(app, child)| ((*app).to_owned(), child.addr, ServerSide::of(child)))
        .chain(examples.iter().map(|(store, child)| {
            (
                format!("example {store}"),
                child.addr,
                ServerSide::of(child),
            )
        }))
        .collect()
}

/// `--fresh-servers`: stops every server process and starts it again, then points each
/// scenario at its server's new process with new clients (a new process of the memory store,
/// or of a cookie store with a key of its own, knows none of the old sessions; the warm-up
/// creates them again).
fn restart_servers(
    app_servers: &mut [(&'static str, ChildServer)],
    examples: &mut [(&str, ChildServer)],
    scenarios: &mut [Scenario],
    starts: &ServerStarts<'_>,
) -> Result<(), String> {
    // Each old process first, so that two instances of one app never run at once.
    for (app, child) in app_servers.iter_mut() {
        child.stop();
        *child = starts.app(app)?;
    }
    for (store, child) in examples.iter_mut() {
        child.stop();
        *child = starts.example(store)?;
    }
    let served = process_servers(app_servers, examples);
    for scenario in scenarios {
        let app = scenario
            .name
            .strip_suffix(" write")
            .or_else(|| scenario.name.strip_suffix(" read"))
            .unwrap_or(&scenario.name);
        if let Some((_, addr, side)) = served.iter().find(|(name, _, _)| name == app) {
            scenario.addr = *addr;
            scenario.server = side.clone();
            let connections = scenario.clients.len();
            scenario.clients = (0..connections)
                .map(|_| Client::new(scenario.path))
                .collect();
        }
    }
    Ok(())
}

struct Scenario {
    name: String,
    /// Whose CPU is the scenario's server CPU.
    server: ServerSide,
    addr: SocketAddr,
    path: &'static str,
    write: bool,
    redis: bool,
    /// Where a SQL scenario's database work runs.
    db: Option<DbProbe>,
    /// One session per connection, kept across rounds (new clients with each new server
    /// process under `--fresh-servers`).
    clients: Vec<Client>,
}

/// Where a scenario's server runs.
#[derive(Clone)]
enum ServerSide {
    /// In this process (`--servers thread`, and the SQL apps): the run time of the server's
    /// threads (the server thread, and with `--runtime multi` the runtime's `server-worker`
    /// threads), their allocations counted.
    Thread,
    /// In process `pid` (an app served by a `serve-*` binary, or the example binary): the run time of all its threads; allocations counted where `control` can ask
    /// for them (not in the example binary).
    Process {
        pid: u32,
        control: Option<Arc<std::sync::Mutex<Control>>>,
    },
}

impl ServerSide {
    fn of(server: &ChildServer) -> Self {
        Self::Process {
            pid: server.child.id(),
            control: server.control.clone(),
        }
    }
}

/// [`schedstat_field`] `index` of every thread of `side`'s server, by task id (one entry for
/// the server thread): 0 its run time ([`SCHED_NS`]), 2 how many times it was put on a CPU
/// ([`SCHED_SLICES`]).
fn server_field(side: &ServerSide, server_tid: u32, index: usize) -> BTreeMap<i64, u64> {
    match side {
        ServerSide::Thread => {
            let mut threads =
                tasks_field("/proc/self/task", |name| name.starts_with("server"), index);
            if let Some(value) = thread_schedstat(server_tid, index) {
                threads.insert(i64::from(server_tid), value);
            }
            threads
        }
        ServerSide::Process { pid, .. } => {
            tasks_field(&format!("/proc/{pid}/task"), |_| true, index)
        }
    }
}

/// [`schedstat_field`]: the run time so far, in nanoseconds.
const SCHED_NS: usize = 0;
/// [`schedstat_field`]: how many times the task was put on a CPU so far: each time it was woken
/// after running out of work (a sleep in `epoll_wait`), and each time it was preempted and
/// resumed (rare for a server pinned alone on its core).
const SCHED_SLICES: usize = 2;

/// The allocations `side`'s server threads made so far, where they are counted.
fn server_allocations(side: &ServerSide) -> Result<Option<u64>, String> {
    match side {
        ServerSide::Thread => Ok(Some(counting::allocations())),
        ServerSide::Process {
            control: Some(control),
            ..
        } => control
            .lock()
            .map_err(|_| "a server process's pipes are poisoned".to_owned())?
            .allocations()
            .map(Some),
        ServerSide::Process { control: None, .. } => Ok(None),
    }
}

impl Scenario {
    /// A scenario of `connections` clients without sessions yet, each sending `GET path` (a
    /// write or not) to `addr`; a Redis scenario when its name says so.
    fn new(
        name: String,
        server: ServerSide,
        addr: SocketAddr,
        (path, write): (&'static str, bool),
        db: Option<DbProbe>,
        connections: usize,
    ) -> Self {
        Self {
            clients: (0..connections).map(|_| Client::new(path)).collect(),
            redis: name.contains("redis"),
            db,
            name,
            server,
            addr,
            path,
            write,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Sample {
    requests: u64,
    wall: f64,
    cpu_ns: u64,
    /// How many times the server's threads were put on a CPU ([`SCHED_SLICES`]).
    slices: u64,
    /// `None` where the server's allocations are not counted (the example binary).
    allocations: Option<u64>,
    p50_us: f64,
    p99_us: f64,
    redis_calls: f64,
    redis_round_trips: f64,
    redis_cpu_us: f64,
    /// The reads Redis made from its clients' sockets, per request (`total_reads_processed`):
    /// below the commands per request when a read carries several requests' commands.
    redis_reads: f64,
    /// Bytes the clients sent to Redis, per request.
    redis_in_bytes: f64,
    /// SQL scenarios: the CPU of the database tasks serving the scenario ([`DbProbe`]).
    db_cpu_us: f64,
    /// PostgreSQL scenarios: the CPU of every `postgres` process.
    pg_all_cpu_us: f64,
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
    mut monitor: Option<&mut PgMonitor>,
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
    let before_db = match &scenario.db {
        Some(probe) => Some(db_snapshot(probe, monitor.as_deref_mut(), true).await?),
        None => None,
    };
    let before_redis = redis.map(redis_snapshot);
    // The allocation counts outside the CPU window: asking a server process for its count
    // runs a little code of its own.
    let before_alloc = server_allocations(&scenario.server)?;
    let before_slices = server_field(&scenario.server, server_tid, SCHED_SLICES);
    let before_cpu = server_field(&scenario.server, server_tid, SCHED_NS);
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
    let cpu_ns = delta(
        &before_cpu,
        &server_field(&scenario.server, server_tid, SCHED_NS),
    );
    let slices = delta(
        &before_slices,
        &server_field(&scenario.server, server_tid, SCHED_SLICES),
    );
    let allocations = match (before_alloc, server_allocations(&scenario.server)?) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let db_ns = match (&scenario.db, &before_db) {
        (Some(probe), Some(before)) => {
            let after = db_snapshot(probe, monitor, false).await?;
            (
                delta(&before.probe, &after.probe),
                delta(&before.postgres, &after.postgres),
            )
        }
        _ => (0, 0),
    };
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
        slices,
        allocations,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        db_cpu_us: db_ns.0 as f64 / 1000.0 / requests as f64,
        pg_all_cpu_us: db_ns.1 as f64 / 1000.0 / requests as f64,
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
        sample.redis_in_bytes =
            after.input_bytes.saturating_sub(before.input_bytes) as f64 / requests as f64;
        sample.redis_reads = after.reads.saturating_sub(before.reads) as f64 / requests as f64;
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

/// Whether scenario `name` runs: `bare` always; the others when `--only` is absent or one of
/// its comma-separated words is contained in the name, except the SQL scenarios, which need a
/// word to name them.
fn wanted(only: Option<&str>, name: &str) -> bool {
    let is_sql = |text: &str| text.contains("postgres") || text.contains("sqlite");
    name == "bare"
        || match only {
            None => !is_sql(name),
            Some(only) => only
                .split(',')
                .any(|word| name.contains(word) && (!is_sql(name) || is_sql(word))),
        }
}

fn run() -> Result<bool, String> {
    let options = parse_options()?;
    let wants = |name: &str| wanted(options.only.as_deref(), name);
    let sql = SqlPlan {
        postgres: ["ours", "tower-sessions"]
            .iter()
            .any(|side| {
                wants(&format!("{side} postgres write")) || wants(&format!("{side} postgres read"))
            })
            .then(|| options.database_url.clone()),
        sqlite: ["ours", "tower-sessions"].iter().any(|side| {
            wants(&format!("{side} sqlite write")) || wants(&format!("{side} sqlite read"))
        }),
        pid: std::process::id(),
    };
    let result = run_scenarios(&options, &sql);
    sql.clean_up();
    result
}

#[expect(
    clippy::too_many_lines,
    reason = "the run's steps in order; each is short"
)]
fn run_scenarios(options: &Options, sql: &SqlPlan) -> Result<bool, String> {
    let (server_core, client_core) = split_cores();
    let wants = |name: &str| wanted(options.only.as_deref(), name);
    let with_redis = ["ours", "tower-sessions", "ruts", "example"]
        .iter()
        .any(|side| {
            [
                "redis write",
                "redis read",
                "redis wide write",
                "redis wide read",
            ]
            .iter()
            .any(|row| wants(&format!("{side} {row}")))
        });
    let redis = if with_redis {
        Some(start_redis(
            options.redis_url.as_deref(),
            client_core.map(|c| c.id),
        )?)
    } else {
        None
    };
    if let Some(redis) = &redis {
        if [
            "ruts redis write",
            "ruts redis read",
            "ruts redis wide write",
            "ruts redis wide read",
        ]
        .iter()
        .any(|name| wants(name))
        {
            check_redis_for_ruts(redis.addr)?;
        }
    }
    let redis_version_text = match &redis {
        Some(redis) => redis_version(redis.addr).map_or_else(
            |_| " (Redis version unknown)".to_owned(),
            |v| {
                let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
                format!(" (Redis {})", shown.join("."))
            },
        ),
        None => String::new(),
    };
    let redis_url = redis.as_ref().map_or_else(String::new, |r| r.url.clone());
    let app_wanted = |app: &str| {
        if app == "bare" {
            return true;
        }
        wants(&format!("{app} write")) || wants(&format!("{app} read"))
    };
    // The apps this process serves: all with `--servers thread`, else the SQL apps only (their
    // probes look at this process's threads and connections).
    let in_process: Vec<&'static str> = APPS
        .into_iter()
        .filter(|app| app_wanted(app) && (!options.own_processes || is_sql_app(app)))
        .collect();
    let flavor = if options.multi_thread {
        Flavor::MultiThread {
            workers: options.workers,
            on_worker_start: counting::enable_on_this_thread,
        }
    } else {
        Flavor::CurrentThread
    };
    // The in-process server's core: the first, or every core with `--server-cores all`; the
    // server processes' likewise.
    let in_process_core = server_core.filter(|_| !options.server_on_all_cores);
    let server_sql = sql.clone();
    let (server, stop) = {
        let redis_url = redis_url.clone();
        start_server(in_process_core, flavor, move || {
            counting::enable_on_this_thread();
            async move { build_apps(in_process, &redis_url, &server_sql).await }
        })?
    };
    // One process per app with `--servers process` (the non-SQL apps), each from the binary
    // of its crate; the example binary, one process per store; all on the server's core.
    let own_apps: Vec<&'static str> = APPS
        .into_iter()
        .filter(|app| options.own_processes && app_wanted(app) && !is_sql_app(app))
        .collect();
    let example_stores: Vec<&str> = EXAMPLE_STORES
        .into_iter()
        .filter(|store| {
            wants(&format!("example {store} write")) || wants(&format!("example {store} read"))
        })
        .collect();
    let mut binaries: Vec<String> = own_apps
        .iter()
        .map(|app| format!("serve-{}", apps::crate_of(app)))
        .collect();
    if !example_stores.is_empty() {
        binaries.push("counter".to_owned());
    }
    binaries.sort();
    binaries.dedup();
    let binaries = build_binaries(&binaries)?;
    let starts = ServerStarts {
        binaries: &binaries,
        app_core: in_process_core.map(|c| c.id),
        example_core: server_core.map(|c| c.id),
        options,
        redis_url: &redis_url,
        example_redis_url: redis.as_ref().map(|r| r.url.as_str()),
    };
    let mut app_servers = Vec::new();
    for app in own_apps {
        app_servers.push((app, starts.app(app)?));
    }
    let mut examples = Vec::new();
    for store in example_stores {
        examples.push((store, starts.example(store)?));
    }
    let runtime = client_runtime(client_core)?;
    let mut monitor = match &sql.postgres {
        Some(url) => Some(runtime.block_on(PgMonitor::connect(url, client_core.map(|c| c.id)))?),
        None => None,
    };
    // Every app's address and server, then the example binary's under `example <store>`.
    let mut apps_served: Vec<(String, SocketAddr, ServerSide)> = server
        .addrs
        .iter()
        .map(|(app, addr)| ((*app).to_owned(), *addr, ServerSide::Thread))
        .collect();
    apps_served.extend(process_servers(&app_servers, &examples));
    let mut scenarios = Vec::new();
    for (app, addr, side) in apps_served {
        let variants: &[(&str, &str, bool)] = if app == "bare" {
            &[("bare", "/", true)]
        } else {
            &[("write", "/", true), ("read", "/read", false)]
        };
        for (suffix, path, write) in variants {
            let name = if app == "bare" {
                "bare".to_owned()
            } else {
                format!("{app} {suffix}")
            };
            if !wants(&name) {
                continue;
            }
            scenarios.push(Scenario::new(
                name,
                side.clone(),
                addr,
                (path, *write),
                sql.probe(&app),
                options.connections,
            ));
        }
    }
    let order = [
        "bare",
        "ours memory write",
        "ours memory read",
        "example memory write",
        "example memory read",
        "tower-sessions memory write",
        "tower-sessions memory read",
        "ours encrypted write",
        "ours encrypted read",
        "example encrypted write",
        "example encrypted read",
        "private-jar write",
        "private-jar read",
        "ours redis write",
        "ours redis read",
        "example redis write",
        "example redis read",
        "tower-sessions redis write",
        "tower-sessions redis read",
        "ruts redis write",
        "ruts redis read",
        "ours encrypted wide write",
        "ours encrypted wide read",
        "private-jar wide write",
        "private-jar wide read",
        "ours redis wide write",
        "ours redis wide read",
        "ours redis wide whole write",
        "ours redis wide whole read",
        "tower-sessions redis wide write",
        "tower-sessions redis wide read",
        "ruts redis wide write",
        "ruts redis wide read",
        "ours postgres write",
        "ours postgres read",
        "tower-sessions postgres write",
        "tower-sessions postgres read",
        "ours sqlite write",
        "ours sqlite read",
        "tower-sessions sqlite write",
        "tower-sessions sqlite read",
    ];
    scenarios.sort_by_key(|s| {
        order
            .iter()
            .position(|o| *o == s.name)
            .unwrap_or(order.len())
    });
    let blocks = row_blocks(&scenarios);
    let warmup = Duration::from_secs_f64(options.warmup);
    let measure = Duration::from_secs_f64(options.secs);
    let redis_addr = redis.as_ref().map(|r| r.addr);
    let mut with_client = String::new();
    if redis.as_ref().is_some_and(|r| r.own.is_some()) {
        with_client.push_str(" and private redis-server");
    }
    with_client.push_str(&redis_version_text);
    if monitor.as_ref().is_some_and(|m| m.core.is_some()) {
        with_client.push_str(" and the PostgreSQL backends");
    }
    eprintln!(
        "{} scenarios x {} rounds, {:.2} s each after {:.2} s warm-up, {} connections; {}, server on core {:?}, client{} on core {:?}",
        scenarios.len(),
        options.rounds,
        options.secs,
        options.warmup,
        options.connections,
        if options.multi_thread {
            format!("multi-thread runtime, {} worker(s)", options.workers)
        } else {
            "current-thread runtime".to_owned()
        },
        in_process_core.map(|c| c.id),
        with_client,
        client_core.map(|c| c.id),
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); scenarios.len()];
    let mut commands: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); scenarios.len()];
    let mut requests: Vec<u64> = vec![0; scenarios.len()];
    let started = Instant::now();
    let ticks_before = cpu_ticks();
    runtime.block_on(async {
        for round in 0..options.rounds {
            if options.fresh_servers && round > 0 {
                restart_servers(&mut app_servers, &mut examples, &mut scenarios, &starts)?;
            }
            for index in round_order(&blocks, round) {
                let scenario = &mut scenarios[index];
                let redis = if scenario.redis { redis_addr } else { None };
                let monitor = if matches!(scenario.db, Some(DbProbe::Postgres { .. })) {
                    monitor.as_mut()
                } else {
                    None
                };
                let result =
                    run_scenario(scenario, server.tid, redis, monitor, warmup, measure).await?;
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
    drop(examples);
    drop(app_servers);

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
    let slices = |s: &Sample| s.slices as f64 / s.requests as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | req/s | × bare | p50 µs | × bare | p99 µs | × bare | server CPU µs/req | × bare | target | allocs/req | Redis cmds/req (round trips) | Redis CPU µs/req | server busy | server slices/req | Redis reads/req |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    );
    let mut all_met = true;
    for (index, scenario) in scenarios.iter().enumerate() {
        let (rps_v, rps_r) = per_round(index, &rps);
        let (p50_v, p50_r) = per_round(index, &p50);
        let (p99_v, p99_r) = per_round(index, &p99);
        let (cpu_v, cpu_r) = per_round(index, &cpu);
        let (busy_v, _) = per_round(index, &busy);
        let (slices_v, _) = per_round(index, &slices);
        let allocs: Option<Vec<f64>> = samples[index]
            .iter()
            .map(|s| Some(s.allocations? as f64 / s.requests as f64))
            .collect();
        let allocs = allocs.map_or_else(String::new, |a| format!("{:.1}", median(a)));
        let target_text = match target(&scenario.name) {
            Some(t) if cpu_r <= t => format!("≤ {t:.2} met"),
            Some(t) => {
                all_met = false;
                format!("≤ {t:.2} **missed**")
            }
            None => String::new(),
        };
        let (redis_text, redis_cpu, redis_reads) = if scenario.redis {
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
                format!(
                    "{:.3}",
                    median(samples[index].iter().map(|s| s.redis_reads).collect())
                ),
            )
        } else {
            (String::new(), String::new(), String::new())
        };
        let _ = writeln!(
            out,
            "| {} | {rps_v:.0} | {rps_r:.2} | {p50_v:.0} | {p50_r:.2} | {p99_v:.0} | {p99_r:.2} | {cpu_v:.2} | {cpu_r:.2} | {target_text} | {allocs} | {redis_text} | {redis_cpu} | {busy_v:.0}% | {slices_v:.3} | {redis_reads} |",
            scenario.name
        );
    }
    println!("{out}");
    println!("{}", peer_table(&scenarios, &samples));
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
    if scenarios.iter().any(|s| s.db.is_some()) {
        println!("{}", sql_tables(&scenarios, &samples));
    }
    println!(
        "{} rounds x {:.2} s, {} connections{}, {:.0} s in all; medians over rounds, ratios to bare in the same round.",
        options.rounds,
        options.secs,
        options.connections,
        if options.fresh_servers {
            ", server processes started afresh each round"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    if let Some(steal) = steal_report(&ticks_before) {
        println!("{steal}");
    }
    drop(redis);
    Ok(all_met)
}

/// The row a scenario belongs to: its name without the crate (`ours`, `example`, a peer) and
/// without ` whole`, the jar's rows under `encrypted`. Bare is a row of its own.
fn row_of(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("private-jar") {
        return format!("encrypted{rest}");
    }
    let rest = ["ours ", "example ", "tower-sessions ", "ruts "]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
    rest.replace(" whole", "")
}

/// Where a scenario stands in its row's block: each of ours next to the peers it is compared
/// with (tower-sessions, ours, then ruts or the jar), the example binary's after them, our
/// whole-type wide rows last (next to ruts, their best peer).
fn place_in_row(name: &str) -> u8 {
    if name.starts_with("tower-sessions ") {
        0
    } else if name.starts_with("ours ") && name.contains(" whole ") {
        4
    } else if name.starts_with("ours ") {
        1
    } else if name.starts_with("example ") {
        3
    } else {
        2
    }
}

/// Groups the scenarios (sorted, bare first) into blocks, one per row: the indices of the
/// scenarios a row compares, in [`place_in_row`] order. Bare is the first block.
fn row_blocks(scenarios: &[Scenario]) -> Vec<Vec<usize>> {
    let mut blocks: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let row = row_of(&scenario.name);
        match blocks.iter_mut().find(|(name, _)| *name == row) {
            Some((_, block)) => block.push(index),
            None => blocks.push((row, vec![index])),
        }
    }
    for (_, block) in &mut blocks {
        block.sort_by_key(|&index| place_in_row(&scenarios[index].name));
    }
    blocks.into_iter().map(|(_, block)| block).collect()
}

/// The order of one round: bare first, then the rows' blocks, so that what a row compares
/// runs back to back (seconds apart, not tens of seconds: a shared host's speed drifts), the
/// blocks rotated from round to round so none always follows the same one, and every other
/// round each block backwards so neither side of a pair always runs first.
fn round_order(blocks: &[Vec<usize>], round: usize) -> Vec<usize> {
    let (bare, rows) = blocks.split_first().expect("bare always runs");
    let mut order = bare.clone();
    for offset in 0..rows.len() {
        let block = &rows[(offset + round) % rows.len()];
        if round % 2 == 0 {
            order.extend(block.iter().copied());
        } else {
            order.extend(block.iter().rev().copied());
        }
    }
    order
}

/// The median over rounds of `f(a) / f(b)`, `a` and `b` from the same round.
fn round_ratio(a: &[Sample], b: &[Sample], f: &dyn Fn(&Sample) -> f64) -> f64 {
    median(a.iter().zip(b).map(|(a, b)| f(a) / f(b)).collect())
}

/// Each of our rows against the best peer measured for it (the lowest median server CPU per
/// request): ours, the peer, the median over rounds of ours / peer in the same round, in how
/// many rounds ours cost less, and whether those rounds set the two apart (the sign test of
/// [`Verdict`]: with 9 rounds and no tie, 8 of 9 either way).
fn peer_table(scenarios: &[Scenario], samples: &[Vec<Sample>]) -> String {
    let rows = [
        "memory write",
        "memory read",
        "encrypted write",
        "encrypted read",
        "redis write",
        "redis read",
        "encrypted wide write",
        "encrypted wide read",
        "redis wide write",
        "redis wide read",
        "redis wide whole write",
        "redis wide whole read",
        "postgres write",
        "postgres read",
        "sqlite write",
        "sqlite read",
    ];
    let index_of = |name: &str| scenarios.iter().position(|s| s.name == name);
    let cpu = |s: &Sample| s.cpu_ns as f64 / s.requests as f64 / 1000.0;
    let median_cpu = |index: usize| median(samples[index].iter().map(cpu).collect());
    let redis_cpu = |index: usize| median(samples[index].iter().map(|s| s.redis_cpu_us).collect());
    let redis_in = |index: usize| median(samples[index].iter().map(|s| s.redis_in_bytes).collect());
    let mut out = String::from(
        "| row | ours server CPU µs/req | best peer | its µs/req | ours / peer | rounds ours cheaper | sign test (5%) | Redis CPU µs/req ours, peer | bytes to Redis/req ours, peer |\n|---|---:|---|---:|---:|---:|---|---:|---:|\n",
    );
    // Our rows, then the example binary's (the same handlers and layer in its own binary).
    let sides = rows.iter().map(|row| ("ours", *row)).chain(
        rows.iter()
            .filter(|row| {
                EXAMPLE_STORES
                    .iter()
                    .any(|store| row.starts_with(store) && !row.contains("wide"))
            })
            .map(|row| ("example", *row)),
    );
    for (side, row) in sides {
        let Some(ours) = index_of(&format!("{side} {row}")) else {
            continue;
        };
        let label = if side == "ours" {
            row.to_owned()
        } else {
            format!("{row}, example binary")
        };
        // The cookie rows' peer is the jar; the others' every crate that ran the row. Our
        // whole-type wide rows (no view) face the same peers as the view rows.
        let peer_row = row.replace(" whole", "");
        let peers = match peer_row.strip_prefix("encrypted") {
            Some(rest) => vec![format!("private-jar{rest}")],
            None => vec![
                format!("tower-sessions {peer_row}"),
                format!("ruts {peer_row}"),
            ],
        };
        let best = peers
            .iter()
            .filter_map(|peer| index_of(peer).map(|index| (peer.as_str(), index)))
            .min_by(|a, b| median_cpu(a.1).total_cmp(&median_cpu(b.1)));
        let Some((peer, peer_index)) = best else {
            continue;
        };
        let ratio = round_ratio(&samples[ours], &samples[peer_index], &cpu);
        // How many rounds ours cost less than the peer in: a median near 1 with about half
        // the rounds either way is a tie within the machine's noise, not a lead or a lag.
        let pairs = || samples[ours].iter().zip(&samples[peer_index]);
        let cheaper = pairs().filter(|(a, b)| cpu(a) < cpu(b)).count();
        let dearer = pairs().filter(|(a, b)| cpu(a) > cpu(b)).count();
        // Whether those rounds tell the two apart at all (the sign test; see `Verdict`).
        let verdict = Verdict::of_rounds(
            u32::try_from(cheaper).unwrap_or(u32::MAX),
            u32::try_from(dearer).unwrap_or(u32::MAX),
        );
        let (redis_cpu_text, redis_in_text) = if scenarios[ours].redis {
            (
                format!("{:.1}, {:.1}", redis_cpu(ours), redis_cpu(peer_index)),
                format!("{:.0}, {:.0}", redis_in(ours), redis_in(peer_index)),
            )
        } else {
            (String::new(), String::new())
        };
        let _ = writeln!(
            out,
            "| {label} | {:.2} | {} | {:.2} | {ratio:.2} | {cheaper}/{} | {} | {redis_cpu_text} | {redis_in_text} |",
            median_cpu(ours),
            peer.trim_end_matches(" write").trim_end_matches(" read"),
            median_cpu(peer_index),
            samples[ours].len().min(samples[peer_index].len()),
            verdict.word(),
        );
    }
    out.push_str(&scaling_table(scenarios, samples));
    out
}

/// The scaling rows against every peer: the goal is at least 2x less server CPU and 10x fewer
/// bytes to Redis per write than tower-sessions.
fn scaling_table(scenarios: &[Scenario], samples: &[Vec<Sample>]) -> String {
    let index_of = |name: &str| scenarios.iter().position(|s| s.name == name);
    let cpu = |s: &Sample| s.cpu_ns as f64 / s.requests as f64 / 1000.0;
    let mut out = String::new();
    let mut scaling = String::new();
    for (row, peers) in [
        (
            "redis wide write",
            ["tower-sessions redis wide write", "ruts redis wide write"],
        ),
        (
            "redis wide read",
            ["tower-sessions redis wide read", "ruts redis wide read"],
        ),
        (
            "redis wide whole write",
            ["tower-sessions redis wide write", "ruts redis wide write"],
        ),
        (
            "redis wide whole read",
            ["tower-sessions redis wide read", "ruts redis wide read"],
        ),
    ] {
        let Some(ours) = index_of(&format!("ours {row}")) else {
            continue;
        };
        for peer in peers {
            let Some(peer_index) = index_of(peer) else {
                continue;
            };
            let ratio =
                |f: &dyn Fn(&Sample) -> f64| round_ratio(&samples[peer_index], &samples[ours], f);
            let _ = writeln!(
                scaling,
                "| {row} | {} | {:.2}x | {:.2}x | {:.1}x |",
                peer.trim_end_matches(" write").trim_end_matches(" read"),
                ratio(&cpu),
                ratio(&|s: &Sample| s.redis_cpu_us),
                ratio(&|s: &Sample| s.redis_in_bytes),
            );
        }
    }
    if !scaling.is_empty() {
        let _ = write!(
            out,
            "\nThe scaling rows, peer / ours (above 1: we spend less):\n\n| row | peer | server CPU | Redis CPU | bytes to Redis |\n|---|---|---:|---:|---:|\n{scaling}"
        );
    }
    out
}

/// The SQL scenarios' tables: each scenario's server and database CPU, then ours against
/// tower-sessions-sqlx-store (medians over rounds; ratios the medians of per-round ratios).
fn sql_tables(scenarios: &[Scenario], samples: &[Vec<Sample>]) -> String {
    let rps = |s: &Sample| s.requests as f64 / s.wall;
    let cpu = |s: &Sample| s.cpu_ns as f64 / s.requests as f64 / 1000.0;
    let db = |s: &Sample| s.db_cpu_us;
    let both = |s: &Sample| cpu(s) + s.db_cpu_us;
    let of =
        |index: usize, f: &dyn Fn(&Sample) -> f64| median(samples[index].iter().map(f).collect());
    let mut out = String::from(
        "Database CPU per request (PostgreSQL: the backends of the scenario's pool; all postgres: every \
         process of the server; SQLite: the pool's sqlx worker threads in this process, not on the server thread):\n\
         | scenario | req/s | server CPU µs/req | database CPU µs/req | server + database µs/req | all postgres CPU µs/req |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (index, scenario) in scenarios.iter().enumerate() {
        let Some(probe) = &scenario.db else {
            continue;
        };
        let all = match probe {
            DbProbe::Postgres { .. } => format!("{:.1}", of(index, &|s| s.pg_all_cpu_us)),
            DbProbe::Sqlite { .. } => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {all} |",
            scenario.name,
            of(index, &rps),
            of(index, &cpu),
            of(index, &db),
            of(index, &both),
        );
    }
    out.push_str(
        "\nOurs against tower-sessions-sqlx-store 0.15 (ratio: ours ÷ theirs, median of per-round ratios):\n\
         | scenario | server CPU µs/req ours | theirs | ratio | database CPU µs/req ours | theirs | ratio | req/s ours | theirs | ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let position = |name: &str| scenarios.iter().position(|s| s.name == name);
    for kind in [
        "postgres write",
        "postgres read",
        "sqlite write",
        "sqlite read",
    ] {
        let (Some(ours), Some(theirs)) = (
            position(&format!("ours {kind}")),
            position(&format!("tower-sessions {kind}")),
        ) else {
            continue;
        };
        let ratio = |f: &dyn Fn(&Sample) -> f64| round_ratio(&samples[ours], &samples[theirs], f);
        let _ = writeln!(
            out,
            "| {kind} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2} |",
            of(ours, &cpu),
            of(theirs, &cpu),
            ratio(&cpu),
            of(ours, &db),
            of(theirs, &db),
            ratio(&db),
            of(ours, &rps),
            of(theirs, &rps),
            ratio(&rps),
        );
    }
    out
}
