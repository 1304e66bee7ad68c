//! Typed web sessions for axum and tower.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
pub mod config;
pub mod error;
pub mod extract;
pub mod layer;
pub mod service;
pub mod session;
pub mod store;

mod lifecycle;
mod lock;
mod private;

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
