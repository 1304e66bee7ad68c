//! The tower layer that makes sessions available to handlers.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::config::SessionConfig;
use crate::service::{SessionService, Shared};
use crate::store::SessionStore;

/// Adds sessions to a service. One layer serves every session type of an app; each type has its
/// own cookie (its `cookie_name`), all share the layer's store and [`SessionConfig`].
///
/// The layer does no work for requests whose handler does not extract a session, beyond one
/// small allocation; sessions are loaded when extracted and saved after the handler returns, if
/// they changed.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::get};
/// use session_runtime::{Session, SessionLayer, TypedSession};
/// use session_runtime::store::MemoryStore;
///
/// #[derive(Session)]
/// struct Visits {
///     count: u64,
/// }
///
/// async fn count(mut session: TypedSession<Visits>) -> String {
///     *session.count_mut() += 1;
///     session.count().to_string()
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(count))
///     .layer(SessionLayer::new(MemoryStore::new()));
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// Creates a layer over `store` with the default [`SessionConfig`].
    pub fn new(store: impl SessionStore) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                config: SessionConfig::default(),
                locks: Arc::default(),
            }),
        }
    }

    /// Replaces the configuration.
    ///
    /// The configuration is checked against each session type's cookie name when that type is
    /// first extracted ([`SessionConfig::validate`]); call `validate` at start-up to fail early.
    #[must_use]
    pub fn with_config(self, config: SessionConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Arc::clone(&self.shared.store),
                config,
                locks: Arc::clone(&self.shared.locks),
            }),
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.shared))
    }
}
