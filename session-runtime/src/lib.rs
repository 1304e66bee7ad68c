//! Typed web sessions for axum and tower.
//!
//! Declare the session as a struct, derive [`Session`](macro@Session), and extract
//! [`TypedSession<YourStruct>`](TypedSession) in handlers. Every field gets typed accessors
//! (`field()`, `field_mut()`, `set_field()`), reached without a trait import; the session tracks
//! which fields changed, so a request that changes nothing writes nothing and a server-side store
//! writes only the changed fields. Idle and absolute timeouts are enforced by the server from
//! timestamps inside the stored data, and cookies get secure defaults.
//!
//! # Quick start
//!
//! ```
//! # #[cfg(all(feature = "derive", feature = "axum", feature = "json", feature = "memory-store"))]
//! # fn main() {
//! use axum::{Router, routing::{get, post}};
//! use session_runtime::{Session, SessionLayer, TypedSession};
//! use session_runtime::store::MemoryStore;
//!
//! #[derive(Session)]
//! #[session(cookie_name = "counter", max_age = 3600)]
//! struct Counter {
//!     visits: u64,
//!     user: Option<u64>,
//! }
//!
//! async fn visit(mut session: TypedSession<Counter>) -> String {
//!     *session.visits_mut() += 1; // marks only `visits` as changed
//!     session.visits().to_string()
//! }
//!
//! async fn login(mut session: TypedSession<Counter>) {
//!     session.regenerate(); // fixation defence: new id, data kept, old record deleted
//!     session.set_user(Some(42));
//! }
//!
//! async fn logout(mut session: TypedSession<Counter>) {
//!     session.invalidate(); // record deleted, cookie removed
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(visit))
//!     .route("/login", post(login))
//!     .route("/logout", post(logout))
//!     .layer(SessionLayer::new(MemoryStore::new()));
//! # }
//! # #[cfg(not(all(feature = "derive", feature = "axum", feature = "json", feature = "memory-store")))]
//! # fn main() {}
//! ```
//!
//! The attributes of the derive are listed on [`Session`](macro@Session); the configuration and
//! its defaults on [`SessionConfig`]; a user's sessions (list, revoke, log out everywhere) in
//! [`owner`]; the stores, and how to write your own, in [`store`]; what
//! each request costs in store round trips on `RedisStore` (feature `redis-store`).
//!
//! # Features
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `derive` | `#[derive(Session)]`, re-exported here | yes |
//! | `axum` | [`TypedSession`] as an axum extractor (plain and `Option<_>`), `IntoResponse` for its rejection | yes |
//! | `json` | `JsonCodec` (`serde_json`), the derive's default codec | yes |
//! | `memory-store` | `MemoryStore`: bounded, expiring, in-process; the embedded default | yes |
//! | `msgpack` | `MsgpackCodec` (rmp-serde, maps with field names) | no |
//! | `cookie-store` | `EncryptedCookieStore` (AES-256-GCM-SIV, key ring) and `SimpleCookieStore` (plain, for tests only) | no |
//! | `redis-store` | `RedisStore` on one node or a Redis Cluster, field-level writes | no |
//! | `postgres-store` | `PostgresStore` (sqlx): one row per session, `jsonb` fields merged field by field | no |
//! | `sqlite-store` | `SqliteStore` (sqlx, bundled SQLite): the same in one file | no |
//! | `aiohttp-compat` | stores that read and write Python `aiohttp_session`'s formats (`store::aiohttp`: JSON cookie, Fernet cookie, with `redis-store` its Redis records), to run a Python and a Rust server side by side | no |
//!
//! # Errors
//!
//! Bad input never fails a request: a garbage, tampered, expired or oversized cookie gives a fresh
//! session. A store outage when loading rejects the extractor with 503 (take
//! `Result<TypedSession<T>, SessionRejection>` to handle it); a failed save answers without
//! `Set-Cookie`, 503 when the store is out (unreachable, timed out) and 500 otherwise, or returns the [`Error`] from [`TypedSession::save`].
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
pub mod config;
pub mod error;
pub mod extract;
pub mod layer;
pub mod owner;
pub mod service;
pub mod session;
pub mod store;

mod cookie_header;
mod execute;
mod lifecycle;
mod lock;
mod plan;
mod private;
mod record;
mod rejection;
mod renewal;
mod request;
mod shared;
mod state;

/// Internals for the `session-bench` benchmarks and the cargo-fuzz targets. Not part of the
/// public API: nothing here is semver-stable.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod __internals;

#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}

#[doc(inline)]
pub use codec::Codec;
#[doc(inline)]
pub use config::SessionConfig;
#[doc(inline)]
pub use error::{Error, Result};
#[doc(inline)]
pub use extract::TypedSession;
#[doc(inline)]
pub use layer::SessionLayer;
#[doc(inline)]
pub use session::Session;
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use session_derive::Session;
#[doc(inline)]
pub use store::SessionStore;
