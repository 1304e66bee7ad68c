//! What the layer shares with every request: the store, the configuration and the request locks.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::config::{ConfigError, SessionConfig};
use crate::lock::Locks;
use crate::store::erased::DynStore;

/// What the layer shares with every request: the store and the configuration.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) config: SessionConfig,
    pub(crate) locks: Arc<Locks>,
    /// The first cookie name `config` was found valid for (see [`Shared::validate_for`]).
    validated: OnceLock<&'static str>,
}

impl Shared {
    pub(crate) fn new(store: Arc<dyn DynStore>, config: SessionConfig, locks: Arc<Locks>) -> Self {
        Self {
            store,
            config,
            locks,
            validated: OnceLock::new(),
        }
    }

    /// [`SessionConfig::validate_for`] for `cookie_name`. The configuration never changes, so a
    /// success is remembered for the first cookie name (nearly every app has one session type)
    /// and not checked again on every request; other names and failures are checked each time.
    pub(crate) fn validate_for(&self, cookie_name: &'static str) -> Result<(), ConfigError> {
        if self
            .validated
            .get()
            .is_some_and(|name| *name == cookie_name)
        {
            return Ok(());
        }
        self.config.validate_for(cookie_name)?;
        let _ = self.validated.set(cookie_name);
        Ok(())
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
