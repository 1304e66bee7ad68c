//! The counter example server. The tests, the load benchmark and `.ci/smoke-example` drive this
//! interface: keep it stable.
//!
//! ```text
//! cargo run --release -p session-examples --example counter -- \
//!     [--store memory|simple|encrypted|redis|redis-cluster] [--addr 127.0.0.1:3000] \
//!     [--redis-url URL] [--insecure] [--cookie-name counter|__Host-counter]
//! ```
//!
//! `GET /` counts visits, `GET /read` shows the count without changing it, `GET /a` and `GET /b`
//! bump two separate fields and answer `a,b`, `POST /login?user=N` regenerates the session and
//! sets the user, `GET /whoami` answers the user or `anonymous`, `POST /logout` invalidates.
//! `--insecure` drops the `Secure` cookie attribute for plain-HTTP testing. `--cookie-name
//! __Host-counter` serves the same routes under a `__Host-` cookie (refused with `--insecure`,
//! which browsers would drop; `http://localhost` counts as secure in browsers). The encrypted store
//! reads its key from `SESSION_KEY` (32 bytes, base64). Ctrl-C stops it cleanly.

use std::net::SocketAddr;
use std::process::ExitCode;

use session_examples::{CookieName, StoreChoice, app, layer};
use session_runtime::config::SessionConfig;

struct Args {
    store: StoreChoice,
    addr: SocketAddr,
    redis_url: Option<String>,
    insecure: bool,
    cookie_name: CookieName,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        store: StoreChoice::Memory,
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        redis_url: None,
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
            "--insecure" => args.insecure = true,
            "--cookie-name" => args.cookie_name = value("--cookie-name")?.parse()?,
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
    if args.redis_url.is_some()
        && !matches!(args.store, StoreChoice::Redis | StoreChoice::RedisCluster)
    {
        tracing::warn!("--redis-url is ignored by the {:?} store", args.store);
    }
    let config = SessionConfig::default().with_secure(!args.insecure);
    let layer = match layer(args.store, args.redis_url.as_deref(), config).await {
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
