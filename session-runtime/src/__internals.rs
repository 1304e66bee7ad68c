//! Internals for the `session-bench` micro-benchmarks and the cargo-fuzz targets in `fuzz/`
//! (feature `internals`): each item reaches an internal function that the public API hides, and
//! none adds behaviour. Not part of the public API: nothing here is semver-stable.

use http::HeaderMap;

use crate::codec::Codec;
use crate::codec::RecordCodec;
use crate::config::SessionConfig;
use crate::cookie_header::{self, CookieAction};
#[cfg(feature = "redis-store")]
use crate::record::Record;
use crate::record::{Metadata, RecordRef, SessionId};
use crate::store::{Delete, Load, Save, SaveOp};

/// Finds a cookie in the request headers, as the extractor does.
#[must_use]
pub fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let (found, count) = cookie_header::find_cookies(headers, name);
    found[..count].first().copied()
}

/// Returns the envelope codec of codec `C`.
#[must_use]
pub fn record_codec<C: Codec>() -> RecordCodec {
    RecordCodec::of::<C>()
}

/// Builds the [`Load`] the runtime hands a store; `names` are the session type's
/// [`Session::LOAD_NAMES`](crate::Session::LOAD_NAMES) (the cookie stores ignore them).
#[must_use]
pub fn load<'a>(
    cookie_name: &'a str,
    value: &'a str,
    now: u64,
    codec: RecordCodec,
    names: &'a [&'static str],
) -> Load<'a> {
    Load {
        cookie_name,
        value,
        now,
        codec,
        names,
    }
}

/// Builds the [`Save`] the runtime hands a store.
#[must_use]
pub fn save<'a>(
    cookie_name: &'a str,
    op: SaveOp<'a>,
    metadata: &'a Metadata,
    fields: &'a [(&'static str, Vec<u8>)],
    expires_at: u64,
    codec: RecordCodec,
) -> Save<'a> {
    Save {
        cookie_name,
        op,
        record: RecordRef::new(metadata, fields),
        purge: None,
        expires_at,
        now: metadata.updated,
        codec,
        owner: None,
    }
}

/// Builds the [`Delete`] the runtime hands a store.
#[must_use]
pub fn delete<'a>(cookie_name: &'a str, id: &'a SessionId) -> Delete<'a> {
    Delete { cookie_name, id }
}

/// Parses a session id (for a store benchmark that reuses one record).
#[must_use]
pub fn session_id(value: &str) -> Option<SessionId> {
    SessionId::parse(value)
}

/// Seals a plaintext as [`EncryptedCookieStore`](crate::store::EncryptedCookieStore) does, in
/// the current format version (no framing of a record).
///
/// # Errors
///
/// The store's error.
#[cfg(feature = "cookie-store")]
pub fn seal(
    store: &crate::store::EncryptedCookieStore,
    cookie_name: &str,
    plaintext: &[u8],
) -> Result<String, crate::store::StoreError> {
    store.seal(cookie_name, plaintext.len(), |out| {
        out.extend_from_slice(plaintext);
    })
}

/// Opens a sealed value; `None` if it does not authenticate.
#[cfg(feature = "cookie-store")]
#[must_use]
pub fn open(
    store: &crate::store::EncryptedCookieStore,
    cookie_name: &str,
    value: &str,
) -> Option<Vec<u8>> {
    store
        .open(cookie_name, value)
        .map(|opened| opened.plaintext().to_vec())
}

/// Renders the `Set-Cookie` value the layer sends: `Some((value, max_age))` sets the cookie,
/// `None` renders the removal cookie. The layer only renders after
/// [`SessionConfig::validate_for`] accepted `name`.
#[must_use]
pub fn render_set_cookie(name: &str, set: Option<(&str, u64)>, config: &SessionConfig) -> String {
    let action = match set {
        Some((value, max_age)) => CookieAction::Set {
            value: value.to_owned(),
            max_age,
        },
        None => CookieAction::Remove,
    };
    cookie_header::render(name, &action, config)
}

/// Turns the reply to the load's `HMGET` (`__meta`, `__max_age`, `__renewed`, then `names`) into
/// a record as [`RedisStore`](crate::store::RedisStore) does; `None` when there is no record or
/// its reply or metadata is malformed.
#[cfg(feature = "redis-store")]
#[must_use]
pub fn redis_record(reply: redis::Value, names: &[&'static str]) -> Option<Record> {
    crate::store::redis::read_reply_record(reply, names)
}
