//! Faults under load (issue 16, items 1, 3 and 4): the example app (`GET /` increments `visits`,
//! `GET /read` reads it) on a real server, clients each with a session of their own in a loop,
//! and a Redis that dies under them:
//!
//! - `failover_under_load`: a 3-primary, 3-replica Redis Cluster; the primary serving the most
//!   sessions is killed (`SIGKILL`) and its replica takes over. Acknowledged increments lost to
//!   asynchronous replication are reported, not asserted.
//! - `failover_under_load_waiting_for_a_replica`: the same with `wait_for_replicas(1, 1 s)`;
//!   the promoted replica has no replica of its own until the killed node, restarted as soon as
//!   the failover is over, rejoins as its replica, so writes to its slots answer 503 until then,
//!   and no acknowledged increment is lost.
//! - `single_node_restart_under_load`: one Redis killed for a second and started again (empty:
//!   there is no persistence); errors only while it is down, 503 without `Set-Cookie`, and full
//!   service again within one connect timeout without restarting the app.
//! - `slot_migration_under_load`: three slots holding live sessions move to another primary
//!   (`IMPORTING` / `MIGRATING`, `MIGRATE` key by key, `SETSLOT NODE`); `ASK` and `MOVED` are
//!   followed, and no request fails and nothing is lost.
//! - `redirected_pipelines_are_served`: the same `ASK` stage for a redis-rs pipeline, which the
//!   workspace's redis fix (`vendor/redis/PATCH.md`) sends with an `ASKING` before each command.
//!
//! Every outage test asserts that an outage never answers 500 and prints what it measured: failed
//! requests by status, the time from the fault to full service (the end of the last failed
//! request: every request that ended later succeeded), acknowledged increments lost, and the
//! distinct ERROR lines the session layer logged. Run with `--nocapture` to see them. The tests
//! run one at a time (they measure times, and CI has 2 cores).

#![allow(clippy::print_stdout, reason = "the tests report measured figures")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use session_runtime::SessionLayer;
use session_runtime::session::SessionId;
use session_runtime::store::{RedisStore, RedisStoreBuilder};
use session_tests::redis::{OwnRedis, RedisCluster};
use session_tests::server::{
    TestClock, TestServer, cookie_value, raw_client, set_cookies, test_config,
};

/// The tests run one at a time: they measure times, which a second cluster and its clients on
/// the same 2 cores would distort.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The example's cookie name.
const COOKIE: &str = "counter";
/// How long the clients run before the fault.
const WARM_UP: Duration = Duration::from_secs(2);
/// How long the clients keep going once every one of them succeeds again.
const QUIET: Duration = Duration::from_secs(2);
/// When the clients stop even if service never came back (the assertions then fail): late
/// enough to see full service within [`FAILOVER_BUDGET`], early enough to keep a failing test
/// under 30 seconds.
const GIVE_UP: Duration = Duration::from_secs(18);
/// A request that takes longer is a failure of its own kind (the store's timeouts bound every
/// request far below this).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The cluster's store timeouts.
const CLUSTER_TIMEOUTS: Duration = Duration::from_millis(500);
/// How long a save waits for its replica in the WAIT run: on 2 cores shared by 6 nodes, the
/// app and 32 clients, a healthy replica once took over 300 ms to acknowledge (2 saves answered
/// 503 before the kill in one CI run).
const WAIT_TIMEOUT: Duration = Duration::from_secs(1);
/// The store's response timeout in the WAIT run. Redis holds every later command of a
/// connection behind a `WAIT`, and the store's connection to a node is shared: one slow
/// acknowledgement delays the requests queued behind it by up to [`WAIT_TIMEOUT`], which must
/// not turn them into timeouts on 2 busy cores.
const WAIT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The single node's store timeouts (connect and response).
const SINGLE_TIMEOUTS: Duration = Duration::from_millis(300);
/// How long the single node stays down.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Full service after a failover within this long from the kill.
const FAILOVER_BUDGET: Duration = Duration::from_secs(15);

// ------------------------------------------------------------------------------------------
// Logs
// ------------------------------------------------------------------------------------------

/// The ERROR lines logged since the test started (the session layer logs every store failure
/// and the status it answered).
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once and forgets what earlier tests logged.
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::ERROR)
            .with_ansi(false)
            .without_time()
            .with_writer(|| LogWriter)
            .init();
    });
    LOG.lock().unwrap_or_else(PoisonError::into_inner).clear();
}

/// The distinct lines logged, with how often each was, most frequent first.
fn logged_lines() -> Vec<(usize, String)> {
    let log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in String::from_utf8_lossy(&log).lines() {
        *counts.entry(line.trim().to_owned()).or_insert(0) += 1;
    }
    let mut lines: Vec<(usize, String)> = counts.into_iter().map(|(l, c)| (c, l)).collect();
    lines.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    lines
}

// ------------------------------------------------------------------------------------------
// Clients
// ------------------------------------------------------------------------------------------

/// What one request got.
#[derive(Debug, Clone)]
enum Answer {
    /// An HTTP answer: status, body, the session cookie it set (if any) and whether it set any
    /// cookie at all.
    Http {
        status: u16,
        body: String,
        cookie: Option<String>,
        set_cookie: bool,
    },
    /// No answer: a transport error or the client's timeout.
    Transport(String),
}

/// One request of a client, with its times since the test's epoch.
#[derive(Debug, Clone)]
struct Request {
    started: Duration,
    ended: Duration,
    answer: Answer,
}

impl Request {
    fn succeeded(&self) -> bool {
        matches!(self.answer, Answer::Http { status: 200, .. })
    }

    /// How the request failed, for the tally: `503`, `500`, `client timeout`...
    fn failure_kind(&self) -> Option<String> {
        match &self.answer {
            Answer::Http { status: 200, .. } => None,
            Answer::Http { status, .. } => Some(status.to_string()),
            Answer::Transport(error) if error.contains("timed out") => {
                Some("client timeout".to_owned())
            }
            Answer::Transport(_) => Some("transport error".to_owned()),
        }
    }
}

/// What the controller reads of a running client.
#[derive(Debug, Default)]
struct Progress {
    /// Microseconds since the epoch, plus one, of the end of the latest success (0: none).
    last_success: AtomicU64,
    /// The same for the latest failure.
    last_failure: AtomicU64,
    /// The client's current session cookie value.
    cookie: Mutex<Option<String>>,
}

fn micros(at: Duration) -> u64 {
    u64::try_from(at.as_micros()).unwrap_or(u64::MAX) + 1
}

/// Clients looping on `GET /`, each with its own cookie, until told to stop.
struct Load {
    epoch: Instant,
    stop: Arc<AtomicBool>,
    progress: Vec<Arc<Progress>>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Request>>>,
    base: String,
}

impl Load {
    fn start(server: &TestServer, clients: usize) -> Self {
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let http = raw_client();
        let base = server.url("");
        let progress: Vec<Arc<Progress>> = (0..clients).map(|_| Arc::default()).collect();
        let tasks = progress
            .iter()
            .map(|progress| {
                tokio::spawn(client_loop(
                    http.clone(),
                    format!("{base}/"),
                    progress.clone(),
                    stop.clone(),
                    epoch,
                ))
            })
            .collect();
        Self {
            epoch,
            stop,
            progress,
            tasks,
            base,
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The time since `fault` (a [`now`](Self::now)).
    fn since(&self, fault: Duration) -> Duration {
        self.now().saturating_sub(fault)
    }

    /// The clients' current session cookie values.
    fn cookies(&self) -> Vec<Option<String>> {
        self.progress
            .iter()
            .map(|progress| {
                progress
                    .cookie
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }

    /// Waits until every client has succeeded after `fault` and after its own last failure,
    /// and nobody has failed for [`QUIET`] (true); or until [`GIVE_UP`] after `fault` (false).
    async fn until_served_again(&self, fault: Duration) -> bool {
        loop {
            let now = self.now();
            if now > fault + GIVE_UP {
                return false;
            }
            let mut all_served = now >= fault + QUIET;
            let mut last_failure = 0;
            for progress in &self.progress {
                let success = progress.last_success.load(Ordering::SeqCst);
                let failure = progress.last_failure.load(Ordering::SeqCst);
                last_failure = last_failure.max(failure);
                all_served &= success > failure && success > micros(fault);
            }
            if all_served && micros(now) > last_failure + micros(QUIET) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the clients; returns every client's requests and last cookie, and the app's URL.
    async fn finish(mut self) -> (Vec<Vec<Request>>, Vec<Option<String>>, String) {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for task in std::mem::take(&mut self.tasks) {
            all.push(task.await.expect("a client task panicked"));
        }
        let cookies = self.cookies();
        (all, cookies, self.base)
    }
}

async fn client_loop(
    http: reqwest::Client,
    url: String,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut cookie: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let started = epoch.elapsed();
        let answer = get(&http, &url, cookie.as_deref()).await;
        let ended = epoch.elapsed();
        let request = Request {
            started,
            ended,
            answer,
        };
        if request.succeeded() {
            if let Answer::Http {
                cookie: Some(new), ..
            } = &request.answer
            {
                cookie = Some(new.clone());
                progress
                    .cookie
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone_from(&cookie);
            }
            progress.last_success.store(micros(ended), Ordering::SeqCst);
        } else {
            progress.last_failure.store(micros(ended), Ordering::SeqCst);
        }
        requests.push(request);
    }
    requests
}

/// `GET url` with the session cookie `cookie` (its value), if any.
async fn get(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Answer {
    let mut request = http.get(url).timeout(REQUEST_TIMEOUT);
    if let Some(value) = cookie {
        request = request.header("cookie", format!("{COOKIE}={value}"));
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let cookie = cookie_value(response.headers(), COOKIE);
            let set_cookie = !set_cookies(response.headers()).is_empty();
            match response.text().await {
                Ok(body) => Answer::Http {
                    status,
                    body,
                    cookie,
                    set_cookie,
                },
                Err(error) => Answer::Transport(format!("{error:?}")),
            }
        }
        Err(error) => Answer::Transport(format!("{error:?}")),
    }
}

// ------------------------------------------------------------------------------------------
// Analysis
// ------------------------------------------------------------------------------------------

/// What happened to one client's counter.
#[derive(Debug, Default)]
struct Counter {
    /// The last acknowledged value (200 answer) of its current session.
    acked: u64,
    /// Acknowledged increments of a session that a later answer or the final read of the same
    /// session did not count.
    lost: u64,
    /// Sessions replaced by a new one (the store no longer had them).
    sessions_lost: u64,
    /// The acknowledged increments of those sessions.
    lost_with_sessions: u64,
    /// Increments that landed although their request failed (a later answer counted them).
    landed: u64,
    /// The times (request ends) a new session replaced the previous one.
    replaced_at: Vec<Duration>,
    /// Answers that make no sense for a counter (a new session not starting at 1, no number).
    anomalies: Vec<String>,
}

impl Counter {
    /// Replays one client's answers (its requests ran one after another).
    fn replay(requests: &[Request]) -> Self {
        let mut counter = Self::default();
        let mut session: Option<&str> = None;
        for request in requests {
            let Answer::Http {
                status: 200,
                body,
                cookie,
                ..
            } = &request.answer
            else {
                continue;
            };
            let Ok(value) = body.trim().parse::<u64>() else {
                counter
                    .anomalies
                    .push(format!("GET / answered 200 with {body:?}"));
                continue;
            };
            match cookie.as_deref() {
                Some(new) if session != Some(new) => {
                    if session.is_some() {
                        counter.sessions_lost += 1;
                        counter.lost_with_sessions += counter.acked;
                        counter.replaced_at.push(request.ended);
                    }
                    session = Some(new);
                    if value != 1 {
                        counter
                            .anomalies
                            .push(format!("a new session answered {value}, not 1"));
                    }
                }
                _ if value <= counter.acked => counter.lost += counter.acked + 1 - value,
                _ => counter.landed += value - counter.acked - 1,
            }
            counter.acked = value;
        }
        counter
    }

    /// Accounts for the final `GET /read`.
    fn read_at_the_end(&mut self, read: u64) {
        if read < self.acked {
            self.lost += self.acked - read;
        } else {
            self.landed += read - self.acked;
        }
    }
}

/// The figures of one run; times are since the fault.
#[derive(Debug, Default)]
struct Figures {
    requests: usize,
    /// Failed requests by kind (`503`, `500`, `client timeout`...).
    failed: BTreeMap<String, usize>,
    /// Failed requests that set a cookie anyway.
    failed_with_cookie: usize,
    /// Failed requests that ended before the fault.
    failed_before: usize,
    /// The earliest start and the latest start and end of a failed request.
    first_failure: Option<Duration>,
    last_failure_start: Option<Duration>,
    last_failure_end: Option<Duration>,
    /// Per second (by request end): failed requests, and the clients with one.
    per_second: BTreeMap<u64, (usize, BTreeSet<usize>)>,
    /// Whether every client was served again (see [`Load::until_served_again`]).
    served_again: bool,
    /// Clients with no success after the fault.
    never_served_again: usize,
    /// Acknowledged increments lost, sessions lost entirely aside.
    lost: u64,
    clients_losing: usize,
    sessions_lost: u64,
    /// Acknowledged increments of the sessions lost entirely.
    lost_with_sessions: u64,
    landed: u64,
    anomalies: Vec<String>,
    /// Per client, when its session was replaced.
    replaced_at: Vec<Vec<Duration>>,
    /// Final `GET /read` and `GET /` that did not work, per client.
    broken_sessions: Vec<String>,
}

impl Figures {
    /// Every acknowledged increment lost.
    fn lost_total(&self) -> u64 {
        self.lost + self.lost_with_sessions
    }

    fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    fn failed_by_status(&self) -> String {
        if self.failed.is_empty() {
            return "none".to_owned();
        }
        let mut text = String::new();
        for (kind, count) in &self.failed {
            let separator = if text.is_empty() { "" } else { ", " };
            let _ = write!(text, "{separator}{kind} x {count}");
        }
        text
    }

    /// The time from the fault to full service (the end of the last failed request: every
    /// request that ended later succeeded); `None` if service never fully came back.
    fn full_service(&self) -> Option<Duration> {
        self.served_again
            .then(|| self.last_failure_end.unwrap_or_default())
    }

    fn full_service_text(&self) -> String {
        self.full_service().map_or_else(
            || format!("never (gave up {GIVE_UP:?} after the fault)"),
            |at| format!("{at:.2?}"),
        )
    }
}

/// Tallies every client's requests (times since `fault`), then reads every client's counter
/// (`GET /read`) and writes it once more (`GET /`), all clients at once; both must work.
async fn analyse(
    requests: &[Vec<Request>],
    cookies: &[Option<String>],
    base: &str,
    fault: Duration,
    served_again: bool,
) -> Figures {
    let mut figures = Figures {
        served_again,
        ..Figures::default()
    };
    for (client, requests) in requests.iter().enumerate() {
        figures.requests += requests.len();
        for request in requests {
            let Some(kind) = request.failure_kind() else {
                continue;
            };
            *figures.failed.entry(kind).or_insert(0) += 1;
            if let Answer::Http {
                set_cookie: true, ..
            } = request.answer
            {
                figures.failed_with_cookie += 1;
            }
            if request.ended < fault {
                figures.failed_before += 1;
            }
            let (started, ended) = (
                request.started.saturating_sub(fault),
                request.ended.saturating_sub(fault),
            );
            let second = figures.per_second.entry(ended.as_secs()).or_default();
            second.0 += 1;
            second.1.insert(client);
            figures.first_failure = Some(figures.first_failure.map_or(started, |f| f.min(started)));
            figures.last_failure_start = figures.last_failure_start.max(Some(started));
            figures.last_failure_end = figures.last_failure_end.max(Some(ended));
        }
        if !requests
            .iter()
            .any(|request| request.succeeded() && request.started > fault)
        {
            figures.never_served_again += 1;
        }
    }
    let http = raw_client();
    let finals = cookies
        .iter()
        .map(|cookie| final_check(&http, base, cookie.as_deref()));
    let finals = futures_util::future::join_all(finals).await;
    for (client, (requests, last)) in requests.iter().zip(finals).enumerate() {
        let mut counter = Counter::replay(requests);
        match last {
            Ok(read) => counter.read_at_the_end(read),
            Err(broken) => figures
                .broken_sessions
                .push(format!("client {client}: {broken}")),
        }
        figures.lost += counter.lost;
        figures.clients_losing += usize::from(counter.lost + counter.lost_with_sessions > 0);
        figures.sessions_lost += counter.sessions_lost;
        figures.lost_with_sessions += counter.lost_with_sessions;
        figures.landed += counter.landed;
        figures.anomalies.extend(
            counter
                .anomalies
                .into_iter()
                .map(|anomaly| format!("client {client}: {anomaly}")),
        );
        figures.replaced_at.push(counter.replaced_at);
    }
    figures
}

/// `GET /read`, then `GET /`, which must answer one more: the value read, or what went wrong.
async fn final_check(
    http: &reqwest::Client,
    base: &str,
    cookie: Option<&str>,
) -> Result<u64, String> {
    let Some(cookie) = cookie else {
        return Err("never got a session".to_owned());
    };
    let read = match get(http, &format!("{base}/read"), Some(cookie)).await {
        Answer::Http {
            status: 200, body, ..
        } => body
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("GET /read answered {body:?}"))?,
        other => return Err(format!("GET /read answered {other:?}")),
    };
    match get(http, &format!("{base}/"), Some(cookie)).await {
        Answer::Http {
            status: 200, body, ..
        } if body.trim() == (read + 1).to_string() => Ok(read),
        other => Err(format!("GET / after reading {read} answered {other:?}")),
    }
}

/// Prints the figures and the ERROR lines logged.
fn report(name: &str, figures: &Figures, timeline: &str) {
    println!(
        "FAULT {name}: {} requests; failed: {}; full service {} after the fault; acknowledged \
         increments lost: {} (in {} clients; {} of them with {} sessions lost entirely); \
         unacknowledged increments that landed: {}",
        figures.requests,
        figures.failed_by_status(),
        figures.full_service_text(),
        figures.lost_total(),
        figures.clients_losing,
        figures.lost_with_sessions,
        figures.sessions_lost,
        figures.landed,
    );
    println!("  {timeline}");
    if let (Some(first), Some(last_start), Some(last_end)) = (
        figures.first_failure,
        figures.last_failure_start,
        figures.last_failure_end,
    ) {
        println!(
            "  failed requests from {first:.2?} to {last_end:.2?} after the fault (the last one \
             started at {last_start:.2?})"
        );
    }
    let mut seconds = String::new();
    for (second, (failed, clients)) in &figures.per_second {
        let _ = write!(
            seconds,
            " [{second}s] {failed} in {} clients;",
            clients.len()
        );
    }
    println!("  failed requests per second after the fault:{seconds}");
    let lines = logged_lines();
    println!("  ERROR lines logged ({} distinct):", lines.len());
    for (count, line) in lines.iter().take(12) {
        println!("    {count} x {line}");
    }
    for (count, line) in lines
        .iter()
        .skip(12)
        .filter(|(_, line)| line.contains("answering 500"))
    {
        println!("    {count} x {line}");
    }
}

/// What every fault must satisfy: no failure before the fault, every failure a 503 without
/// `Set-Cookie` (an outage answers 503, never 500, and always answers), the fault was felt, and
/// every client ends with a working session.
fn outage_violations(figures: &Figures) -> Vec<String> {
    let mut violations = Vec::new();
    if figures.failed.keys().any(|kind| kind != "503") {
        let lines_500: Vec<String> = logged_lines()
            .into_iter()
            .filter(|(_, line)| line.contains("answering 500"))
            .map(|(count, line)| format!("{count} x {line}"))
            .collect();
        violations.push(format!(
            "failures other than 503: {}; the 500s logged: {lines_500:#?}",
            figures.failed_by_status()
        ));
    }
    if figures.failed_total() == 0 {
        violations.push("no request failed: nobody felt the fault".to_owned());
    }
    violations.extend(session_violations(figures));
    violations
}

/// What no fault may cause: failures before it, a cookie set by a failed request, a client
/// never served again, a session that doesn't work at the end, an answer that makes no sense.
fn session_violations(figures: &Figures) -> Vec<String> {
    let mut violations = Vec::new();
    if figures.failed_before > 0 {
        violations.push(format!(
            "{} requests failed before the fault",
            figures.failed_before
        ));
    }
    if figures.failed_with_cookie > 0 {
        violations.push(format!(
            "{} failed requests set a cookie",
            figures.failed_with_cookie
        ));
    }
    if figures.never_served_again > 0 {
        violations.push(format!(
            "{} clients never succeeded after the fault",
            figures.never_served_again
        ));
    }
    if !figures.broken_sessions.is_empty() {
        violations.push(format!(
            "sessions that don't work at the end: {:#?}",
            figures.broken_sessions
        ));
    }
    if !figures.anomalies.is_empty() {
        violations.push(format!("anomalies: {:#?}", figures.anomalies));
    }
    violations
}

fn assert_none(name: &str, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "{name}: {} violations:\n- {}",
        violations.len(),
        violations.join("\n- ")
    );
}

// ------------------------------------------------------------------------------------------
// The cluster
// ------------------------------------------------------------------------------------------

/// The example on `cluster`, its store made by `builder`, under 32 clients that have warmed up;
/// returns the store (for the sessions' keys), the server (it stops when dropped) and the load.
async fn under_load(
    cluster: &RedisCluster,
    builder: RedisStoreBuilder,
) -> (RedisStore, TestServer, Load) {
    let store = builder.connect_cluster(cluster.urls()).await.unwrap();
    let keys = store.clone();
    let clock = TestClock::new();
    let app =
        session_examples::routes().layer(SessionLayer::new(store).with_config(test_config(&clock)));
    let server = TestServer::start(app).await;
    let load = Load::start(&server, 32);
    tokio::time::sleep(WARM_UP).await;
    (keys, server, load)
}

/// The slot of every client's session and the primary serving it.
async fn session_slots(cluster: &RedisCluster, keys: &RedisStore, load: &Load) -> Vec<(u16, u16)> {
    let mut slots = Vec::new();
    for cookie in load.cookies().into_iter().flatten() {
        let id = SessionId::parse(&cookie).expect("the app issues valid ids");
        let slot = cluster.slot_of(&keys.key_of(&id)).await;
        slots.push((slot, cluster.primary_of_slot(slot).await));
    }
    slots
}

/// Kills the primary serving the most sessions under 32 clients; with `wait`, saves wait for a
/// replica and the killed node is restarted once its replica has taken over. Checks what every
/// failover must satisfy and returns the figures.
async fn failover(name: &str, wait: bool) -> (Figures, Vec<String>) {
    let cluster = RedisCluster::start_with_replicas(1).await;
    let mut builder = RedisStore::builder().connect_timeout(CLUSTER_TIMEOUTS);
    builder = if wait {
        builder
            .response_timeout(WAIT_RESPONSE_TIMEOUT)
            .wait_for_replicas(1, WAIT_TIMEOUT)
    } else {
        builder.response_timeout(CLUSTER_TIMEOUTS)
    };
    let (keys, _server, load) = under_load(&cluster, builder).await;
    let mut per_primary: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, primary) in session_slots(&cluster, &keys, &load).await {
        *per_primary.entry(primary).or_insert(0) += 1;
    }
    let (&victim, &sessions) = per_primary
        .iter()
        .max_by_key(|(_, sessions)| **sessions)
        .expect("the clients have sessions");
    let fault = load.now();
    cluster.kill(victim).await;
    let killed = load.since(fault);
    cluster.wait_until_ok().await;
    let failed_over = load.since(fault);
    let mut timeline = format!(
        "sessions per primary (port: sessions) {per_primary:?}; killed {victim} ({sessions} sessions) in {killed:.2?}; \
         failover over (its replica serves its slots, cluster_state:ok) {failed_over:.2?} after \
         the kill"
    );
    if wait {
        cluster.restart(victim).await;
        let rejoined = load.since(fault);
        cluster.wait_until_ok().await;
        let _ = write!(
            timeline,
            "; restarted, back as a synced replica {rejoined:.2?} after the kill"
        );
    }
    let served_again = load.until_served_again(fault).await;
    let (requests, cookies, base) = load.finish().await;
    let figures = analyse(&requests, &cookies, &base, fault, served_again).await;
    report(name, &figures, &timeline);
    let mut violations = outage_violations(&figures);
    match figures.full_service() {
        Some(took) if took <= FAILOVER_BUDGET => {}
        took => violations.push(format!(
            "full service {took:?} after the kill, not within {FAILOVER_BUDGET:?}"
        )),
    }
    (figures, violations)
}

/// A primary dies under load; its replica takes over. Increments acknowledged just before the
/// kill may be lost (asynchronous replication): reported, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_under_load() {
    let _serial = SERIAL.lock().await;
    capture_logs();
    let name = "failover, no WAIT";
    let (_, violations) = failover(name, false).await;
    assert_none(name, &violations);
}

/// A primary dies under load while every save waits for a replica's acknowledgement: nothing
/// acknowledged is lost; writes to the promoted replica's slots answer 503 until the killed node
/// is back as its replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_under_load_waiting_for_a_replica() {
    let _serial = SERIAL.lock().await;
    capture_logs();
    let name = "failover, WAIT for 1 replica";
    let (figures, mut violations) = failover(name, true).await;
    if (figures.lost_total(), figures.sessions_lost) != (0, 0) {
        violations.push(format!(
            "{} acknowledged increments lost, {} sessions lost entirely",
            figures.lost_total(),
            figures.sessions_lost
        ));
    }
    assert_none(name, &violations);
}

// ------------------------------------------------------------------------------------------
// One node
// ------------------------------------------------------------------------------------------

/// One Redis killed for a second under 16 clients and started again, empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_restart_under_load() {
    let _serial = SERIAL.lock().await;
    capture_logs();
    let name = "single node down 1 s";
    let mut redis = OwnRedis::start().await;
    let store = RedisStore::builder()
        .connect_timeout(SINGLE_TIMEOUTS)
        .response_timeout(SINGLE_TIMEOUTS)
        .connect(&redis.url())
        .await
        .unwrap();
    let clock = TestClock::new();
    let app =
        session_examples::routes().layer(SessionLayer::new(store).with_config(test_config(&clock)));
    let server = TestServer::start(app).await;
    let load = Load::start(&server, 16);

    tokio::time::sleep(WARM_UP).await;
    let fault = load.now();
    redis.stop().await;
    let stopped = load.since(fault);
    tokio::time::sleep(DOWN_FOR).await;
    redis.restart().await;
    let back = load.since(fault);
    let served_again = load.until_served_again(fault).await;
    let (requests, cookies, base) = load.finish().await;
    let figures = analyse(&requests, &cookies, &base, fault, served_again).await;
    let timeline = format!(
        "killed in {stopped:.2?}, answering again {back:.2?} after the kill; full service {} \
         after Redis was back",
        figures.full_service().map_or_else(
            || "never".to_owned(),
            |at| format!("{:.2?}", at.saturating_sub(back))
        )
    );
    report(name, &figures, &timeline);

    let mut violations = outage_violations(&figures);
    // Errors only while Redis was down: none ended before the kill (above), none started once
    // Redis had been back for a connect timeout.
    let last_start = figures.last_failure_start.unwrap_or_default();
    if last_start >= back + SINGLE_TIMEOUTS {
        violations.push(format!(
            "a request that started {:?} after Redis was back failed",
            last_start.saturating_sub(back)
        ));
    }
    if !figures.served_again {
        violations.push("service never fully came back".to_owned());
    }
    // Redis came back empty: every client's session started again from 1, once, after the
    // kill; nothing acknowledged in the new sessions is lost.
    for (client, replaced) in figures.replaced_at.iter().enumerate() {
        if replaced.len() != 1 || replaced[0] < fault + stopped {
            violations.push(format!(
                "client {client}: sessions replaced at {replaced:?}, not once after the restart"
            ));
        }
    }
    if figures.lost > 0 {
        violations.push(format!(
            "{} acknowledged increments lost besides the sessions the restart emptied",
            figures.lost
        ));
    }
    assert_none(name, &violations);
}

// ------------------------------------------------------------------------------------------
// Slot migration
// ------------------------------------------------------------------------------------------

/// Slots moved per run.
const SLOTS_MOVED: usize = 3;
/// Between two keys' `MIGRATE`s, and how long a slot stays migrating once its keys have moved
/// (every request for it is then an `ASK`).
const MIGRATE_PACE: Duration = Duration::from_millis(100);
const MIGRATE_HOLD: Duration = Duration::from_secs(1);

/// Three slots holding live sessions move to another primary under 32 clients, the way
/// `redis-cli --cluster reshard` moves them (`IMPORTING` / `MIGRATING`, `MIGRATE` key by key,
/// `SETSLOT NODE`), slowly enough for the clients to meet every stage: `ASK` while the slot
/// migrates, `MOVED` after. Nothing may fail and nothing may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slot_migration_under_load() {
    let _serial = SERIAL.lock().await;
    capture_logs();
    let name = "slot migration";
    let cluster = RedisCluster::start().await;
    let builder = RedisStore::builder()
        .connect_timeout(CLUSTER_TIMEOUTS)
        .response_timeout(CLUSTER_TIMEOUTS);
    let (keys, _server, load) = under_load(&cluster, builder).await;
    // The slots of the live sessions, by the primary serving them.
    let mut slots: BTreeMap<u16, BTreeSet<u16>> = BTreeMap::new();
    for (slot, primary) in session_slots(&cluster, &keys, &load).await {
        slots.entry(primary).or_default().insert(slot);
    }
    let (&source, busiest) = slots
        .iter()
        .max_by_key(|(_, slots)| slots.len())
        .expect("the clients have sessions");
    let moving: Vec<u16> = busiest.iter().copied().take(SLOTS_MOVED).collect();
    let primaries = cluster.primaries().await;
    let target = *primaries
        .iter()
        .find(|&&port| port != source)
        .expect("3 primaries");
    let asking_before = asking_calls(&cluster, target).await;
    let fault = load.now();
    let mut keys_moved = 0;
    for &slot in &moving {
        keys_moved += cluster
            .migrate_slot(slot, target, MIGRATE_PACE, MIGRATE_HOLD)
            .await;
    }
    let migrated = load.since(fault);
    let served_again = load.until_served_again(fault).await;
    let (requests, cookies, base) = load.finish().await;
    let asking = asking_calls(&cluster, target).await - asking_before;
    let figures = analyse(&requests, &cookies, &base, fault, served_again).await;
    let timeline = format!(
        "moved slots {moving:?} ({keys_moved} keys) from {source} to {target} in {migrated:.2?}; \
         {asking} ASKING on the target"
    );
    report(name, &figures, &timeline);

    let mut violations = session_violations(&figures);
    if !figures.served_again {
        violations.push("service never fully came back".to_owned());
    }
    if figures.failed_total() > 0 {
        violations.push(format!(
            "{} requests failed: {}",
            figures.failed_total(),
            figures.failed_by_status()
        ));
    }
    if (figures.lost_total(), figures.sessions_lost) != (0, 0) {
        violations.push(format!(
            "{} acknowledged increments lost, {} sessions lost entirely",
            figures.lost_total(),
            figures.sessions_lost
        ));
    }
    for &slot in &moving {
        let now = cluster.primary_of_slot(slot).await;
        if now != target {
            violations.push(format!("slot {slot} is served by {now}, not {target}"));
        }
    }
    // The run must have met the ASK stage, or it proves nothing about it.
    if keys_moved == 0 || asking == 0 {
        violations.push(format!(
            "the clients never met an ASK ({keys_moved} keys moved, {asking} ASKING)"
        ));
    }
    assert_none(name, &violations);
}

/// How many `ASKING` commands the node on `port` has served.
async fn asking_calls(cluster: &RedisCluster, port: u16) -> u64 {
    cluster
        .node_command_counts(port)
        .await
        .get("asking")
        .copied()
        .unwrap_or(0)
}

/// The workspace's redis-rs fix beyond what the store sends: a pipeline redirected by `ASK` is
/// served too (`ASKING` before each of its commands), with other requests to the importing node
/// in flight on the same connection all along. (A transaction whose queued commands meet `ASK`
/// aborts, and redis-rs does not redirect it; the store sends none.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redirected_pipelines_are_served() {
    let _serial = SERIAL.lock().await;
    let cluster = RedisCluster::start().await;
    let client = cluster.client();
    let mut connection = client.get_async_connection().await.unwrap();
    // Two keys in one slot (one hash tag), and a key elsewhere for the noise.
    let (first, second) = ("{moving}:a", "{moving}:b");
    let slot = cluster.slot_of(first).await;
    let source = cluster.primary_of_slot(slot).await;
    let target = *cluster
        .primaries()
        .await
        .iter()
        .find(|&&port| port != source)
        .expect("3 primaries");
    let _: () = ::redis::pipe()
        .set(first, 1)
        .set(second, 1)
        .query_async(&mut connection)
        .await
        .unwrap();
    // Noise: requests to the target's slots all along, on the same connection.
    let stop = Arc::new(AtomicBool::new(false));
    let noise = {
        let mut connection = connection.clone();
        let stop = stop.clone();
        let mut key = 0u64;
        let mut noise_keys = Vec::new();
        while noise_keys.len() < 4 {
            let candidate = format!("noise:{key}");
            if cluster.primary_for_key(&candidate).await == target {
                noise_keys.push(candidate);
            }
            key += 1;
        }
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for key in &noise_keys {
                    let _: () = ::redis::cmd("SET")
                        .arg(key)
                        .arg(1)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                }
            }
        })
    };
    let migration = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            cluster
                .migrate_slot(slot, target, Duration::ZERO, Duration::from_secs(3))
                .await
        })
    };
    // Both keys are on the target well before the hold ends.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asking_before = asking_calls(&cluster, target).await;
    for round in 0..20 {
        let (a, b): (i64, i64) = ::redis::pipe()
            .incr(first, 1)
            .incr(second, 1)
            .query_async(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("pipeline, round {round}: {error}"));
        assert_eq!((a, b), (2, round + 2), "pipeline, round {round}");
        let a: i64 = ::redis::cmd("DECR")
            .arg(first)
            .query_async(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("command, round {round}: {error}"));
        assert_eq!(a, 1, "command, round {round}");
    }
    let asking = asking_calls(&cluster, target).await - asking_before;
    stop.store(true, Ordering::SeqCst);
    noise.await.unwrap();
    assert_eq!(migration.await.unwrap(), 2, "both keys moved");
    assert!(asking > 0, "the requests never met an ASK");
}
