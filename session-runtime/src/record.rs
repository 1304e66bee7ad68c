//! The data model a store keeps: the [`Record`] of a session, its [`Metadata`], and the
//! [`SessionId`] that names it.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The reserved field name by which the runtime turns the record of a renewed-away id into a
/// forward to the session's new id (see
/// [`SessionConfig::with_renewal`](crate::config::SessionConfig::with_renewal) and
/// [`Record::is_renewed`]). Derived fields cannot have it: names starting with `__` are reserved.
pub const RENEWED_FIELD: &str = "__renewed";

/// The metadata stored beside the fields of every session.
///
/// Times are Unix milliseconds; they come from the layer's [`Clock`](crate::config::Clock), so
/// tests can move time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// When the session was created. It never changes.
    pub created: u64,
    /// When the session was last saved or touched; the idle timeout runs from here.
    pub updated: u64,
    /// The per-session idle timeout in seconds set with `set_max_age`, if any.
    pub max_age: Option<u64>,
}

impl Metadata {
    /// Returns the metadata of a session created at `now`.
    #[must_use]
    pub fn new(now: u64) -> Self {
        Self {
            created: now,
            updated: now,
            max_age: None,
        }
    }

    /// Returns when a session with this metadata expires (Unix milliseconds): the earlier of
    /// `updated + idle` and `created + absolute`.
    #[must_use]
    pub fn expires_at(&self, idle: u64, absolute: Option<u64>) -> u64 {
        let idle_end = self.updated.saturating_add(idle.saturating_mul(1000));
        match absolute {
            Some(absolute) => {
                idle_end.min(self.created.saturating_add(absolute.saturating_mul(1000)))
            }
            None => idle_end,
        }
    }
}

/// The shared byte buffer of a [`Record`]'s field values (the `bytes` crate's, which `http`
/// uses too).
pub use bytes::Bytes;

/// A session as a store keeps it: metadata and the encoded fields by stored name.
///
/// Names and values are cheap to clone, so a store that keeps records in memory hands out a
/// copy without copying any field: a name the runtime wrote is the session type's `&'static`
/// field name ([`Cow::Borrowed`]), and a value is a reference-counted [`Bytes`].
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The metadata.
    pub metadata: Metadata,
    /// Every stored field: its stored name and the codec's bytes.
    pub fields: Vec<(Cow<'static, str>, Bytes)>,
    /// Set by a store that wants the record written back even if nothing changed, for example a
    /// cookie sealed with a key that is no longer the primary one.
    pub rewrite: bool,
}

impl Record {
    /// Builds a record out of decoded parts, with nothing to rewrite.
    pub(crate) fn from_parts(metadata: Metadata, fields: Vec<(Cow<'static, str>, Bytes)>) -> Self {
        Self {
            metadata,
            fields,
            rewrite: false,
        }
    }

    /// Whether this is the record of a renewed-away id: it holds the reserved field
    /// [`RENEWED_FIELD`], a forward to the session's new id (see
    /// [`SessionConfig::with_renewal`](crate::config::SessionConfig::with_renewal)). A server
    /// store answers [`SaveOp::Update`](crate::store::SaveOp::Update) and
    /// [`SaveOp::Touch`](crate::store::SaveOp::Touch) of such a record with
    /// [`SaveOutcome::Missing`](crate::store::SaveOutcome::Missing); the runtime then follows
    /// the forward.
    #[must_use]
    pub fn is_renewed(&self) -> bool {
        self.fields.iter().any(|(name, _)| name == RENEWED_FIELD)
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Field values may hold personal data: show their names and sizes only.
        f.debug_struct("Record")
            .field("metadata", &self.metadata)
            .field(
                "fields",
                &self
                    .fields
                    .iter()
                    .map(|(name, value)| (&**name, value.len()))
                    .collect::<Vec<_>>(),
            )
            .field("rewrite", &self.rewrite)
            .finish()
    }
}

/// A borrowed view of a record, as the runtime hands it to a store or a codec for writing.
///
/// A record has two parts: `kept`, the stored fields carried as they were loaded (fields the
/// session type does not declare, values that no longer decode, and declared fields the handler
/// did not change), and `encoded`, the values the runtime encoded. The two never share a name.
/// A writer that stores the record (a codec's envelope, a store's value) goes through
/// [`RecordRef::iter`], which yields both: reading `encoded` alone would drop the kept fields.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    /// The metadata.
    pub metadata: &'a Metadata,
    /// The fields the runtime encoded: stored name and the codec's bytes. Not the whole record:
    /// a writer goes through [`RecordRef::iter`], which yields [`RecordRef::kept`] too.
    pub encoded: &'a [(&'static str, Vec<u8>)],
    /// The stored fields carried as they were loaded, byte for byte.
    pub kept: &'a [(Cow<'static, str>, Bytes)],
}

impl<'a> RecordRef<'a> {
    /// A record of encoded fields only, nothing kept.
    #[must_use]
    pub fn new(metadata: &'a Metadata, encoded: &'a [(&'static str, Vec<u8>)]) -> Self {
        Self {
            metadata,
            encoded,
            kept: &[],
        }
    }

    /// Every field of the record, the kept ones first, as stored name and bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + Clone + use<'a> {
        let kept = self.kept;
        let encoded = self.encoded;
        kept.iter()
            .map(|(name, value)| (&**name, &value[..]))
            .chain(encoded.iter().map(|(name, value)| (*name, &value[..])))
    }

    /// How many fields [`RecordRef::iter`] yields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.kept.len() + self.encoded.len()
    }

    /// Whether the record has no field at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRef")
            .field("metadata", self.metadata)
            .field(
                "fields",
                &self.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A server-side session id, as the cookie carries it and a store keys its record by.
///
/// Ids come from the operating system's CSPRNG in the shape of an [`IdFormat`]: by default
/// ([`IdFormat::Base64Url256`]) 256 bits written as 43 characters of unpadded base64url. Values
/// from cookies are validated against the store's format before any store sees them.
///
/// The id is a bearer secret: its `Debug` output is redacted and it has no `Display`.
//
// The id is kept inline, without a heap allocation: ids are parsed, cloned into the request lock
// and the write plan, and compared on every request.
#[derive(Clone)]
pub struct SessionId {
    /// How many bytes of `bytes` are the id; the rest are zero.
    len: u8,
    /// The id's characters, all ASCII (checked by `parse` and produced by `generate`).
    bytes: [u8; SessionId::MAX_LEN],
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SessionId {}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As its text hashes (`str`'s `Hash`: the bytes, then 0xff), without converting it to
        // a `str` first (a UTF-8 check per hash).
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

impl SessionId {
    /// The length in characters of an id of the default format, [`IdFormat::Base64Url256`].
    pub const LEN: usize = 43;

    /// Generates a fresh id of the default format from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// Returns an error when the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self, getrandom::Error> {
        IdFormat::Base64Url256.generate()
    }

    /// Parses an id of the default format from a cookie value: exactly [`SessionId::LEN`]
    /// characters of the base64url alphabet. Anything else is `None`, and never reaches a store.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_runtime::session::SessionId;
    ///
    /// let id = SessionId::generate().unwrap();
    /// assert_eq!(SessionId::parse(id.as_str()), Some(id));
    /// assert_eq!(SessionId::parse("../../etc/passwd"), None);
    /// ```
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        IdFormat::Base64Url256.parse(value)
    }

    /// Returns the id as text, for a store to build its key from.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Always ASCII (see the field); the fallback is unreachable.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The longest id of any [`IdFormat`].
    const MAX_LEN: usize = 43;

    /// Returns the id's bytes (ASCII), without the UTF-8 check of [`SessionId::as_str`].
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Builds an id from ASCII characters of an [`IdFormat`] (at most [`SessionId::MAX_LEN`]).
    fn from_ascii(value: &[u8]) -> Self {
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..value.len()].copy_from_slice(value);
        Self {
            len: u8::try_from(value.len()).unwrap_or(u8::MAX),
            bytes,
        }
    }
}

/// The shape of a store's session ids: how the runtime generates them and which cookie values
/// it accepts as ids. A store declares its format in
/// [`StoreFormat`](crate::store::StoreFormat); every format has at least 128 random bits and an
/// alphabet that is safe in cookies, keys and logs.
///
/// # Examples
///
/// ```
/// use session_runtime::session::IdFormat;
///
/// let id = IdFormat::Hex128.generate().unwrap();
/// assert_eq!(id.as_str().len(), 32);
/// assert!(IdFormat::Hex128.parse("6f8ef6f38f274a74b0f8eb8931f076ee").is_some());
/// assert!(IdFormat::Base64Url256.parse("6f8ef6f38f274a74b0f8eb8931f076ee").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdFormat {
    /// 256 random bits as 43 characters of unpadded base64url. The default.
    #[default]
    Base64Url256,
    /// 128 random bits as 32 lowercase hexadecimal characters: the shape of Python's
    /// `uuid.uuid4().hex`, the ids `aiohttp_session`'s server-side storages generate (which
    /// carry 122 random bits; ours carry 128).
    Hex128,
}

impl IdFormat {
    /// Generates a fresh id of this format from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// Returns an error when the operating system cannot provide random bytes.
    pub fn generate(self) -> Result<SessionId, getrandom::Error> {
        use base64::Engine as _;
        match self {
            Self::Base64Url256 => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes)?;
                let mut id = [0u8; SessionId::LEN];
                // 32 bytes are exactly 43 characters of unpadded base64: this cannot fail.
                let len = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode_slice(bytes, &mut id)
                    .unwrap_or_default();
                Ok(SessionId::from_ascii(&id[..len]))
            }
            Self::Hex128 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes)?;
                let mut id = [0u8; 32];
                for (pair, byte) in id.chunks_exact_mut(2).zip(bytes) {
                    pair[0] = HEX[usize::from(byte >> 4)];
                    pair[1] = HEX[usize::from(byte & 0xf)];
                }
                Ok(SessionId::from_ascii(&id))
            }
        }
    }

    /// Parses an id of this format from a cookie value; anything else is `None`.
    #[must_use]
    pub fn parse(self, value: &str) -> Option<SessionId> {
        let valid = match self {
            Self::Base64Url256 => {
                value.len() == SessionId::LEN && value.bytes().all(|b| BASE64URL[usize::from(b)])
            }
            Self::Hex128 => {
                value.len() == 32
                    && value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            }
        };
        valid.then(|| SessionId::from_ascii(value.as_bytes()))
    }
}

/// Which bytes are base64url characters (a table: this check runs on every request's cookie).
const BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        #[expect(clippy::cast_possible_truncation, reason = "b < 256")]
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// Converts Unix milliseconds to a [`SystemTime`].
pub(crate) fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_validated() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), SessionId::LEN);
        assert!(SessionId::parse(&a.as_str()[1..]).is_none());
        assert!(SessionId::parse(&format!("{}=", &a.as_str()[1..])).is_none());
        assert_eq!(format!("{a:?}"), "SessionId(<redacted>)");
    }

    #[test]
    fn ids_hash_as_their_text() {
        use std::hash::BuildHasher as _;
        let state = std::collections::hash_map::RandomState::new();
        let id = SessionId::generate().unwrap();
        assert_eq!(state.hash_one(&id), state.hash_one(id.as_str()));
    }

    #[test]
    fn hex_ids() {
        let a = IdFormat::Hex128.generate().unwrap();
        assert_ne!(a, IdFormat::Hex128.generate().unwrap());
        assert_eq!(IdFormat::Hex128.parse(a.as_str()), Some(a.clone()));
        assert!(SessionId::parse(a.as_str()).is_none(), "formats do not mix");
        assert!(IdFormat::Hex128.parse(&a.as_str().to_uppercase()).is_none());
        assert!(IdFormat::Hex128.parse(&a.as_str()[1..]).is_none());
        assert!(IdFormat::Hex128.parse("user-42-session").is_none());
        let b = SessionId::generate().unwrap();
        assert!(IdFormat::Hex128.parse(b.as_str()).is_none());
    }

    #[test]
    fn expiry_is_the_earlier_deadline() {
        let meta = Metadata {
            created: 1_000,
            updated: 5_000,
            max_age: None,
        };
        assert_eq!(meta.expires_at(10, None), 15_000);
        assert_eq!(meta.expires_at(10, Some(12)), 13_000);
        assert_eq!(meta.expires_at(u64::MAX, None), u64::MAX);
    }
}
