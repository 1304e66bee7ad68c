//! The compact framing of a whole record, which [`EncryptedCookieStore`] seals (its value
//! version 2):
//!
//! `head u8 | created | updated − created | [max_age] | (name_len | name | value_len | value)*`
//!
//! Numbers are LEB128 varints (`updated − created` wrapping, so any pair of timestamps round-trips);
//! `head` is the codec's [`RecordCodec::compact_kind`] in its low bits and [`HAS_MAX_AGE`];
//! the fields run to the end of the bytes. Every value is the codec's bytes, unchanged; the names
//! are the stored names, so schema evolution works as with every other envelope.
//!
//! Why a framing of its own rather than the codec's envelope: a cookie's bytes travel with every
//! request and a browser keeps at most about 4 KB of them. The JSON envelope spends about 60
//! bytes on its keys and decimal timestamps; this spends about 8, and is cheaper to write and
//! read. The codec's kind is in the head so that a cookie written by a type with one codec gives
//! a type with another a fresh session, as the codecs' own envelopes do, instead of reading one
//! codec's bytes with the other (JSON `3` is MessagePack 51).
//!
//! [`EncryptedCookieStore`]: crate::store::EncryptedCookieStore
//! [`RecordCodec::compact_kind`]: super::RecordCodec::compact_kind

use std::borrow::Cow;

use super::error::{CodecError, Malformed};
use super::intern;
use crate::record::{Bytes, Metadata, Record, RecordRef};

/// The head's bit that says a `max_age` follows.
const HAS_MAX_AGE: u8 = 0x80;
/// The head's bits that hold the codec's kind.
const KIND_MASK: u8 = 0x0f;

/// How many bytes `value` takes as a varint.
fn varint_len(value: u64) -> usize {
    // 1 byte per started 7 bits; 0 takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[allow(
    clippy::cast_possible_truncation,
    reason = "each byte takes the low 7 bits; the last is below 0x80"
)]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// How many bytes [`encode_into`] writes for `record`.
pub(crate) fn encoded_len(record: RecordRef<'_>) -> usize {
    let meta = record.metadata;
    1 + varint_len(meta.created)
        + varint_len(meta.updated.wrapping_sub(meta.created))
        + meta.max_age.map_or(0, varint_len)
        + record
            .iter()
            .map(|(name, value)| {
                varint_len(name.len() as u64)
                    + name.len()
                    + varint_len(value.len() as u64)
                    + value.len()
            })
            .sum::<usize>()
}

/// Appends the framing of `record`, written by a codec of kind `kind`, to `out`: exactly
/// [`encoded_len`] bytes.
pub(crate) fn encode_into(out: &mut Vec<u8>, kind: u8, record: RecordRef<'_>) {
    let meta = record.metadata;
    let head = (kind & KIND_MASK)
        | if meta.max_age.is_some() {
            HAS_MAX_AGE
        } else {
            0
        };
    out.push(head);
    put_varint(out, meta.created);
    put_varint(out, meta.updated.wrapping_sub(meta.created));
    if let Some(max_age) = meta.max_age {
        put_varint(out, max_age);
    }
    for (name, value) in record.iter() {
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| CodecError::decode(Malformed("truncated")))?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may carry only the top bit of a u64.
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::decode(Malformed("varint out of range")))
    }

    /// The range of the next `len` bytes.
    fn take(&mut self, len: u64) -> Result<std::ops::Range<usize>, CodecError> {
        let start = self.at;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| CodecError::decode(Malformed("truncated")))?;
        self.at = end;
        Ok(start..end)
    }
}

/// Reads the framing held in `all[start..]`, written by a codec of kind `kind`. Each value is a
/// slice of `all` (no copy); names found in `names` are kept as the session type's own strings.
///
/// # Errors
///
/// A framing written by another kind of codec, or bytes that are not a framing.
pub(crate) fn decode(
    all: &Bytes,
    start: usize,
    kind: u8,
    names: &[&'static str],
) -> Result<Record, CodecError> {
    let mut reader = Reader {
        bytes: all,
        at: start,
    };
    let head = reader.byte()?;
    if head & !(KIND_MASK | HAS_MAX_AGE) != 0 {
        return Err(CodecError::decode(Malformed("unknown framing head")));
    }
    if head & KIND_MASK != kind & KIND_MASK {
        return Err(CodecError::decode(Malformed(
            "written by another kind of codec",
        )));
    }
    let created = reader.varint()?;
    let updated = created.wrapping_add(reader.varint()?);
    let max_age = if head & HAS_MAX_AGE == 0 {
        None
    } else {
        Some(reader.varint()?)
    };
    // Every field takes at least 2 bytes: never trust the input for more than that.
    let mut fields: Vec<(Cow<'static, str>, Bytes)> =
        Vec::with_capacity(names.len().min((all.len() - reader.at) / 2));
    let mut next = 0;
    while reader.at < all.len() {
        let name_len = reader.varint()?;
        let name = reader.take(name_len)?;
        let name = std::str::from_utf8(&all[name]).map_err(CodecError::decode)?;
        let name = intern(name, names, &mut next);
        let value_len = reader.varint()?;
        let value = reader.take(value_len)?;
        fields.push((name, all.slice(value)));
    }
    Ok(Record::from_parts(
        Metadata {
            created,
            updated,
            max_age,
        },
        fields,
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode(kind: u8, record: RecordRef<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(&mut out, kind, record);
        assert_eq!(out.len(), encoded_len(record), "encoded_len is exact");
        out
    }

    #[test]
    fn varints() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut reader = Reader { bytes: &out, at: 0 };
            assert_eq!(reader.varint().unwrap(), value);
            assert_eq!(reader.at, out.len());
        }
        // Eleven bytes, and a tenth byte with more than the top bit: refused, no panic.
        for bad in [
            &[0xff; 11][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        ] {
            let mut reader = Reader { bytes: bad, at: 0 };
            assert!(reader.varint().is_err());
        }
    }

    #[test]
    fn another_codec_kind_is_refused() {
        let metadata = Metadata::new(1_700_000_000_000);
        let fields = [("visits", b"3".to_vec())];
        let bytes = Bytes::from(encode(0, RecordRef::new(&metadata, &fields)));
        assert!(decode(&bytes, 0, 0, &[]).is_ok());
        assert!(decode(&bytes, 0, 1, &[]).is_err());
    }

    #[cfg(feature = "json")]
    #[test]
    fn the_example_session_takes_less_than_half_the_json_envelope() {
        let metadata = Metadata {
            created: 1_796_342_056_123,
            updated: 1_796_342_099_000,
            max_age: None,
        };
        let fields = [
            ("visits", b"12".to_vec()),
            ("a", b"0".to_vec()),
            ("b", b"0".to_vec()),
            ("user", b"null".to_vec()),
        ];
        let record = RecordRef::new(&metadata, &fields);
        let json = <crate::codec::JsonCodec as crate::codec::Codec>::encode_record(record).unwrap();
        assert!(
            encoded_len(record) * 2 < json.len(),
            "{} against {}",
            encoded_len(record),
            json.len()
        );
    }

    proptest! {
        /// Any record round-trips; names the type declares come back as its own strings; no
        /// strict prefix with a field cut short decodes; nothing panics on any byte string.
        #[test]
        fn round_trip(
            created in any::<u64>(),
            updated in any::<u64>(),
            max_age in proptest::option::of(any::<u64>()),
            kind in 0u8..16,
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            const NAMES: [&str; 6] = ["visits", "user_id", "cart", "thème", "a", "x_1"];
            let metadata = Metadata { created, updated, max_age };
            let fields: Vec<(&'static str, Vec<u8>)> =
                NAMES.iter().copied().zip(values.iter().cloned()).collect();
            let bytes = encode(kind, RecordRef::new(&metadata, &fields));
            let mut prefixed = b"junk".to_vec();
            prefixed.extend_from_slice(&bytes);
            let all = Bytes::from(prefixed);
            let record = decode(&all, 4, kind, &NAMES).unwrap();
            prop_assert_eq!(record.metadata, metadata);
            prop_assert_eq!(record.fields.len(), fields.len());
            for ((name, value), (expected_name, expected)) in record.fields.iter().zip(&fields) {
                prop_assert!(matches!(name, Cow::Borrowed(_)));
                prop_assert_eq!(&**name, *expected_name);
                prop_assert_eq!(&value[..], &expected[..]);
            }
            if let Some((_, last)) = fields.last() {
                // Cut inside the last field's value or its length: refused.
                let cut = Bytes::copy_from_slice(&bytes[..bytes.len() - 1]);
                if !last.is_empty() {
                    prop_assert!(decode(&cut, 0, kind, &NAMES).is_err());
                }
            }
            let junk = Bytes::from(junk);
            let _ = decode(&junk, 0, kind, &NAMES);
        }
    }
}
