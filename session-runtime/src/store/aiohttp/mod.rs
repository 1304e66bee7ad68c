//! Stores that speak Python `aiohttp_session`'s formats, so a Python and a Rust server can serve
//! the same users during a migration (feature `aiohttp-compat`).
//!
//! Teams move an aiohttp service to Rust route by route, behind one domain. While both servers
//! run, a session written by one must be read and changed by the other. These stores read and
//! write exactly what `aiohttp_session` 2.12 reads and writes:
//!
//! | Python storage | Rust store | cookie value | server side |
//! |---|---|---|---|
//! | `SimpleCookieStorage` | [`AiohttpSimpleCookieStore`] | the JSON envelope, quoted like `http.cookies` | none |
//! | `EncryptedCookieStorage` | [`AiohttpEncryptedCookieStore`] | a Fernet token of the envelope | none |
//! | `RedisStorage` | `AiohttpRedisStore` (with `redis-store`) | a 32-hex-character id | `SET <cookie_name>_<id> <envelope> EX <max_age>` |
//!
//! The *envelope* is `{"created": <unix seconds>, "session": {<key>: <value>, ...}}`. The
//! session struct's stored field names (after `rename`) are the keys of the `session` dict, and
//! every field is JSON: use the default `json` codec. A Python key the struct does not declare
//! is ignored by Rust and written back unchanged when Rust saves; a declared key the Python
//! session lacks stays absent unless a Rust handler sets it.
//!
//! # Semantics across the two servers
//!
//! Where the other server can observe a difference, aiohttp_session's meaning is kept:
//! - `created` is the time of the last write (aiohttp_session bumps it on every assignment), and
//!   both sides drop a session whose `created` is more than `max_age` seconds old. Rust writes the
//!   save time there; [`TypedSession::created`](crate::TypedSession::created) reads it back.
//!   Give both servers the same `max_age`.
//! - `{}` means invalidated: Rust treats it as no session and issues a **fresh id** on the next
//!   save, as Python does; a Redis key that is gone means the same to Python.
//! - A Fernet token older than the store's TTL (Python's `ttl=max_age`) does not open.
//!
//! Where it cannot, our stronger behaviour stays: invalidation deletes the Redis key and removes
//! the cookie instead of writing `{}`; every Redis key gets a TTL even without `max_age`; new
//! ids carry 128 random bits instead of 122; garbage never answers 500; `HttpOnly`, `Secure` and
//! `SameSite=Lax` cookies whose removal repeats those attributes.
//!
//! Limits of the format: it has no creation time, so `absolute_max_age` runs from the last save;
//! a per-session `set_max_age` sets the cookie's and the key's lifetime but is not stored (as in
//! aiohttp_session); whole records are written, so two servers changing different fields of one
//! session at the same moment is last-write-wins (as in aiohttp_session). Leave periodic id
//! renewal ([`SessionConfig::with_renewal`](crate::config::SessionConfig::with_renewal)) off
//! while both servers share sessions: Python does not follow a renewed id's forward (it would
//! see the old data with a `__renewed` key), and without a creation time the period runs from the
//! last save.
//!
//! # Example
//!
//! ```
//! use session_runtime::store::aiohttp::{AiohttpEncryptedCookieStore, AiohttpSimpleCookieStore};
//! use session_runtime::{Session, SessionLayer, TypedSession};
//!
//! /// The `session` dict the Python app uses: `session["visits"]`, `session["userName"]`.
//! #[derive(Session)]
//! #[session(cookie_name = "AIOHTTP_SESSION", max_age = 3600)]
//! struct Legacy {
//!     visits: u64,
//!     #[session(rename = "userName")]
//!     user_name: String,
//! }
//!
//! async fn visit(mut session: TypedSession<Legacy>) -> String {
//!     *session.visits_mut() += 1;
//!     session.visits().to_string()
//! }
//!
//! // The same 32-byte secret the Python side passes to `EncryptedCookieStorage`.
//! let store = AiohttpEncryptedCookieStore::from_secret(b"Thirty  two  length  bytes  key.")?
//!     .with_ttl(std::time::Duration::from_secs(3600));
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(visit))
//!     .layer(SessionLayer::new(store));
//! # Ok::<(), session_runtime::store::aiohttp::AiohttpKeyError>(())
//! ```
//!
//! # Moving to the native stores
//!
//! Once Python is gone, move to the native stores: field-level writes, 256-bit ids, a stored
//! creation time and per-session `max_age`, ciphertexts bound to their cookie, key rotation.
//! Changing the store logs everyone out once. To avoid that, give the native session type
//! another cookie name and serve both types from one store that routes by cookie name (every
//! [`SessionStore`](crate::store::SessionStore) call carries it); a request with a live legacy
//! session copies it over and invalidates it. `AiohttpRedisStore`'s documentation shows such a
//! store for Redis; the cookie stores work the same way.
//!
//! The full migration guide, from running both servers to moving to the native stores, is
//! `docs/migrating-from-aiohttp-session.md` in the repository.

mod cookie;
#[cfg(feature = "redis-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-store")))]
mod redis;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use cookie::{AiohttpEncryptedCookieStore, AiohttpKeyError, AiohttpSimpleCookieStore};
#[cfg(feature = "redis-store")]
pub use redis::AiohttpRedisStore;

use crate::codec::CodecError;
use crate::codec::error::Malformed;
use crate::record::{Metadata, Record, RecordRef};

/// Writes the envelope as Python's `json.dumps` does: `", "` and `": "` separators, `created`
/// first, non-ASCII characters as `\uXXXX` escapes (`ensure_ascii`). Every field must already be
/// one JSON value (the `json` codec's output).
pub(crate) fn encode_envelope(record: RecordRef<'_>) -> Result<String, CodecError> {
    let mut out = String::with_capacity(
        48 + record
            .iter()
            .map(|(name, value)| name.len() + value.len() + 6)
            .sum::<usize>(),
    );
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{{\"created\": {}, \"session\": {{",
        record.metadata.updated / 1000
    );
    for (i, (name, value)) in record.iter().enumerate() {
        let value = std::str::from_utf8(value)
            .ok()
            .filter(|text| serde_json::from_str::<&RawValue>(text).is_ok())
            .ok_or_else(|| {
                CodecError::encode(Malformed(
                    "aiohttp_session stores need every field as JSON; use the `json` codec",
                ))
            })?;
        if i > 0 {
            out.push_str(", ");
        }
        let name = serde_json::to_string(name).map_err(CodecError::encode)?;
        push_ascii(&mut out, &name);
        out.push_str(": ");
        push_ascii(&mut out, value);
    }
    out.push_str("}}");
    Ok(out)
}

/// Appends JSON text with every non-ASCII character escaped as `\uXXXX` (UTF-16, lowercase hex,
/// as Python writes them). In valid JSON such characters occur only inside strings, where the
/// escape means the same character.
fn push_ascii(out: &mut String, json: &str) {
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}

/// The envelope as aiohttp_session reads it: both keys optional.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    created: Option<serde_json::Number>,
    #[serde(default, borrow)]
    session: Option<BTreeMap<String, &'a RawValue>>,
}

/// Reads an envelope. `Ok(None)` is no session: `{}` (invalidated), `null`, or an envelope
/// without `created` (which aiohttp_session treats as infinitely old).
pub(crate) fn decode_envelope(text: &str) -> Result<Option<Record>, CodecError> {
    let Some(envelope) =
        serde_json::from_str::<Option<Envelope<'_>>>(text).map_err(CodecError::decode)?
    else {
        return Ok(None);
    };
    let Some(created) = envelope.created else {
        return Ok(None);
    };
    let secs = created
        .as_u64()
        .or_else(|| created.as_f64().and_then(whole_seconds))
        .ok_or_else(|| CodecError::decode(Malformed("`created` is not a time")))?;
    let at = secs.saturating_mul(1000);
    let fields = envelope
        .session
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            (
                name.into(),
                bytes::Bytes::copy_from_slice(value.get().as_bytes()),
            )
        })
        .collect();
    Ok(Some(Record::from_parts(
        Metadata {
            created: at,
            updated: at,
            max_age: None,
        },
        fields,
    )))
}

/// Truncates a non-negative, finite float of seconds (Python's `time.time()`, should someone
/// store it unrounded) to whole seconds.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the value is checked to be finite and non-negative; the cast saturates above u64::MAX"
)]
fn whole_seconds(secs: f64) -> Option<u64> {
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CookieQuoting;

    fn envelope(updated: u64, fields: &[(&'static str, &str)]) -> String {
        let metadata = Metadata {
            created: 5,
            updated,
            max_age: Some(9),
        };
        let fields: Vec<_> = fields
            .iter()
            .map(|(name, value)| (*name, value.as_bytes().to_vec()))
            .collect();
        encode_envelope(RecordRef {
            metadata: &metadata,
            encoded: &fields,
            kept: &[],
        })
        .unwrap()
    }

    #[test]
    fn writes_what_python_writes() {
        // json.dumps({"created": 1795462873, "session": {"user_id": 42, "name": "alice"}})
        assert_eq!(
            envelope(
                1_795_462_873_999,
                &[("user_id", "42"), ("name", "\"alice\"")]
            ),
            r#"{"created": 1795462873, "session": {"user_id": 42, "name": "alice"}}"#
        );
        // json.dumps({"created": 1, "session": {"naïve": "Zoë 🌍"}})
        assert_eq!(
            envelope(1_000, &[("naïve", "\"Zoë 🌍\"")]),
            r#"{"created": 1, "session": {"na\u00efve": "Zo\u00eb \ud83c\udf0d"}}"#
        );
    }

    #[test]
    fn refuses_fields_that_are_not_json() {
        let metadata = Metadata::new(0);
        let fields = [("a", vec![0x81, 0x01])];
        assert!(
            encode_envelope(RecordRef {
                metadata: &metadata,
                encoded: &fields,
                kept: &[],
            })
            .is_err()
        );
    }

    #[test]
    fn reads_what_python_writes() {
        let record = decode_envelope(
            r#"{"created": 1795462873, "session": {"user_id": 42, "name": "Zo\u00eb", "n": {"a": [1, 2]}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(record.metadata.updated, 1_795_462_873_000);
        assert_eq!(record.metadata.created, record.metadata.updated);
        let get = |name: &str| {
            record
                .fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
        };
        assert_eq!(get("user_id").as_deref(), Some("42"));
        assert_eq!(
            serde_json::from_str::<String>(&get("name").unwrap()).unwrap(),
            "Zoë"
        );
        assert_eq!(get("n").as_deref(), Some(r#"{"a": [1, 2]}"#));
        let float = decode_envelope(r#"{"created": 12.7, "session": {}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(float.metadata.updated, 12_000);
    }

    #[test]
    fn empty_null_and_undated_envelopes_are_no_session() {
        for text in ["{}", "null", r#"{"session": {"a": 1}}"#] {
            assert!(decode_envelope(text).unwrap().is_none(), "{text}");
        }
        for text in ["", "[1,2]", "123", "notjson", r#"{"created": "x"}"#] {
            assert!(decode_envelope(text).is_err(), "{text}");
        }
    }

    #[test]
    fn python_cookie_quoting_round_trips() {
        // SimpleCookieStorage's real output, as aiohttp_session 2.12 writes it.
        let raw = r#""{\"created\": 1795462873\054 \"session\": {\"user_id\": 42\054 \"name\": \"alice\"}}""#;
        let json = r#"{"created": 1795462873, "session": {"user_id": 42, "name": "alice"}}"#;
        assert_eq!(CookieQuoting::Python.unquote(raw), json);
        assert_eq!(CookieQuoting::Python.quote(json), raw);
        for value in [
            "plain-value_1.2:3",
            "a;b,c\\d\"e",
            "tab\there\u{7f}\u{e9}",
            "=padded==",
            "",
            "\\",
            "end\\",
        ] {
            let quoted = CookieQuoting::Python.quote(value);
            assert!(!quoted.contains(';') && !quoted.contains(','), "{quoted}");
            assert_eq!(CookieQuoting::Python.unquote(&quoted), value, "{quoted}");
        }
        assert_eq!(CookieQuoting::Python.quote("tab\t"), r#""tab\011""#);
        assert_eq!(CookieQuoting::Python.quote("\u{e9}"), r#""\351""#);
        assert_eq!(CookieQuoting::Python.quote("x="), r#""x=""#);
        // Escapes Python does not write are still read as Python reads them.
        assert_eq!(CookieQuoting::Python.unquote(r#""\q\400""#), "q400");
        assert_eq!(CookieQuoting::Python.unquote("\""), "\"");
    }
}
