//! The forward a renewed-away id leaves behind: for the grace period, the old record holds one
//! reserved field that names the new id, so requests still carrying the old cookie find the
//! session (see [`SessionConfig::with_renewal`](crate::config::SessionConfig::with_renewal)).
//!
//! The new id is a bearer secret and stores may be read by operators (a Redis `MONITOR`, a key
//! dump), so it is stored masked: combined by XOR with a pad derived by SHA-256 from the *old* id, which
//! the store never holds (Redis keys are a different hash of it). Only a holder of the old id
//! can follow the forward, which is exactly what the grace period allows.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::codec::CodecError;
use crate::codec::RecordCodec;
use crate::record::{IdFormat, SessionId};

const VERSION: &str = "r1";

/// How many renewal forwards a load, or a delete, follows (two renewals within one grace period).
pub(crate) const MAX_FORWARDS: usize = 2;

/// `len` bytes of pad for `old`: SHA-256(domain ‖ counter ‖ old id), block after block.
fn pad(old: &SessionId, len: usize) -> Vec<u8> {
    let mut pad = Vec::with_capacity(len.next_multiple_of(32));
    let mut counter = 0u8;
    while pad.len() < len {
        let mut hash = Sha256::new();
        hash.update(b"session-runtime renewal forward\0");
        hash.update([counter]);
        hash.update(old.as_str().as_bytes());
        pad.extend_from_slice(&hash.finalize());
        counter = counter.wrapping_add(1);
    }
    pad.truncate(len);
    pad
}

/// The forward's value, encoded by the session's codec as a string:
/// `r1.<grace deadline, Unix ms>.<base64url(new id XOR pad(old id))>`.
pub(crate) fn encode(
    codec: RecordCodec,
    old: &SessionId,
    new: &SessionId,
    until: u64,
) -> Result<Vec<u8>, CodecError> {
    let new = new.as_str().as_bytes();
    let masked: Vec<u8> = new
        .iter()
        .zip(pad(old, new.len()))
        .map(|(byte, pad)| byte ^ pad)
        .collect();
    let text = format!(
        "{VERSION}.{until}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(masked)
    );
    codec.encode_text(&text)
}

/// Reads a forward written by [`encode`] for `old`: the grace deadline and the new id, which
/// must be of `ids`'s format. `None` for anything malformed.
pub(crate) fn decode(
    codec: RecordCodec,
    old: &SessionId,
    bytes: &[u8],
    ids: IdFormat,
) -> Option<(u64, SessionId)> {
    let text = codec.decode_text(bytes).ok()?;
    let mut parts = text.splitn(3, '.');
    if parts.next()? != VERSION {
        return None;
    }
    let until = parts.next()?.parse().ok()?;
    let masked = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts.next()?)
        .ok()?;
    let new: Vec<u8> = masked
        .iter()
        .zip(pad(old, masked.len()))
        .map(|(byte, pad)| byte ^ pad)
        .collect();
    let new = String::from_utf8(new).ok()?;
    Some((until, ids.parse(&new)?))
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;
    use crate::codec::JsonCodec;

    fn json() -> RecordCodec {
        RecordCodec::of::<JsonCodec>()
    }

    #[test]
    fn round_trip_and_masking() {
        let old = SessionId::generate().unwrap();
        let new = SessionId::generate().unwrap();
        let bytes = encode(json(), &old, &new, 1234).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(new.as_str()), "the new id is masked");
        assert_eq!(
            decode(json(), &old, &bytes, IdFormat::Base64Url256),
            Some((1234, new.clone()))
        );
        let other = SessionId::generate().unwrap();
        assert_eq!(
            decode(json(), &other, &bytes, IdFormat::Base64Url256),
            None,
            "only the old id opens it"
        );
        for garbage in [
            &b"\"r1.1.\""[..],
            b"\"r2.1.AA\"",
            b"12",
            b"\"r1.x.AA\"",
            b"\xff",
        ] {
            assert_eq!(decode(json(), &old, garbage, IdFormat::Base64Url256), None);
        }
        let hex_old = IdFormat::Hex128.generate().unwrap();
        let hex_new = IdFormat::Hex128.generate().unwrap();
        let bytes = encode(json(), &hex_old, &hex_new, 9).unwrap();
        assert_eq!(
            decode(json(), &hex_old, &bytes, IdFormat::Hex128),
            Some((9, hex_new))
        );
    }
}
