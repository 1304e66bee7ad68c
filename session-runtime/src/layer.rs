//! The tower layer that makes sessions available to handlers.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::config::{ConfigError, SessionConfig};
use crate::service::SessionService;
use crate::session::Session;
use crate::shared::Shared;
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
            shared: Arc::new(Shared::new(
                Arc::new(store),
                SessionConfig::default(),
                Arc::default(),
            )),
        }
    }

    /// Replaces the configuration.
    ///
    /// The configuration is checked against each session type's cookie name when that type is
    /// first extracted ([`SessionConfig::validate_for`]); call [`SessionLayer::validate_for`] at start-up to fail early.
    #[must_use]
    pub fn with_config(self, config: SessionConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(
                Arc::clone(&self.shared.store),
                config,
                Arc::clone(&self.shared.locks),
            )),
        }
    }
}

impl SessionLayer {
    /// Replaces the configuration after checking it ([`SessionConfig::validate`]): a path or
    /// domain that would break the `Set-Cookie` header, or `SameSite=None`/`Partitioned`
    /// without `Secure`, is refused here, when the layer is built, instead of on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::SessionLayer;
    /// use session_runtime::config::{SameSite, SessionConfig};
    /// use session_runtime::store::MemoryStore;
    ///
    /// let config = SessionConfig::default().with_same_site(SameSite::Strict);
    /// let layer = SessionLayer::new(MemoryStore::new()).try_with_config(config)?;
    ///
    /// let dropped = SessionConfig::default().with_secure(false).with_partitioned(true);
    /// assert!(SessionLayer::new(MemoryStore::new()).try_with_config(dropped).is_err());
    /// # Ok::<(), session_runtime::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Returns the first rule the configuration breaks.
    pub fn try_with_config(self, config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(self.with_config(config))
    }

    /// Checks the configuration against the cookie of session type `T`
    /// ([`SessionConfig::validate_for`]: `__Host-` and `__Secure-` prefixes, `SameSite=None`,
    /// `Partitioned`, the characters of name, path and domain). The layer checks this on the
    /// first extraction of `T` anyway (and answers 500 if it fails); call this for every
    /// session type at start-up so a configuration a browser would drop never serves a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::{Session, SessionLayer};
    /// use session_runtime::config::SessionConfig;
    /// use session_runtime::store::MemoryStore;
    ///
    /// #[derive(Session)]
    /// #[session(cookie_name = "__Host-id")]
    /// struct Login {
    ///     user: Option<u64>,
    /// }
    ///
    /// let layer = SessionLayer::new(MemoryStore::new()).validate_for::<Login>()?;
    ///
    /// // A `__Host-` cookie needs `Secure`: a browser would drop this one.
    /// let insecure = SessionLayer::new(MemoryStore::new())
    ///     .with_config(SessionConfig::default().with_secure(false));
    /// assert!(insecure.validate_for::<Login>().is_err());
    /// # Ok::<(), session_runtime::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Returns the first rule the configuration breaks for `T`'s cookie.
    pub fn validate_for<T: Session>(self) -> Result<Self, ConfigError> {
        self.shared.config.validate_for(T::COOKIE_NAME)?;
        Ok(self)
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.shared))
    }
}
