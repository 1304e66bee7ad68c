//! Self-tests of the Redis test harness in `session_tests::redis`: the shared server, the shared
//! cluster, command counting and a private server that stops, restarts and pauses.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use session_tests::redis::{OwnRedis, command_counts, command_diff, format_counts, unique_prefix};

#[tokio::test]
async fn server_answers_ping_and_set_get() {
    let server = session_tests::redis::server().await;
    let mut connection = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(pong, "PONG");

    let key = format!(
        "{}greeting",
        unique_prefix("server_answers_ping_and_set_get")
    );
    let () = connection.set_ex(&key, "hello", 60).await.unwrap();
    let value: String = connection.get(&key).await.unwrap();
    assert_eq!(value, "hello");
    let () = connection.del(&key).await.unwrap();
}

#[tokio::test]
async fn server_is_shared_by_the_process() {
    let first = session_tests::redis::server().await;
    let second = session_tests::redis::server().await;
    assert_eq!(first.url(), second.url());
    assert_eq!(first.origin(), second.origin());
}

#[test]
fn prefixes_are_unique() {
    let prefixes: HashSet<String> = (0..1000).map(|_| unique_prefix("same_test")).collect();
    assert_eq!(prefixes.len(), 1000);
    assert!(prefixes.iter().all(|p| p.starts_with("test:same_test:")));
    assert!(prefixes.iter().all(|p| p.ends_with(':')));
}

#[tokio::test]
async fn cluster_accepts_writes_to_keys_in_every_node() {
    let cluster = session_tests::redis::cluster().await;
    assert_eq!(cluster.urls().len(), 3);
    let mut connection = cluster.client().get_async_connection().await.unwrap();
    let prefix = unique_prefix("cluster_accepts_writes_to_keys_in_every_node");
    let keys: Vec<String> = (0..30).map(|i| format!("{prefix}{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let () = connection.set_ex(key, i, 60).await.unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let value: usize = connection.get(key).await.unwrap();
        assert_eq!(value, i);
    }

    // Each key lives on exactly one node (the others answer MOVED), and all three nodes hold
    // some: the writes really went to different slots on different nodes.
    let mut owners = HashSet::new();
    let mut slots = HashSet::new();
    for key in &keys {
        let mut holders = Vec::new();
        for url in cluster.urls() {
            let mut node = redis::Client::open(url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut node)
                .await
                .unwrap();
            slots.insert(slot);
            if let Ok(Some(_)) = node.get::<_, Option<String>>(key).await {
                holders.push(url.clone());
            }
        }
        assert_eq!(holders.len(), 1, "{key} is held by {holders:?}");
        owners.extend(holders);
    }
    assert_eq!(owners.len(), 3, "keys landed on {owners:?}");
    assert!(slots.len() > 3, "keys used slots {slots:?}");

    for key in &keys {
        let () = connection.del(key).await.unwrap();
    }
}

#[tokio::test]
async fn command_diff_sees_exactly_one_set() {
    let redis = OwnRedis::start().await;
    // Connect before the first snapshot so the connection's handshake is not in the diff.
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{}k", unique_prefix("command_diff_sees_exactly_one_set"));

    let before = command_counts(&redis.url()).await;
    let () = connection.set(&key, "v").await.unwrap();
    let after = command_counts(&redis.url()).await;

    let diff = command_diff(&before, &after);
    assert_eq!(
        diff,
        HashMap::from([("set".to_owned(), 1)]),
        "diff: {}",
        format_counts(&diff)
    );
    // INFO itself is counted by Redis, but left out of the diff.
    assert!(after["info"] > before.get("info").copied().unwrap_or(0));
}

#[tokio::test]
async fn own_redis_stops_and_restarts_on_the_same_port() {
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    assert!(redis.is_running());
    assert_ne!(redis.port(), 6379);
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = connection.set("k", "before").await.unwrap();

    redis.stop().await;
    assert!(!redis.is_running());
    assert!(
        redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .is_err(),
        "a stopped OwnRedis still accepts connections"
    );
    assert!(connection.get::<_, Option<String>>("k").await.is_err());

    redis.restart().await;
    assert_eq!(redis.url(), url);
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let value: Option<String> = connection.get("k").await.unwrap();
    assert_eq!(value, None, "a restarted OwnRedis starts empty");
    let () = connection.set("k", "after").await.unwrap();
    let value: String = connection.get("k").await.unwrap();
    assert_eq!(value, "after");
}

#[tokio::test]
async fn own_redis_pause_holds_commands() {
    let redis = OwnRedis::start().await;
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = connection.set("k", "v").await.unwrap();

    redis.pause(Duration::from_millis(300)).await;
    let started = Instant::now();
    let value: String = connection.get("k").await.unwrap();
    assert_eq!(value, "v");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "GET came back after {:?}, during the pause",
        started.elapsed()
    );
}

/// `OwnRedis::start_blocking` with a core, as the load benchmark starts its Redis: the server
/// runs pinned to that core, and again after a restart.
#[tokio::test]
async fn own_redis_pinned_to_a_core_stays_pinned() {
    let core = first_allowed_cpu("self");
    let mut redis = tokio::task::spawn_blocking(move || OwnRedis::start_blocking(Some(core)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server_cpus(&redis).await, core.to_string());
    redis.restart().await;
    assert_eq!(
        server_cpus(&redis).await,
        core.to_string(),
        "after a restart"
    );
}

/// The `Cpus_allowed_list` of `/proc/<pid>/status`.
fn allowed_cpus(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The first CPU process `pid` may run on.
fn first_allowed_cpu(pid: &str) -> usize {
    let list = allowed_cpus(pid);
    let first = list.split([',', '-']).next().unwrap();
    first.parse().unwrap()
}

/// The CPUs the server's process may run on, found through the pid it reports.
async fn server_cpus(redis: &OwnRedis) -> String {
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection)
        .await
        .unwrap();
    let pid = info
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_owned();
    allowed_cpus(&pid)
}
