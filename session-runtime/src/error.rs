//! The crate's error type.

use crate::codec::CodecError;
use crate::config::ConfigError;
use crate::store::StoreError;

/// What can go wrong when a session is loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (unreachable, timed out, refused the write).
    #[error("session store failed")]
    Store(#[from] StoreError),
    /// A field could not be encoded.
    #[error("failed to encode the session")]
    Codec(#[from] CodecError),
    /// The encoded cookie would be larger than browsers keep.
    #[error(
        "session cookie would be {size} bytes, over the limit of {limit}; keep less in the session or use a server-side store"
    )]
    CookieTooLarge {
        /// Name and value together, in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The layer's configuration does not suit this session type's cookie.
    #[error("invalid session cookie configuration")]
    Config(#[from] ConfigError),
    /// The operating system could not provide random bytes for a session id.
    #[error("failed to generate a session id")]
    Random(#[source] getrandom::Error),
    /// The store kept reporting that freshly generated ids were taken.
    #[error("the store rejected every new session id")]
    IdCollision,
}

/// A `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
