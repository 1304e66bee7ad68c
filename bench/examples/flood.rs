//! Flood benchmark of `MemoryStore`: cookie-less `GET /` on the example's counter app (each
//! request creates a session) while the store fills and once it is full, and the survival of
//! steadily active sessions during a flood of new sessions ten times the store's capacity.
//!
//! ```text
//! cargo run --release -p session-bench --example flood
//! ```
//!
//! Options: `--capacity N` (default 20,000), `--connections N` (flooding connections, 32),
//! `--active N` (active sessions, 1,000), `--rounds N` (3).
//!
//! Loopback only. Every phase stops at a deadline, so the run stays under a minute even on a
//! slow store. As in the `load` example, the server (one current-thread tokio runtime) is
//! pinned to the first core and the client (another one) to the second.
//!
//! - **Throughput**, in each round on a fresh store: `--capacity / 10` requests to warm up,
//!   then measured: 70% of the capacity (the store goes from 10% to 80% full: *below
//!   capacity*); then 20% unmeasured (the store fills up); then measured: 3 times the capacity
//!   (every insert drops a session: *at capacity*). Figures are medians over rounds; the ratio
//!   is the median of the per-round ratios. Server CPU is the server thread's run time from
//!   `/proc/self/task/<tid>/schedstat`.
//! - **Survival**, on another fresh store: `--active` sessions are created and used once; then
//!   10 times the capacity of cookie-less requests flood the store while one more connection
//!   uses the active sessions in turn, each once per `capacity` new sessions (paced by the
//!   flood's progress, 10 uses each). A session survived if every use and a final `GET /read`
//!   found its count intact.
#![allow(clippy::print_stdout, reason = "the benchmark prints its results")]
#![allow(clippy::print_stderr, reason = "the benchmark reports progress")]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "statistics on counts far below 2^52"
)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_examples::routes;
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::store::MemoryStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[path = "../common/serve.rs"]
mod serve;
use serve::{
    Flavor, client_runtime, cpu_ticks, median, response_head, split_cores, start_server,
    steal_report, thread_schedstat,
};

/// A cookie-less visit: creates a session.
const NEW_SESSION: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/// How many times each active session is used during the flood.
const USES: u64 = 10;
/// The longest a throughput phase may run.
const PHASE_LIMIT: Duration = Duration::from_secs(8);
/// The longest the survival flood may run.
const FLOOD_LIMIT: Duration = Duration::from_secs(25);

struct Options {
    capacity: u64,
    connections: usize,
    active: usize,
    rounds: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        capacity: 20_000,
        connections: 32,
        active: 1_000,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> Result<u64, String> {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value"))?
                .parse()
                .map_err(|e| format!("{arg}: {e}"))
        };
        match arg.as_str() {
            "--capacity" => options.capacity = value()?,
            "--connections" => options.connections = value()? as usize,
            "--active" => options.active = value()? as usize,
            "--rounds" => options.rounds = value()? as usize,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.capacity < 10 || options.connections == 0 || options.rounds == 0 {
        return Err("--capacity must be at least 10, --connections and --rounds positive".into());
    }
    if options.active == 0 || options.active as u64 >= options.capacity / 2 {
        return Err("--active must be positive and below half the capacity".into());
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// The server: one counter app per store, each on its own port.

// ---------------------------------------------------------------------------------------------
// The client: HTTP/1.1 keep-alive, one request in flight per connection.

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

struct Reply {
    status: u16,
    /// The value of a `Set-Cookie: counter=...`, if the response has one.
    cookie: Option<String>,
    body: String,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".to_owned());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn send(&mut self, request: &[u8]) -> Result<Reply, String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| e.to_string())?;
        self.buf.clear();
        let header_end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..header_end]).into_owned();
        let (status, length, cookies) = response_head(&head);
        let mut cookie = None;
        for value in cookies {
            let pair = value.split(';').next().unwrap_or("");
            if let Some(value) = pair.strip_prefix("counter=") {
                cookie = Some(value.to_owned());
            }
        }
        while self.buf.len() < header_end + length {
            self.fill().await?;
        }
        let body = String::from_utf8_lossy(&self.buf[header_end..header_end + length]).into_owned();
        Ok(Reply {
            status,
            cookie,
            body,
        })
    }
}

async fn connect_all(addr: SocketAddr, count: usize) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        conns.push(Conn::connect(addr).await?);
    }
    Ok(conns)
}

/// What a flood phase measured.
#[derive(Clone, Copy)]
struct Phase {
    requests: u64,
    wall: f64,
    cpu_ns: u64,
    /// Whether the phase stopped at its deadline before sending every request.
    cut: bool,
}

impl Phase {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.wall
    }

    fn cpu_us(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.requests.max(1) as f64
    }
}

/// Sends `requests` cookie-less `GET /` over `conns`, each answered by a new session; counts
/// the answers in `progress`.
async fn flood(
    conns: Vec<Conn>,
    requests: u64,
    limit: Duration,
    server_tid: u32,
    progress: Arc<AtomicU64>,
) -> Result<(Vec<Conn>, Phase), String> {
    let issued = Arc::new(AtomicU64::new(0));
    let before = progress.load(Ordering::Relaxed);
    let cpu_before = thread_schedstat(server_tid, 0).unwrap_or(0);
    let start = Instant::now();
    let deadline = start + limit;
    let mut tasks = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let issued = Arc::clone(&issued);
        let progress = Arc::clone(&progress);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < requests {
                let reply = conn.send(NEW_SESSION).await?;
                if reply.status != 200 || reply.cookie.is_none() || reply.body != "1" {
                    return Err(format!(
                        "a cookie-less GET / answered {} {:?} without a new session",
                        reply.status, reply.body
                    ));
                }
                progress.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(conn)
        }));
    }
    let mut conns = Vec::with_capacity(tasks.len());
    for task in tasks {
        conns.push(task.await.map_err(|e| e.to_string())??);
    }
    let wall = start.elapsed().as_secs_f64();
    let done = progress.load(Ordering::Relaxed) - before;
    Ok((
        conns,
        Phase {
            requests: done,
            wall,
            cpu_ns: thread_schedstat(server_tid, 0).unwrap_or(0) - cpu_before,
            cut: done < requests,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Survival.

/// One active user: its session cookie and how many visits it made.
struct Active {
    visit: Vec<u8>,
    read: Vec<u8>,
    cookie: String,
    visits: u64,
    lost: bool,
}

impl Active {
    fn new(cookie: String) -> Self {
        let header = format!("Host: 127.0.0.1\r\nCookie: counter={cookie}\r\n\r\n");
        Self {
            visit: format!("GET / HTTP/1.1\r\n{header}").into_bytes(),
            read: format!("GET /read HTTP/1.1\r\n{header}").into_bytes(),
            cookie,
            visits: 1,
            lost: false,
        }
    }

    /// Visits once more; the session is lost if the count does not go on or the id changed.
    async fn visit(&mut self, conn: &mut Conn) -> Result<(), String> {
        let reply = conn.send(&self.visit).await?;
        if reply.status != 200 {
            return Err(format!("an active GET / answered {}", reply.status));
        }
        self.visits += 1;
        let renewed = reply.cookie.is_some_and(|cookie| cookie != self.cookie);
        if renewed || reply.body != self.visits.to_string() {
            self.lost = true;
        }
        Ok(())
    }

    /// Whether the session is still there with every visit counted.
    async fn intact(&self, conn: &mut Conn) -> Result<bool, String> {
        let reply = conn.send(&self.read).await?;
        Ok(!self.lost && reply.status == 200 && reply.body == self.visits.to_string())
    }
}

struct Survival {
    flood: Phase,
    uses: u64,
    /// How many new sessions arrive between two uses of one active session.
    spacing: u64,
    survivors: usize,
}

async fn survival(
    addr: SocketAddr,
    options: &Options,
    server_tid: u32,
) -> Result<Survival, String> {
    let mut conn = Conn::connect(addr).await?;
    let mut actives = Vec::with_capacity(options.active);
    for _ in 0..options.active {
        let reply = conn.send(NEW_SESSION).await?;
        let cookie = reply.cookie.ok_or("no session cookie")?;
        let mut active = Active::new(cookie);
        active.visit(&mut conn).await?;
        actives.push(active);
    }
    let requests = 10 * options.capacity;
    let pace = requests / (options.active as u64 * USES);
    let progress = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let driver = {
        let progress = Arc::clone(&progress);
        let finished = Arc::clone(&finished);
        tokio::spawn(async move {
            let mut uses = 0u64;
            'uses: for _ in 0..USES {
                for active in &mut actives {
                    while progress.load(Ordering::Relaxed) < uses * pace {
                        if finished.load(Ordering::Relaxed) {
                            break 'uses;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    active.visit(&mut conn).await?;
                    uses += 1;
                }
            }
            Ok::<_, String>((conn, actives, uses))
        })
    };
    let conns = connect_all(addr, options.connections).await?;
    let result = flood(conns, requests, FLOOD_LIMIT, server_tid, progress).await;
    finished.store(true, Ordering::Relaxed);
    let (mut conn, actives, uses) = driver.await.map_err(|e| e.to_string())??;
    let (_, flood) = result?;
    let mut survivors = 0;
    for active in &actives {
        if active.intact(&mut conn).await? {
            survivors += 1;
        }
    }
    Ok(Survival {
        flood,
        uses,
        spacing: pace * options.active as u64,
        survivors,
    })
}

// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "the run's phases in order; each is short"
)]
fn run() -> Result<(), String> {
    let options = parse_options()?;
    let (server_core, client_core) = split_cores();
    let capacity = options.capacity;
    let stores = options.rounds + 1;
    let store_capacity = usize::try_from(capacity).map_err(|e| e.to_string())?;
    let (server, stop) = start_server(server_core, Flavor::CurrentThread, move || async move {
        Ok((0..stores)
            .map(|_| {
                let store = MemoryStore::new().with_capacity(store_capacity);
                let layer = SessionLayer::new(store).with_config(SessionConfig::default());
                ("counter", routes().layer(layer))
            })
            .collect())
    })?;
    let runtime = client_runtime(client_core)?;
    eprintln!(
        "MemoryStore of capacity {capacity}, {} flooding connections, {} rounds; server on core {:?}, client on core {:?}",
        options.connections,
        options.rounds,
        server_core.map(|c| c.id),
        client_core.map(|c| c.id),
    );
    let started = Instant::now();
    let ticks_before = cpu_ticks();
    let (rounds, survival) = runtime.block_on(async {
        let mut rounds = Vec::new();
        for round in 0..options.rounds {
            let addr = server.addrs[round].1;
            let progress = Arc::new(AtomicU64::new(0));
            let conns = connect_all(addr, options.connections).await?;
            let phase = |conns, requests| {
                flood(
                    conns,
                    requests,
                    PHASE_LIMIT,
                    server.tid,
                    Arc::clone(&progress),
                )
            };
            let (conns, _) = phase(conns, capacity / 10).await?;
            let (conns, below) = phase(conns, capacity * 7 / 10).await?;
            let (conns, _) = phase(conns, capacity - capacity * 8 / 10).await?;
            let (_, full) = phase(conns, 3 * capacity).await?;
            eprintln!(
                "round {}/{}: below capacity {:.0} req/s, at capacity {:.0} req/s ({:.0} s)",
                round + 1,
                options.rounds,
                below.rps(),
                full.rps(),
                started.elapsed().as_secs_f64()
            );
            rounds.push((below, full));
        }
        let survival = survival(server.addrs[options.rounds].1, &options, server.tid).await?;
        Ok::<_, String>((rounds, survival))
    })?;
    let _ = stop.send(());

    let below_rps = median(rounds.iter().map(|(b, _)| b.rps()).collect());
    let full_rps = median(rounds.iter().map(|(_, f)| f.rps()).collect());
    let below_cpu = median(rounds.iter().map(|(b, _)| b.cpu_us()).collect());
    let full_cpu = median(rounds.iter().map(|(_, f)| f.cpu_us()).collect());
    let ratio = median(rounds.iter().map(|(b, f)| f.rps() / b.rps()).collect());
    let cpu_ratio = median(
        rounds
            .iter()
            .map(|(b, f)| f.cpu_us() / b.cpu_us())
            .collect(),
    );
    let cut = |phase: &Phase| {
        if phase.cut {
            " (cut at the deadline)"
        } else {
            ""
        }
    };
    println!("| cookie-less GET / | requests per round | req/s | server CPU µs/req |");
    println!("|---|---:|---:|---:|");
    println!(
        "| below capacity (store 10% → 80% full){} | {} | {below_rps:.0} | {below_cpu:.1} |",
        cut(&rounds[0].0),
        rounds[0].0.requests
    );
    println!(
        "| at capacity (full, one session dropped per request){} | {} | {full_rps:.0} | {full_cpu:.1} |",
        cut(&rounds[0].1),
        rounds[0].1.requests
    );
    println!(
        "\nat capacity / below capacity: {ratio:.2} × req/s (target ≥ 0.80: {}), {cpu_ratio:.2} × server CPU per request",
        if ratio >= 0.8 { "met" } else { "missed" }
    );
    let s = &survival;
    println!(
        "\nsurvival: {} of {} active sessions kept their session ({:.1}%; target ≥ 99%) through a flood of {} new sessions{} at {:.0} req/s; {} uses of the active sessions, each once per {} new sessions",
        s.survivors,
        options.active,
        s.survivors as f64 * 100.0 / options.active as f64,
        s.flood.requests,
        cut(&s.flood),
        s.flood.rps(),
        s.uses,
        s.spacing,
    );
    println!(
        "\n{} rounds, {:.0} s in all; medians over rounds, the ratio is the median of the per-round ratios.",
        options.rounds,
        started.elapsed().as_secs_f64()
    );
    if let Some(steal) = steal_report(&ticks_before) {
        println!("{steal}");
    }
    Ok(())
}
