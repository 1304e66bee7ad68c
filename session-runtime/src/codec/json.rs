//! The JSON codec (`serde_json`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::{Codec, CodecError, record};
use crate::session::{Bytes, Metadata, Record, RecordRef};

/// JSON through `serde_json`: the default codec of `#[derive(Session)]`.
///
/// The cookie envelope is
/// `{"created":<ms>,"updated":<ms>,"max_age":<s>,"session":{"<field>":<value>,...}}`, with every
/// field embedded as the JSON it was encoded to; `max_age` is left out unless set.
///
/// # Examples
///
/// ```
/// use session_runtime::codec::{Codec, JsonCodec};
///
/// let bytes = JsonCodec::encode(&vec![1, 2]).unwrap();
/// assert_eq!(bytes, b"[1,2]");
/// assert_eq!(JsonCodec::decode::<Vec<u8>>(&bytes).unwrap(), [1, 2]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

#[derive(Deserialize)]
struct Envelope<'a> {
    created: u64,
    updated: u64,
    #[serde(default)]
    max_age: Option<u64>,
    #[serde(borrow)]
    session: Fields<'a>,
}

/// The `session` object in document order, values kept as raw JSON.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of session fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'a>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry::<String, &'a RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit(PhantomData))
    }
}

/// Moves the names in and copies every raw value into one shared buffer, which each field's
/// value is a slice of: two allocations for all values instead of one per value (for fewer than
/// three values, one copy each is as cheap).
fn shared_values(fields: Vec<(String, &RawValue)>) -> Vec<(Cow<'static, str>, Bytes)> {
    if fields.len() < 3 {
        return fields
            .into_iter()
            .map(|(name, value)| {
                (
                    Cow::Owned(name),
                    Bytes::copy_from_slice(value.get().as_bytes()),
                )
            })
            .collect();
    }
    let mut all = Vec::with_capacity(fields.iter().map(|(_, value)| value.get().len()).sum());
    for (_, value) in &fields {
        all.extend_from_slice(value.get().as_bytes());
    }
    let all = Bytes::from(all);
    let mut at = 0;
    fields
        .into_iter()
        .map(|(name, value)| {
            let len = value.get().len();
            let value = all.slice(at..at + len);
            at += len;
            (Cow::Owned(name), value)
        })
        .collect()
}

impl Codec for JsonCodec {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::encode)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::decode)
    }

    fn encode_record(record: RecordRef<'_>) -> Result<Vec<u8>, CodecError> {
        use std::io::Write as _;
        let size = 64
            + record
                .fields
                .iter()
                .map(|(name, value)| name.len() + value.len() + 4)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        let meta = record.metadata;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "{{\"created\":{},\"updated\":{}",
            meta.created, meta.updated
        );
        if let Some(max_age) = meta.max_age {
            let _ = write!(out, ",\"max_age\":{max_age}");
        }
        out.extend_from_slice(b",\"session\":{");
        for (i, (name, value)) in record.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, name).map_err(CodecError::encode)?;
            out.push(b':');
            // Field bytes come from `encode` above, so they are one JSON value.
            out.extend_from_slice(value);
        }
        out.extend_from_slice(b"}}");
        Ok(out)
    }

    fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
        let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(CodecError::decode)?;
        Ok(record(
            Metadata {
                created: envelope.created,
                updated: envelope.updated,
                max_age: envelope.max_age,
            },
            shared_values(envelope.session.0),
        ))
    }
}
