//! The codec-neutral envelope: `b'S' 1 | created u64 | updated u64 | max_age u64 (MAX = none) |
//! count u32 | (name_len u16 | name | value_len u32 | value)*`, integers big-endian.

use super::error::{CodecError, Malformed};
use crate::record::{Bytes, Metadata, Record, RecordRef};

const MAGIC: [u8; 2] = [b'S', 1];

pub(super) fn encode(record: RecordRef<'_>) -> Vec<u8> {
    let size = 30
        + record
            .iter()
            .map(|(name, value)| 6 + name.len() + value.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&record.metadata.created.to_be_bytes());
    out.extend_from_slice(&record.metadata.updated.to_be_bytes());
    out.extend_from_slice(&record.metadata.max_age.unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(record.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for (name, value) in record.iter() {
        // Names come from the derive (short identifiers); values are bounded by the cookie size.
        out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::decode(Malformed("truncated")));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut buf = [0; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    fn u32(&mut self) -> Result<usize, CodecError> {
        let mut buf = [0; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(buf) as usize)
    }

    fn u16(&mut self) -> Result<usize, CodecError> {
        let mut buf = [0; 2];
        buf.copy_from_slice(self.take(2)?);
        Ok(usize::from(u16::from_be_bytes(buf)))
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut reader = Reader(bytes);
    if reader.take(2)? != MAGIC {
        return Err(CodecError::decode(Malformed("unknown envelope version")));
    }
    let created = reader.u64()?;
    let updated = reader.u64()?;
    let max_age = Some(reader.u64()?).filter(|v| *v != u64::MAX);
    let count = reader.u32()?;
    // Every field takes at least 6 bytes: never trust the count for an allocation.
    let mut fields = Vec::with_capacity(count.min(reader.0.len() / 6));
    for _ in 0..count {
        let name_len = reader.u16()?;
        let name = std::str::from_utf8(reader.take(name_len)?)
            .map_err(CodecError::decode)?
            .to_owned();
        let value_len = reader.u32()?;
        fields.push((name.into(), Bytes::copy_from_slice(reader.take(value_len)?)));
    }
    if !reader.0.is_empty() {
        return Err(CodecError::decode(Malformed("trailing bytes")));
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
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let metadata = Metadata {
            created: 1,
            updated: 2,
            max_age: Some(60),
        };
        let fields = [("a", b"1".to_vec()), ("bb", b"[2]".to_vec())];
        let bytes = encode(RecordRef {
            metadata: &metadata,
            encoded: &fields,
            kept: &[],
        });
        let record = decode(&bytes).unwrap();
        assert_eq!(record.metadata, metadata);
        assert_eq!(record.fields[1], ("bb".into(), Bytes::from_static(b"[2]")));
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }
}
