//! PostgreSQL for integration tests: the database a test process uses, per-test table names, and
//! private clusters of our own.
//!
//! # Where the database comes from
//!
//! [`server`] (and its shorthand [`database_url`]) decides once per test process, at run time:
//!
//! 1. `DATABASE_URL` if set and not empty (it must connect and answer `SELECT 1` within two
//!    seconds, or every caller panics: there is no fallback when the variable names a server);
//! 2. else [`DEFAULT_URL`] (`postgres://postgres@127.0.0.1:5432/postgres`, no password) if it
//!    connects and answers `SELECT 1` within a second;
//! 3. else a cluster of our own: `initdb` into a temporary directory (trust authentication,
//!    superuser `postgres`, UTF-8, C locale), then `pg_ctl start` on a free loopback port with
//!    `fsync=off`;
//! 4. else a panic that says how to get PostgreSQL.
//!
//! There is no skip path: under `CI=true`, as everywhere, a missing PostgreSQL fails the test.
//!
//! Every test of the process shares that one database (on 5432 or `DATABASE_URL`, other
//! processes share it too): give each test its own table ([`unique_table`]) and drop it at the
//! end.
//!
//! # Running as root
//!
//! `initdb` and `pg_ctl` refuse to run as root. When the test process runs as root (containers,
//! CI), the harness runs them as the `postgres` system user, through `runuser -u postgres --`
//! (util-linux), in a temporary directory it hands to that user (`chown -R postgres`). The
//! `postgresql` package creates the user.
//!
//! # How our own clusters are cleaned up
//!
//! Every cluster we start has a small `sh` watchdog, started before `initdb` runs, whose stdin is
//! a pipe whose only write end this process holds. When this process exits, however it exits
//! (normal exit, panic, `SIGKILL`), the kernel closes the pipe; the watchdog sees end-of-file,
//! stops the cluster (`pg_ctl stop -m immediate`) and removes its temporary directory. Dropping
//! a [`PrivateCluster`] does the same at once and waits for it. The cluster behind [`server`]
//! lives until the process exits.
//!
//! # Environment
//!
//! - `DATABASE_URL`: the database to use (read at run time, never at build time).
//! - `PG_BIN`: the directory of the `initdb` and `pg_ctl` to run (default: the directory `initdb`
//!   on `PATH` resolves to, else the newest `/usr/lib/postgresql/*/bin`, where Debian puts them).
use crate::process::{pick_port, random_u64, run_with_timeout};
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

/// The URL tried when `DATABASE_URL` is unset: the `postgres` superuser without a password (trust
/// authentication) on the machine's default port.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How to get a PostgreSQL, for panic messages.
const HOW_TO_GET_POSTGRES: &str = "Set DATABASE_URL to a PostgreSQL that accepts connections \
     (e.g. DATABASE_URL=postgres://user:password@127.0.0.1:5432/db), or start PostgreSQL on \
     127.0.0.1:5432 with trust authentication for the user postgres, or install the server \
     binaries (`apt-get install -y postgresql`, or `cargo xtask install`) and the tests start \
     their own cluster (PG_BIN names the directory of initdb and pg_ctl if they are elsewhere). \
     PostgreSQL tests are never skipped, under CI=true or otherwise.";

/// How long the server `DATABASE_URL` names may take to answer.
const ENV_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`DEFAULT_URL`] may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a started cluster may take to accept connections (`pg_ctl -w -t`).
const START_TIMEOUT_SECS: u64 = 30;
/// How long a cluster and its watchdog may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The superuser and database of our own clusters.
const OWN_USER: &str = "postgres";

// ------------------------------------------------------------------------------------------
// The database of the process
// ------------------------------------------------------------------------------------------

/// Where the URL of a [`PostgresServer`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `DATABASE_URL` environment variable.
    Env,
    /// Nothing was configured and [`DEFAULT_URL`] answered `SELECT 1`.
    LocalDefault,
    /// A cluster this test process started and owns.
    Spawned,
}

/// The PostgreSQL database that tests may use, shared by all tests of the process. Give every
/// test its own table ([`unique_table`]).
#[derive(Clone, Debug)]
pub struct PostgresServer {
    url: String,
    origin: Origin,
}

impl PostgresServer {
    /// The URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`; it may carry a password (from
    /// `DATABASE_URL`), so don't print it (see [`redact`]).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the URL came from.
    #[must_use]
    pub fn origin(&self) -> Origin {
        self.origin
    }
}

/// The PostgreSQL of this test process: `DATABASE_URL`, else [`DEFAULT_URL`], else a cluster of
/// our own (see the module docs). The first call decides, later calls return the same database;
/// a failure is remembered and every caller panics with its message.
///
/// # Panics
///
/// If `DATABASE_URL` is set and does not answer, or nothing answers on [`DEFAULT_URL`] and no
/// cluster of our own can be started (the message says how to get one).
pub async fn server() -> PostgresServer {
    static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    let result = match SERVER.get() {
        Some(result) => result.clone(),
        None => blocking(|| SERVER.get_or_init(find_or_start_server).clone()).await,
    };
    result.unwrap_or_else(|message| panic!("{message}"))
}

/// The URL of [`server`]: `postgres://…`, for `PgPool::connect` and the like. The same for the
/// whole process.
///
/// # Panics
///
/// As [`server`].
pub async fn database_url() -> String {
    server().await.url
}

fn find_or_start_server() -> Result<PostgresServer, String> {
    if let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        return match probe(&url, ENV_TIMEOUT, false) {
            Ok(_) => Ok(PostgresServer {
                url,
                origin: Origin::Env,
            }),
            Err(error) => Err(format!(
                "DATABASE_URL={} is set, but that PostgreSQL does not answer `SELECT 1` \
                 ({error}). Start it, fix DATABASE_URL, or unset DATABASE_URL to let the tests \
                 use {DEFAULT_URL} or start their own cluster.",
                redact(&url)
            )),
        };
    }
    let Err(default_error) = probe(DEFAULT_URL, PROBE_TIMEOUT, false) else {
        return Ok(PostgresServer {
            url: DEFAULT_URL.to_owned(),
            origin: Origin::LocalDefault,
        });
    };
    let cluster = start_private_cluster().map_err(|error| {
        let mut message = format!(
            "DATABASE_URL is unset, {DEFAULT_URL} does not answer ({default_error}), and the \
             tests can't start their own PostgreSQL: {error}"
        );
        if !error.contains(HOW_TO_GET_POSTGRES) {
            message.push('\n');
            message.push_str(HOW_TO_GET_POSTGRES);
        }
        message
    })?;
    let url = cluster.url.clone();
    keep_until_exit(cluster);
    Ok(PostgresServer {
        url,
        origin: Origin::Spawned,
    })
}

/// Keeps a cluster running until the process exits (the watchdog then stops it).
fn keep_until_exit(cluster: PrivateCluster) {
    static KEPT: Mutex<Vec<PrivateCluster>> = Mutex::new(Vec::new());
    KEPT.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(cluster);
}

/// `url` with its password, if any, replaced by `***`, for messages.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

// ------------------------------------------------------------------------------------------
// Table names
// ------------------------------------------------------------------------------------------

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); longer ones are truncated.
const MAX_IDENTIFIER: usize = 63;

/// A table name unique to this call, `sessions_{test}_{pid}_{random}_{counter}`, so tests that
/// share a database never meet each other's rows. `test` is lower-cased, every character other
/// than an ASCII letter or digit becomes `_`, and it is shortened so that the whole name fits
/// PostgreSQL's 63 bytes. The result is a valid unquoted identifier (lower-case letters, digits
/// and underscores, starting with a letter) in PostgreSQL and SQLite alike. The random part
/// keeps a reused pid (containers) from meeting a table an earlier run left on a long-lived
/// server.
///
/// # Panics
///
/// Never: the one conversion inside is from the top half of a `u64` to a `u32`.
#[must_use]
pub fn unique_table(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static NONCE: OnceLock<u32> = OnceLock::new();
    let nonce = *NONCE.get_or_init(|| {
        let random = random_u64();
        u32::try_from(random >> 32).expect("a u64 shifted by 32 fits in a u32")
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix = "sessions_";
    let suffix = format!("_{}_{nonce:08x}_{n}", std::process::id());
    let room = MAX_IDENTIFIER.saturating_sub(prefix.len() + suffix.len());
    let test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    format!("{prefix}{test}{suffix}")
}

// ------------------------------------------------------------------------------------------
// Clusters of our own
// ------------------------------------------------------------------------------------------

/// A PostgreSQL cluster this process started: its own `initdb`'d directory, its own loopback
/// port, trust authentication, superuser and database `postgres`. Stopped (`pg_ctl stop -m
/// immediate`) and deleted when dropped, or when the process exits.
#[derive(Debug)]
pub struct PrivateCluster {
    url: String,
    port: u16,
    dir: PathBuf,
    /// `runuser -u postgres --` when running as root, else empty.
    run_as: Vec<OsString>,
    pg_ctl: PathBuf,
    watchdog: Child,
    /// The write end of the watchdog's stdin; closing it stops the cluster.
    lifeline: Option<ChildStdin>,
}

impl PrivateCluster {
    /// `postgres://postgres@127.0.0.1:{port}/postgres`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The loopback port the cluster listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// `pg_ctl` (as the `postgres` user when we are root), working in the cluster's directory.
    fn pg_ctl(&self) -> Command {
        as_user(&self.run_as, &self.pg_ctl, &self.dir)
    }

    /// Starts the cluster on `port` and waits until it answers, as itself (its data directory),
    /// so someone else's server on the same port is never mistaken for ours.
    fn start_on(&mut self, port: u16) -> Result<(), String> {
        let socket_dir = if self.dir.as_os_str().len() + ".s.PGSQL.65535".len() < 100 {
            self.dir.to_string_lossy().into_owned()
        } else {
            // Too long for a Unix socket path: TCP only.
            String::new()
        };
        // `pg_ctl` hands `-o` to `sh -c`, hence the quoting.
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            shell_quote(&socket_dir)
        );
        let mut start = self.pg_ctl();
        start
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", &START_TIMEOUT_SECS.to_string(), "-o", &options]);
        let started = run_with_timeout(&mut start, Duration::from_secs(START_TIMEOUT_SECS + 10))
            .and_then(|(status, output)| {
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("`pg_ctl start` failed ({status}):\n{output}"))
                }
            });
        let url = format!("postgres://{OWN_USER}@127.0.0.1:{port}/{OWN_USER}");
        let checked = started.and_then(|()| {
            let expected = self.data_dir();
            match probe(&url, Duration::from_secs(5), true)? {
                Some(data_dir) if Path::new(&data_dir) == expected => Ok(()),
                other => Err(format!(
                    "{url} answers with the data directory {other:?}, not ours ({})",
                    expected.display()
                )),
            }
        });
        match checked {
            Ok(()) => {
                self.port = port;
                self.url = url;
                Ok(())
            }
            Err(error) => {
                // A start that timed out may have left a postmaster behind.
                let _ = run_with_timeout(
                    self.pg_ctl()
                        .arg("stop")
                        .arg("-D")
                        .arg(self.data_dir())
                        .args(["-m", "immediate", "-w"]),
                    STOP_TIMEOUT,
                );
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let log_start = log.len().saturating_sub(3000);
                let log_end = log.get(log_start..).unwrap_or(&log);
                Err(format!(
                    "PostgreSQL on port {port}: {error}\nits log ends:\n{log_end}"
                ))
            }
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog stop the cluster and remove its directory.
        drop(self.lifeline.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    // The watchdog is stuck: stop the cluster ourselves.
                    let _ = self.watchdog.kill();
                    let _ = self.watchdog.wait();
                    let _ = run_with_timeout(
                        self.pg_ctl()
                            .arg("stop")
                            .arg("-D")
                            .arg(self.data_dir())
                            .args(["-m", "immediate", "-w"]),
                        STOP_TIMEOUT,
                    );
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The watchdog of one cluster. `$1` is the cluster's directory, the rest is the `pg_ctl`
/// command (behind `runuser -u postgres --` when we are root). It waits until stdin reaches
/// end-of-file (the test process closed the pipe or exited), then stops the cluster if it
/// started (`postmaster.pid` exists) and removes the directory.
///
/// It ignores `SIGPIPE`, and `SIGHUP`/`SIGINT`/`SIGTERM` sent to the whole process group (a
/// Ctrl-C at the terminal): its life is tied to the pipe alone, so it always gets to stop the
/// cluster and remove the directory.
const WATCHDOG: &str = r#"
trap '' PIPE HUP INT TERM
dir=$1
shift
while read -r _; do :; done
if [ -f "$dir/data/postmaster.pid" ]; then
  "$@" stop -D "$dir/data" -m immediate -w -t 20 >/dev/null 2>&1
fi
cd /
rm -rf "$dir"
"#;

/// Starts a PostgreSQL cluster of our own (see the module docs): finds `initdb` and `pg_ctl`,
/// runs `initdb` into a new temporary directory, starts the cluster on a free loopback port and
/// waits until it answers `SELECT 1`, as itself. When the process runs as root, `initdb` and
/// `pg_ctl` run as the `postgres` user. Blocking: from async code, call it through
/// `tokio::task::spawn_blocking`. [`server`] uses it when nothing else answers; tests that need
/// a cluster to themselves (to stop it, say) may call it directly.
///
/// # Errors
///
/// If the binaries, or as root `runuser` or the `postgres` user, are missing, or `initdb` or
/// the start fails; the message says why and how to fix it.
#[doc(hidden)]
pub fn start_private_cluster() -> Result<PrivateCluster, String> {
    let bin = postgres_bin_dir()?;
    let run_as = run_as()?;
    let dir = std::env::temp_dir().join(format!(
        "session-tests-pg-{}-{:08x}",
        std::process::id(),
        random_u64() >> 32
    ));
    std::fs::create_dir(&dir)
        .map_err(|error| format!("can't create {}: {error}", dir.display()))?;
    let pg_ctl = bin.join("pg_ctl");
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("postgres-watchdog")
        .arg(&dir)
        .args(&run_as)
        .arg(&pg_ctl)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut watchdog = match spawned {
        Ok(child) => child,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("can't run sh for the PostgreSQL watchdog: {error}"));
        }
    };
    let lifeline = watchdog.stdin.take();
    // From here on, dropping the cluster cleans up whatever exists.
    let mut cluster = PrivateCluster {
        url: String::new(),
        port: 0,
        dir,
        run_as,
        pg_ctl,
        watchdog,
        lifeline,
    };

    if !cluster.run_as.is_empty() {
        let (status, output) = run_with_timeout(
            Command::new("chown")
                .args(["-R", OWN_USER])
                .arg(&cluster.dir),
            Duration::from_secs(10),
        )?;
        if !status.success() {
            return Err(format!(
                "`chown -R {OWN_USER} {}` failed ({status}):\n{output}",
                cluster.dir.display()
            ));
        }
    }

    let mut initdb = as_user(&cluster.run_as, &bin.join("initdb"), &cluster.dir);
    initdb.arg("-D").arg(cluster.data_dir()).args([
        "-U",
        OWN_USER,
        "--auth=trust",
        "--no-sync",
        "--encoding=UTF8",
        "--locale=C",
    ]);
    let (status, output) = run_with_timeout(&mut initdb, INITDB_TIMEOUT)?;
    if !status.success() {
        return Err(format!("`{}` failed ({status}):\n{output}", shown(&initdb)));
    }

    let mut errors = Vec::new();
    for _ in 0..5 {
        match cluster.start_on(pick_port(false)) {
            Ok(()) => return Ok(cluster),
            Err(error) => errors.push(error),
        }
    }
    Err(format!(
        "could not start PostgreSQL ({}) on a free loopback port (5 attempts):\n{}",
        bin.display(),
        errors.join("\n---\n")
    ))
}

/// A command that runs `program` in `dir`, behind `run_as` (`runuser -u postgres --`, or
/// nothing).
fn as_user(run_as: &[OsString], program: &Path, dir: &Path) -> Command {
    let mut command = match run_as.split_first() {
        Some((runuser, args)) => {
            let mut command = Command::new(runuser);
            command.args(args).arg(program);
            command
        }
        None => Command::new(program),
    };
    // The directory the `postgres` user can enter (the test's own may be closed to it).
    command.current_dir(dir);
    command
}

/// A command line for messages.
fn shown(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` in single quotes for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `runuser -u postgres --` when the process runs as root (`initdb` and `pg_ctl` refuse root),
/// else nothing.
fn run_as() -> Result<Vec<OsString>, String> {
    if !is_root() {
        return Ok(Vec::new());
    }
    let user_exists = Command::new("id")
        .arg(OWN_USER)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !user_exists {
        return Err(format!(
            "this process runs as root, which initdb and pg_ctl refuse, and there is no \
             `{OWN_USER}` user to run them as. Install PostgreSQL (`apt-get install -y \
             postgresql` creates the user), or create one (`useradd --system {OWN_USER}`), or \
             run the tests as another user. {HOW_TO_GET_POSTGRES}"
        ));
    }
    // Root's PATH usually has the sbin directories, but a test's PATH may not.
    let runuser = find_on_path("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .map(PathBuf::from)
                .into_iter()
                .find(|path| is_executable(path))
        })
        .ok_or_else(|| {
            format!(
                "this process runs as root, which initdb and pg_ctl refuse, and `runuser` \
                 (util-linux), which would run them as `{OWN_USER}`, is neither on PATH nor in \
                 /usr/sbin. Install util-linux, or run the tests as another user. \
                 {HOW_TO_GET_POSTGRES}"
            )
        })?;
    Ok(vec![
        runuser.into(),
        "-u".into(),
        OWN_USER.into(),
        "--".into(),
    ])
}

/// Whether the effective user is root: `/proc/self/status`, else `id -u`.
fn is_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        // `Uid:	<real>	<effective>	<saved>	<filesystem>`
        if let Some(line) = status.lines().find(|line| line.starts_with("Uid:")) {
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

// ------------------------------------------------------------------------------------------
// Binaries
// ------------------------------------------------------------------------------------------

/// The directory of the `initdb` and `pg_ctl` the harness runs: `PG_BIN`, else the directory
/// `initdb` on `PATH` resolves to (through symlinks, to find the `pg_ctl` of the same
/// installation), else the newest `/usr/lib/postgresql/*/bin` that has `initdb` (Debian keeps
/// the server binaries there, off `PATH`).
///
/// # Errors
///
/// If none has both `initdb` and `pg_ctl`; the message says how to get them.
pub fn postgres_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        return check_bin_dir(&dir).map_err(|error| format!("PG_BIN is set, but {error}"));
    }
    if let Some(initdb) = find_on_path("initdb") {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        let dir = real.parent().unwrap_or(Path::new("/")).to_path_buf();
        return check_bin_dir(&dir).map_err(|error| format!("initdb is on PATH, but {error}"));
    }
    if let Some(dir) = newest_debian_bin_dir() {
        return check_bin_dir(&dir);
    }
    Err(format!(
        "no initdb: PG_BIN is unset, there is none on PATH and none in \
         /usr/lib/postgresql/*/bin. {HOW_TO_GET_POSTGRES}"
    ))
}

/// Checks that `dir` has executable `initdb` and `pg_ctl`.
fn check_bin_dir(dir: &Path) -> Result<PathBuf, String> {
    for program in ["initdb", "pg_ctl"] {
        let path = dir.join(program);
        if !is_executable(&path) {
            return Err(format!(
                "{} is not an executable file. {HOW_TO_GET_POSTGRES}",
                path.display()
            ));
        }
    }
    Ok(dir.to_path_buf())
}

/// The newest `/usr/lib/postgresql/<version>/bin` with an `initdb`, by version number.
fn newest_debian_bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            is_executable(&bin.join("initdb")).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// The first `program` on `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

// ------------------------------------------------------------------------------------------
// Ports
// ------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------
// Talking to PostgreSQL
// ------------------------------------------------------------------------------------------

/// Connects to `url` and runs `SELECT 1`, all within `timeout`; with `data_directory`, also
/// returns the server's data directory (a superuser's question). Blocking: it runs on a thread
/// of its own with a runtime of its own, so it works from any thread.
fn probe(url: &str, timeout: Duration, data_directory: bool) -> Result<Option<String>, String> {
    let url = url.to_owned();
    block_on(async move {
        let work = async {
            let mut connection = PgConnection::connect(&url)
                .await
                .map_err(|error| format!("can't connect: {error}"))?;
            let one = sqlx::query_scalar::<sqlx::Postgres, i32>("SELECT 1")
                .fetch_one(&mut connection)
                .await
                .map_err(|error| format!("`SELECT 1` failed: {error}"))?;
            if one != 1 {
                return Err(format!("`SELECT 1` returned {one}"));
            }
            let dir = if data_directory {
                Some(
                    sqlx::query_scalar::<sqlx::Postgres, String>(
                        "SELECT current_setting('data_directory')",
                    )
                    .fetch_one(&mut connection)
                    .await
                    .map_err(|error| format!("can't read data_directory: {error}"))?,
                )
            } else {
                None
            };
            let _ = connection.close().await;
            Ok(dir)
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
    })
}

/// Runs `future` to completion on a new thread with a new current-thread runtime, so it works
/// from any thread, inside an async runtime or not.
fn block_on<T: Send>(future: impl Future<Output = T> + Send) -> T {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building a tokio runtime for a PostgreSQL probe")
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs blocking harness work off the async test's runtime thread, passing panics through.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("harness task cancelled: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn database_url_answers_select_1() {
        let url = database_url().await;
        let mut connection = PgConnection::connect(&url).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(one, 1);
        connection.close().await.unwrap();
        assert_eq!(database_url().await, url, "the URL is decided once");
    }

    #[test]
    fn unique_tables_are_distinct_valid_identifiers() {
        let long = "a Very-Long test name: with spaces, punctuation and ünïcode, much too long";
        let names = [
            unique_table("store"),
            unique_table("store"),
            unique_table(long),
            unique_table(""),
        ];
        for name in &names {
            assert!(name.len() <= MAX_IDENTIFIER, "{name} is too long");
            assert!(name.starts_with("sessions_"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name} has other characters"
            );
        }
        assert_ne!(names[0], names[1]);
        assert!(names[0].starts_with("sessions_store_"), "{}", names[0]);
        assert!(
            names[2].starts_with("sessions_a_very_long_test_"),
            "{}",
            names[2]
        );
        assert_eq!(names[2].len(), MAX_IDENTIFIER, "{}", names[2]);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://user:secret@host:5432/db?sslmode=disable"),
            "postgres://user:***@host:5432/db?sslmode=disable"
        );
        assert_eq!(redact(DEFAULT_URL), DEFAULT_URL);
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn private_cluster_starts_and_answers() {
        let cluster = start_private_cluster().unwrap_or_else(|error| panic!("{error}"));
        let port = cluster.port();
        assert_ne!(port, 5432);
        let url = cluster.url().to_owned();
        let dir = cluster.dir.clone();
        let table = unique_table("private_cluster");
        let value = block_on(async {
            let mut connection = PgConnection::connect(&url).await.unwrap();
            let one: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&mut connection)
                .await
                .unwrap();
            assert_eq!(one, 1);
            // UTF-8, so `jsonb` takes any text (SQL_ASCII would refuse `\u00e9`).
            let create = format!("CREATE TABLE {table} (fields jsonb NOT NULL)");
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&mut connection)
                .await
                .unwrap();
            let insert = format!(r#"INSERT INTO {table} VALUES ('{{"name": "\u00e9t\u00e9"}}')"#);
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .execute(&mut connection)
                .await
                .unwrap();
            let select = format!("SELECT fields->>'name' FROM {table}");
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(select))
                .fetch_one(&mut connection)
                .await
                .unwrap()
        });
        assert_eq!(value, "été");
        assert!(dir.join("data").is_dir());

        drop(cluster);
        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the cluster still listens on {port}"
        );
    }
}
