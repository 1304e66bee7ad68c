//! Repository tasks, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask test [ARGS]...`: installs what the test suite needs and the machine lacks
//!   ([`REQUIREMENTS`]), creates the Python venv of the aiohttp_session cross-server tests, then
//!   runs `cargo test --workspace --all-features --locked [ARGS]...` and exits with its status.
//! - `cargo xtask install [--ci]`: the first two steps of `test` only; with `--ci` it also
//!   installs what the other steps of `.ci/run` need (the example smoke test, the fuzz build).
//! - `cargo xtask venv`: the Python venv only.
//! - `cargo xtask redis8`: downloads Redis 8.0.2's source (Debian 13's, checked against its
//!   SHA-256) and builds `target/redis-8.0.2/src/redis-server`, for the load benchmark's ruts
//!   scenarios (ruts needs Redis 7.4 or newer; Debian 12 has 7.0). About two minutes on 2 cores.
//!
//! Missing packages are installed with `apt-get` when the task runs as root on a machine that
//! has it. Otherwise, or with `XTASK_NO_INSTALL=1`, the task stops before doing anything and
//! prints the commands that install them.
//!
//! The venv is `target/aiohttp-venv`, or `$AIOHTTP_VENV`; `$PYTHON` (default `python3`) creates
//! it. It is rebuilt when `tests/aiohttp/requirements.txt` changes and left alone otherwise.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool that reports what it does"
)]

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// What `cargo xtask test` runs, before the caller's extra arguments.
const TEST_COMMAND: &[&str] = &["test", "--workspace", "--all-features", "--locked"];

/// The pip requirements of the venv, relative to the repository root.
const VENV_REQUIREMENTS: &str = "tests/aiohttp/requirements.txt";

/// Which task needs a requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// The test suite: `cargo xtask test`.
    Tests,
    /// The other steps of `.ci/run`: `cargo xtask install --ci`.
    Ci,
}

/// Something the tests or CI need from the system, and the Debian packages that provide it.
struct Requirement {
    /// The program or module, as the messages name it.
    name: &'static str,
    /// Who needs it, for the messages.
    used_by: &'static str,
    /// Which task needs it.
    scope: Scope,
    /// Whether the machine has it.
    present: fn() -> bool,
    /// The Debian packages that provide it.
    packages: &'static [&'static str],
}

/// Everything the tests and CI need that a fresh Debian machine with only the Rust toolchain may
/// lack. The checks look where the tests look (same environment overrides, same paths). To add
/// one, add an entry; for a `memcached` server, for example:
///
/// ```text
/// Requirement {
///     name: "memcached",
///     used_by: "the Memcached store tests",
///     scope: Scope::Tests,
///     present: || program_present(Some("MEMCACHED_BIN"), "memcached"),
///     packages: &["memcached"],
/// },
/// ```
const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        name: "redis-server",
        used_by: "Redis tests",
        scope: Scope::Tests,
        present: || program_present(Some("REDIS_SERVER_BIN"), "redis-server"),
        packages: &["redis-server"],
    },
    Requirement {
        name: "redis-cli",
        used_by: "Redis Cluster tests",
        scope: Scope::Tests,
        present: || program_present(Some("REDIS_CLI_BIN"), "redis-cli"),
        packages: &["redis-tools"],
    },
    Requirement {
        name: "PostgreSQL server binaries (initdb, pg_ctl)",
        used_by: "the PostgreSQL store tests (when no server answers on 127.0.0.1:5432 and \
                  DATABASE_URL is unset, they start their own)",
        scope: Scope::Tests,
        present: postgres_server_present,
        packages: &["postgresql"],
    },
    Requirement {
        name: "python3 with venv and ensurepip",
        used_by: "tests/aiohttp_compat.rs",
        scope: Scope::Tests,
        present: python_makes_venvs,
        packages: &["python3", "python3-venv"],
    },
    Requirement {
        name: "chromium",
        used_by: "tests/browser.rs",
        scope: Scope::Tests,
        present: || {
            any_program_present(
                Some("CHROMIUM"),
                &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
            )
        },
        packages: &["chromium"],
    },
    Requirement {
        name: "chromedriver",
        used_by: "tests/browser.rs",
        scope: Scope::Tests,
        present: || program_present(Some("CHROMEDRIVER"), "/usr/bin/chromedriver"),
        packages: &["chromium-driver"],
    },
    Requirement {
        name: "curl",
        used_by: ".ci/smoke-example",
        scope: Scope::Ci,
        present: || program_present(None, "curl"),
        packages: &["curl"],
    },
    Requirement {
        name: "a C++ compiler",
        used_by: ".ci/fuzz-smoke (libFuzzer)",
        scope: Scope::Ci,
        present: || program_present(None, "c++"),
        packages: &["g++"],
    },
];

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    let result = match task.as_ref().and_then(|task| task.to_str()) {
        Some("test") => test(&rest),
        Some("install") => match rest.iter().map(|arg| arg.to_str()).collect::<Vec<_>>()[..] {
            [] => install(&[Scope::Tests]).and_then(|()| venv()),
            [Some("--ci")] => install(&[Scope::Tests, Scope::Ci]).and_then(|()| venv()),
            _ => Err(Failure::usage()),
        },
        Some("venv") if rest.is_empty() => venv(),
        Some("redis8") if rest.is_empty() => redis8(),
        Some("help" | "--help" | "-h") => {
            print!("{}", usage());
            Ok(())
        }
        _ => Err(Failure::usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code)) => ExitCode::from(code),
    }
}

fn usage() -> String {
    "usage: cargo xtask <task>\n\
     \n\
     \x20 test [ARGS]...   install what the tests need, create the Python venv, then run\n\
     \x20                  cargo test --workspace --all-features --locked [ARGS]...\n\
     \x20 install [--ci]   only install what the tests need (--ci: and the rest of .ci/run)\n\
     \x20 venv             only create the Python venv (target/aiohttp-venv or $AIOHTTP_VENV)\n\
     \x20 redis8           build Redis 8.0.2 into target/redis-8.0.2 (the load benchmark's ruts rows)\n\
     \n\
     Packages are installed with apt-get when running as root; otherwise, or with\n\
     XTASK_NO_INSTALL=1, the task stops and prints the commands that install them.\n"
        .to_owned()
}

/// A task failed with this exit status; the reason has been printed.
#[derive(Debug)]
struct Failure(u8);

impl Failure {
    fn usage() -> Self {
        eprint!("{}", usage());
        Self(2)
    }
}

/// Prints `xtask: <message>` to stderr, the stream cargo's own progress goes to.
fn say(message: impl AsRef<str>) {
    eprintln!("xtask: {}", message.as_ref());
}

/// Prints `xtask: error: <message>` and returns a failure with exit status 1.
fn fail(message: impl AsRef<str>) -> Failure {
    eprintln!("xtask: error: {}", message.as_ref());
    Failure(1)
}

/// The repository root (this package's parent directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is inside the repository")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// test
// ---------------------------------------------------------------------------------------------

fn test(extra: &[OsString]) -> Result<(), Failure> {
    install(&[Scope::Tests])?;
    let venv = venv_path();
    make_venv(&venv)?;

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut shown = format!("cargo {}", TEST_COMMAND.join(" "));
    for arg in extra {
        write!(shown, " {}", arg.to_string_lossy()).expect("writing to a String");
    }
    say(format!("running {shown}"));
    let status = Command::new(cargo)
        .args(TEST_COMMAND)
        .args(extra)
        .current_dir(root())
        // Absolute, so the tests (which run in their package's directory) find the same venv.
        .env("AIOHTTP_VENV", &venv)
        .status()
        .map_err(|error| fail(format!("cannot run cargo: {error}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure(u8::try_from(code).unwrap_or(1))),
        None => Err(fail(format!("cargo test was stopped: {status}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// redis8
// ---------------------------------------------------------------------------------------------

/// Redis 8.0.2's source as Debian 13 ships it (`redis_8.0.2.orig.tar.gz`, upstream's tarball).
const REDIS8_URL: &str = "http://deb.debian.org/debian/pool/main/r/redis/redis_8.0.2.orig.tar.gz";
const REDIS8_SHA256: &str = "caf3c0069f06fc84c5153bd2a348b204c578de80490c73857bee01d9b5d7401f";
const REDIS8_DIR: &str = "redis-8.0.2";

/// Builds `target/redis-8.0.2/src/redis-server` unless it is there already.
fn redis8() -> Result<(), Failure> {
    let target = root().join("target");
    let dir = target.join(REDIS8_DIR);
    let server = dir.join("src").join("redis-server");
    let hint = |server: &Path| {
        say(format!(
            "run the load benchmark on it with REDIS_SERVER_BIN={}",
            server.display()
        ));
    };
    if is_executable(&server) {
        say(format!("{} is built already", relative(&server).display()));
        hint(&server);
        return Ok(());
    }
    let missing: Vec<&str> = ["curl", "sha256sum", "tar", "make", "cc"]
        .into_iter()
        .filter(|program| find_program(program).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "building Redis needs {}; install them with: apt-get install -y curl coreutils tar make gcc",
            missing.join(", ")
        )));
    }
    let log = target.join("xtask-logs").join("redis8.log");
    let tarball = target.join("redis_8.0.2.orig.tar.gz");
    say(format!("downloading {REDIS8_URL}"));
    run_logged(
        Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(&tarball)
            .arg(REDIS8_URL),
        &format!("curl {REDIS8_URL}"),
        &log,
    )?;
    let sum = Command::new("sha256sum")
        .arg(&tarball)
        .output()
        .map_err(|error| fail(format!("cannot run sha256sum: {error}")))?;
    let sum = String::from_utf8_lossy(&sum.stdout);
    if sum.split_whitespace().next() != Some(REDIS8_SHA256) {
        let _ = fs::remove_file(&tarball);
        return Err(fail(format!(
            "{REDIS8_URL} does not have the expected SHA-256 ({REDIS8_SHA256}): got {sum}"
        )));
    }
    run_logged(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&target),
        "tar -xzf redis_8.0.2.orig.tar.gz",
        &log,
    )?;
    say(format!(
        "building {} (about two minutes; output in {})",
        relative(&dir).display(),
        relative(&log).display()
    ));
    run_logged(
        Command::new("make")
            .arg("-C")
            .arg(&dir)
            .arg(format!(
                "-j{}",
                std::thread::available_parallelism().map_or(2, usize::from)
            ))
            .arg("BUILD_TLS=no"),
        "make BUILD_TLS=no",
        &log,
    )?;
    let _ = fs::remove_file(&tarball);
    if !is_executable(&server) {
        return Err(fail(format!(
            "make succeeded but {} is missing; see {}",
            server.display(),
            log.display()
        )));
    }
    say(format!("built {}", relative(&server).display()));
    hint(&server);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// install
// ---------------------------------------------------------------------------------------------

/// Installs the missing requirements of `scopes`, or stops with the commands that would.
fn install(scopes: &[Scope]) -> Result<(), Failure> {
    let wanted: Vec<&Requirement> = REQUIREMENTS
        .iter()
        .filter(|requirement| scopes.contains(&requirement.scope))
        .collect();
    let missing: Vec<&Requirement> = wanted
        .iter()
        .copied()
        .filter(|requirement| !(requirement.present)())
        .collect();
    if missing.is_empty() {
        let names: Vec<&str> = wanted.iter().map(|requirement| requirement.name).collect();
        say(format!("found {}", names.join(", ")));
        return Ok(());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|requirement| format!("{} ({})", requirement.name, requirement.used_by))
        .collect();
    say(format!("missing {}", names.join(", ")));
    let packages = packages_of(&missing);

    let apt_get = find_program("apt-get");
    let root_user = is_root();
    let opted_out = env::var_os("XTASK_NO_INSTALL").is_some_and(|value| !value.is_empty());
    if apt_get.is_none() {
        return Err(fail(format!(
            "no apt-get on this machine; install these Debian packages or their equivalents, \
             then run the task again: {}",
            packages.join(" ")
        )));
    }
    if !root_user || opted_out {
        let why = if root_user {
            "XTASK_NO_INSTALL is set"
        } else {
            "not running as root"
        };
        let sudo = if root_user { "" } else { "sudo " };
        eprintln!(
            "xtask: not installing them ({why}). Run these commands, then run the task again:"
        );
        for command in apt_commands(&packages) {
            eprintln!("    {sudo}{}", command.join(" "));
        }
        return Err(Failure(1));
    }

    let log = root().join("target").join("xtask-apt.log");
    say(format!(
        "installing {} with apt-get (log: {})",
        packages.join(" "),
        relative(&log).display()
    ));
    let started = Instant::now();
    for command in apt_commands(&packages) {
        let mut apt = Command::new(command[0]);
        apt.args(&command[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run_logged(&mut apt, &command.join(" "), &log)?;
    }
    let still: Vec<&str> = missing
        .iter()
        .filter(|requirement| !(requirement.present)())
        .map(|requirement| requirement.name)
        .collect();
    if !still.is_empty() {
        return Err(fail(format!(
            "still missing after the install: {} (is something else earlier on PATH?)",
            still.join(", ")
        )));
    }
    say(format!(
        "installed in {} s",
        started.elapsed().as_secs_f64().round()
    ));
    Ok(())
}

/// The Debian packages of `requirements`, each once, in order.
fn packages_of(requirements: &[&Requirement]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for package in requirements
        .iter()
        .flat_map(|requirement| requirement.packages)
    {
        if !packages.contains(package) {
            packages.push(package);
        }
    }
    packages
}

/// The commands that install `packages`.
fn apt_commands<'a>(packages: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut install = vec!["apt-get", "install", "-y"];
    install.extend_from_slice(packages);
    vec![vec!["apt-get", "update"], install]
}

/// Whether the effective user is root.
fn is_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        // `Uid:	<real>	<effective>	<saved>	<filesystem>`
        if let Some(line) = status.lines().find(|line| line.starts_with("Uid:")) {
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// Runs `command` with its output appended to `log`; on failure prints the end of the log.
fn run_logged(command: &mut Command, shown: &str, log: &Path) -> Result<(), Failure> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)
            .map_err(|error| fail(format!("cannot create {}: {error}", dir.display())))?;
    }
    let file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| fail(format!("cannot open {}: {error}", log.display())))?;
    let mut writer = file
        .try_clone()
        .map_err(|error| fail(format!("cannot open {}: {error}", log.display())))?;
    let _ = writeln!(writer, "$ {shown}");
    let status = command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(file)
        .status()
        .map_err(|error| fail(format!("cannot run `{shown}`: {error}")))?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(25)..] {
        eprintln!("    {line}");
    }
    Err(fail(format!(
        "`{shown}` failed ({status}); the whole output is in {}",
        log.display()
    )))
}

/// `path` relative to the current directory when it is below it, for shorter messages.
fn relative(path: &Path) -> PathBuf {
    env::current_dir()
        .ok()
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

// ---------------------------------------------------------------------------------------------
// Presence checks
// ---------------------------------------------------------------------------------------------

/// The program that the environment variable `variable` names (if set and not empty), else
/// `default`; a name without `/` is looked up on `PATH`.
fn program_present(variable: Option<&str>, default: &str) -> bool {
    any_program_present(variable, &[default])
}

/// Like [`program_present`], with several defaults of which one is enough.
fn any_program_present(variable: Option<&str>, defaults: &[&str]) -> bool {
    match variable
        .and_then(env::var_os)
        .filter(|value| !value.is_empty())
    {
        Some(program) => find_program(&program).is_some(),
        None => defaults
            .iter()
            .any(|program| find_program(program).is_some()),
    }
}

/// The path of `program`: itself if it contains a `/`, else the first match on `PATH`.
fn find_program(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    let program = Path::new(program.as_ref());
    if program.components().count() > 1 {
        return is_executable(program).then(|| program.to_path_buf());
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether `initdb` is where `tests/src/postgres.rs` looks for it: in `$PG_BIN` if set, else
/// on `PATH`, else in a `/usr/lib/postgresql/*/bin` (Debian keeps the server binaries there, off
/// `PATH`). Running as root, the tests run it as the `postgres` user, which the package creates,
/// through `runuser`, which util-linux provides (essential on Debian, so not listed here).
fn postgres_server_present() -> bool {
    if let Some(dir) = env::var_os("PG_BIN").filter(|dir| !dir.is_empty()) {
        return is_executable(&Path::new(&dir).join("initdb"));
    }
    find_program("initdb").is_some()
        || fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
            versions
                .filter_map(Result::ok)
                .any(|version| is_executable(&version.path().join("bin").join("initdb")))
        })
}

/// The Python that creates the venv: `$PYTHON`, else `python3`.
fn python() -> OsString {
    env::var_os("PYTHON")
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn python_makes_venvs() -> bool {
    Command::new(python())
        .args(["-c", "import venv, ensurepip"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

// ---------------------------------------------------------------------------------------------
// venv
// ---------------------------------------------------------------------------------------------

/// Where the venv is: `$AIOHTTP_VENV` (made absolute), else `target/aiohttp-venv`.
fn venv_path() -> PathBuf {
    match env::var_os("AIOHTTP_VENV").filter(|value| !value.is_empty()) {
        Some(dir) => env::current_dir().unwrap_or_default().join(dir),
        None => root().join("target").join("aiohttp-venv"),
    }
}

fn venv() -> Result<(), Failure> {
    make_venv(&venv_path())
}

/// Creates the venv at `dir` with the pinned aiohttp_session, unless it is up to date.
fn make_venv(dir: &Path) -> Result<(), Failure> {
    let requirements_path = root().join(VENV_REQUIREMENTS);
    let requirements = fs::read(&requirements_path).map_err(|error| {
        fail(format!(
            "cannot read {}: {error}",
            requirements_path.display()
        ))
    })?;
    let venv_python = dir.join("bin").join("python3");
    let stamp = dir.join(".requirements");
    let shown = relative(dir);
    if venv_python.is_file() && fs::read(&stamp).is_ok_and(|stamped| stamped == requirements) {
        say(format!("Python venv up to date ({})", shown.display()));
        return Ok(());
    }
    if !python_makes_venvs() {
        return Err(fail(format!(
            "{} cannot create virtual environments (no venv or ensurepip module); on Debian: \
             apt-get install -y python3-venv",
            python().to_string_lossy()
        )));
    }

    say(format!(
        "creating the Python venv {} (aiohttp_session and its dependencies from PyPI)",
        shown.display()
    ));
    if dir.exists() {
        fs::remove_dir_all(dir)
            .map_err(|error| fail(format!("cannot remove {}: {error}", dir.display())))?;
    }
    let log = root().join("target").join("xtask-pip.log");
    run_logged(
        Command::new(python()).arg("-m").arg("venv").arg(dir),
        &format!("{} -m venv {}", python().to_string_lossy(), dir.display()),
        &log,
    )?;
    run_logged(
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("-r")
            .arg(&requirements_path),
        &format!("pip install -r {VENV_REQUIREMENTS}"),
        &log,
    )?;
    let versions = Command::new(&venv_python)
        .args([
            "-c",
            "import aiohttp_session, aiohttp, cryptography, redis; \
             print('aiohttp_session', aiohttp_session.__version__, 'aiohttp', aiohttp.__version__)",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| fail(format!("cannot run {}: {error}", venv_python.display())))?;
    if !versions.status.success() {
        return Err(fail(format!(
            "the new venv cannot import aiohttp_session ({}); see above",
            versions.status
        )));
    }
    fs::write(&stamp, &requirements)
        .map_err(|error| fail(format!("cannot write {}: {error}", stamp.display())))?;
    say(format!(
        "Python venv ready: {}",
        String::from_utf8_lossy(&versions.stdout).trim()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_listed_once_in_order() {
        let named = |name: &str| {
            REQUIREMENTS
                .iter()
                .find(|requirement| requirement.name.starts_with(name))
                .unwrap()
        };
        let (python, chromium) = (named("python3"), named("chromium"));
        assert_eq!(
            packages_of(&[chromium, python, chromium]),
            ["chromium", "python3", "python3-venv"]
        );
    }

    #[test]
    fn the_install_commands_update_first() {
        assert_eq!(
            apt_commands(&["chromium", "chromium-driver"]),
            [
                vec!["apt-get", "update"],
                vec!["apt-get", "install", "-y", "chromium", "chromium-driver"],
            ]
        );
    }

    #[test]
    fn every_requirement_names_its_packages() {
        for requirement in REQUIREMENTS {
            assert!(!requirement.packages.is_empty(), "{}", requirement.name);
        }
    }

    #[test]
    fn programs_are_found_on_path_and_by_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("no-such-program-xtask").is_none());
    }
}
