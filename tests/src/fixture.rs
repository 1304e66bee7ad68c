//! A clock, a store and a server started over both: what most HTTP tests begin with.
//!
//! ```no_run
//! # async fn example() {
//! use axum::Router;
//! use axum::routing::get;
//! use session_runtime::SessionLayer;
//! use session_tests::fixture::Fixture;
//!
//! let app = |layer: SessionLayer| Router::new().route("/", get(|| async { "hi" })).layer(layer);
//! let Fixture { clock, store, server } = Fixture::memory(app).await;
//! // ... requests to `server.url("/")`, `clock.advance(..)`, `store.len()` ...
//! # }
//! ```

use std::sync::Arc;

use axum::Router;
use session_runtime::SessionLayer;
use session_runtime::config::SessionConfig;
use session_runtime::session::Record;
use session_runtime::store::{
    Delete, ListOwned, Load, MemoryStore, OwnedRecords, RedisStore, Revoke, Save, SaveOutcome,
    SessionStore, StoreError, StoreFormat, StoreKind,
};

use crate::server::{TestClock, TestServer, test_config};

/// A test's clock, store and server: the server runs an app over a layer on the store, and the
/// layer's configuration reads the clock.
///
/// `S` is what the test keeps of the store: `()` when the store went into the layer and the test
/// needs nothing more of it ([`Fixture::start`]), the store itself when the test looks at it,
/// to count records or compute Redis keys ([`Fixture::keeping`], [`Fixture::memory`],
/// [`Fixture::redis`]).
#[derive(Debug)]
pub struct Fixture<S = ()> {
    /// The clock of the layer's configuration.
    pub clock: Arc<TestClock>,
    /// What the test keeps of the store.
    pub store: S,
    /// The server, on a free loopback port.
    pub server: TestServer,
}

impl Fixture {
    /// Starts `app` over a layer on `store` configured with [`test_config`].
    pub async fn start(store: impl SessionStore, app: impl FnOnce(SessionLayer) -> Router) -> Self {
        Self::start_with(store, test_config, app).await
    }

    /// Starts `app` over a layer on `store` configured with what `config` makes of the
    /// fixture's clock: pass [`test_config`], a closure that changes its result, or one that
    /// builds another configuration around the clock.
    pub async fn start_with(
        store: impl SessionStore,
        config: impl FnOnce(&Arc<TestClock>) -> SessionConfig,
        app: impl FnOnce(SessionLayer) -> Router,
    ) -> Self {
        let clock = TestClock::new();
        let layer = SessionLayer::new(store).with_config(config(&clock));
        let server = TestServer::start(app(layer)).await;
        Self {
            clock,
            store: (),
            server,
        }
    }
}

impl<S: SessionStore + Clone> Fixture<S> {
    /// Like [`Fixture::start_with`] over a clone of `store`, keeping `store` for the test.
    pub async fn keeping(
        store: S,
        config: impl FnOnce(&Arc<TestClock>) -> SessionConfig,
        app: impl FnOnce(SessionLayer) -> Router,
    ) -> Self {
        let Fixture { clock, server, .. } = Fixture::start_with(store.clone(), config, app).await;
        Self {
            clock,
            store,
            server,
        }
    }
}

impl Fixture<SharedMemory> {
    /// Starts `app` over a new [`MemoryStore`], shared with the test, configured with
    /// [`test_config`].
    pub async fn memory(app: impl FnOnce(SessionLayer) -> Router) -> Self {
        Self::keeping(SharedMemory::new(MemoryStore::new()), test_config, app).await
    }
}

impl Fixture<RedisStore> {
    /// Starts `app` over a [`RedisStore`] on the harness Redis ([`crate::redis::server`]) with
    /// the key prefix `prefix` (make one with [`crate::redis::unique_prefix`]) and the
    /// configuration `config` makes of the fixture's clock.
    ///
    /// # Panics
    ///
    /// If the store cannot connect.
    pub async fn redis(
        prefix: &str,
        config: impl FnOnce(&Arc<TestClock>) -> SessionConfig,
        app: impl FnOnce(SessionLayer) -> Router,
    ) -> Self {
        let store = RedisStore::builder()
            .key_prefix(prefix)
            .connect(crate::redis::server().await.url())
            .await
            .unwrap();
        Self::keeping(store, config, app).await
    }
}

/// A [`MemoryStore`] that several layers and the test can share, so the test can count records.
#[derive(Debug, Clone)]
pub struct SharedMemory(Arc<MemoryStore>);

impl SharedMemory {
    /// Shares `store`.
    #[must_use]
    pub fn new(store: MemoryStore) -> Self {
        Self(Arc::new(store))
    }

    /// The number of records in the store.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl SessionStore for SharedMemory {
    fn kind(&self) -> StoreKind {
        SessionStore::kind(&*self.0)
    }

    fn format(&self, cookie_name: &str) -> StoreFormat {
        SessionStore::format(&*self.0, cookie_name)
    }

    async fn load(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        SessionStore::load(&*self.0, load).await
    }

    async fn save(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        SessionStore::save(&*self.0, save).await
    }

    async fn delete(&self, delete: Delete<'_>) -> Result<(), StoreError> {
        SessionStore::delete(&*self.0, delete).await
    }

    async fn list_owned(&self, list: ListOwned<'_>) -> Result<OwnedRecords, StoreError> {
        SessionStore::list_owned(&*self.0, list).await
    }

    async fn revoke(&self, revoke: Revoke<'_>) -> Result<usize, StoreError> {
        SessionStore::revoke(&*self.0, revoke).await
    }
}
