//! aiohttp_session's cookie storages: the plain JSON cookie and the Fernet cookie.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use fernet::Fernet;

use super::{decode_envelope, encode_envelope};
use crate::record::Record;
use crate::store::{
    CookieQuoting, Delete, Immediate, Load, Save, SaveOp, SaveOutcome, StoreError, StoreFormat,
    StoreKind,
};

/// The cookie stores' format: Python's cookie quoting; ids are not used.
const COOKIE_FORMAT: StoreFormat = StoreFormat::new().with_quoting(CookieQuoting::Python);

fn not_a_server_store() -> StoreError {
    StoreError::backend("cookie stores keep no server-side records")
}

fn seal_only(op: SaveOp<'_>) -> Result<(), StoreError> {
    match op {
        SaveOp::Seal => Ok(()),
        _ => Err(not_a_server_store()),
    }
}

/// Reads an envelope from a cookie; anything that is not one is no session.
fn read_envelope(text: &str) -> Option<Record> {
    match decode_envelope(text) {
        Ok(record) => record,
        Err(error) => {
            tracing::debug!(
                error = &error as &dyn std::error::Error,
                "session cookie is not an aiohttp_session envelope; starting a fresh session"
            );
            None
        }
    }
}

/// `aiohttp_session.SimpleCookieStorage`'s format: the JSON envelope
/// `{"created": <unix seconds>, "session": {...}}` in the cookie, quoted like Python's
/// `http.cookies` (`"{\"created\": 1795462873\054 \"session\": {...}}"`), **neither encrypted nor
/// signed**. For tests only, like its Python twin: any client can read and forge it.
///
/// Creating one logs a warning. See the [module docs](super) for the semantics across servers.
///
/// # Examples
///
/// ```
/// use session_runtime::SessionLayer;
/// use session_runtime::store::aiohttp::AiohttpSimpleCookieStore;
///
/// let layer = SessionLayer::new(AiohttpSimpleCookieStore::new());
/// ```
#[derive(Debug)]
pub struct AiohttpSimpleCookieStore(());

impl AiohttpSimpleCookieStore {
    /// Creates the store and logs a warning that it is not for production.
    #[must_use]
    pub fn new() -> Self {
        tracing::warn!(
            "AiohttpSimpleCookieStore keeps sessions unencrypted and unsigned in the cookie; clients can read and forge them; use it for tests only"
        );
        Self(())
    }
}

impl Default for AiohttpSimpleCookieStore {
    fn default() -> Self {
        Self::new()
    }
}

immediate_store!(AiohttpSimpleCookieStore, StoreKind::Cookie, COOKIE_FORMAT);

/// The operations themselves: they never wait, so the layer calls them without a future.
impl Immediate for AiohttpSimpleCookieStore {
    fn load_now(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        Ok(read_envelope(load.value))
    }

    fn save_now(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        seal_only(save.op)?;
        Ok(SaveOutcome::Saved(encode_envelope(save.record)?))
    }

    fn delete_now(&self, _: Delete<'_>) -> Result<(), StoreError> {
        Err(not_a_server_store())
    }
}

/// A key [`AiohttpEncryptedCookieStore`] could not use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AiohttpKeyError {
    /// The secret is not 32 bytes (aiohttp_session raises `ValueError` for the same).
    #[error("an aiohttp_session secret key must be 32 bytes, got {0}")]
    Length(usize),
    /// The text is not a Fernet key: 32 bytes in URL-safe base64.
    #[error("a Fernet key must be 32 bytes in URL-safe base64")]
    NotAFernetKey,
}

/// Fernet's token layout: version byte 0x80, timestamp (u64, big-endian seconds), IV (16),
/// at least one AES block (16), HMAC-SHA256 (32).
const FERNET_VERSION: u8 = 0x80;
const FERNET_MIN_LEN: usize = 1 + 8 + 16 + 16 + 32;
/// How far in the future a token's timestamp may lie (cryptography's `_MAX_CLOCK_SKEW`).
const FERNET_MAX_SKEW: u64 = 60;

/// `aiohttp_session.cookie_storage.EncryptedCookieStorage`'s format: the JSON envelope encrypted
/// as a [Fernet](https://github.com/fernet/spec) token (AES-128-CBC and HMAC-SHA256, from the
/// `RustCrypto` crates), quoted like Python's `http.cookies` when it ends in `=`.
///
/// Build it from the same secret the Python side uses: [`from_secret`](Self::from_secret) for
/// the 32 raw bytes (`EncryptedCookieStorage(b"...32 bytes...")`) or
/// [`from_fernet_key`](Self::from_fernet_key) for a Fernet key string
/// (`EncryptedCookieStorage(Fernet.generate_key().decode())`). Give it the Python storage's
/// `max_age` with [`with_ttl`](Self::with_ttl): aiohttp_session decrypts with `ttl=max_age`, so
/// a token last saved longer ago than that does not open, on either side.
///
/// Fernet authenticates the token only, not the cookie name, and has one key (aiohttp_session
/// refuses `MultiFernet`): it is a bridge for the migration, not a replacement for
/// [`EncryptedCookieStore`](crate::store::EncryptedCookieStore) (AES-256-GCM-SIV, bound to the
/// cookie name, key rotation), which the [module docs](super) explain how to move to.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_runtime::SessionLayer;
/// use session_runtime::store::aiohttp::AiohttpEncryptedCookieStore;
///
/// // Python: EncryptedCookieStorage(b"Thirty  two  length  bytes  key.", max_age=3600)
/// let store = AiohttpEncryptedCookieStore::from_secret(b"Thirty  two  length  bytes  key.")?
///     .with_ttl(Duration::from_secs(3600));
/// let layer = SessionLayer::new(store);
/// # Ok::<(), session_runtime::store::aiohttp::AiohttpKeyError>(())
/// ```
pub struct AiohttpEncryptedCookieStore {
    fernet: Fernet,
    ttl: Option<u64>,
}

impl fmt::Debug for AiohttpEncryptedCookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiohttpEncryptedCookieStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AiohttpEncryptedCookieStore {
    /// Builds the store from the 32 raw bytes the Python side passes as `secret_key` (it
    /// base64-encodes them into a Fernet key, as this does).
    ///
    /// # Errors
    ///
    /// Returns [`AiohttpKeyError::Length`] unless `secret` is 32 bytes long.
    pub fn from_secret(secret: &[u8]) -> Result<Self, AiohttpKeyError> {
        if secret.len() != 32 {
            return Err(AiohttpKeyError::Length(secret.len()));
        }
        let key = zeroize::Zeroizing::new(URL_SAFE.encode(secret));
        Self::from_fernet_key(&key)
    }

    /// Builds the store from a Fernet key: 32 bytes in URL-safe base64, as
    /// `Fernet.generate_key()` makes them.
    ///
    /// # Errors
    ///
    /// Returns [`AiohttpKeyError::NotAFernetKey`] for anything else.
    pub fn from_fernet_key(key: &str) -> Result<Self, AiohttpKeyError> {
        let fernet = Fernet::new(key.trim()).ok_or(AiohttpKeyError::NotAFernetKey)?;
        Ok(Self { fernet, ttl: None })
    }

    /// Sets the Fernet TTL: tokens whose timestamp (their last save) is older do not open. Set
    /// it to the Python storage's `max_age`. The default is none, as in aiohttp_session without
    /// `max_age`; the runtime's idle timeout, measured from the envelope's `created`, applies
    /// either way.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl.as_secs());
        self
    }

    /// Checks a token's layout and timestamp before Fernet sees it: the timestamp is not
    /// authenticated yet, and must be neither too old (the TTL) nor too far in the future.
    fn timely(&self, token: &str, now: u64) -> bool {
        let Ok(raw) = URL_SAFE
            .decode(token)
            .or_else(|_| URL_SAFE_NO_PAD.decode(token))
        else {
            return false;
        };
        if raw.len() < FERNET_MIN_LEN || raw[0] != FERNET_VERSION {
            return false;
        }
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&raw[1..9]);
        let stamp = u64::from_be_bytes(stamp);
        stamp <= now.saturating_add(FERNET_MAX_SKEW)
            && self.ttl.is_none_or(|ttl| stamp.saturating_add(ttl) >= now)
    }
}

immediate_store!(
    AiohttpEncryptedCookieStore,
    StoreKind::Cookie,
    COOKIE_FORMAT
);

/// The operations themselves: they never wait, so the layer calls them without a future.
impl Immediate for AiohttpEncryptedCookieStore {
    fn load_now(&self, load: Load<'_>) -> Result<Option<Record>, StoreError> {
        let now = load.now / 1000;
        let plaintext = if self.timely(load.value, now) {
            self.fernet.decrypt_at_time(load.value, None, now).ok()
        } else {
            None
        };
        let Some(plaintext) = plaintext.map(zeroize::Zeroizing::new) else {
            tracing::debug!("Fernet session cookie does not open; starting a fresh session");
            return Ok(None);
        };
        let Ok(text) = std::str::from_utf8(&plaintext) else {
            tracing::warn!(
                "authentic Fernet session cookie is not UTF-8; starting a fresh session"
            );
            return Ok(None);
        };
        Ok(read_envelope(text))
    }

    fn save_now(&self, save: Save<'_>) -> Result<SaveOutcome, StoreError> {
        seal_only(save.op)?;
        let plaintext = zeroize::Zeroizing::new(encode_envelope(save.record)?);
        Ok(SaveOutcome::Saved(
            self.fernet
                .encrypt_at_time(plaintext.as_bytes(), save.now / 1000),
        ))
    }

    fn delete_now(&self, _: Delete<'_>) -> Result<(), StoreError> {
        Err(not_a_server_store())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8; 32] = b"Thirty  two  length  bytes  key.";
    const NOW: u64 = 1_795_462_873;

    fn store() -> AiohttpEncryptedCookieStore {
        AiohttpEncryptedCookieStore::from_secret(SECRET)
            .unwrap()
            .with_ttl(Duration::from_secs(600))
    }

    #[test]
    fn keys() {
        assert!(matches!(
            AiohttpEncryptedCookieStore::from_secret(b"abc"),
            Err(AiohttpKeyError::Length(3))
        ));
        assert!(AiohttpEncryptedCookieStore::from_fernet_key("not a key").is_err());
        // The docs' raw key and its Fernet form are the same key.
        let fernet_key = URL_SAFE.encode(SECRET);
        let token = store().fernet.encrypt_at_time(b"{}", NOW);
        let same = AiohttpEncryptedCookieStore::from_fernet_key(&fernet_key).unwrap();
        assert_eq!(
            same.fernet.decrypt_at_time(&token, None, NOW).unwrap(),
            b"{}"
        );
        assert_eq!(
            format!("{same:?}"),
            "AiohttpEncryptedCookieStore { ttl: None, .. }"
        );
    }

    #[test]
    fn ttl_and_skew() {
        let store = store();
        let token = store.fernet.encrypt_at_time(b"{}", NOW);
        assert!(store.timely(&token, NOW));
        assert!(store.timely(&token, NOW + 600));
        assert!(!store.timely(&token, NOW + 601), "older than the TTL");
        assert!(store.timely(&token, NOW - 60));
        assert!(!store.timely(&token, NOW - 61), "from the future");
        let no_ttl = AiohttpEncryptedCookieStore::from_secret(SECRET).unwrap();
        assert!(no_ttl.timely(&token, NOW + 10_000_000));
        // A forged timestamp of u64::MAX must not overflow anything.
        let mut raw = URL_SAFE.decode(&token).unwrap();
        raw[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(!store.timely(&URL_SAFE.encode(&raw), NOW));
        assert!(!store.timely("gAAAA", NOW));
        assert!(!store.timely("", NOW));
    }
}
