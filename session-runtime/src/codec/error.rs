//! The error of a codec.

use std::error::Error as StdError;

/// The error of a [`Codec`](super::Codec): the value could not be encoded or decoded. The codec's own error
/// is kept as the [`source`](StdError::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A value could not be encoded.
    #[error("failed to encode a session value")]
    Encode(#[source] Box<dyn StdError + Send + Sync>),
    /// Bytes could not be decoded.
    #[error("failed to decode a session value")]
    Decode(#[source] Box<dyn StdError + Send + Sync>),
}

impl CodecError {
    /// Wraps an encoding error.
    pub fn encode(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Encode(error.into())
    }

    /// Wraps a decoding error.
    pub fn decode(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Decode(error.into())
    }
}

/// An envelope that was structurally wrong (used by the built-in envelope decoders).
#[derive(Debug, thiserror::Error)]
#[error("malformed session envelope: {0}")]
pub(crate) struct Malformed(pub(crate) &'static str);
