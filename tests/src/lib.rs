//! Tests live in `tests/*.rs`. This library only compiles the Rust blocks of the README and of
//! `docs/migrating-from-aiohttp-session.md` as doctests, so they cannot drift from the API.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/migrating-from-aiohttp-session.md")]
struct MigrationGuideDoctests;
