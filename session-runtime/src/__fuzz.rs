//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`). Each one reaches an
//! internal function the fuzzers need but the public API hides; none adds behaviour. Not part of
//! the public API: nothing here is semver-stable.

use std::future::Future;

use crate::codec::Codec;
use crate::config::SessionConfig;
use crate::lifecycle::{self, CookieAction};
use crate::session::Record;
use crate::store::{Load, RecordCodec, SessionStore, StoreError};

/// Loads `value` from `store` as the runtime does after finding the cookie `cookie_name`, with the
/// envelope codec of `C` (the [`Load`] a store receives cannot be built outside the crate).
pub fn load<'a, S: SessionStore, C: Codec>(
    store: &'a S,
    cookie_name: &'a str,
    value: &'a str,
    now: u64,
) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send + 'a {
    store.load(Load {
        cookie_name,
        value,
        now,
        codec: RecordCodec::of::<C>(),
    })
}

/// Renders the `Set-Cookie` value the layer sends: `Some((value, max_age))` sets the cookie,
/// `None` renders the removal cookie. The layer only renders after
/// [`SessionConfig::validate`] accepted `name`.
#[must_use]
pub fn render_set_cookie(name: &str, set: Option<(&str, u64)>, config: &SessionConfig) -> String {
    let action = match set {
        Some((value, max_age)) => CookieAction::Set {
            value: value.to_owned(),
            max_age,
        },
        None => CookieAction::Remove,
    };
    lifecycle::render(name, &action, config)
}

/// Seals a plaintext as [`EncryptedCookieStore`](crate::store::EncryptedCookieStore) does.
///
/// # Errors
///
/// The store's sealing error.
#[cfg(feature = "cookie-store")]
pub fn seal_encrypted(
    store: &crate::store::EncryptedCookieStore,
    cookie_name: &str,
    plaintext: &[u8],
) -> Result<String, StoreError> {
    store.seal(cookie_name, plaintext)
}

/// Opens a cookie value as [`EncryptedCookieStore`](crate::store::EncryptedCookieStore) does:
/// the plaintext, or `None` for anything that does not authenticate.
#[cfg(feature = "cookie-store")]
#[must_use]
pub fn open_encrypted(
    store: &crate::store::EncryptedCookieStore,
    cookie_name: &str,
    value: &str,
) -> Option<Vec<u8>> {
    store
        .open(cookie_name, value)
        .map(|(plaintext, _)| plaintext)
}

/// Turns an `HGETALL` reply into a record as [`RedisStore`](crate::store::RedisStore) does;
/// `None` when the metadata is missing or malformed.
#[cfg(feature = "redis-store")]
#[must_use]
pub fn redis_record(hash: Vec<(Vec<u8>, Vec<u8>)>) -> Option<Record> {
    crate::store::redis_parse_record(hash)
}
