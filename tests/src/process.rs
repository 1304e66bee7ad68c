//! What the Redis and PostgreSQL harnesses share to run servers of their own: commands with a
//! time limit, free loopback ports (one set of ports handed out for both, never the standard
//! ones of the machine's own servers), random numbers.

use std::collections::BTreeSet;
use std::hash::BuildHasher as _;
use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Runs a command to completion with a time limit; returns its status and stdout + stderr.
pub(crate) fn run_with_timeout(
    command: &mut Command,
    timeout: Duration,
) -> Result<(ExitStatus, String), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("can't run {command:?}: {error}"))?;
    let readers = [
        child.stdout.take().map(|mut out| {
            thread::spawn(move || {
                let mut text = String::new();
                let _ = out.read_to_string(&mut text);
                text
            })
        }),
        child.stderr.take().map(|mut err| {
            thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text
            })
        }),
    ];
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("{command:?} did not finish within {timeout:?}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(error) => break Err(format!("waiting for {command:?}: {error}")),
        }
    };
    let mut output = String::new();
    for reader in readers.into_iter().flatten() {
        output.push_str(&reader.join().unwrap_or_default());
    }
    match status {
        Ok(status) => Ok((status, output)),
        Err(error) => Err(format!("{error}; output:\n{output}")),
    }
}

/// A loopback port nothing listens on, outside the kernel's ephemeral range (so an outgoing
/// connection can't be handed it while a stopped [`OwnRedis`] waits to restart), never 6379, and
/// never handed out twice in this process. With `cluster_bus`, port + 10000 (the cluster bus) is
/// free too.
pub(crate) fn pick_port(cluster_bus: bool) -> u16 {
    static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let (low, high) = ephemeral_range();
    let usable = |port: u32| {
        (1024..=65535).contains(&port)
            && !(low..=high).contains(&port)
            && port != 5432
            && port != 6379
            && port != 16379
    };
    let mut taken = TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..10_000 {
        let candidate = 10_000 + u32::try_from(random_u64() % 50_000).expect("< 50000");
        let ports: &[u32] = if cluster_bus {
            &[candidate, candidate + 10_000]
        } else {
            &[candidate]
        };
        let free = ports.iter().all(|&port| {
            let port = u16::try_from(port).expect("usable ports fit in u16");
            usable(u32::from(port))
                && !taken.contains(&port)
                && TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        if free {
            for &port in ports {
                taken.insert(u16::try_from(port).expect("checked above"));
            }
            return u16::try_from(candidate).expect("checked above");
        }
    }
    drop(taken);
    // A very unusual port range setting: fall back to any port the kernel offers.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("binding 127.0.0.1:0")
            .port();
        if !cluster_bus
            || port
                .checked_add(10_000)
                .is_some_and(|bus| TcpListener::bind(("127.0.0.1", bus)).is_ok())
        {
            return port;
        }
    }
}

/// `/proc/sys/net/ipv4/ip_local_port_range`, or Linux's default.
fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(str::parse::<u32>);
            Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
        })
        .unwrap_or((32768, 60999))
}

pub(crate) fn random_u64() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    std::hash::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
}
