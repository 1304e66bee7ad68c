//! A TCP proxy in front of a PostgreSQL server that counts round trips and can cut the line:
//! the SQL stores' round-trip and outage tests go through it, so they need no private server
//! and never stop the shared one.
//!
//! It counts statements (each `Bind` of the extended protocol, each simple `Query`) and round
//! trips: a round trip is counted each time the client sends a message after the server last
//! spoke (messages a client pipelines before it reads an answer are one round trip). sqlx's
//! pool pings every connection it takes back (a `Sync`, in a task of its own, after the
//! statement's answer): a round trip without a statement.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Line {
    /// Forwards everything.
    Open = 0,
    /// Accepts connections and bytes but forwards nothing, in either direction: a database
    /// that stopped answering (a network partition).
    Silent = 1,
    /// Closes every connection and refuses new ones: a database that is down.
    Down = 2,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    line: watch::Sender<u8>,
    round_trips: AtomicU64,
    statements: AtomicU64,
    mode: AtomicU8,
    /// The server spoke last (so the client's next message starts a round trip).
    server_spoke: std::sync::atomic::AtomicBool,
}

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (line, _) = watch::channel(Line::Open as u8);
        let state = Arc::new(State {
            line,
            round_trips: AtomicU64::new(0),
            statements: AtomicU64::new(0),
            mode: AtomicU8::new(Line::Open as u8),
            server_spoke: std::sync::atomic::AtomicBool::new(true),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if shared.mode.load(Ordering::SeqCst) == Line::Down as u8 {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(client, upstream, Arc::clone(&shared)));
            }
        });
        Self { addr, state, task }
    }

    /// The proxy's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` (a `postgres://` URL of the upstream server) with the host and port of the proxy.
    ///
    /// # Panics
    ///
    /// If `url` has no `@host:port` or `//host:port` part.
    #[must_use]
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (auth, rest) = match rest.split_once('@') {
            Some((auth, rest)) => (format!("{auth}@"), rest),
            None => (String::new(), rest),
        };
        let path = rest.find(['/', '?']).map_or("", |at| &rest[at..]);
        format!("{scheme}://{auth}{}{path}", self.addr)
    }

    /// Sets what the proxy does from now on; [`Line::Down`] also closes open connections.
    pub fn set(&self, line: Line) {
        self.state.mode.store(line as u8, Ordering::SeqCst);
        self.state.line.send_replace(line as u8);
    }

    /// The statements and the round trips clients sent since the last call.
    #[must_use = "the counts are what the call is for"]
    pub fn take(&self) -> (u64, u64) {
        (
            self.state.statements.swap(0, Ordering::SeqCst),
            self.state.round_trips.swap(0, Ordering::SeqCst),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Line::Down);
        self.task.abort();
    }
}

/// Relays one connection until either side closes or the line goes down.
async fn relay(client: TcpStream, upstream: SocketAddr, state: Arc<State>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, Arc::clone(&state), true);
    let down = pump(server_read, client_write, state, false);
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Copies bytes from `from` to `to` while the line is open; counts round trips on the way up.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
    upward: bool,
) {
    let mut line = state.line.subscribe();
    let mut counter = Counter::default();
    let mut buf = vec![0; 16 * 1024];
    loop {
        let current = *line.borrow_and_update();
        match current {
            0 => {}
            1 => {
                // Silent: hold everything until the line changes.
                if line.changed().await.is_err() {
                    return;
                }
                continue;
            }
            _ => return,
        }
        tokio::select! {
            read = from.read(&mut buf) => {
                let Ok(n) = read else { return };
                if n == 0 {
                    return;
                }
                if upward {
                    let (messages, statements) = counter.feed(&buf[..n]);
                    state.statements.fetch_add(statements, Ordering::SeqCst);
                    if messages > 0 && state.server_spoke.swap(false, Ordering::SeqCst) {
                        state.round_trips.fetch_add(1, Ordering::SeqCst);
                    }
                } else {
                    state.server_spoke.store(true, Ordering::SeqCst);
                }
                if state.mode.load(Ordering::SeqCst) != Line::Open as u8 {
                    // Went silent or down while reading: drop what came in, as a cut line would.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            changed = line.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Splits the client's byte stream into protocol messages; counts the typed ones, and among them
/// the statements (`Bind`, `Query`).
#[derive(Debug, Default)]
struct Counter {
    /// Past the untyped start-up messages (`SSLRequest`, `GSSENCRequest`, `StartupMessage`).
    started: bool,
    pending: Vec<u8>,
}

impl Counter {
    fn feed(&mut self, bytes: &[u8]) -> (u64, u64) {
        self.pending.extend_from_slice(bytes);
        let mut count = 0;
        let mut statements = 0;
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.pending.len() < header {
                return (count, statements);
            }
            let at = header - 4;
            let len = u32::from_be_bytes(self.pending[at..at + 4].try_into().unwrap()) as usize;
            let total = at + len;
            if self.pending.len() < total {
                return (count, statements);
            }
            if self.started {
                count += 1;
                if matches!(self.pending[0], b'B' | b'Q') {
                    statements += 1;
                }
            } else {
                let code = self
                    .pending
                    .get(4..8)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap()));
                // SSLRequest and GSSENCRequest are followed by another untyped message.
                if !matches!(code, Some(80_877_103 | 80_877_104)) {
                    self.started = true;
                }
            }
            self.pending.drain(..total);
        }
    }
}
