//! A Rust server that shares its sessions with a Python aiohttp server using `aiohttp_session`,
//! for a migration route by route (see `docs/migrating-from-aiohttp-session.md`).
//!
//! ```text
//! cargo run -p session-examples --example migrate -- \
//!     [--store simple|encrypted|redis] [--addr 127.0.0.1:3001] [--redis-url URL] \
//!     [--max-age SECONDS] [--insecure]
//! ```
//!
//! Start the Python twin, `tests/aiohttp/app.py`, with the same store, `--max-age` and (for
//! `encrypted`) the same `AIOHTTP_FERNET_KEY`, behind the same host; then a session written on
//! one server is read and changed on the other. Routes: `GET /visit`, `GET /show`,
//! `POST /name`, `POST /profile`, `POST /lang`, `POST /login?user=N`, `POST /logout` (see
//! `session_examples::migrate`). The encrypted store reads the Fernet key from
//! `AIOHTTP_FERNET_KEY` (URL-safe base64 of 32 bytes, as `Fernet.generate_key()` makes).
//! `--insecure` drops the `Secure` cookie attribute for plain-HTTP testing. Ctrl-C stops it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use session_examples::DEFAULT_REDIS_URL;
use session_examples::migrate::{Format, layer, routes};
use session_runtime::config::SessionConfig;

struct Args {
    store: Format,
    addr: SocketAddr,
    redis_url: String,
    max_age: u64,
    insecure: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        store: Format::Encrypted,
        addr: SocketAddr::from(([127, 0, 0, 1], 3001)),
        redis_url: DEFAULT_REDIS_URL.to_owned(),
        max_age: 3600,
        insecure: false,
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
            "--redis-url" => args.redis_url = value("--redis-url")?,
            "--max-age" => {
                args.max_age = value("--max-age")?
                    .parse()
                    .map_err(|e| format!("invalid --max-age: {e}"))?;
            }
            "--insecure" => args.insecure = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    session_examples::init_tracing();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(2);
        }
    };
    let fernet_key = std::env::var("AIOHTTP_FERNET_KEY").unwrap_or_default();
    let config = SessionConfig::default().with_secure(!args.insecure);
    let max_age = Duration::from_secs(args.max_age);
    let layer = match layer(args.store, &fernet_key, &args.redis_url, max_age, config).await {
        Ok(layer) => layer,
        Err(error) => {
            tracing::error!(error = &error as &dyn std::error::Error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(store = ?args.store, "migrate example starting");
    session_examples::serve(args.addr, routes().layer(layer), "migrate example").await
}
