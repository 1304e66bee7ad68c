//! Redis for integration tests: a single server, a 3-master Redis Cluster (shared, or private
//! and with replicas, whose nodes can be killed and restarted for failovers), per-test key
//! prefixes, `INFO commandstats` counting and a private Redis that can be stopped, restarted and
//! paused.
//!
//! # Where the single server comes from
//!
//! [`server`] decides once per test process, at run time:
//!
//! 1. `REDIS_URL` if set (it must answer `PING`, or every caller panics: there is no fallback
//!    when the variable names a server);
//! 2. else `redis://127.0.0.1:6379` if it answers `PING` within half a second (and is not a
//!    cluster node);
//! 3. else a `redis-server` of our own on a free loopback port (no persistence, in a temporary
//!    directory);
//! 4. else a panic that says how to get `redis-server`.
//!
//! There is no skip path: under `CI=true`, as everywhere, a missing Redis fails the test.
//!
//! # How our own processes are cleaned up
//!
//! Every `redis-server` we start runs under a small `sh` watchdog whose stdin is a pipe whose
//! only write end this process holds. When this process exits, however it exits (normal exit,
//! panic, `SIGKILL`), the kernel closes the pipe; the watchdog sees end-of-file, kills its
//! `redis-server`, waits for it and removes its temporary directory. Dropping the handle
//! ([`OwnRedis`], the last clone of a private [`RedisCluster`]) does the same at once. The
//! instances shared by a test binary ([`server`], [`cluster`]) live until the process exits.
//! A cluster node killed with [`RedisCluster::kill`] goes the same way (its watchdog removes its
//! directory); the `nodes.conf` it is restarted with is kept in memory, and the restarted node
//! runs under a watchdog of its own, so nothing outlives the process either.
//!
//! # Environment
//!
//! - `REDIS_URL`: the single server to use (read at run time, never at build time).
//! - `REDIS_SERVER_BIN`, `REDIS_CLI_BIN`: the binaries to run (default: `redis-server` and
//!   `redis-cli` on `PATH`).
//!
//! # Counting commands
//!
//! `INFO commandstats` is server-wide: it counts every client's commands. Exact-count tests must
//! therefore run against a server nobody else uses, that is an [`OwnRedis`] (or a private
//! [`RedisCluster::start`]), never the shared [`server`], which other tests (and, on 6379, other
//! processes) use at the same time.
use crate::process::{pick_port, random_u64, run_with_timeout};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ::redis::{AsyncConnectionConfig, Client, IntoConnectionInfo as _};

/// The URL tried when `REDIS_URL` is unset.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// How to get the binaries, for panic messages.
const HOW_TO_GET_REDIS: &str = "Install it (`apt-get install redis-server`, which also brings \
     `redis-cli`), or put it on PATH, or name it with REDIS_SERVER_BIN / REDIS_CLI_BIN. Redis \
     tests are never skipped, under CI=true or otherwise.";

/// How long a started `redis-server` may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new cluster may take to reach `cluster_state:ok` on every node.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeouts of the harness's own probe connections.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

// ------------------------------------------------------------------------------------------
// The single server
// ------------------------------------------------------------------------------------------

/// Where the URL of a [`RedisServer`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `REDIS_URL` environment variable.
    Env,
    /// Nothing was configured and [`DEFAULT_URL`] answered `PING`.
    LocalDefault,
    /// A `redis-server` this test process started and owns.
    Spawned,
}

/// A single Redis that tests may use, shared by all tests of the process. Give every test its
/// own key prefix ([`unique_prefix`]).
#[derive(Clone, Debug)]
pub struct RedisServer {
    url: String,
    origin: Origin,
}

impl RedisServer {
    /// The URL, e.g. `redis://127.0.0.1:6379`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the URL came from.
    #[must_use]
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// A client for this server.
    ///
    /// # Panics
    ///
    /// Never: the harness only hands out valid URLs.
    #[must_use]
    pub fn client(&self) -> Client {
        Client::open(self.url.as_str()).expect("the harness only hands out valid Redis URLs")
    }
}

/// The single Redis of this test process: `REDIS_URL`, else `redis://127.0.0.1:6379`, else a
/// `redis-server` of our own (see the module docs). The first call decides, later calls return
/// the same server; a failure is remembered and every caller panics with its message.
///
/// # Panics
///
/// If `REDIS_URL` is set and does not answer, or no Redis answers and `redis-server` can't be
/// found or started.
pub async fn server() -> RedisServer {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    let result = match SERVER.get() {
        Some(result) => result.clone(),
        None => blocking(|| SERVER.get_or_init(find_or_start_server).clone()).await,
    };
    result.unwrap_or_else(|message| panic!("{message}"))
}

fn find_or_start_server() -> Result<RedisServer, String> {
    if let Some(url) = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        return match probe(&url, Duration::from_secs(2)) {
            Ok(_) => Ok(RedisServer {
                url,
                origin: Origin::Env,
            }),
            Err(error) => Err(format!(
                "REDIS_URL={url} is set, but that Redis does not answer PING ({error}). Start it, \
                 fix REDIS_URL, or unset REDIS_URL to let the tests use {DEFAULT_URL} or start \
                 their own redis-server."
            )),
        };
    }
    if probe(DEFAULT_URL, PROBE_TIMEOUT).is_ok_and(|info| !info.cluster_enabled) {
        return Ok(RedisServer {
            url: DEFAULT_URL.to_owned(),
            origin: Origin::LocalDefault,
        });
    }
    let bin = redis_server_bin().map_err(|error| {
        format!(
            "REDIS_URL is unset, nothing usable answers on {DEFAULT_URL}, and the tests can't \
             start their own Redis: {error} Or set REDIS_URL to a running Redis, e.g. \
             REDIS_URL=redis://127.0.0.1:6379."
        )
    })?;
    let node = start_on_free_port(&bin, Mode::Single, None)?;
    let url = node.url();
    keep_until_exit(node);
    Ok(RedisServer {
        url,
        origin: Origin::Spawned,
    })
}

/// Keeps a node running until the process exits (the watchdog then stops it).
fn keep_until_exit(node: Node) {
    static KEPT: Mutex<Vec<Node>> = Mutex::new(Vec::new());
    KEPT.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(node);
}

// ------------------------------------------------------------------------------------------
// Key prefixes
// ------------------------------------------------------------------------------------------

/// A key prefix unique to this call: `test:{test}:{pid}-{random}:{counter}:`. The random part
/// keeps a reused pid (containers) from meeting keys an earlier run left on a long-lived
/// Redis. Braces in `test` would become a cluster hash tag, so don't put any there unless that
/// is the point.
///
/// # Panics
///
/// Never: the one conversion inside is from the top half of a `u64` to a `u32`.
#[must_use]
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static NONCE: OnceLock<u32> = OnceLock::new();
    let nonce = *NONCE.get_or_init(|| {
        let random = random_u64();
        u32::try_from(random >> 32).expect("a u64 shifted by 32 fits in a u32")
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test:{test}:{}-{nonce:08x}:{n}:", std::process::id())
}

// ------------------------------------------------------------------------------------------
// Redis Cluster
// ------------------------------------------------------------------------------------------

/// A Redis Cluster of our own on loopback: 3 primaries, without replicas ([`start`](Self::start),
/// the shared [`cluster`]) or with them ([`start_with_replicas`](Self::start_with_replicas)),
/// whose nodes a test may [`kill`](Self::kill) and [`restart`](Self::restart). Clones share the
/// nodes; the nodes stop when the last clone is dropped (never, for the shared [`cluster`]).
#[derive(Clone, Debug)]
pub struct RedisCluster {
    inner: Arc<ClusterNodes>,
}

#[derive(Debug)]
struct ClusterNodes {
    urls: Vec<String>,
    ports: Vec<u16>,
    /// The shared [`cluster`]: no test may kill its nodes.
    shared: bool,
    server_bin: PathBuf,
    mode: Mode,
    /// One entry per port, in the order of `ports`.
    nodes: Mutex<Vec<NodeState>>,
}

#[derive(Debug)]
enum NodeState {
    Running(Node),
    /// Killed by [`RedisCluster::kill`]. `nodes_conf` is its cluster configuration file as it
    /// was when it died, kept in memory (its directory is gone with it), which a restart puts
    /// back so that it rejoins as the same node.
    Killed {
        nodes_conf: Vec<u8>,
    },
}

/// One node of a cluster as another node's `CLUSTER NODES` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node id (40 hex digits).
    pub id: String,
    /// The client port (0 for a node without an address).
    pub port: u16,
    /// The flags: `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, ...
    pub flags: Vec<String>,
    /// For a replica, the port of its primary (as far as the describing node knows it).
    pub primary: Option<u16>,
    /// The slot ranges it serves, inclusive (primaries only).
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    /// Whether the describing node sees this one as a primary.
    #[must_use]
    pub fn is_primary(&self) -> bool {
        self.flags.iter().any(|flag| flag == "master")
    }

    /// Whether the describing node suspects (`fail?`) or knows (`fail`) this one to be down.
    #[must_use]
    pub fn is_failing(&self) -> bool {
        self.flags
            .iter()
            .any(|flag| flag == "fail" || flag == "fail?")
    }

    /// Whether it serves `slot`.
    #[must_use]
    pub fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }
}

impl RedisCluster {
    /// Starts a private cluster for tests that need one to themselves (exact command counts,
    /// taking nodes down). Prefer the shared [`cluster`] otherwise: starting one takes seconds.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is missing or the cluster does not come up.
    pub async fn start() -> Self {
        blocking(|| start_cluster(0, Mode::ClusterNode, false))
            .await
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// Starts a private cluster of 3 primaries with `replicas` replicas each
    /// (`redis-cli --cluster create ... --cluster-replicas <replicas>`), made for failovers:
    /// `cluster-node-timeout` 2000 ms (a dead primary is replaced by its replica about 3 seconds
    /// after it died) and `repl-diskless-sync-delay 0` (a replica, new or restarted, syncs at
    /// once). Returns once every node reports `cluster_state:ok`, agrees on who serves which
    /// slots, and every replica's link to its primary is up.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is missing or the cluster does not come up.
    pub async fn start_with_replicas(replicas: usize) -> Self {
        blocking(move || start_cluster(replicas, Mode::FailoverNode, false))
            .await
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// The node URLs, `redis://127.0.0.1:P` each, killed nodes included.
    #[must_use]
    pub fn urls(&self) -> &[String] {
        &self.inner.urls
    }

    /// The node ports, killed nodes included.
    #[must_use]
    pub fn ports(&self) -> Vec<u16> {
        self.inner.ports.clone()
    }

    /// The URLs of the nodes not killed.
    #[must_use]
    pub fn live_urls(&self) -> Vec<String> {
        self.inner
            .live_ports()
            .into_iter()
            .map(url_for_port)
            .collect()
    }

    /// Whether the node on `port` runs (is not [killed](Self::kill)).
    #[must_use]
    pub fn is_running(&self, port: u16) -> bool {
        self.inner.live_ports().contains(&port)
    }

    /// A cluster client seeded with every node.
    ///
    /// # Panics
    ///
    /// Never: the harness only hands out valid URLs.
    #[must_use]
    pub fn client(&self) -> ::redis::cluster::ClusterClient {
        ::redis::cluster::ClusterClient::new(self.inner.urls.clone())
            .expect("the harness only hands out valid Redis URLs")
    }

    /// [`command_counts`] summed over the live nodes. With replicas, the commands a replica
    /// applies from its primary count on the replica too.
    ///
    /// # Panics
    ///
    /// If a node can't be reached.
    pub async fn command_counts(&self) -> HashMap<String, u64> {
        let mut total = HashMap::new();
        for url in self.live_urls() {
            for (name, calls) in command_counts(&url).await {
                *total.entry(name).or_insert(0) += calls;
            }
        }
        total
    }

    /// The cluster as the first live node that answers describes it (`CLUSTER NODES`).
    ///
    /// # Panics
    ///
    /// If no live node answers.
    pub async fn topology(&self) -> Vec<ClusterNode> {
        let inner = self.inner.clone();
        blocking(move || inner.on_a_live_node(cluster_nodes))
            .await
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// The ports of the primaries that serve slots, as [`topology`](Self::topology) sees them.
    ///
    /// # Panics
    ///
    /// If no live node answers.
    pub async fn primaries(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .topology()
            .await
            .into_iter()
            .filter(|node| node.is_primary() && !node.slots.is_empty())
            .map(|node| node.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`, asked of a live node).
    ///
    /// # Panics
    ///
    /// If no live node answers.
    pub async fn slot_of(&self, key: &str) -> u16 {
        let inner = self.inner.clone();
        let key = key.to_owned();
        blocking(move || {
            inner.on_a_live_node(|connection| {
                ::redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&key)
                    .query::<u16>(connection)
                    .map_err(|error| error.to_string())
            })
        })
        .await
        .unwrap_or_else(|message| panic!("{message}"))
    }

    /// The port of the primary that serves `slot`, as [`topology`](Self::topology) sees it.
    ///
    /// # Panics
    ///
    /// If no live node answers, or none serves the slot.
    pub async fn primary_of_slot(&self, slot: u16) -> u16 {
        let topology = self.topology().await;
        topology
            .iter()
            .find(|node| node.is_primary() && node.serves(slot))
            .map_or_else(
                || panic!("no primary serves slot {slot}: {topology:?}"),
                |node| node.port,
            )
    }

    /// The port of the primary that serves `key`'s slot ([`slot_of`](Self::slot_of),
    /// [`primary_of_slot`](Self::primary_of_slot)).
    ///
    /// # Panics
    ///
    /// As those two.
    pub async fn primary_for_key(&self, key: &str) -> u16 {
        let slot = self.slot_of(key).await;
        self.primary_of_slot(slot).await
    }

    /// Kills the node on `port` with `SIGKILL`, like a crash, and returns once it is gone. Its
    /// `nodes.conf` is kept (in memory) for [`restart`](Self::restart): the server is first
    /// frozen with `SIGSTOP`, so the file read is the one it died with.
    ///
    /// # Panics
    ///
    /// On the shared [`cluster`], for a port not in the cluster or already killed, or if the
    /// node's `nodes.conf` can't be read (the node is killed all the same).
    pub async fn kill(&self, port: u16) {
        let inner = self.inner.clone();
        blocking(move || inner.kill(port))
            .await
            .unwrap_or_else(|message| panic!("{message}"));
    }

    /// Starts the [killed](Self::kill) node on `port` again: same port, same `nodes.conf` (so the
    /// same node id and cluster configuration; the data is gone, as there is no persistence), in
    /// a new directory under a new watchdog. First waits until the live nodes are healthy (as
    /// [`wait_until_ok`](Self::wait_until_ok)), that is, for a killed primary, until its replica
    /// replaced it: a primary that came back empty before that would still own its slots and hand
    /// its replica an empty data set. Returns once the node has rejoined as a replica of the
    /// node serving its former slots (Redis turns a primary that lost its slots to a node with a
    /// newer configuration into that node's replica) and its replication link is up, i.e. it
    /// holds a full copy.
    ///
    /// # Panics
    ///
    /// For a port not killed, or if the node does not start or rejoin within 30 seconds.
    pub async fn restart(&self, port: u16) {
        let inner = self.inner.clone();
        blocking(move || inner.restart(port))
            .await
            .unwrap_or_else(|message| panic!("{message}"));
    }

    /// Moves `slot` to the primary on port `to` while clients use it, the way
    /// `redis-cli --cluster reshard` does, but slowly, so that the clients meet every stage:
    /// `CLUSTER SETSLOT <slot> IMPORTING` on the target and `MIGRATING` on the source (keys
    /// still on the source are served there; the others, new ones included, answer `ASK`), then
    /// its keys one `MIGRATE` at a time with `pace` between them, then `hold` with every key on
    /// the target and the slot still migrating (every request for it is an `ASK`), then
    /// `CLUSTER SETSLOT <slot> NODE <target>` on the target, the source and the other primaries
    /// (from then on `MOVED`). Returns the number of keys moved.
    ///
    /// # Panics
    ///
    /// If a node does not answer, `to` is not a primary, or a step fails.
    pub async fn migrate_slot(&self, slot: u16, to: u16, pace: Duration, hold: Duration) -> usize {
        let topology = self.topology().await;
        blocking(move || migrate_slot(&topology, slot, to, pace, hold))
            .await
            .unwrap_or_else(|message| panic!("moving slot {slot} to {to}: {message}"))
    }

    /// `INFO commandstats` of the node on `port` (`ASKING` calls, say): the calls per command.
    ///
    /// # Panics
    ///
    /// If the node does not answer.
    pub async fn node_command_counts(&self, port: u16) -> HashMap<String, u64> {
        command_counts(&url_for_port(port)).await
    }

    /// Waits until every live node reports `cluster_state:ok` with all 16384 slots ok, the live
    /// nodes agree on who serves which slots and all of those primaries are live and not failing,
    /// and every live replica's link to its primary is up. After a [`kill`](Self::kill) of a
    /// primary, this is the moment the failover is over.
    ///
    /// # Panics
    ///
    /// If that does not happen within 30 seconds.
    pub async fn wait_until_ok(&self) {
        let inner = self.inner.clone();
        blocking(move || {
            let live = inner.live_ports();
            wait_until_healthy(&live, inner.ports.len(), None)
        })
        .await
        .unwrap_or_else(|message| panic!("{message}"));
    }
}

impl ClusterNodes {
    fn live_ports(&self) -> Vec<u16> {
        let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        self.ports
            .iter()
            .zip(nodes.iter())
            .filter(|(_, state)| matches!(state, NodeState::Running(_)))
            .map(|(&port, _)| port)
            .collect()
    }

    fn index_of(&self, port: u16) -> Result<usize, String> {
        self.ports
            .iter()
            .position(|&candidate| candidate == port)
            .ok_or_else(|| {
                format!(
                    "port {port} is not a node of this cluster ({:?})",
                    self.ports
                )
            })
    }

    /// Runs `query` on a connection to the first live node that answers it.
    fn on_a_live_node<T>(
        &self,
        mut query: impl FnMut(&mut ::redis::Connection) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut errors = Vec::new();
        for port in self.live_ports() {
            let url = url_for_port(port);
            match connect(&url, PROBE_TIMEOUT)
                .map_err(|error| error.to_string())
                .and_then(|mut connection| query(&mut connection))
            {
                Ok(value) => return Ok(value),
                Err(error) => errors.push(format!("{url}: {error}")),
            }
        }
        Err(format!(
            "no live cluster node answered: {}",
            errors.join("; ")
        ))
    }

    fn kill(&self, port: u16) -> Result<(), String> {
        if self.shared {
            return Err(
                "the shared cluster's nodes can't be killed: start a private one".to_owned(),
            );
        }
        let index = self.index_of(port)?;
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let NodeState::Running(node) = &nodes[index] else {
            return Err(format!("the node on port {port} is already killed"));
        };
        // Frozen, it can't rewrite its configuration between the read and the kill.
        send_signal(node.redis_pid, "STOP")?;
        let read = std::fs::read(node.dir.join(nodes_conf_name(port)));
        let nodes_conf = read.as_ref().map_or_else(|_| Vec::new(), Clone::clone);
        // Dropping the node makes its watchdog SIGKILL it, wait for it and remove its directory.
        drop(std::mem::replace(
            &mut nodes[index],
            NodeState::Killed { nodes_conf },
        ));
        read.map(drop)
            .map_err(|error| format!("killed the node on port {port}, but its nodes.conf could not be read first: {error}"))
    }

    fn restart(&self, port: u16) -> Result<(), String> {
        let index = self.index_of(port)?;
        let nodes_conf = {
            let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
            match &nodes[index] {
                NodeState::Killed { nodes_conf } => nodes_conf.clone(),
                NodeState::Running(_) => {
                    return Err(format!("the node on port {port} is running, not killed"));
                }
            }
        };
        wait_until_healthy(&self.live_ports(), self.ports.len(), None)
            .map_err(|error| format!("not restarting the node on port {port}: {error}"))?;
        let mut errors = Vec::new();
        let mut started = None;
        for _ in 0..5 {
            match Node::launch(&self.server_bin, port, self.mode, None, Some(&nodes_conf)) {
                Ok(node) => {
                    started = Some(node);
                    break;
                }
                Err(error) => errors.push(error),
            }
            thread::sleep(Duration::from_millis(200));
        }
        let Some(node) = started else {
            return Err(format!(
                "could not start the cluster node on port {port} again:\n{}",
                errors.join("\n---\n")
            ));
        };
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)[index] = NodeState::Running(node);
        wait_for_replica(port)
    }
}

/// The Redis Cluster of this test process: 3 masters of our own on free loopback ports, started
/// by the first call and shared by every test of the process (use [`unique_prefix`]).
///
/// # Panics
///
/// If `redis-server` or `redis-cli` is missing or the cluster does not come up; the failure is
/// remembered and every caller panics with its message.
pub async fn cluster() -> RedisCluster {
    static CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
    let result = match CLUSTER.get() {
        Some(result) => result.clone(),
        None => {
            blocking(|| {
                CLUSTER
                    .get_or_init(|| start_cluster(0, Mode::ClusterNode, true))
                    .clone()
            })
            .await
        }
    };
    result.unwrap_or_else(|message| panic!("{message}"))
}

fn start_cluster(replicas: usize, mode: Mode, shared: bool) -> Result<RedisCluster, String> {
    let server_bin = redis_server_bin()
        .map_err(|error| format!("the Redis Cluster tests can't start their nodes: {error}"))?;
    let cli_bin = redis_cli_bin()
        .map_err(|error| format!("the Redis Cluster tests can't join their nodes: {error}"))?;
    let mut errors = Vec::new();
    for _ in 0..3 {
        match try_start_cluster(&server_bin, &cli_bin, replicas, mode) {
            Ok(nodes) => {
                return Ok(RedisCluster {
                    inner: Arc::new(ClusterNodes {
                        urls: nodes.iter().map(Node::url).collect(),
                        ports: nodes.iter().map(|node| node.port).collect(),
                        shared,
                        server_bin,
                        mode,
                        nodes: Mutex::new(nodes.into_iter().map(NodeState::Running).collect()),
                    }),
                });
            }
            Err(error) => errors.push(error),
        }
    }
    Err(format!(
        "could not start a Redis Cluster of 3 masters with {replicas} replicas each on loopback \
         (3 attempts):\n{}",
        errors.join("\n---\n")
    ))
}

fn try_start_cluster(
    server_bin: &Path,
    cli_bin: &Path,
    replicas: usize,
    mode: Mode,
) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::new();
    for _ in 0..3 * (1 + replicas) {
        // On an error the nodes started so far are dropped, which stops them.
        nodes.push(Node::start(server_bin, pick_port(true), mode, None)?);
    }
    let mut create = Command::new(cli_bin);
    create.args(["--cluster", "create"]);
    for node in &nodes {
        create.arg(format!("127.0.0.1:{}", node.port));
    }
    create
        .args(["--cluster-replicas", &replicas.to_string()])
        .arg("--cluster-yes");
    let (status, output) = run_with_timeout(&mut create, CLUSTER_TIMEOUT)?;
    if !status.success() {
        return Err(format!(
            "`redis-cli --cluster create` failed ({status}):\n{output}"
        ));
    }
    let ports: Vec<u16> = nodes.iter().map(|node| node.port).collect();
    wait_until_healthy(&ports, ports.len(), Some(replicas))?;
    Ok(nodes)
}

/// Waits until [`unhealthy`] finds nothing wrong.
fn wait_until_healthy(
    live: &[u16],
    known: usize,
    replicas_each: Option<usize>,
) -> Result<(), String> {
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    loop {
        let Some(problem) = unhealthy(live, known, replicas_each) else {
            return Ok(());
        };
        if Instant::now() > deadline {
            return Err(format!(
                "the cluster (live nodes {live:?}) was not healthy within {CLUSTER_TIMEOUT:?}: \
                 {problem}"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A node's port, and who serves which slots as it sees it: (first slot, last slot, port).
type SlotView = (u16, Vec<(u16, u16, u16)>);

/// What is wrong with the cluster as its live nodes see it, or `None`: each live node must report
/// `cluster_state:ok`, all 16384 slots assigned and ok, and `known` nodes; all must agree on
/// which node serves which slots, and those primaries must be live and not failing; every live
/// node that is a replica must have its link to its primary up; with `replicas_each`, every
/// primary must have exactly that many replicas.
fn unhealthy(live: &[u16], known: usize, replicas_each: Option<usize>) -> Option<String> {
    let expected_known = known.to_string();
    // The first node's view: its port, and (first slot, last slot, port) per range served.
    let mut agreed: Option<SlotView> = None;
    for &port in live {
        let url = url_for_port(port);
        let mut connection = match connect(&url, PROBE_TIMEOUT) {
            Ok(connection) => connection,
            Err(error) => return Some(format!("{url}: {error}")),
        };
        let mut query = |args: &[&str]| {
            ::redis::cmd(args[0])
                .arg(&args[1..])
                .query::<String>(&mut connection)
                .map_err(|error| format!("{url}: {args:?}: {error}"))
        };
        let (info, nodes, replication) = match (
            query(&["CLUSTER", "INFO"]),
            query(&["CLUSTER", "NODES"]),
            query(&["INFO", "replication"]),
        ) {
            (Ok(info), Ok(nodes), Ok(replication)) => (info, nodes, replication),
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => return Some(error),
        };
        let fields = info_fields(&info);
        let field = |name: &str| fields.get(name).map(String::as_str);
        if field("cluster_state") != Some("ok")
            || field("cluster_slots_assigned") != Some("16384")
            || field("cluster_slots_ok") != Some("16384")
            || field("cluster_known_nodes") != Some(expected_known.as_str())
        {
            return Some(format!("{url}: CLUSTER INFO {info:?}"));
        }
        let nodes = match parse_cluster_nodes(&nodes) {
            Ok(nodes) => nodes,
            Err(error) => return Some(format!("{url}: {error}")),
        };
        let mut served = Vec::new();
        for node in nodes.iter().filter(|node| !node.slots.is_empty()) {
            if !live.contains(&node.port) || node.is_failing() {
                return Some(format!(
                    "{url} sees slots served by a node that is down: {node:?}"
                ));
            }
            served.extend(
                node.slots
                    .iter()
                    .map(|&(first, last)| (first, last, node.port)),
            );
        }
        served.sort_unstable();
        match &agreed {
            None => agreed = Some((port, served)),
            Some((other, view)) if *view != served => {
                return Some(format!(
                    "nodes {other} and {port} disagree on who serves which slots: {view:?} vs \
                     {served:?}"
                ));
            }
            Some(_) => {}
        }
        let replication = info_fields(&replication);
        if replication.get("role").map(String::as_str) == Some("slave") {
            let primary = replication
                .get("master_port")
                .and_then(|port| port.parse::<u16>().ok());
            if replication.get("master_link_status").map(String::as_str) != Some("up")
                || !primary.is_some_and(|primary| live.contains(&primary))
            {
                return Some(format!(
                    "{url} is a replica whose link is not up: {replication:?}"
                ));
            }
        }
        if let Some(replicas) = replicas_each {
            for primary in nodes.iter().filter(|node| !node.slots.is_empty()) {
                let count = nodes
                    .iter()
                    .filter(|node| node.primary == Some(primary.port) && !node.is_failing())
                    .count();
                if count != replicas {
                    return Some(format!(
                        "{url} sees {count} replicas of {}, not {replicas}",
                        primary.port
                    ));
                }
            }
        }
    }
    None
}

/// Waits until the node on `port` is a replica whose link to its primary is up.
fn wait_for_replica(port: u16) -> Result<(), String> {
    let url = url_for_port(port);
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    loop {
        let replication = connect(&url, PROBE_TIMEOUT).and_then(|mut connection| {
            ::redis::cmd("INFO")
                .arg("replication")
                .query::<String>(&mut connection)
        });
        let last = match replication {
            Ok(text) => {
                let fields = info_fields(&text);
                if fields.get("role").map(String::as_str) == Some("slave")
                    && fields.get("master_link_status").map(String::as_str) == Some("up")
                {
                    return Ok(());
                }
                format!("{fields:?}")
            }
            Err(error) => error.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "the restarted node on port {port} did not become a synced replica within \
                 {CLUSTER_TIMEOUT:?}; last INFO replication: {last}"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// [`RedisCluster::migrate_slot`] on the cluster `topology` describes.
fn migrate_slot(
    topology: &[ClusterNode],
    slot: u16,
    to: u16,
    pace: Duration,
    hold: Duration,
) -> Result<usize, String> {
    let source = topology
        .iter()
        .find(|node| node.is_primary() && node.serves(slot))
        .ok_or_else(|| format!("no primary serves the slot: {topology:?}"))?;
    let target = topology
        .iter()
        .find(|node| node.is_primary() && node.port == to)
        .ok_or_else(|| format!("no primary on port {to}: {topology:?}"))?;
    if source.port == to {
        return Err(format!("port {to} serves the slot already"));
    }
    let open = |port: u16| {
        connect(&url_for_port(port), CLUSTER_TIMEOUT)
            .map_err(|error| format!("connecting to the node on port {port}: {error}"))
    };
    let mut on_source = open(source.port)?;
    let mut on_target = open(to)?;
    let setslot = |connection: &mut ::redis::Connection, state: &str, id: &str| {
        ::redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
            .query::<()>(connection)
            .map_err(|error| format!("CLUSTER SETSLOT {slot} {state}: {error}"))
    };
    setslot(&mut on_target, "IMPORTING", &source.id)?;
    setslot(&mut on_source, "MIGRATING", &target.id)?;
    let mut moved = 0;
    loop {
        let keys: Vec<Vec<u8>> = ::redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(1)
            .query(&mut on_source)
            .map_err(|error| format!("CLUSTER GETKEYSINSLOT: {error}"))?;
        let Some(key) = keys.into_iter().next() else {
            break;
        };
        ::redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&key)
            .query::<()>(&mut on_source)
            .map_err(|error| format!("MIGRATE: {error}"))?;
        moved += 1;
        thread::sleep(pace);
    }
    thread::sleep(hold);
    // The target first, then the source (which then answers MOVED), then everyone else.
    setslot(&mut on_target, "NODE", &target.id)?;
    setslot(&mut on_source, "NODE", &target.id)?;
    for node in topology {
        if node.is_primary() && node.port != source.port && node.port != to {
            setslot(&mut open(node.port)?, "NODE", &target.id)?;
        }
    }
    Ok(moved)
}

/// `CLUSTER NODES` on `connection`, parsed.
fn cluster_nodes(connection: &mut ::redis::Connection) -> Result<Vec<ClusterNode>, String> {
    let text: String = ::redis::cmd("CLUSTER")
        .arg("NODES")
        .query(connection)
        .map_err(|error| format!("CLUSTER NODES: {error}"))?;
    parse_cluster_nodes(&text)
}

/// Parses `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <primary id or -> <ping-sent>
/// <pong-recv> <config-epoch> <link-state> <slot or first-last>...` per line; slots being
/// imported or migrated (`[...]`) are left out.
fn parse_cluster_nodes(text: &str) -> Result<Vec<ClusterNode>, String> {
    let mut nodes = Vec::new();
    let mut primary_ids = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let bad = || format!("unexpected CLUSTER NODES line {line:?}");
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 8 {
            return Err(bad());
        }
        let address = parts[1].split(['@', ',']).next().unwrap_or_default();
        let port = match address.rsplit_once(':') {
            Some((_, port)) => port.parse().map_err(|_| bad())?,
            None => return Err(bad()),
        };
        let mut slots = Vec::new();
        for slot in parts[8..].iter().filter(|slot| !slot.starts_with('[')) {
            let (first, last) = slot.split_once('-').unwrap_or((slot, slot));
            slots.push((
                first.parse().map_err(|_| bad())?,
                last.parse().map_err(|_| bad())?,
            ));
        }
        nodes.push(ClusterNode {
            id: parts[0].to_owned(),
            port,
            flags: parts[2].split(',').map(str::to_owned).collect(),
            primary: None,
            slots,
        });
        primary_ids.push((parts[3] != "-").then(|| parts[3].to_owned()));
    }
    let ports: HashMap<String, u16> = nodes
        .iter()
        .map(|node| (node.id.clone(), node.port))
        .collect();
    for (node, primary_id) in nodes.iter_mut().zip(primary_ids) {
        node.primary = primary_id.and_then(|id| ports.get(&id).copied());
    }
    Ok(nodes)
}

/// Sends `signal` (`STOP`, `KILL`, ...) to `pid` with `kill(1)`.
fn send_signal(pid: u32, signal: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|error| format!("can't run kill -{signal} {pid}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{signal} {pid} failed ({status})"))
    }
}

/// The name of a cluster node's configuration file, in its directory.
fn nodes_conf_name(port: u16) -> String {
    format!("nodes-{port}.conf")
}

// ------------------------------------------------------------------------------------------
// Command counting
// ------------------------------------------------------------------------------------------

/// Calls per command from `INFO commandstats` of the server at `url`, keyed by the lower-case
/// name Redis uses (`set`, `hgetall`, subcommands as `client|setinfo`).
///
/// The counts are server-wide; see the module docs. The harness's own connection skips
/// `CLIENT SETINFO`, so each call adds exactly one `info` (plus `auth`/`select` if the URL asks
/// for them), which [`command_diff`] leaves out. A connection the code under test opens between
/// two snapshots shows up as its `client|setinfo` calls (and `hello` with RESP3).
///
/// # Panics
///
/// If the server can't be reached within two seconds or the reply does not parse.
pub async fn command_counts(url: &str) -> HashMap<String, u64> {
    let timeout = Some(Duration::from_secs(2));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout);
    let mut connection = quiet_client(url)
        .unwrap_or_else(|error| panic!("bad Redis URL {url}: {error}"))
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|error| panic!("can't connect to {url} to count commands: {error}"));
    let stats: String = ::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("INFO commandstats on {url} failed: {error}"));
    parse_commandstats(&stats)
}

/// Parses the text of `INFO commandstats`: `cmdstat_hgetall:calls=3,usec=…` lines.
///
/// # Panics
///
/// If a `cmdstat_` line has no numeric `calls=` field.
#[must_use]
pub fn parse_commandstats(stats: &str) -> HashMap<String, u64> {
    stats
        .lines()
        .filter_map(|line| line.trim().strip_prefix("cmdstat_"))
        .map(|line| {
            let (name, fields) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("no ':' in commandstats line {line:?}"));
            let calls = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|calls| calls.parse().ok())
                .unwrap_or_else(|| panic!("no calls= in commandstats line {line:?}"));
            (name.to_ascii_lowercase(), calls)
        })
        .collect()
}

/// Whether a command is noise the harness or a cluster causes by itself: `info` (every
/// [`command_counts`] call) and `cluster`/`cluster|…` (cluster clients refreshing their slot
/// map, and the nodes among themselves).
#[must_use]
pub fn is_harness_command(name: &str) -> bool {
    name == "info" || name == "cluster" || name.starts_with("cluster|")
}

/// The commands run between two [`command_counts`] snapshots: name → calls, only the names
/// whose count went up, without [`is_harness_command`] noise.
#[must_use]
pub fn command_diff<S: BuildHasher>(
    before: &HashMap<String, u64, S>,
    after: &HashMap<String, u64, S>,
) -> HashMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| !is_harness_command(name))
        .filter_map(|(name, &calls)| {
            let delta = calls.saturating_sub(before.get(name).copied().unwrap_or(0));
            (delta > 0).then(|| (name.clone(), delta))
        })
        .collect()
}

/// Counts the round trips clients make to one Redis by watching `MONITOR`.
///
/// `INFO commandstats` also counts the commands a Lua script runs (`HSET`, `PEXPIREAT` inside
/// our save script), so it cannot tell one `EVALSHA` from five commands. `MONITOR` can: it
/// prints every command a client sent with the client's address, and the commands a script ran
/// with `lua` instead. [`round_trips`](Self::round_trips) returns the client commands seen since
/// the previous call, up to a fence (`ECHO` with a unique token) sent from a connection of its
/// own, so nothing in flight is missed or counted twice.
pub struct Monitor {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>,
    fence: ::redis::aio::MultiplexedConnection,
    fences: u64,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("fences", &self.fences)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Starts monitoring the server at `url` (`redis://host:port`, no auth).
    ///
    /// # Panics
    ///
    /// If the server can't be reached or refuses `MONITOR`.
    pub async fn start(url: &str) -> Self {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let fence = quiet_client(url)
            .unwrap_or_else(|error| panic!("bad Redis URL {url}: {error}"))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|error| panic!("can't connect to {url}: {error}"));
        let address = url.trim_start_matches("redis://").trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .unwrap_or_else(|error| panic!("can't connect to {address}: {error}"));
        stream.write_all(b"MONITOR\r\n").await.unwrap();
        let mut lines = tokio::io::BufReader::new(stream).lines();
        let ok = lines.next_line().await.unwrap();
        assert_eq!(ok.as_deref(), Some("+OK"), "MONITOR refused");
        Self {
            lines,
            fence,
            fences: 0,
        }
    }

    /// The commands clients sent since the previous call (name and key-free arguments dropped:
    /// only the lower-case command name), in order; commands run by scripts are left out.
    ///
    /// # Panics
    ///
    /// If the fence does not come back within five seconds.
    pub async fn round_trips(&mut self) -> Vec<String> {
        self.fences += 1;
        let token = format!("monitor-fence-{}-{}", std::process::id(), self.fences);
        let _: String = ::redis::cmd("ECHO")
            .arg(&token)
            .query_async(&mut self.fence)
            .await
            .unwrap();
        let quoted = format!("\"{token}\"");
        let mut seen = Vec::new();
        let deadline = Duration::from_secs(5);
        loop {
            let line = tokio::time::timeout(deadline, self.lines.next_line())
                .await
                .expect("the MONITOR fence did not come back")
                .unwrap()
                .expect("MONITOR connection closed");
            if line.contains(&quoted) {
                return seen;
            }
            // `+1700000000.123456 [0 127.0.0.1:54321] "hgetall" "key"`; scripts show `[0 lua]`.
            let Some((client, command)) = line.split_once("] ") else {
                continue;
            };
            if client.ends_with(" lua") {
                continue;
            }
            let name = command
                .split(' ')
                .next()
                .unwrap_or_default()
                .trim_matches('"');
            seen.push(name.to_ascii_lowercase());
        }
    }
}

// ------------------------------------------------------------------------------------------
// A Redis of our own for outage tests
// ------------------------------------------------------------------------------------------

/// A `redis-server` this test owns alone, on a free loopback port that stays the same across
/// [`stop`](Self::stop) and [`restart`](Self::restart). Never the machine's 6379. Stopped when
/// dropped.
#[derive(Debug)]
pub struct OwnRedis {
    bin: PathBuf,
    port: u16,
    core: Option<usize>,
    node: Option<Node>,
}

impl OwnRedis {
    /// Starts a new private `redis-server` and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing or does not start.
    pub async fn start() -> Self {
        blocking(|| Self::start_blocking(None))
            .await
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// Starts a new private `redis-server` from synchronous code (no async runtime needed) and
    /// waits until it answers. With `core`, the server runs pinned to that CPU, through
    /// `taskset -c <core>` (which replaces itself with `redis-server`, so the pid is the
    /// server's), after a [`restart`](Self::restart) too; the load benchmark uses this to keep
    /// Redis off the core its server under test runs on.
    ///
    /// # Errors
    ///
    /// If `redis-server`, or with `core` `taskset`, can't be run, or the server does not start.
    pub fn start_blocking(core: Option<usize>) -> Result<Self, String> {
        let bin =
            redis_server_bin().map_err(|error| format!("OwnRedis needs redis-server: {error}"))?;
        if core.is_some() {
            check_taskset()?;
        }
        let node = start_on_free_port(&bin, Mode::Single, core)?;
        Ok(Self {
            bin,
            port: node.port,
            core,
            node: Some(node),
        })
    }

    /// `redis://127.0.0.1:{port}`, valid whether or not the server is running.
    #[must_use]
    pub fn url(&self) -> String {
        url_for_port(self.port)
    }

    /// The port, the same for the whole life of this value.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client for this server.
    ///
    /// # Panics
    ///
    /// Never: a loopback URL is valid.
    #[must_use]
    pub fn client(&self) -> Client {
        Client::open(self.url()).expect("a loopback URL is valid")
    }

    /// Whether the server is started (it is not checked for having died by itself).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.node.is_some()
    }

    /// Kills the server (`SIGKILL`, like a crash) and waits until it is gone and its port
    /// refuses connections. Does nothing if it is already stopped.
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            blocking(move || drop(node)).await;
        }
    }

    /// Starts the server again on the same port, empty (there is no persistence); stops it
    /// first if it is running.
    ///
    /// # Panics
    ///
    /// If it does not start, e.g. because something else took the port meanwhile.
    pub async fn restart(&mut self) {
        self.stop().await;
        let bin = self.bin.clone();
        let (port, core) = (self.port, self.core);
        let node = blocking(move || {
            let mut errors = Vec::new();
            for _ in 0..5 {
                match Node::start(&bin, port, Mode::Single, core) {
                    Ok(node) => return Ok(node),
                    Err(error) => errors.push(error),
                }
                thread::sleep(Duration::from_millis(200));
            }
            Err(format!(
                "OwnRedis::restart could not start redis-server on port {port} again:\n{}",
                errors.join("\n---\n")
            ))
        })
        .await
        .unwrap_or_else(|message| panic!("{message}"));
        self.node = Some(node);
    }

    /// `CLIENT PAUSE <ms> ALL`: the server holds every client's commands for `duration`, which
    /// makes client timeouts happen on demand. Returns once the pause is in effect.
    ///
    /// # Panics
    ///
    /// If the server is stopped or the command fails.
    pub async fn pause(&self, duration: Duration) {
        assert!(self.is_running(), "OwnRedis::pause on a stopped server");
        let url = self.url();
        let mut connection = quiet_client(&url)
            .expect("a loopback URL is valid")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|error| panic!("can't connect to {url} to pause it: {error}"));
        let millis = u64::try_from(duration.as_millis()).expect("a pause shorter than 500M years");
        let () = ::redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(millis)
            .arg("ALL")
            .query_async(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("CLIENT PAUSE on {url} failed: {error}"));
    }
}

// ------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------

/// The watchdog around one `redis-server`. `$1` is the node's directory (also the working
/// directory), the rest is the `redis-server` command line. It prints the server's pid, then:
/// - stdin reaches end-of-file (the test process closed the pipe or exited): kill the server;
/// - the server exits: if it was not killed, print the end of its log to stderr;
/// - either way: remove the directory and exit with the server's status.
///
/// The watchdog ignores `SIGPIPE` (its stderr is a pipe to the test process, which may be gone
/// by the time dash reports "Killed"), and `SIGHUP`/`SIGINT`/`SIGTERM` sent to the whole process
/// group (the server handles those itself): its life is tied to the pipe alone, so it always
/// gets to remove the directory.
const WATCHDOG: &str = r#"
trap '' PIPE HUP INT TERM
dir=$1
shift
exec 3<&0 0</dev/null
"$@" >redis.out 2>&1 3<&- &
pid=$!
echo "$pid"
exec >/dev/null
( while read -r _; do :; done <&3; kill -KILL "$pid" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
if [ "$status" -ne 137 ]; then
  tail -c 2000 redis.out >&2
  tail -c 3000 redis.log >&2
fi
cd /
rm -rf "$dir"
exit "$status"
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Single,
    /// A cluster node with `cluster-node-timeout` 5000 ms.
    ClusterNode,
    /// A cluster node made for failovers: `cluster-node-timeout` 2000 ms and
    /// `repl-diskless-sync-delay 0`.
    FailoverNode,
}

impl Mode {
    fn is_cluster(self) -> bool {
        self != Self::Single
    }
}

/// One `redis-server` of ours, under its watchdog. Dropping it kills the server and waits.
#[derive(Debug)]
struct Node {
    port: u16,
    dir: PathBuf,
    redis_pid: u32,
    watchdog: Child,
    /// The write end of the watchdog's stdin; closing it stops the server.
    lifeline: Option<ChildStdin>,
}

impl Node {
    fn url(&self) -> String {
        url_for_port(self.port)
    }

    /// Starts `redis-server` on `port`, pinned to CPU `core` if given, and waits until it
    /// answers, as itself (its pid), so a server of someone else's on the same port is never
    /// mistaken for ours.
    fn start(bin: &Path, port: u16, mode: Mode, core: Option<usize>) -> Result<Self, String> {
        Self::launch(bin, port, mode, core, None)
    }

    /// [`start`](Self::start), for a cluster node with `nodes_conf` as its cluster configuration
    /// file if given (a killed node starting again as itself).
    fn launch(
        bin: &Path,
        port: u16,
        mode: Mode,
        core: Option<usize>,
        nodes_conf: Option<&[u8]>,
    ) -> Result<Self, String> {
        static DIRS: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "session-tests-redis-{}-{}-{port}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("can't create {}: {error}", dir.display()))?;
        if let Some(nodes_conf) = nodes_conf {
            let path = dir.join(nodes_conf_name(port));
            if let Err(error) = std::fs::write(&path, nodes_conf) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!("can't write {}: {error}", path.display()));
            }
        }
        let args = server_args(bin, port, mode, core);
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("redis-watchdog")
            .arg(&dir)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut watchdog = match spawned {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!(
                    "can't run sh for the redis-server watchdog: {error}"
                ));
            }
        };
        let lifeline = watchdog.stdin.take();
        let mut pid_line = String::new();
        let read = BufReader::new(watchdog.stdout.take().expect("stdout is piped"))
            .read_line(&mut pid_line);
        let mut node = Self {
            port,
            dir,
            redis_pid: 0,
            watchdog,
            lifeline,
        };
        node.redis_pid = match (read, pid_line.trim().parse()) {
            (Ok(_), Ok(pid)) => pid,
            (read, _) => {
                return Err(format!(
                    "the redis-server watchdog did not report a pid ({read:?}, {pid_line:?})"
                ));
            }
        };
        node.wait_until_ready()?;
        Ok(node)
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let url = self.url();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.watchdog.try_wait().ok().flatten() {
                let mut log = String::new();
                if let Some(mut stderr) = self.watchdog.stderr.take() {
                    let _ = stderr.read_to_string(&mut log);
                }
                return Err(format!(
                    "redis-server on port {} exited at start ({status}); its log ends:\n{log}",
                    self.port
                ));
            }
            let last = match probe(&url, Duration::from_millis(200)) {
                Ok(info) if info.process_id == Some(self.redis_pid) => return Ok(()),
                Ok(info) => format!(
                    "{url} answers as pid {:?}, not as our pid {}",
                    info.process_id, self.redis_pid
                ),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {} did not answer within {START_TIMEOUT:?} (last: \
                     {last})",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog kill the server, wait for it and clean up.
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    // The watchdog is stuck: kill both by pid.
                    let _ = Command::new("kill")
                        .args(["-KILL", &self.redis_pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                    let _ = self.watchdog.kill();
                    let _ = self.watchdog.wait();
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The command line of a server: `redis-server` (through `taskset -c <core>` if given) on
/// `port`, without persistence, logging to `redis.log`; for a cluster node, its configuration
/// file and node timeout.
fn server_args(bin: &Path, port: u16, mode: Mode, core: Option<usize>) -> Vec<OsString> {
    let port_arg = port.to_string();
    let mut args: Vec<OsString> = match core {
        // `taskset` execs the server: the pid the watchdog reports stays the server's.
        Some(core) => vec!["taskset".into(), "-c".into(), core.to_string().into()],
        None => Vec::new(),
    };
    args.push(bin.into());
    args.extend(
        [
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "redis.log",
        ]
        .map(OsString::from),
    );
    if mode.is_cluster() {
        let config_file = nodes_conf_name(port);
        let node_timeout = if mode == Mode::FailoverNode {
            "2000"
        } else {
            "5000"
        };
        args.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &config_file,
                "--cluster-node-timeout",
                node_timeout,
            ]
            .map(OsString::from),
        );
        if mode == Mode::FailoverNode {
            args.extend(["--repl-diskless-sync-delay", "0"].map(OsString::from));
        }
    }
    args
}

/// Starts a node on a fresh free port, trying a few ports in case another process takes one
/// between our check and `redis-server`'s bind.
fn start_on_free_port(bin: &Path, mode: Mode, core: Option<usize>) -> Result<Node, String> {
    let mut errors = Vec::new();
    for _ in 0..5 {
        match Node::start(bin, pick_port(mode.is_cluster()), mode, core) {
            Ok(node) => return Ok(node),
            Err(error) => errors.push(error),
        }
    }
    Err(format!(
        "could not start redis-server ({}) on a free loopback port (5 attempts):\n{}",
        bin.display(),
        errors.join("\n---\n")
    ))
}

/// The `redis-server` the harness runs: `REDIS_SERVER_BIN`, else `redis-server` on `PATH`,
/// checked by running it with `--version`.
///
/// # Errors
///
/// If it can't be run; the message says how to get it.
pub fn redis_server_bin() -> Result<PathBuf, String> {
    find_binary("REDIS_SERVER_BIN", "redis-server")
}

/// Checks that `taskset` (util-linux), which pins a server to a core, can be run.
fn check_taskset() -> Result<(), String> {
    match Command::new("taskset")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`taskset --version` failed ({}); pinning redis-server to a core needs it",
            output.status
        )),
        Err(error) => Err(format!(
            "`taskset` can't be run ({error}); pinning redis-server to a core needs it \
             (util-linux)"
        )),
    }
}

fn redis_cli_bin() -> Result<PathBuf, String> {
    find_binary("REDIS_CLI_BIN", "redis-cli")
}

/// The binary named by `variable`, else `default` on `PATH`; checked by running `--version`.
fn find_binary(variable: &str, default: &str) -> Result<PathBuf, String> {
    let bin = std::env::var_os(variable)
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from);
    match Command::new(&bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => Ok(bin),
        Ok(output) => Err(format!(
            "`{} --version` failed ({}). {HOW_TO_GET_REDIS}",
            bin.display(),
            output.status
        )),
        Err(error) => Err(format!(
            "`{}` can't be run ({error}). {HOW_TO_GET_REDIS}",
            bin.display()
        )),
    }
}

// ------------------------------------------------------------------------------------------
// Ports
// ------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------
// Talking to Redis
// ------------------------------------------------------------------------------------------

fn url_for_port(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// A client whose connections don't send `CLIENT SETINFO`, so they add nothing to
/// `INFO commandstats` besides their own commands.
fn quiet_client(url: &str) -> ::redis::RedisResult<Client> {
    let info = url.into_connection_info()?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Client::open(info.set_redis_settings(settings))
}

/// A synchronous connection with connect, read and write timeouts.
fn connect(url: &str, timeout: Duration) -> ::redis::RedisResult<::redis::Connection> {
    let connection = quiet_client(url)?.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

/// What a probe learned about a server.
#[derive(Debug)]
struct ProbeInfo {
    process_id: Option<u32>,
    cluster_enabled: bool,
}

/// `PING`, then `INFO server` and `INFO cluster`.
fn probe(url: &str, timeout: Duration) -> ::redis::RedisResult<ProbeInfo> {
    let mut connection = connect(url, timeout)?;
    let _: String = ::redis::cmd("PING").query(&mut connection)?;
    let server: String = ::redis::cmd("INFO").arg("server").query(&mut connection)?;
    let cluster: String = ::redis::cmd("INFO").arg("cluster").query(&mut connection)?;
    Ok(ProbeInfo {
        process_id: info_fields(&server)
            .get("process_id")
            .and_then(|pid| pid.parse().ok()),
        cluster_enabled: info_fields(&cluster)
            .get("cluster_enabled")
            .map(String::as_str)
            == Some("1"),
    })
}

/// The `name:value` lines of an `INFO`/`CLUSTER INFO` reply.
fn info_fields(info: &str) -> HashMap<String, String> {
    info.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Runs blocking harness work off the async test's runtime thread, passing panics through.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("harness task cancelled: {error}"),
    }
}

/// Formats a map of command counts sorted by name, for assertion messages.
#[must_use]
pub fn format_counts<S: BuildHasher>(counts: &HashMap<String, u64, S>) -> String {
    let mut names: Vec<_> = counts.iter().collect();
    names.sort();
    let mut text = String::new();
    for (name, calls) in names {
        let _ = write!(text, "{name}={calls} ");
    }
    text.trim_end().to_owned()
}
