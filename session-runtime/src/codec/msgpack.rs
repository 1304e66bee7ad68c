//! The `MessagePack` codec (`rmp-serde`, maps with field names).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::Malformed;
use super::{Codec, CodecError};
use crate::record::{Bytes, Metadata, Record, RecordRef};

/// `MessagePack` through `rmp-serde`. Structs are written as maps with field names
/// ([`rmp_serde::to_vec_named`]), never as positional arrays, so adding or removing a field inside
/// a stored value does not break older sessions.
///
/// The cookie envelope is a map `{"created", "updated", "max_age"?, "session": {field: value}}`
/// with every field embedded as the `MessagePack` it was encoded to.
///
/// # Examples
///
/// ```
/// use session_runtime::codec::{Codec, MsgpackCodec};
///
/// let bytes = MsgpackCodec::encode(&(1u8, "a")).unwrap();
/// assert_eq!(MsgpackCodec::decode::<(u8, String)>(&bytes).unwrap(), (1, "a".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgpackCodec;

impl Codec for MsgpackCodec {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(CodecError::encode)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        rmp_serde::from_slice(bytes).map_err(CodecError::decode)
    }

    fn encode_record(record: RecordRef<'_>) -> Result<Vec<u8>, CodecError> {
        let meta = record.metadata;
        let size = 48
            + record
                .iter()
                .map(|(name, value)| name.len() + value.len() + 6)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        map_len(&mut out, 3 + usize::from(meta.max_age.is_some()));
        str(&mut out, "created");
        uint(&mut out, meta.created);
        str(&mut out, "updated");
        uint(&mut out, meta.updated);
        if let Some(max_age) = meta.max_age {
            str(&mut out, "max_age");
            uint(&mut out, max_age);
        }
        str(&mut out, "session");
        map_len(&mut out, record.len());
        for (name, value) in record.iter() {
            str(&mut out, name);
            // Field bytes come from `encode` above, so they are one MessagePack value.
            out.extend_from_slice(value);
        }
        Ok(out)
    }

    fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
        let mut reader = Reader(bytes);
        let mut created = None;
        let mut updated = None;
        let mut max_age = None;
        let mut fields = None;
        for _ in 0..reader.map_len()? {
            match reader.str()? {
                "created" => created = Some(reader.uint()?),
                "updated" => updated = Some(reader.uint()?),
                "max_age" => max_age = Some(reader.uint()?),
                "session" => {
                    let len = reader.map_len()?;
                    let mut list = Vec::with_capacity(len.min(reader.0.len() / 2));
                    for _ in 0..len {
                        let name = reader.str()?.to_owned();
                        list.push((name.into(), Bytes::copy_from_slice(reader.value()?)));
                    }
                    fields = Some(list);
                }
                _ => {
                    reader.value()?;
                }
            }
        }
        if !reader.0.is_empty() {
            return Err(CodecError::decode(Malformed("trailing bytes")));
        }
        match (created, updated, fields) {
            (Some(created), Some(updated), Some(fields)) => Ok(Record::from_parts(
                Metadata {
                    created,
                    updated,
                    max_age,
                },
                fields,
            )),
            _ => Err(CodecError::decode(Malformed("missing envelope key"))),
        }
    }
}

fn map_len(out: &mut Vec<u8>, len: usize) {
    if let Some(len) = u8::try_from(len).ok().filter(|len| *len < 16) {
        out.push(0x80 | len);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xde);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

fn str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if let Some(len) = u8::try_from(len).ok().filter(|len| *len < 32) {
        out.push(0xa0 | len);
    } else if let Ok(len) = u8::try_from(len) {
        out.extend_from_slice(&[0xd9, len]);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xda);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn uint(out: &mut Vec<u8>, v: u64) {
    out.push(0xcf);
    out.extend_from_slice(&v.to_be_bytes());
}

/// A cursor over `MessagePack` bytes that can skip any value without decoding it.
struct Reader<'a>(&'a [u8]);

fn truncated() -> CodecError {
    CodecError::decode(Malformed("truncated"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(truncated());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn be(&mut self, n: usize) -> Result<u64, CodecError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, CodecError> {
        usize::try_from(self.be(n)?).map_err(|_| truncated())
    }

    fn marker(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn map_len(&mut self) -> Result<usize, CodecError> {
        match self.marker()? {
            m @ 0x80..=0x8f => Ok(usize::from(m & 0x0f)),
            0xde => self.len(2),
            0xdf => self.len(4),
            _ => Err(CodecError::decode(Malformed("expected a map"))),
        }
    }

    fn str(&mut self) -> Result<&'a str, CodecError> {
        let len = match self.marker()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            _ => return Err(CodecError::decode(Malformed("expected a string"))),
        };
        std::str::from_utf8(self.take(len)?).map_err(CodecError::decode)
    }

    fn uint(&mut self) -> Result<u64, CodecError> {
        match self.marker()? {
            m @ 0x00..=0x7f => Ok(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => Err(CodecError::decode(Malformed(
                "expected an unsigned integer",
            ))),
        }
    }

    /// Skips one whole value and returns its bytes. Nesting is walked with an explicit count of
    /// values still to skip, so hostile input cannot exhaust the stack.
    fn value(&mut self) -> Result<&'a [u8], CodecError> {
        let start = self.0;
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let marker = self.marker()?;
            let (skip, children) = match marker {
                0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
                0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
                0x90..=0x9f => (0, usize::from(marker & 0x0f)),
                0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
                0xc4 | 0xd9 => (self.len(1)?, 0),
                0xc5 | 0xda => (self.len(2)?, 0),
                0xc6 | 0xdb => (self.len(4)?, 0),
                0xc7 => (self.len(1)? + 1, 0),
                0xc8 => (self.len(2)? + 1, 0),
                0xc9 => (self.len(4)? + 1, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 | 0xd4 => (2, 0),
                0xca | 0xce | 0xd2 => (4, 0),
                0xcb | 0xcf | 0xd3 => (8, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.len(2)?),
                0xdd => (0, self.len(4)?),
                0xde => (0, 2 * self.len(2)?),
                0xdf => (0, 2 * self.len(4)?),
                0xc1 => return Err(CodecError::decode(Malformed("reserved marker"))),
            };
            self.take(skip)?;
            // Every child takes at least one byte, so a count beyond the input is a lie.
            if children > self.0.len() {
                return Err(truncated());
            }
            pending += children;
        }
        Ok(&start[..start.len() - self.0.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_nested_values() {
        #[derive(Serialize)]
        struct Deep {
            a: Vec<Option<(u8, String)>>,
            b: std::collections::BTreeMap<String, f64>,
            c: serde_bytes_like::Bytes,
        }
        mod serde_bytes_like {
            #[derive(serde::Serialize)]
            pub(super) struct Bytes(pub(super) Vec<u8>);
        }
        let value = MsgpackCodec::encode(&Deep {
            a: vec![Some((1, "x".repeat(40))), None],
            b: [("k".to_owned(), 1.5)].into_iter().collect(),
            c: serde_bytes_like::Bytes(vec![0; 300]),
        })
        .unwrap();
        let mut tail = value.clone();
        tail.push(0x01);
        let mut reader = Reader(&tail);
        assert_eq!(reader.value().unwrap(), &value[..]);
        assert_eq!(reader.0, [0x01]);
        for cut in 0..value.len() {
            assert!(Reader(&value[..cut]).value().is_err());
        }
    }

    #[test]
    fn envelope_round_trip() {
        let metadata = Metadata {
            created: 5,
            updated: 7,
            max_age: None,
        };
        let fields = [
            ("n", MsgpackCodec::encode(&3u8).unwrap()),
            ("s", MsgpackCodec::encode("x").unwrap()),
        ];
        let bytes = MsgpackCodec::encode_record(RecordRef {
            metadata: &metadata,
            encoded: &fields,
            kept: &[],
        })
        .unwrap();
        let record = MsgpackCodec::decode_record(&bytes).unwrap();
        assert_eq!(record.metadata, metadata);
        assert_eq!(record.fields[1].1, fields[1].1);
        assert!(MsgpackCodec::decode_record(&[0x81, 0xa1, b'x']).is_err());
    }
}
