//! Codecs: how field values and the cookie envelope become bytes.
//!
//! Every stored field is encoded on its own ([`Codec::encode`]), so a server-side store can write
//! single fields. The plain cookie store keeps the whole session in one value, the *envelope*
//! ([`Codec::encode_record`]): the metadata and the already-encoded fields by name. The encrypted
//! cookie seals a compact binary framing of the same metadata and fields, which records the
//! codec's kind.
//!
//! # Implementing a codec
//!
//! A codec needs only [`Codec::encode`] and [`Codec::decode`]; the envelope then uses a compact
//! binary framing that embeds the field bytes as they are.
//!
//! ```
//! use serde::{Serialize, de::DeserializeOwned};
//! use session_runtime::codec::{Codec, CodecError};
//!
//! /// JSON, pretty-printed: easier to read in a debugger.
//! struct PrettyJson;
//!
//! impl Codec for PrettyJson {
//!     fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
//!         serde_json::to_vec_pretty(value).map_err(CodecError::encode)
//!     }
//!
//!     fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
//!         serde_json::from_slice(bytes).map_err(CodecError::decode)
//!     }
//! }
//!
//! #[derive(session_runtime::Session)]
//! #[session(codec = PrettyJson)]
//! struct Prefs {
//!     theme: String,
//! }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::record::{Record, RecordRef};

#[cfg(feature = "cookie-store")]
pub(crate) mod compact;
pub(crate) mod error;
mod framing;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
mod json;
#[cfg(feature = "json")]
mod json_envelope;
#[cfg(feature = "msgpack")]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
mod msgpack;

#[doc(inline)]
pub use error::CodecError;
#[cfg(feature = "json")]
#[doc(inline)]
pub use json::JsonCodec;
#[cfg(feature = "msgpack")]
#[doc(inline)]
pub use msgpack::MsgpackCodec;

/// Turns values into bytes and back.
///
/// Codecs are types, not values: the derive names one with `#[session(codec = ...)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a session codec",
    label = "this type does not implement `session_runtime::Codec`",
    note = "use `codec = \"json\"` or `codec = \"msgpack\"`, or implement `session_runtime::Codec` for `{Self}`"
)]
pub trait Codec: Send + Sync + 'static {
    /// Encodes one value.
    ///
    /// # Errors
    ///
    /// Returns [`CodecError`] when the value cannot be represented.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes one value.
    ///
    /// # Errors
    ///
    /// Returns [`CodecError`] when the bytes are not a valid `T`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;

    /// Encodes a whole session (metadata and every field) as one value, for stores that keep a
    /// session in one value of the codec's own format: `SimpleCookieStore`. (The encrypted
    /// cookie seals a compact framing of the same fields instead, to keep the cookie short.)
    ///
    /// Write every field [`RecordRef::iter`] yields, the kept ones included, each value's bytes
    /// unchanged. The default is a compact binary framing that embeds the field bytes unchanged.
    ///
    /// # Errors
    ///
    /// Returns [`CodecError`] when the record cannot be written.
    fn encode_record(record: RecordRef<'_>) -> Result<Vec<u8>, CodecError> {
        Ok(framing::encode(record))
    }

    /// Decodes what [`Codec::encode_record`] wrote.
    ///
    /// # Errors
    ///
    /// Returns [`CodecError`] when the bytes are not an envelope.
    fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
        framing::decode(bytes)
    }
}

#[cfg(any(feature = "json", feature = "cookie-store"))]
/// A stored name as the record keeps it: the session type's own `'static` name when `names`
/// has it (no allocation), else a copy. `next` is where the search starts: fields come in the
/// order the type declares them, so the first comparison usually matches.
pub(crate) fn intern(
    name: &str,
    names: &[&'static str],
    next: &mut usize,
) -> std::borrow::Cow<'static, str> {
    let found = names[*next..]
        .iter()
        .position(|known| *known == name)
        .map(|at| *next + at)
        .or_else(|| names[..*next].iter().position(|known| *known == name));
    match found {
        Some(at) => {
            *next = at + 1;
            std::borrow::Cow::Borrowed(names[at])
        }
        None => std::borrow::Cow::Owned(name.to_owned()),
    }
}

/// Encodes and decodes whole records with the session type's codec (the *envelope*).
#[derive(Clone, Copy)]
pub struct RecordCodec {
    encode: fn(RecordRef<'_>) -> Result<Vec<u8>, CodecError>,
    decode: fn(&[u8], &[&'static str]) -> Result<Record, CodecError>,
    encode_text: fn(&str) -> Result<Vec<u8>, CodecError>,
    decode_text: fn(&[u8]) -> Result<String, CodecError>,
    /// Which codec this is: `KIND_JSON`, `KIND_MSGPACK` or `KIND_OTHER`.
    kind: u8,
}

/// [`RecordCodec`]'s kind of `JsonCodec`; the compact framing records the kind.
const KIND_JSON: u8 = 0;
/// [`RecordCodec`]'s kind of `MsgpackCodec`.
#[cfg(feature = "msgpack")]
const KIND_MSGPACK: u8 = 1;
/// [`RecordCodec`]'s kind of any other codec (two custom codecs are not told apart).
const KIND_OTHER: u8 = 2;

/// The kind of codec `C` is.
fn kind_of<C: Codec>() -> u8 {
    let id = std::any::TypeId::of::<C>();
    #[cfg(feature = "json")]
    if id == std::any::TypeId::of::<JsonCodec>() {
        return KIND_JSON;
    }
    #[cfg(feature = "msgpack")]
    if id == std::any::TypeId::of::<MsgpackCodec>() {
        return KIND_MSGPACK;
    }
    let _ = id;
    KIND_OTHER
}

impl RecordCodec {
    pub(crate) fn of<C: Codec>() -> Self {
        let kind = kind_of::<C>();
        Self {
            encode: C::encode_record,
            #[cfg(feature = "json")]
            decode: if kind == KIND_JSON {
                json::decode_record_named
            } else {
                |bytes, _| C::decode_record(bytes)
            },
            #[cfg(not(feature = "json"))]
            decode: |bytes, _| C::decode_record(bytes),
            encode_text: |text| C::encode(text),
            decode_text: |bytes| C::decode(bytes),
            kind,
        }
    }

    /// Which kind of codec this is, as the compact framing records it: 0 for `JsonCodec`, 1 for
    /// `MsgpackCodec`, 2 for any other (two custom codecs are not told apart).
    #[cfg(feature = "cookie-store")]
    pub(crate) fn compact_kind(&self) -> u8 {
        self.kind
    }

    /// Whether every field value is JSON text: the session type uses `JsonCodec`. A store that
    /// keeps fields in a JSON document (the SQL stores) embeds such values as they are and
    /// others as base64 strings.
    #[must_use]
    pub fn writes_json(&self) -> bool {
        self.kind == KIND_JSON
    }

    /// Encodes a string as a field value of this codec (the runtime's own reserved fields).
    pub(crate) fn encode_text(&self, text: &str) -> Result<Vec<u8>, CodecError> {
        (self.encode_text)(text)
    }

    /// Decodes a field value written by [`RecordCodec::encode_text`].
    pub(crate) fn decode_text(&self, bytes: &[u8]) -> Result<String, CodecError> {
        (self.decode_text)(bytes)
    }

    /// Encodes a record as one value.
    ///
    /// # Errors
    ///
    /// Returns the codec's error.
    pub fn encode(&self, record: RecordRef<'_>) -> Result<Vec<u8>, CodecError> {
        (self.encode)(record)
    }

    /// Decodes a record written by [`RecordCodec::encode`].
    ///
    /// # Errors
    ///
    /// Returns the codec's error.
    pub fn decode(&self, bytes: &[u8]) -> Result<Record, CodecError> {
        (self.decode)(bytes, &[])
    }

    /// Decodes a record as [`RecordCodec::decode`] does, for a load of a session type whose
    /// stored names are `names` ([`Load::names`](crate::store::Load::names)). The record is the
    /// same; `names` is a hint: with `JsonCodec` the record holds the names found in `names`
    /// as the type's own strings instead of copies (one allocation less per field), other codecs
    /// ignore it.
    ///
    /// # Errors
    ///
    /// Returns the codec's error.
    pub fn decode_named(&self, bytes: &[u8], names: &[&'static str]) -> Result<Record, CodecError> {
        (self.decode)(bytes, names)
    }
}

impl fmt::Debug for RecordCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordCodec").finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::Metadata;

    /// The stored names the property tests pick from (`RecordRef` takes `'static` names).
    const NAMES: [&str; 6] = ["visits", "user_id", "cart", "theme", "a", "x_1"];

    type Value = (String, Option<u64>, Vec<i32>);

    /// Encodes every value with `C`, wraps them in `C`'s envelope, decodes the envelope and
    /// each field again, and checks that everything came back.
    fn round_trip<C: Codec>(metadata: Metadata, values: &[Value]) -> Result<(), TestCaseError> {
        let fields: Vec<(&'static str, Vec<u8>)> = values
            .iter()
            .zip(NAMES)
            .map(|(value, name)| (name, C::encode(value).unwrap()))
            .collect();
        let bytes = C::encode_record(RecordRef {
            metadata: &metadata,
            encoded: &fields,
            kept: &[],
        })
        .unwrap();
        let record = C::decode_record(&bytes).unwrap();
        prop_assert_eq!(record.metadata, metadata);
        prop_assert_eq!(record.fields.len(), values.len());
        for ((name, bytes), (expected_name, value)) in
            record.fields.iter().zip(NAMES.iter().zip(values))
        {
            prop_assert_eq!(&**name, *expected_name);
            prop_assert_eq!(&C::decode::<Value>(bytes).unwrap(), value);
        }
        // No strict prefix of an envelope decodes.
        for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
            if cut < bytes.len() {
                prop_assert!(C::decode_record(&bytes[..cut]).is_err());
            }
        }
        Ok(())
    }

    /// A codec that uses the default envelope (the binary framing).
    struct Framed;

    impl Codec for Framed {
        fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
            serde_json::to_vec(value).map_err(CodecError::encode)
        }

        fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
            serde_json::from_slice(bytes).map_err(CodecError::decode)
        }
    }

    fn metadata() -> impl Strategy<Value = Metadata> {
        (
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(0..u64::MAX),
        )
            .prop_map(|(created, updated, max_age)| Metadata {
                created,
                updated,
                max_age,
            })
    }

    fn values() -> impl Strategy<Value = Vec<Value>> {
        proptest::collection::vec(
            (
                ".{0,40}",
                proptest::option::of(any::<u64>()),
                proptest::collection::vec(any::<i32>(), 0..8),
            ),
            0..=NAMES.len(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// tests/SECURITY.md item 10 (encode/decode half): every envelope decodes to what was encoded.
        #[test]
        fn envelopes_round_trip(metadata in metadata(), values in values()) {
            round_trip::<Framed>(metadata, &values)?;
            #[cfg(feature = "json")]
            round_trip::<JsonCodec>(metadata, &values)?;
            #[cfg(feature = "msgpack")]
            round_trip::<MsgpackCodec>(metadata, &values)?;
        }
    }
}
