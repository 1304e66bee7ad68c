//! Support for the integration tests in `tests/*.rs`, compiled once and shared by every test
//! binary.
//!
//! - [`server`]: a clock tests can move, a real axum server on loopback and HTTP clients.
//! - [`fixture`]: a clock, a store and a started server together, the preamble of most tests.
//! - [`suite`]: the conformance suite every store runs, through [`store_suite!`].
//! - [`races`]: the concurrency races every server-side store must win.
//! - [`sql`]: fresh PostgreSQL and SQLite stores, each on a table or file of its own.
//! - [`redis`]: the Redis the tests use (a single server, a cluster, a private server) and
//!   command counting.
//! - [`postgres`]: the PostgreSQL database the tests use (`DATABASE_URL`, the machine's 5432 or
//!   a cluster of their own) and per-test table names.
//!
//! The library also compiles the Rust blocks of the README, of
//! `docs/migrating-from-aiohttp-session.md` and of `docs/nested-values.md` as doctests, so they
//! cannot drift from the API.

pub mod fixture;
pub mod postgres;
mod process;
pub mod proxy;
pub mod races;
pub mod redis;
pub mod server;
pub mod sql;
pub mod suite;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/migrating-from-aiohttp-session.md")]
struct MigrationGuideDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/nested-values.md")]
struct NestedValuesDoctests;
